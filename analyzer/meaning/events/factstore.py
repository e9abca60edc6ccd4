"""Where pass 1 keeps its facts until pass 2 reads them: sorted chunks, compressed once there are many.

Pass 2 reads the facts in time order once pass 1 is complete (the decoder's worker sends its share at
the end; a BYE may come before the INVITE it ends), and on a core-side capture the facts held until then
were most of the memory: 1.2 KB each, ~40 KB per UE. Here they arrive in completion order, which is
nearly time order; every ``CHUNK`` of them is sorted and, once more than ``HOLD`` are held, pickled as
plain tuples and compressed (~100 bytes a fact, at ~25 µs a fact to pack and read back; past a budget
they wait on disk, ``base.spill``). Pass 2 reads them once, in order (``in_order``): a lazy merge of the
chunks opens a chunk only when its first fact is due, so only the few chunks that overlap in time are
open at once, and ``read`` lets go of each chunk as it opens it (the first ``HOLD`` facts, never
compressed, were a quarter of pass 2's peak on a core-side capture while they waited for its end).

The order is ``fact_order``, ties broken by the store's rank (this process before the decoder's worker,
``shard``) and then by when each fact was added: exactly the stable sort of one list.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from operator import attrgetter

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.base.runs import merged, pack, rebuilder, unpack
from analyzer.base.spill import Spill
from analyzer.meaning.events.facts import SHARED_FIELDS, Fact, fact_order, observations

#: Facts per chunk: small enough that the chunks open at once stay small, large enough to compress well.
CHUNK = 4096
#: Facts held as objects before chunks are compressed: a capture of fewer facts (every drive test
#: measured) pays nothing for compression.
HOLD = 32768
#: Distinct (domain, server) pairs counted per domain ``Limits.domains`` lets the inference learn.
PAIRS_PER_DOMAIN = 4

_NAMES = [f.name for f in fields(Fact)]
_as_tuple = attrgetter(*_NAMES)  # (plain tuples pickle several times faster)
_SHARED = [_NAMES.index(name) for name in SHARED_FIELDS]
_fact_of = rebuilder(Fact)


class _Chunk:
    """Facts sorted by key, as objects or compressed; ``first`` is the key of the first. A fact's key is
    ``fact_order``, then the rank of its store, then its sequence number in that store."""

    __slots__ = ("facts", "first", "packed", "rank", "spill")

    def __init__(self, rank: int, first: tuple, facts: list[tuple[int, Fact]] | None = None,
                 packed: bytes | tuple | None = None, spill: Spill | None = None):
        self.rank, self.first, self.facts, self.packed, self.spill = rank, first, facts, packed, spill

    @classmethod
    def of(cls, entries: list[tuple[int, Fact]], rank: int, spill: Spill | None = None) -> _Chunk:
        """A chunk of (sequence number, fact) entries; compressed and kept by ``spill`` if one is given."""
        entries.sort(key=lambda e: (fact_order(e[1]), e[0]))
        first = (*fact_order(entries[0][1]), rank, entries[0][0])
        if spill is None:
            return cls(rank, first, facts=entries)
        return cls(rank, first, packed=spill.keep(_pack(entries)), spill=spill)

    def packed_form(self) -> tuple[tuple, bytes]:
        """What crosses a pipe: the first key and the compressed facts."""
        return self.first, self.spill.read(self.packed) if self.packed is not None else _pack(self.facts)

    def entries(self, consume: bool = False) -> Iterator[tuple[tuple, Fact]]:
        """(key, fact) in order; a compressed chunk is read back here, when its first fact is due.
        ``consume``: the chunk lets go of its facts (read once: they go as soon as they are read)."""
        if self.facts is None and self.packed is None:
            raise RuntimeError("a fact store read once is read again")
        entries = self.facts if self.facts is not None else _unpack(self.spill.read(self.packed))
        if consume:
            self.facts = self.packed = None
        rank = self.rank
        return (((*fact_order(fact), rank, seq), fact) for seq, fact in entries)


def _pack(entries: list[tuple[int, Fact]]) -> bytes:
    return pack([(seq, _as_tuple(f)) for seq, f in entries])


def _unpack(packed: bytes) -> list[tuple[int, Fact]]:
    """The facts of a chunk, their repeated strings one object again (pickle shares them only within it)."""
    entries = []
    for seq, values in unpack(packed):
        values = list(values)
        for i in _SHARED:
            if values[i] is not None:
                values[i] = sys.intern(values[i])
        entries.append((seq, _fact_of(values)))
    return entries


@dataclass(slots=True)
class Named:
    """What pass 2 must know of the facts before it reads them in order: the Call-IDs REFERs name in their
    Target-Dialog (an earlier INVITE is then a pre-established session: ``preestablished.is_setup``);
    every Call-ID an INVITE or a REFER names: only those can be a call a BYE ends, so only a BYE of one of
    them that came before its call waits for the end of the capture (a plain VoIP call's does not); and
    each (domain, server) pair the facts show, with the key of the first fact that showed it and how
    many did — all the MC systems are inferred from (``observed``), so every event is labelled with its
    system as it is made."""

    referred: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)
    pairs: dict[tuple, list] = field(default_factory=dict)  # (domain, server) → [first key, count]
    #: distinct pairs kept: ``PAIRS_PER_DOMAIN`` per domain systems are inferred from is a flood beyond
    cap: int = PAIRS_PER_DOMAIN * DEFAULT_LIMITS.domains
    unpaired: int = 0  # facts whose pair came beyond the cap (not counted in inferring systems)

    @classmethod
    def within(cls, limits: Limits) -> Named:
        return cls(cap=PAIRS_PER_DOMAIN * limits.domains)

    def add(self, fact: Fact, key: tuple) -> None:
        """``key``: the fact's place in the order pass 2 reads (``fact_order``, rank, sequence number)."""
        if fact.method == "INVITE" and fact.call_id:
            self.opened.add(fact.call_id)
        elif fact.method == "REFER":
            if fact.target_dialog:
                self.referred.add(fact.target_dialog)
            if fact.target_dialog or fact.call_id:
                self.opened.add(fact.target_dialog or fact.call_id)
        for pair in observations(fact):
            self._count(pair, key, 1)

    def _count(self, pair: tuple, key: tuple, count: int) -> None:
        seen = self.pairs.get(pair)
        if seen is not None:
            seen[0], seen[1] = min(seen[0], key), seen[1] + count
        elif len(self.pairs) < self.cap:
            self.pairs[pair] = [key, count]
        else:
            self.unpaired += count

    @classmethod
    def of(cls, facts: Iterable[Fact], limits: Limits = DEFAULT_LIMITS) -> Named:
        """Of facts in the order pass 2 reads them."""
        named = cls.within(limits)
        for i, fact in enumerate(facts):
            named.add(fact, (i,))
        return named

    def update(self, other: Named) -> None:
        self.referred |= other.referred
        self.opened |= other.opened
        self.unpaired += other.unpaired
        for pair, (key, count) in other.pairs.items():
            self._count(pair, key, count)

    def observed(self, first: Iterable[tuple] = ()) -> Iterator[tuple]:
        """Every pair as often as it came, in the order each first came (``SystemMap.infer`` reads them
        so); ``first``: the pairs of the facts not kept, once each, before all."""
        counts = dict.fromkeys(first, 1)
        for pair, (_, count) in sorted(self.pairs.items(), key=lambda item: item[1][0]):
            counts[pair] = counts.get(pair, 0) + count
        return itertools.chain.from_iterable(itertools.repeat(pair, n) for pair, n in counts.items())


class FactStore:
    """The facts of one collector: ``add`` each with its sequence number; ``read`` gives them in order.

    ``rank`` orders stores whose facts tie (this process's before the decoder's worker's, as
    ``heapq.merge`` of two lists would); ``named``: what pass 2 must know before it reads them."""

    def __init__(self, rank: int = 0, limits: Limits = DEFAULT_LIMITS):
        self.rank = rank
        self.chunks: list[_Chunk] = []
        self.pending: list[tuple[int, Fact]] = []  # the newest facts, not yet a chunk
        self.spill = Spill()  # keeps the compressed chunks
        self.named = Named.within(limits)
        self.count = 0

    def add(self, fact: Fact, seq: int) -> None:
        self.pending.append((seq, fact))
        self.count += 1
        self.named.add(fact, (*fact_order(fact), self.rank, seq))
        if len(self.pending) >= CHUNK:
            self.seal()

    def seal(self) -> list[_Chunk]:
        """The newest facts become a chunk too (the store is complete): every chunk."""
        if self.pending:
            self.chunks.append(_Chunk.of(self.pending, self.rank, self.spill if self.count > HOLD else None))
            self.pending = []
        return self.chunks

    def snapshot(self, more: list[tuple[int, Fact]] = ()) -> list[Fact]:
        """The facts so far and ``more`` (sequence number, fact), in order, the store left as it was
        (``mcxa watch`` judges as it goes)."""
        newest = [*self.pending, *more]
        return list(in_order([*self.chunks, *([_Chunk.of(newest, self.rank)] if newest else [])]))

    def packed(self) -> tuple[int, list[tuple[tuple, bytes]], Named]:
        """The store as it crosses a pipe (every chunk compressed): what the decoder's worker sends back."""
        return self.rank, [chunk.packed_form() for chunk in self.seal()], self.named

    @classmethod
    def unpacked(cls, packed: tuple[int, list[tuple[tuple, bytes]], Named]) -> FactStore:
        rank, chunks, named = packed
        store = cls(rank)
        store.chunks = [_Chunk(rank, first, packed=store.spill.keep(data), spill=store.spill)
                        for first, data in chunks]
        store.named = named
        return store


def read(*stores: FactStore) -> Iterator[Fact]:
    """The facts of complete stores, in order, once: each chunk lets go of its facts as it is read (the
    stores are empty after)."""
    return in_order([chunk for store in stores for chunk in store.seal()], consume=True)


def in_order(chunks: list[_Chunk], consume: bool = False) -> Iterator[Fact]:
    """The facts of ``chunks`` in key order: a chunk is opened (and read back) only when its first fact is
    due (``base.runs.merged``); ``consume``: and then lets go of them."""
    return merged(chunks, consume)
