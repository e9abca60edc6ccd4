"""Many records kept in order of a key without holding them all: sorted runs, compressed, merged lazily.

The fact store (``analyzer.meaning.events.factstore``) keeps pass 1's facts so, and the report keeps a
capture's judged procedures so (``analyzer.rules.judge.procedures``): records come in nearly key order,
each run of them is sorted and packed (pickled, zlib level 1), and reading merges the runs, opening a run
only when its first key is due: only the few runs that overlap in key are unpacked at once.
"""

from __future__ import annotations

import heapq
import pickle
import zlib
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Protocol

_key = itemgetter(0)


class Run(Protocol):
    """A run of records sorted by key: ``first`` is the first key; ``entries`` gives (key, record) in
    order, and with ``consume`` lets go of them."""

    first: tuple

    def entries(self, consume: bool = False) -> Iterator[tuple[tuple, object]]: ...


def merged(runs: Iterable[Run], consume: bool = False) -> Iterator:
    """The records of ``runs`` in key order, each run opened only when its first key is due (heap entries
    tie-break on the run's index: no two compare beyond it)."""
    heap: list = [(run.first, i, None, run) for i, run in enumerate(runs)]
    heapq.heapify(heap)
    while heap:
        key, i, record, source = heapq.heappop(heap)
        if record is None:  # a run whose first record is due: open it
            source = source.entries(consume)
            key, record = next(source)
            heapq.heappush(heap, (key, i, record, source))
            continue
        yield record
        following = next(source, None)
        if following is not None:
            heapq.heappush(heap, (following[0], i, following[1], source))


def pack(entries: list) -> bytes:
    return zlib.compress(pickle.dumps(entries, 5), 1)


def unpack(packed: bytes) -> list:
    return pickle.loads(zlib.decompress(packed))


class _Packed:
    """One sorted run of (key, record) pairs, compressed."""

    __slots__ = ("first", "packed")

    def __init__(self, entries: list[tuple[tuple, object]]):
        self.first, self.packed = entries[0][0], pack(entries)

    def entries(self, consume: bool = False) -> Iterator[tuple[tuple, object]]:
        return iter(unpack(self.packed))


class _Held:
    """The newest records, not packed yet (sorted when read)."""

    __slots__ = ("first", "items")

    def __init__(self, entries: list[tuple[tuple, object]]):
        self.items = sorted(entries, key=_key)
        self.first = self.items[0][0]

    def entries(self, consume: bool = False) -> Iterator[tuple[tuple, object]]:
        return iter(self.items)


class SortedRuns:
    """Picklable records in order of their keys (unique, totally ordered), ``size`` to a packed run:
    ``add`` in any order, iterate (as often as wanted) in key order. Fewer than ``size`` records are
    never packed."""

    def __init__(self, size: int = 256):
        self.size = size
        self.runs: list[_Packed] = []
        self.newest: list[tuple[tuple, object]] = []

    def add(self, key: tuple, record: object) -> None:
        self.newest.append((key, record))
        if len(self.newest) >= self.size:
            self.newest.sort(key=_key)
            self.runs.append(_Packed(self.newest))
            self.newest = []

    def __len__(self) -> int:
        return len(self.runs) * self.size + len(self.newest)

    def __iter__(self) -> Iterator:
        return merged([*self.runs, *([_Held(self.newest)] if self.newest else [])])
