"""Where the meaning stages put their problems: counted and capped per code like diagnostics.

A list would grow with the capture (a million broken bodies); this counts all and keeps, of each code, the
records of the first frames (not the first found: facts complete out of order, and on two cores part of
them in the decoder's worker, ``analyzer.meaning.events.shard``). So the records kept and their order
depend only on the capture, never on which process found what. They are added to the decoding's own
diagnostics at the end.
"""

from __future__ import annotations

from collections import Counter

from analyzer.base.diagnostics import KEEP_PER_CODE, Diagnostic


def _order(d: Diagnostic) -> tuple:
    return d.frames, d.code, d.message


class Problems:
    """A sink for ``mcfacts.Problem``s (anything with ``code``, ``message``, ``frames``)."""

    def __init__(self, keep: int = KEEP_PER_CODE):
        self.keep = keep
        self.counts: Counter = Counter()
        self._kept: dict[str, list[Diagnostic]] = {}

    def append(self, problem) -> None:
        self.counts[problem.code] += 1
        self._keep(Diagnostic(problem.code, problem.message, tuple(problem.frames)))

    def merge(self, counts: dict[str, int], records: list[Diagnostic]) -> None:
        """Take in another sink's ``counts`` and ``records`` (another process's)."""
        self.counts.update(counts)
        for d in records:
            self._keep(d)

    @property
    def records(self) -> list[Diagnostic]:
        """The records kept, in frame order: at most ``keep`` of each code, those of the first frames."""
        return sorted((d for kept in self._kept.values() for d in sorted(kept, key=_order)[:self.keep]),
                      key=_order)

    def _keep(self, d: Diagnostic) -> None:
        kept = self._kept.setdefault(d.code, [])
        kept.append(d)
        if len(kept) >= 2 * self.keep:  # (amortised: a sort every ``keep`` records past the cap)
            kept.sort(key=_order)
            del kept[self.keep:]
