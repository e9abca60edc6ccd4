"""One small error tree. Every error that reaches the user prints as one line naming where and why."""

from __future__ import annotations


class McxaError(Exception):
    """Root of all mcxa errors; ``where`` is a file (and maybe line/key or frame) the reason applies to."""

    def __init__(self, reason: str, where: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


class InputError(McxaError):
    """An input file cannot be read as what it claims to be (exit code 2)."""


class CaptureFormatError(InputError):
    """Not a pcap/pcapng file, or its file header / section header is broken."""


class UsageError(McxaError):
    """A command-line option or argument is wrong (exit code 2)."""
