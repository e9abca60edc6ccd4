"""What the tracker holds and how it lets go: the open transactions, dialogs and challenges, their
timers, the caps on each table, and the ``Transaction``/``Dialog`` records built when an entry ends.

Apart from the matching (``tracker``) because every way an entry leaves (its timer, a cap, a reliable
transport, the end of input) must build the same record and keep every index consistent: one place.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.meaning.transactions.headers import challenge_key, loose_key
from analyzer.meaning.transactions.records import Dialog, TrackerStats, Transaction
from analyzer.meaning.transactions.state import OpenDialog, OpenTx
from analyzer.messages.records import Message

T1, T4 = 0.5, 5.0
TIMER_F = 64 * T1  # non-INVITE (F) and INVITE (B) transaction timeout; also Timer D, the wait for an ACK
TIMER_C = 180.0  # a proxy's limit for an INVITE that is ringing
CHALLENGE_WINDOW = 120.0  # a user may take a while to type a password after a 401

RELIABLE = frozenset(("tcp", "tls", "sctp"))

#: Tables with a cap: (the ``Limits`` field, what the table holds, what happens beyond the cap).
_FULL = {
    "transactions": ("transactions", "SIP transactions open at once",
                     "the least recently active were given up early, as if they had timed out"),
    "dialogs": ("dialogs", "SIP dialogs open at once", "the least recently active were closed early"),
    "dialog transactions": ("transactions", "transactions held by open SIP dialogs",
                            "the least recently active dialogs were closed early"),
    "challenges": ("challenges", "401/407 challenges awaiting a retry at once",
                   "the oldest were forgotten (a retry after that reads as a new request)"),
}


@dataclass(slots=True)
class TrackerTables:
    """The tracker's options, counters and tables; ``TransactionTracker`` (the matching) fills them."""

    timeout: float = TIMER_F
    invite_timeout: float = TIMER_C
    linger: float = T4
    challenge_window: float = CHALLENGE_WINDOW
    limits: Limits = DEFAULT_LIMITS
    dialogs: bool = True  # follow dialogs and yield ``Dialog``s (each holds its transactions until it ends)
    stats: TrackerStats = field(default_factory=TrackerStats)
    # the tables below are ordered least recently active first (``OrderedDict``: O(1) to find the oldest)
    _txs: OrderedDict = field(default_factory=OrderedDict)  # key -> open OpenTx
    _loose: dict = field(default_factory=dict)  # key without sent-by -> open OpenTx (client-side matching)
    _dialogs: OrderedDict = field(default_factory=OrderedDict)  # (call_id, local, remote tag) -> OpenDialog
    _challenges: OrderedDict = field(default_factory=OrderedDict)  # challenge_key -> challenged OpenTx
    _subscribes: dict = field(default_factory=dict)  # (call_id, from tag) -> open initial SUBSCRIBE OpenTx
    _timers: list = field(default_factory=list)  # heap of (deadline, seq, kind, key): keys, so a stale entry
    #   holds no message alive; kind 0 a transaction's timer (key in _txs), 1 a challenge's (in _challenges)
    _held: int = 0  # transactions held by open dialogs (their initial ones included)
    _full: dict = field(default_factory=dict)  # table -> [frame where its cap was first hit, times since]
    _seq: int = 0
    _now: float = float("-inf")
    _closing: bool = False

    # -- public API ---------------------------------------------------------------------------------

    @property
    def open_counts(self) -> tuple[int, int]:
        """(open transactions, open dialogs): what the tracker holds in memory now."""
        return len(self._txs), len(self._dialogs)

    def table_sizes(self) -> dict[str, int]:
        """Every table the tracker keeps, by name, with its current size (tests check the caps on them)."""
        return {"transactions": len(self._txs), "loose": len(self._loose), "dialogs": len(self._dialogs),
                "dialog transactions": self._held, "challenges": len(self._challenges),
                "subscribes": len(self._subscribes), "timers": len(self._timers)}

    @property
    def holding(self) -> int:
        """Open transactions plus answered challenges: a bound on ``linkable_challenges()``."""
        return len(self._txs) + len(self._challenges)

    def linkable_challenges(self) -> set[int]:
        """The challenged ``Transaction`` records a request may still name as ``challenge_of`` (a retry may
        still link to them, or has linked and is not yielded yet), by ``first_frame``."""
        ids = {tx.record.first_frame for tx in self._challenges.values() if tx.record is not None}
        ids.update(tx.challenge_of.first_frame for tx in self._txs.values() if tx.challenge_of is not None)
        return ids

    def overflows(self) -> list[tuple[str, tuple[int, ...]]]:
        """One line per cap hit so far (for a ``table-full`` diagnostic), and the frame where it first was."""
        out = []
        for table, (frame, count) in self._full.items():
            cap, what, fate = _FULL[table]
            out.append((f"more than {getattr(self.limits, cap)} {what} from frame {frame} on: {fate} "
                        f"({count} in all); raise the cap with --limit {cap}=N", (frame,)))
        return out

    def caps_hit(self) -> dict[str, list[int]]:
        """Each cap hit so far: table → [the frame where it first was, times since] (``overflows``)."""
        return {table: list(hit) for table, hit in self._full.items()}

    def count_caps_hit(self, other: dict[str, list[int]]) -> None:
        """Count another tracker's ``caps_hit`` (another process's) with these: the first frame, the total."""
        for table, (frame, count) in other.items():
            mine = self._full.setdefault(table, [frame, 0])
            mine[0], mine[1] = min(mine[0], frame), mine[1] + count

    def close(self) -> list[Transaction | Dialog]:
        """End of input: every open transaction, then every open dialog."""
        out: list = []
        self._closing = True
        for tx in sorted(self._txs.values(), key=lambda t: (t.deadline or t.time, t.time)):
            if tx.record is None:
                self._emit(tx, out)
        for d in list(self._dialogs.values()):
            if not d.emitted:
                self._emit_dialog(d, out)
        self._txs.clear()
        self._loose.clear()
        self._dialogs.clear()
        self._challenges.clear()
        self._subscribes.clear()
        self._timers.clear()
        self._held = 0
        self._closing = False
        return out

    # -- opening and ending entries -----------------------------------------------------------------

    def _open(self, key, method, msg, branch, call_id, cseq, from_tag, orphan: bool) -> OpenTx:
        tx = self._txs[key] = OpenTx(key, method, msg, branch, call_id, cseq, from_tag, orphan)
        if key[0] == "b":
            self._loose[loose_key(key)] = tx
        return tx

    def _dialog(self, tx: OpenTx, to_tag: str, state: str, msg: Message) -> OpenDialog:
        id_ = (tx.call_id, tx.from_tag, to_tag)
        d = self._dialogs.get(id_)
        if d is None:
            d = self._dialogs[id_] = OpenDialog(id_, tx)
            self._held += 1
            tx.dialogs.append(d)
            d.pending += 1
        else:
            self._dialogs.move_to_end(id_)
        d.enter(state, msg)
        return d

    def _touch(self, tx: OpenTx, msg: Message, out: list) -> None:
        """Activity on ``tx`` at ``msg``: (re)arm its timer, or finish it now on a reliable transport."""
        tx.segments.extend(msg.frames)
        if msg.time > tx.last:
            tx.last = msg.time
        if self._txs.get(tx.key) is tx:
            self._txs.move_to_end(tx.key)
        if tx.finished:
            wait = 0.0 if tx.transport in RELIABLE else self.linger
        elif tx.final is not None:  # non-2xx INVITE waiting for its ACK
            wait = self.timeout
        elif tx.method == "INVITE" and tx.prov:
            wait = self.invite_timeout
        else:
            wait = self.timeout
        if wait <= 0:
            return self._emit(tx, out)
        if tx.last + wait != tx.deadline:  # else its armed timer stands
            tx.deadline = tx.last + wait
            tx.timer = self._push(tx.deadline, 0, tx.key)

    def _push(self, when: float, kind: int, key) -> int:
        """Arm a timer; when stale entries (re-armed or finished transactions) outnumber the armed ones,
        drop them, so the heap follows what is open and not the length of the capture."""
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, kind, key))
        if len(self._timers) > 2 * self.holding + 64:
            self._timers = [t for t in self._timers if self._armed(t)]
            heapq.heapify(self._timers)
        return self._seq

    def _armed(self, timer: tuple) -> OpenTx | None:
        """The transaction whose timer (or whose challenge's) a heap entry still is, if any."""
        _, seq, kind, key = timer
        tx = (self._txs if kind == 0 else self._challenges).get(key)
        return tx if tx is not None and tx.timer == seq else None

    def _expire(self, now: float, out: list) -> None:
        timers = self._timers
        while timers and timers[0][0] < now:
            timer = heapq.heappop(timers)
            tx = self._armed(timer)
            if tx is None:
                continue
            if timer[2] == 0:
                self._emit(tx, out)
            else:  # an answered challenge nobody retried
                del self._challenges[timer[3]]

    def _enforce_caps(self, frame: int, out: list) -> None:
        """Beyond a cap, the least recently active entries go as their timers would make them go."""
        lim = self.limits
        while len(self._dialogs) > lim.dialogs or (self._held > lim.transactions and self._dialogs):
            table = "dialogs" if len(self._dialogs) > lim.dialogs else "dialog transactions"
            self._overflow(table, frame)
            self.stats.evicted_dialogs += 1
            self._emit_dialog(next(iter(self._dialogs.values())), out)
        while len(self._txs) > lim.transactions:
            self._overflow("transactions", frame)
            self.stats.evicted += 1
            self._emit(next(iter(self._txs.values())), out)
        while len(self._challenges) > lim.challenges:
            self._overflow("challenges", frame)
            self.stats.forgotten_challenges += 1
            self._challenges.popitem(last=False)

    def _overflow(self, table: str, frame: int) -> None:
        self._full.setdefault(table, [frame, 0])[1] += 1

    def _emit(self, tx: OpenTx, out: list) -> None:
        rec = tx.record = Transaction(
            method=tx.method, request=tx.request, request_frames=tuple(tx.frames), retransmissions=tx.retrans,
            provisional=tuple(tx.prov), final=tx.final, response_retransmissions=tx.resp_retrans,
            retransmitted_frames=tuple(tx.copies), branch=tx.branch, call_id=tx.call_id, cseq=tx.cseq,
            from_tag=tx.from_tag, client=tx.client, server=tx.server, transport=tx.transport, time=tx.time,
            answered=tx.answered, to_tags=tuple(tx.to_tags), more_finals=tuple(tx.more_finals), ack=tx.ack,
            challenge_of=tx.challenge_of, cancelled=tx.cancelled, orphan=tx.orphan,
            all_frames=tuple(sorted(set(tx.segments))))
        if self._txs.get(tx.key) is tx:
            del self._txs[tx.key]
            if tx.key[0] == "b" and self._loose.get(loose_key(tx.key)) is tx:
                del self._loose[loose_key(tx.key)]
        if tx.initial and self._subscribes.get((tx.call_id, tx.from_tag)) is tx:
            del self._subscribes[(tx.call_id, tx.from_tag)]
        s = self.stats
        s.transactions += 1
        s.retransmissions += tx.retrans
        s.response_retransmissions += tx.resp_retrans
        s.orphans += tx.orphan
        s.unanswered += tx.final is None and tx.method != "ACK"
        out.append(rec)
        if tx.final is not None and tx.final.status in (401, 407):
            ckey = challenge_key(tx)
            if self._challenges.get(ckey) is tx:  # from now on its timer is the challenge's
                tx.timer = self._push(self._now + self.challenge_window, 1, ckey)
        # keep only what the records need: the builder may stay referenced by a challenge index entry
        tx.prov = tx.more_finals = tx.frames = tx.copies = tx.seen = tx.segments = None
        last = tx.final or tx.request
        for d in tx.dialogs:
            if d.emitted:  # close() is emitting it, and its transactions with it
                continue
            if (tx is d.initial and d.state == "early" and last is not None
                    and not (self._closing and tx.final is None)):
                d.end("unconfirmed", last, None)  # another fork answered, or nobody did in time
            elif tx is d.bye and d.state != "terminated":  # BYE never answered: the sender still hung up
                d.end("bye", tx.request, d.ended_by)
            d.pending -= 1
            if d.pending == 0 and d.state == "terminated":
                self._emit_dialog(d, out)
        tx.dialogs = []

    def _emit_dialog(self, d: OpenDialog, out: list) -> None:
        d.emitted = True
        self._held -= 1 + len(d.txs)
        if self._dialogs.get(d.id) is d:
            del self._dialogs[d.id]
        for t in (d.initial, *d.txs):  # at close(), order of emission may leave some to build
            if t.record is None:
                self._emit(t, out)
        txs = sorted((t.record for t in d.txs), key=lambda r: r.time)
        out.append(Dialog(call_id=d.call_id, local_tag=d.local, remote_tag=d.remote, initial=d.initial.record,
                          states=tuple(d.states), transactions=tuple(txs),
                          bye=d.bye.record if d.bye else None, ended_by=d.ended_by, end_cause=d.cause,
                          reason=d.reason))
        self.stats.dialogs += 1
        self.stats.confirmed_dialogs += any(s.state == "confirmed" for s in d.states)
