"""Renderers: records in, text/bytes out. One registry per command, keyed by ``--format``."""
