"""Pass 1 of the events stage: the capture streams through once and every exchange becomes a ``Fact``.

SIP transactions (``analyzer.meaning.transactions``), HTTP request/response pairs and TLS hellos are made
facts as they complete (``analyzer.meaning.events.facts``); a 401/407 challenge waits for its
authenticated retry, to become one fact with it. Only the facts that can mean something are kept, in a
``FactStore``; of the others only the (domain, server) pairs systems are inferred from. Every table is
bounded (``Limits``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.meaning import mcfacts
from analyzer.meaning.events.facts import (
    Fact,
    challenge_and_retry,
    http_fact,
    observations,
    sip_fact,
    tls_fact,
)
from analyzer.meaning.events.factstore import FactStore
from analyzer.meaning.transactions import Transaction, TransactionTracker
from analyzer.messages.records import Message
from analyzer.transport.records import TlsHello


class Collector:
    """Pass 1's state: the facts so far, and the exchanges waiting for their other half (bounded).

    Only ``meaningful`` facts are kept (None: all); of the others (an OPTIONS flood, say) only the distinct
    (domain, server) pairs systems are inferred from, at most twice ``Limits.domains`` of them."""

    def __init__(self, problems: list, limits: Limits, meaningful: Callable[[Fact], bool] | None = None,
                 rank: int = 0):
        self.problems, self.limits, self.meaningful = problems, limits, meaningful
        self.tracker = TransactionTracker(limits=limits, dialogs=False)  # dialogs mean nothing here
        self.store = FactStore(rank, limits)  # the facts final so far
        self.added = 0  # facts made so far (each one's sequence number: ties keep this order)
        self.observed: dict[tuple, None] = {}  # (domain, server) of the facts not kept
        self.unobserved = 0  # pairs beyond the cap
        #: a 401/407 transaction's first frame → (sequence number, its fact): not final while a retry may come
        self.challenged: dict[int, tuple[int, Fact]] = {}
        self.http_pending: OrderedDict[int, Message] = OrderedDict()  # request frame → request, oldest first
        self.unanswered = 0  # HTTP requests given up early: more than the cap waited for responses
        self.first_unanswered: int | None = None

    def feed(self, item) -> None:
        for record in self.tracker.feed(item):
            if isinstance(record, Transaction):
                self.transaction(record)
        if len(self.challenged) > 2 * self.tracker.holding + 64:  # what no retry can name any more is final
            linkable = self.tracker.linkable_challenges()
            for first in [k for k in self.challenged if k not in linkable]:
                seq, fact = self.challenged.pop(first)
                self.store.add(fact, seq)
        if isinstance(item, Message) and item.proto == "http":
            self.http(item)
        elif isinstance(item, TlsHello):
            self.add(tls_fact(item))

    def tick(self, now: float) -> None:
        """The clock of an item this collector is not fed (another shard's message): timers fire."""
        for record in self.tracker.advance(now):
            if isinstance(record, Transaction):
                self.transaction(record)

    def transaction(self, tx: Transaction) -> None:
        found: list = []
        fact = sip_fact(tx, found)
        # a body that could not be read: say which request carried it, once (the MC info, the recipient
        # list and the SDP are all read from one multipart: its defect is found by each reader)
        for problem in dict.fromkeys(found):
            self.problems.append(replace(problem, frames=problem.frames or (tx.request.frame,)))
        if fact is None or not self.kept(fact):
            return
        earlier = self.challenged.pop(tx.challenge_of.first_frame, None) if tx.challenge_of else None
        if earlier is not None:  # the challenge and its authenticated retry are one exchange
            fact = challenge_and_retry(earlier[1], fact)
        if tx.status in (401, 407):
            self.challenged[tx.first_frame] = (self._next(), fact)
        else:
            self.store.add(fact, self._next())

    def _next(self) -> int:
        self.added += 1
        return self.added

    def kept(self, fact: Fact) -> bool:
        """Keep ``fact`` if it can mean something; else only note where it went."""
        if self.meaningful is None or self.meaningful(fact):
            return True
        for pair in observations(fact):
            if pair not in self.observed:
                if len(self.observed) < 2 * self.limits.domains:
                    self.observed[pair] = None
                else:
                    self.unobserved += 1
        return False

    def http(self, msg: Message) -> None:
        if msg.kind == "request":
            self.http_pending[msg.frame] = msg
            if len(self.http_pending) > self.limits.transactions:  # the oldest is read as unanswered
                _, request = self.http_pending.popitem(last=False)
                self.add(http_fact(request, None))
                self.unanswered += 1
                if self.first_unanswered is None:
                    self.first_unanswered = msg.frame
        elif msg.reply_to in self.http_pending:
            self.add(http_fact(self.http_pending.pop(msg.reply_to), msg))

    def add(self, fact: Fact) -> None:
        if self.kept(fact):
            self.store.add(fact, self._next())

    def so_far(self) -> list[Fact]:
        """The facts so far, sorted (a challenge still awaiting its retry among them): pass 1 goes on."""
        return self.store.snapshot(list(self.challenged.values()))

    def caps(self) -> tuple[dict, int]:
        """How often each cap was hit, unformatted: the tracker's tables (table → [first frame, times])
        and the observed pairs not kept (``shard``: the worker's go into this process's count)."""
        return self.tracker.caps_hit(), self.unobserved

    def add_caps(self, caps: tuple[dict, int]) -> None:
        """Count another collector's ``caps()`` with these: one diagnostic per cap, first frame, total."""
        full, unobserved = caps
        self.tracker.count_caps_hit(full)
        self.unobserved += unobserved

    def close(self, report: bool = True) -> FactStore:
        """Every fact (``factstore.read`` gives them in order); ``report``: append the caps hit to the
        problems (else see ``caps``)."""
        for record in self.tracker.close():
            if isinstance(record, Transaction):
                self.transaction(record)
        for request in self.http_pending.values():
            self.add(http_fact(request, None))
        for seq, fact in self.challenged.values():
            self.store.add(fact, seq)
        self.challenged = {}
        if report:
            self._report_caps()
        return self.store

    def _report_caps(self) -> None:
        for message, frames in self.tracker.overflows():
            self.problems.append(mcfacts.Problem("table-full", message, frames))
        if self.unanswered:
            self.problems.append(mcfacts.Problem(
                "table-full", f"more than {self.limits.transactions} HTTP requests awaited their response at "
                f"once from frame {self.first_unanswered} on: the oldest were read as unanswered "
                f"({self.unanswered} in all); raise the cap with --limit transactions=N",
                (self.first_unanswered,)))
        if self.unobserved:
            self.problems.append(mcfacts.Problem(
                "table-full", f"more than {2 * self.limits.domains} distinct domain and server pairs in "
                f"requests that make no event: later ones do not count in inferring systems "
                f"({self.unobserved} in all); raise the cap with --limit domains=N"))


def collect_facts(items: Iterable, problems: list | None = None, limits: Limits = DEFAULT_LIMITS,
                  meaningful: Callable[[Fact], bool] | None = None,
                  before_close: Callable[[Collector], None] | None = None) -> tuple[FactStore, list[tuple]]:
    """Pass 1 over decoded items (capture order): one fact per ``meaningful`` exchange (None: every one),
    in a store (``factstore.read`` gives them in order); and the distinct (domain, server) pairs of the
    others. ``before_close(collector)`` runs once the items are read (``shard`` adds the worker's
    ``caps`` there)."""
    collector = Collector([] if problems is None else problems, limits, meaningful)
    for item in items:
        collector.feed(item)
    if before_close is not None:
        before_close(collector)
    store = collector.close()
    return store, list(collector.observed)
