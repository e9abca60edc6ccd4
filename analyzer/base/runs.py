"""Many records kept in order of a key without holding them all: sorted runs, compressed, merged lazily.

The fact store (``analyzer.meaning.events.factstore``) keeps pass 1's facts so, pass 2 its events
(``analyzer.meaning.events.extract``, when streamed) and the JSON report a capture's judged procedures
(``analyzer.report.document.Procedures``): records come in nearly key order, each run of them is sorted
and packed (pickled, zlib level 1), and reading merges the runs, opening a run only when its first key is
due: only the few runs that overlap in key are unpacked at once. Past a budget the packed runs wait on
disk (``base.spill``).
"""

from __future__ import annotations

import heapq
import pickle
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from operator import itemgetter
from typing import Protocol

from analyzer.base.spill import Spill

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


def rebuilder(cls: type) -> Callable[[tuple], object]:
    """``cls(*values)`` for a frozen slots dataclass, without its ``__init__`` and ``__post_init__``: for
    records this process packed from instances already made and checked, ~3× faster (a frozen class sets
    each field through ``object.__setattr__``; here each slot is written directly)."""
    setters = [cls.__dict__[f.name].__set__ for f in fields(cls)]
    new = object.__new__

    def build(values: tuple) -> object:
        record = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(record, value)
        return record

    return build


def pack(entries: list) -> bytes:
    return zlib.compress(pickle.dumps(entries, 5), 1)


def unpack(packed: bytes) -> list:
    return pickle.loads(zlib.decompress(packed))


class _Packed:
    """One sorted run of (key, record) pairs, compressed (records as ``encode`` makes them), in memory or
    on disk (``spill``)."""

    __slots__ = ("decode", "first", "packed", "spill")

    def __init__(self, entries: list[tuple[tuple, object]], encode, decode, spill: Spill):
        self.first, self.decode, self.spill = entries[0][0], decode, spill
        self.packed = spill.keep(pack([(key, encode(record)) for key, record in entries] if encode
                                      else entries))

    def entries(self, consume: bool = False) -> Iterator[tuple[tuple, object]]:
        entries = unpack(self.spill.read(self.packed))
        if self.decode is None:
            return iter(entries)
        decode = self.decode
        return ((key, decode(value)) for key, value in entries)


class _Held:
    """The newest records, not packed (sorted)."""

    __slots__ = ("first", "items")

    def __init__(self, entries: list[tuple[tuple, object]]):
        self.items = entries
        self.first = entries[0][0]

    def entries(self, consume: bool = False) -> Iterator[tuple[tuple, object]]:
        return iter(self.items)


class SortedRuns:
    """Picklable records in order of their keys (unique, totally ordered): ``add`` in any order, iterate
    (as often as wanted) in key order. Up to ``hold`` records are one list, sorted when read (they cost
    nothing to pack and read back); beyond, every ``size`` records make a packed run. ``encode`` and
    ``decode`` (both or neither) turn a record into what pickles fast and back (plain tuples pickle
    several times faster)."""

    def __init__(self, size: int = 256, hold: float = 0, encode: Callable | None = None,
                 decode: Callable | None = None):
        self.size, self.hold, self.encode, self.decode = size, hold, encode, decode
        self.runs: list[_Packed] = []
        self.spill: Spill | None = None  # made when the first run is packed
        self.newest: list[tuple[tuple, object]] = []
        self.count = 0

    def add(self, key: tuple, record: object) -> None:
        self.newest.append((key, record))
        self.count += 1
        if self.count > self.hold and len(self.newest) >= self.size:
            newest, self.newest = sorted(self.newest, key=_key), []
            spill = self.spill = self.spill or Spill()
            self.runs += (_Packed(newest[i:i + self.size], self.encode, self.decode, spill)
                          for i in range(0, len(newest), self.size))

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator:
        newest = sorted(self.newest, key=_key)
        if not self.runs:  # (one list: no merge)
            return map(_value, newest)
        return merged([*self.runs, *([_Held(newest)] if newest else [])])


_value = itemgetter(1)
