"""Pass 1 over two processes: the decoder's worker collects the facts of a share of the SIP calls.

On a capture big enough for a worker (``analyzer.engines.parallel``) the worker walks, reassembles and
parses while this process gives the messages their meaning. On a core-side capture pass 1 (transactions
and facts) weighs twice what decoding does, so the worker takes a share of it: the SIP messages whose
Call-ID falls in its share (every message of a call, so every transaction and challenge, goes one way)
become transactions and facts there, and only a ``Handled`` marker crosses the pipe in their place. Each
side's tracker still sees the time of every message (``Collector.tick``), so timers fire as in one
process. The worker's facts (its ``FactStore``, compressed), the (domain, server) pairs it observed and its
problems come back at the end and are read with this process's: the same facts in the same order.

Each side caps its own tables (``Limits``): under a flood that hits a cap, what is evicted may differ from
one process's choice. (Problems do not: ``Problems`` keeps the records of the first frames of each code.)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from analyzer.base.limits import Limits
from analyzer.engines import Handled
from analyzer.meaning.events.collect import Collector
from analyzer.meaning.events.facts import Fact
from analyzer.meaning.events.factstore import FactStore
from analyzer.meaning.problems import Problems
from analyzer.messages.records import Message

#: The worker takes the calls whose Call-ID's CRC-32 is divisible by this: a quarter of them. It decodes
#: too: on a core-side capture a quarter balances the two processes best (bench/bench_analyze.py: a half,
#: a third, a fifth, a sixth and an eighth were slower).
SHARE = 4
#: ... but only on a capture where signalling is dense (at least one SIP message per this many packets, as
#: of the first ``DECIDE_AFTER`` SIP messages): on a drive test (mostly media) the worker is the slower
#: side already and any share would make the whole run slower.
DENSE = 4
DECIDE_AFTER = 256

class FactShare:
    """Give it to the decode as ``DecodeOptions.share`` and to ``extract_events``; ``problems``: this
    process's sink, where the worker's problems are added."""

    def __init__(self, problems: Problems, limits: Limits, meaningful: Callable[[Fact], bool]):
        self.problems, self.limits, self.meaningful = problems, limits, meaningful
        self.taken = False  # the worker took its share: its facts are here
        self.store: FactStore | None = None  # the worker's facts
        self.observed: list[tuple] = []
        self._result: tuple | None = None  # (in the worker) what goes back
        self._caps: tuple = ({}, 0)  # the worker's ``Collector.caps()``

    # -- in the worker ---------------------------------------------------------------------------------

    def worker(self, items: Iterator, packets: Callable[[], int]) -> Iterator:
        problems = Problems()
        collector = Collector(problems, self.limits, self.meaningful, rank=1)  # (its facts tie after ours)
        feed, tick = collector.feed, collector.tick
        route = _Router(packets)
        for item in items:
            if type(item) is Message and item.proto == "sip" and route.takes(item):
                feed(item)
                yield Handled(item.time, "sip")
                continue
            if route.sharing:
                tick(item.time)
            yield item
        if not route.sharing:
            return  # (nothing taken: nothing to merge)
        store = collector.close(report=False)  # (the caps hit are counted with this process's: one line each)
        self._result = (store.packed(), list(collector.observed), dict(problems.counts), problems.records,
                        collector.caps())

    def result(self) -> tuple | None:
        return self._result

    # -- in this process -------------------------------------------------------------------------------

    def take(self, result: tuple | None) -> None:
        if result is None:  # the worker took nothing (or stopped early: an error, reported on its own)
            return
        store, self.observed, counts, records, self._caps = result
        self.store = FactStore.unpacked(store)
        self.problems.merge(counts, records)
        self.taken = True

    def add_caps(self, collector: Collector) -> None:
        """Before this process's collector closes: the caps the worker hit, counted with its own."""
        if self.taken:
            collector.add_caps(self._caps)

    def merged(self, stores: list[FactStore], observed: list[tuple]) -> tuple[list[FactStore], list[tuple]]:
        """This process's fact stores and observed pairs with the worker's."""
        if not self.taken:
            return stores, observed
        seen = set(observed)
        return [*stores, self.store], observed + [pair for pair in self.observed if pair not in seen]


class _Router:
    """Which SIP messages the worker takes: every message of a call (its Call-ID) goes one way, so every
    message the tracker may link (a transaction's, a challenge and its retry) does: ``match_key`` and
    ``challenge_key`` include the Call-ID."""

    def __init__(self, packets: Callable[[], int]):
        self.packets = packets
        self.sharing = False  # decided to take a share
        self._seen = 0  # SIP messages before deciding
        self._early: set[str | None] = set()  # their Call-IDs: they stay with the calling process

    def takes(self, msg: Message) -> bool:
        if not self.sharing and self._seen >= DECIDE_AFTER:
            return False  # (decided not to share: nothing to look at)
        call_id = msg.headers.get("call-id")
        if self.sharing:
            return call_id not in self._early and _mine(call_id)
        self._early.add(call_id)  # (still deciding)
        self._seen += 1
        if self._seen == DECIDE_AFTER:
            self.sharing = DENSE * self._seen >= self.packets()
        return False


def _mine(call_id: str | None) -> bool:
    return call_id is not None and zlib.crc32(call_id.encode("utf-8", "surrogateescape")) % SHARE == 0
