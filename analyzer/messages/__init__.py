"""Message stage: SIP and HTTP parsing (RFC knowledge only, no MC meaning)."""
