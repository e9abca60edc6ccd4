"""Where the meaning stages put their problems: counted and capped per code like diagnostics.

A list would grow with the capture (a million broken bodies); this keeps the first records of each code and
counts all, and is added to the decoding's own diagnostics at the end.
"""

from __future__ import annotations

from analyzer.base.diagnostics import Diagnostic, Diagnostics


class Problems:
    """A sink for ``mcfacts.Problem``s (anything with ``code``, ``message``, ``frames``)."""

    def __init__(self):
        self.found = Diagnostics()

    def append(self, problem) -> None:
        self.found.add(problem.code, problem.message, problem.frames)

    def merge(self, counts: dict[str, int], records: list[Diagnostic]) -> None:
        """Take in another sink's ``found`` (another process's: ``analyzer.meaning.events.shard``)."""
        self.found.merge(counts, records)
