"""mcxa: decode MC (MCPTT/MCVideo/MCData) signalling from captures and judge TS 23.280 §10.16 migrations."""

__version__ = "0.1.0"
