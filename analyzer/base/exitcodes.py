"""Exit codes of every command, mirroring ../shared/contract/README.md."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # all procedures compliant, or nothing to judge
    DEVIATION = 1  # at least one deviation
    BAD_INPUT = 2  # bad usage or unreadable input (one-line message on stderr)
    INCOMPLETE = 3  # incomplete only
