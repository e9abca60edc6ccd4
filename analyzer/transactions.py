"""SIP transactions and dialogs, rebuilt from messages in capture order (RFC 3261 §17 and §12).

A pure stage: ``TransactionTracker.feed(item)`` takes one decoded item at a time (SIP ``Message``s are
tracked; anything else with a ``time``, e.g. HTTP messages, only advances the clock) and returns the
``Transaction`` and ``Dialog`` records that completed; ``close()`` returns the rest at end of input.
``track(items)`` wraps both as an iterator. No I/O; all timers run on capture time.

Matching (RFC 3261 §17.1.3/§17.2.3): a request and its responses share the top Via branch and sent-by,
the CSeq number and the method (ACK and CANCEL answer to INVITE by branch). Peers without the
``z9hG4bK`` magic cookie (RFC 2543) are matched on Call-ID + CSeq + From tag instead. The CSeq number is
part of the key, so a client that reuses one branch for several requests still gets one transaction each.

When a record is yielded: a transaction stays open after its final response to absorb UDP copies of the
request, the response and (non-2xx INVITE) the ACK, until ``linger`` seconds pass with no copy (RFC 3261
Timer K/I, T4; 0 on TCP/TLS/SCTP). A non-2xx INVITE waits up to ``timeout`` for its ACK (Timer D). An
unanswered request is given up ``timeout`` seconds after its last copy (Timer F/B, 64·T1), an INVITE that
got a provisional answer after ``invite_timeout`` (Timer C). A dialog is yielded once it is terminated and
every transaction in it has been yielded, or at ``close()``. Memory therefore holds open transactions,
open dialogs, and answered 401/407 challenges for ``challenge_window`` seconds — never the capture.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from analyzer.messages.records import Message

T1, T4 = 0.5, 5.0
TIMER_F = 64 * T1  # non-INVITE (F) and INVITE (B) transaction timeout; also Timer D, the wait for an ACK
TIMER_C = 180.0  # a proxy's limit for an INVITE that is ringing
CHALLENGE_WINDOW = 120.0  # a user may take a while to type a password after a 401

RELIABLE = frozenset(("tcp", "tls", "sctp"))
DIALOG_METHODS = frozenset(("INVITE", "SUBSCRIBE"))  # requests that create dialogs (RFC 3261, RFC 6665)
MAGIC = "z9hG4bK"

#: Dialog states, in the order a dialog can go through them.
STATES: dict[str, str] = {
    "early": "a provisional response (101-199) with a To tag answered the initial request",
    "confirmed": "a 2xx answered the initial request (or a NOTIFY arrived for a SUBSCRIBE)",
    "terminated": "the dialog ended; ``Dialog.end_cause`` says how",
}

#: Why a dialog ended.
END_CAUSES: dict[str, str] = {
    "bye": "a BYE was answered (or left unanswered) inside the dialog",
    "rejected": "a non-2xx final response to the initial request ended the early dialog",
    "subscription-terminated": "NOTIFY with Subscription-State: terminated in a SUBSCRIBE dialog",
    "481": "an in-dialog request got 481 Call/Transaction Does Not Exist (RFC 3261 §12.2.1.2)",
    "408": "an in-dialog request got 408 Request Timeout (RFC 3261 §12.2.1.2)",
    "unconfirmed": "an early dialog whose initial transaction ended without a 2xx for it (another fork "
                   "answered, or no final response)",
}


@dataclass(frozen=True, slots=True)
class Transaction:
    """One SIP transaction: a request, its copies and its responses.

    Frame numbers are those of the frame that completed each message (``Message.frame``, where Wireshark
    shows it); ``all_frames`` adds every frame that carried bytes of them (TCP segments, IP fragments).

    ``request`` is the first copy seen (None for an orphan: responses whose request was not captured);
    ``request_frames`` lists the frame of every copy. ``retransmissions`` counts extra copies of the
    request (and, for an INVITE, of its non-2xx ACK) sent in the same direction; ``response_retransmissions``
    extra copies of a response already seen; ``retransmitted_frames`` the frame of every such extra copy.
    ``provisional`` holds each distinct 1xx once; ``final`` the first final response (None: no answer in
    the capture), ``more_finals`` further distinct finals (2xx from other forks). ``ack`` is the ACK of a
    non-2xx final (an ACK for a 2xx is a transaction of its own, with no response). ``challenge_of`` is the
    transaction whose 401/407 this request answers. ``time`` is when the first message was seen,
    ``answered`` when the final response was. ``client``/``server`` are the request's src/dst ``ip:port``.
    """

    method: str | None  # the request method (CSeq method for an orphan); None only if CSeq is missing
    request: Message | None
    request_frames: tuple[int, ...]
    retransmissions: int
    provisional: tuple[Message, ...]
    final: Message | None
    response_retransmissions: int
    retransmitted_frames: tuple[int, ...]
    branch: str | None
    call_id: str | None
    cseq: int | None
    from_tag: str | None
    client: str | None
    server: str | None
    transport: str
    time: float
    answered: float | None
    to_tags: tuple[str, ...] = ()
    more_finals: tuple[Message, ...] = ()
    ack: Message | None = None
    challenge_of: Transaction | None = None
    cancelled: bool = False
    orphan: bool = False
    all_frames: tuple[int, ...] = ()  # every frame that carried bytes of its messages, in capture order

    def __post_init__(self):
        if self.request is None and not self.orphan:
            raise ValueError("a transaction without its request must be flagged orphan")
        if self.final is not None and (self.final.status or 0) < 200:
            raise ValueError(f"final response with status {self.final.status}")

    @property
    def status(self) -> int | None:
        return self.final.status if self.final is not None else None

    @property
    def response_time(self) -> float | None:
        """Seconds from the first request copy to the final response (None if either is missing)."""
        if self.request is None or self.answered is None:
            return None
        return self.answered - self.request.time

    @property
    def frames(self) -> tuple[int, ...]:
        """The frame of every message of the transaction (copies included), in capture order."""
        msgs = [*self.provisional, *filter(None, (self.final, self.ack)), *self.more_finals]
        return tuple(sorted({*self.request_frames, *self.retransmitted_frames, *(m.frame for m in msgs)}))


@dataclass(frozen=True, slots=True)
class DialogState:
    """A state the dialog entered, when, and the frame that moved it there."""

    state: str
    time: float
    frame: int

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"unknown dialog state {self.state!r}")


@dataclass(frozen=True, slots=True)
class Dialog:
    """One dialog (RFC 3261 §12): Call-ID plus the initiator's From tag and the answerer's To tag.

    ``initial`` is the INVITE or SUBSCRIBE transaction that created it (forked answers with different To
    tags make separate dialogs sharing it). ``transactions`` are the ones inside it (re-INVITE, ACK, PRACK,
    UPDATE, INFO, REFER, NOTIFY, MESSAGE, BYE ...) in order of time. ``ended_by`` is the endpoint that sent
    the message ending it (the BYE's sender for a BYE), ``reason`` the BYE's raw Reason header.
    """

    call_id: str
    local_tag: str | None  # From tag of the initial request
    remote_tag: str  # To tag of the answer
    initial: Transaction
    states: tuple[DialogState, ...]
    transactions: tuple[Transaction, ...] = ()
    bye: Transaction | None = None
    ended_by: str | None = None
    end_cause: str | None = None
    reason: str | None = None

    def __post_init__(self):
        if not self.states:
            raise ValueError("a dialog has at least one state")
        if self.end_cause is not None and self.end_cause not in END_CAUSES:
            raise ValueError(f"unknown dialog end cause {self.end_cause!r}")

    @property
    def method(self) -> str | None:
        return self.initial.method

    @property
    def state(self) -> str:
        """The last state reached."""
        return self.states[-1].state

    @property
    def confirmed(self) -> bool:
        return any(s.state == "confirmed" for s in self.states)

    def reached(self, state: str) -> DialogState | None:
        return next((s for s in self.states if s.state == state), None)


@dataclass(slots=True)
class TrackerStats:
    """Counters for reports (updated as records are yielded)."""

    messages: int = 0
    transactions: int = 0
    retransmissions: int = 0  # extra request (and non-2xx ACK) copies
    response_retransmissions: int = 0
    orphans: int = 0
    unanswered: int = 0  # non-ACK transactions yielded without a final response
    challenges: int = 0  # requests linked to the 401/407 they answer
    dialogs: int = 0
    confirmed_dialogs: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


# --- header fields ------------------------------------------------------------------------------------

_TAG = re.compile(r";\s*tag\s*=\s*([^;,\s>]+)", re.IGNORECASE)


def _tag(value: str | None) -> str | None:
    """The tag parameter of a From/To value (outside the <URI>)."""
    if not value:
        return None
    end = value.rfind(">")
    m = _TAG.search(value, end + 1 if end >= 0 else 0)
    return m.group(1) if m else None


def _via(value: str | None) -> tuple[str | None, str | None]:
    """(sent-by, branch) of the top Via; sent-by with its default port made explicit (§18.2.1)."""
    if not value:
        return None, None
    parts = value.split(",", 1)[0].split(";")
    proto_sent_by = parts[0].split(None, 1)
    sent_by = None
    if len(proto_sent_by) > 1:
        sent_by = "".join(proto_sent_by[1].split()).lower()
        if sent_by.rfind(":") <= sent_by.rfind("]"):  # no port (a colon inside [IPv6] is not one)
            sent_by += ":5061" if proto_sent_by[0].upper().endswith("TLS") else ":5060"
    branch = None
    for param in parts[1:]:
        name, _, val = param.partition("=")
        if name.strip().lower() == "branch":
            branch = val.strip() or None
            break
    return sent_by, branch


def _cseq(value: str | None) -> tuple[int | None, str | None]:
    if not value:
        return None, None
    parts = value.split()
    try:
        return int(parts[0]), (parts[1].upper() if len(parts) > 1 else None)
    except ValueError:
        return None, None


def _loose(key: tuple) -> tuple:
    """A branch key without the sent-by: NATs and ALGs sometimes rewrite the Via port in one direction."""
    return key[1], key[3], key[4]


def _challenge_key(tx) -> tuple:
    """What a retry with credentials shares with the challenged request (RFC 3261 §8.1.3.5, §22.2).

    REGISTER is the exception for the From tag: each REGISTER is a new request outside any dialog and
    gets a new tag (§8.1.1.3), only Call-ID and CSeq carry over between registrations (§10.2).
    """
    return (tx.call_id, tx.method, None if tx.method == "REGISTER" else tx.from_tag)


def _key(branch, sent_by, call_id, cseq, from_tag, method) -> tuple:
    if branch and branch.startswith(MAGIC):
        return ("b", branch, sent_by, cseq, method)
    return ("c", call_id, cseq, from_tag, method)  # RFC 2543: no usable branch


# --- mutable state while a transaction or dialog is open -----------------------------------------------

class _Tx:
    __slots__ = ("ack", "answered", "branch", "call_id", "cancelled", "challenge_of", "client", "copies",
                 "cseq", "deadline", "dialog", "dialogs", "direction", "final", "frames", "from_tag",
                 "initial", "key", "last", "method", "more_finals", "orphan", "prov", "record", "request",
                 "resp_retrans", "retrans", "seen", "segments", "server", "time", "to_tags", "transport")

    def __init__(self, key, method, msg: Message, branch, call_id, cseq, from_tag, orphan: bool):
        self.key, self.method, self.branch, self.call_id, self.cseq = key, method, branch, call_id, cseq
        self.from_tag, self.orphan, self.transport = from_tag, orphan, msg.transport
        if orphan:
            self.request, self.frames, self.direction = None, [], None
            self.client, self.server = msg.dst, msg.src
        else:
            self.request, self.frames, self.direction = msg, [msg.frame], (msg.src, msg.dst)
            self.client, self.server = msg.src, msg.dst
        self.segments: list[int] = []  # every frame of every message (``_touch`` adds them)
        self.retrans = self.resp_retrans = 0
        self.copies: list[int] = []
        self.prov: list[Message] = []
        self.seen: set[tuple] = set()
        self.final: Message | None = None
        self.more_finals: list[Message] = []
        self.ack: Message | None = None
        self.to_tags: list[str] = []
        self.time = self.last = msg.time
        self.answered: float | None = None
        self.challenge_of: Transaction | None = None
        self.cancelled = False
        self.deadline = 0.0
        self.record: Transaction | None = None
        self.dialogs: list[_Dialog] = []  # dialogs waiting for this transaction's record
        self.initial = False  # creates dialogs (INVITE/SUBSCRIBE without To tag)
        self.dialog: _Dialog | None = None  # the dialog an in-dialog request belongs to

    @property
    def finished(self) -> bool:
        """Nothing more is expected but copies: ACK, answered non-INVITE, 2xx INVITE, acked non-2xx INVITE."""
        if self.method == "ACK":
            return True
        if self.final is None:
            return False
        return self.method != "INVITE" or self.final.status < 300 or self.ack is not None


class _Dialog:
    __slots__ = ("bye", "call_id", "cause", "emitted", "ended_by", "id", "initial", "local", "method",
                 "pending", "reason", "remote", "states", "txs")

    def __init__(self, id_, initial: _Tx):
        self.id, self.initial, self.method = id_, initial, initial.method
        self.call_id, self.local, self.remote = id_
        self.states: list[DialogState] = []
        self.txs: list[_Tx] = []
        self.bye: _Tx | None = None
        self.ended_by = self.cause = self.reason = None
        self.pending = 0
        self.emitted = False

    @property
    def state(self) -> str | None:
        return self.states[-1].state if self.states else None

    def enter(self, state: str, msg: Message) -> bool:
        if self.state == state or self.state == "terminated":
            return False
        self.states.append(DialogState(state, msg.time, msg.frame))
        return True

    def end(self, cause: str, msg: Message, by: str | None) -> None:
        if self.enter("terminated", msg):
            self.cause, self.ended_by = cause, by


# --- the tracker ----------------------------------------------------------------------------------------

@dataclass(slots=True)
class TransactionTracker:
    """Feed items in capture order; get ``Transaction`` and ``Dialog`` records as they complete."""

    timeout: float = TIMER_F
    invite_timeout: float = TIMER_C
    linger: float = T4
    challenge_window: float = CHALLENGE_WINDOW
    stats: TrackerStats = field(default_factory=TrackerStats)
    _txs: dict = field(default_factory=dict)  # key -> open _Tx
    _loose: dict = field(default_factory=dict)  # key without sent-by -> open _Tx (client-side matching)
    _dialogs: dict = field(default_factory=dict)  # (call_id, local tag, remote tag) -> open _Dialog
    _challenges: dict = field(default_factory=dict)  # _challenge_key -> challenged _Tx
    _subscribes: dict = field(default_factory=dict)  # (call_id, from tag) -> open initial SUBSCRIBE _Tx
    _timers: list = field(default_factory=list)  # heap of (deadline, seq, kind, object)
    _seq: int = 0
    _now: float = float("-inf")
    _closing: bool = False

    # -- public API ---------------------------------------------------------------------------------

    def feed(self, item) -> list[Transaction | Dialog]:
        """Take one item; return the records it completed, in order.

        Timers fire on the item's capture time first. Items other than SIP messages (HTTP, TLS hellos)
        only move the clock.
        """
        out: list = []
        now = item.time
        if now > self._now:
            self._now = now
            self._expire(now, out)
        if isinstance(item, Message) and item.proto == "sip":
            self.stats.messages += 1
            if item.kind == "request":
                self._request(item, out)
            else:
                self._response(item, out)
        return out

    @property
    def open_counts(self) -> tuple[int, int]:
        """(open transactions, open dialogs): what the tracker holds in memory now."""
        return len(self._txs), len(self._dialogs)

    def close(self) -> list[Transaction | Dialog]:
        """End of input: every open transaction, then every open dialog."""
        out: list = []
        self._closing = True
        for tx in sorted(self._txs.values(), key=lambda t: (t.deadline, t.time)):
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
        self._closing = False
        return out

    # -- requests -----------------------------------------------------------------------------------

    def _request(self, msg: Message, out: list) -> None:
        h = msg.headers
        call_id = h.get("call-id")
        cseq, _ = _cseq(h.get("cseq"))
        if call_id is None or cseq is None:
            return self._unmatchable(msg, out)
        method = msg.method
        sent_by, branch = _via(h.get("via"))
        from_tag = _tag(h.get("from"))
        key = _key(branch, sent_by, call_id, cseq, from_tag, method)
        if method == "ACK":
            inv = self._txs.get((*key[:-1], "INVITE"))
            if inv is not None and inv.final is not None and inv.final.status >= 300:
                if inv.ack is None:
                    inv.ack = msg
                else:
                    self._copy(inv, msg, request=True)
                return self._touch(inv, msg, out)
        tx = self._txs.get(key)
        if tx is not None and tx.request is not None:
            if tx.direction == (msg.src, msg.dst):
                self._copy(tx, msg, request=True)
            else:  # the same request seen on another hop without a Via of its own
                tx.frames.append(msg.frame)
            return self._touch(tx, msg, out)
        if tx is not None:  # responses came first (orphan so far): the request turns up late
            tx.request, tx.frames, tx.direction, tx.orphan = msg, [msg.frame], (msg.src, msg.dst), False
            tx.client, tx.server = msg.src, msg.dst
            tx.time = min(tx.time, msg.time)
        else:
            tx = self._open(key, method, msg, branch, call_id, cseq, from_tag, orphan=False)
        if method == "CANCEL":
            inv = self._txs.get((*key[:-1], "INVITE"))
            if inv is not None:
                inv.cancelled = True
        if "authorization" in h or "proxy-authorization" in h:
            self._link_challenge(tx, out)
        to_tag = _tag(h.get("to"))
        if to_tag is None:
            tx.initial = method in DIALOG_METHODS
            if method == "SUBSCRIBE":
                self._subscribes[(call_id, from_tag)] = tx
        else:
            self._in_dialog(tx, msg, call_id, from_tag, to_tag, out)
        self._touch(tx, msg, out)

    def _link_challenge(self, tx: _Tx, out: list) -> None:
        ckey = _challenge_key(tx)
        prev = self._challenges.get(ckey)
        if prev is None or prev.cseq != tx.cseq - 1:
            return
        del self._challenges[ckey]
        if prev.record is None:  # the client has moved on: the challenged transaction is over
            self._emit(prev, out)
        tx.challenge_of = prev.record
        self.stats.challenges += 1

    def _in_dialog(self, tx: _Tx, msg: Message, call_id, from_tag, to_tag, out: list) -> None:
        d = self._dialogs.get((call_id, from_tag, to_tag)) or self._dialogs.get((call_id, to_tag, from_tag))
        if d is None and msg.method == "NOTIFY" and from_tag:  # NOTIFY may overtake its SUBSCRIBE's 2xx
            sub = self._subscribes.get((call_id, to_tag))
            if sub is not None:
                d = self._dialog(sub, from_tag, "confirmed", msg)
        if d is None or d.emitted:
            return
        tx.dialog = d
        d.txs.append(tx)
        tx.dialogs.append(d)
        d.pending += 1
        if msg.method == "BYE" and d.bye is None:
            d.bye, d.ended_by, d.reason = tx, msg.src, msg.headers.get("reason")
        elif msg.method == "NOTIFY" and d.method == "SUBSCRIBE":
            state = (msg.headers.get("subscription-state") or "").split(";", 1)[0].strip().lower()
            if state == "terminated":
                d.end("subscription-terminated", msg, msg.src)

    # -- responses ----------------------------------------------------------------------------------

    def _response(self, msg: Message, out: list) -> None:
        h = msg.headers
        call_id = h.get("call-id")
        cseq, method = _cseq(h.get("cseq"))
        if call_id is None or cseq is None or method is None:
            return self._unmatchable(msg, out)
        sent_by, branch = _via(h.get("via"))
        from_tag = _tag(h.get("from"))
        key = _key(branch, sent_by, call_id, cseq, from_tag, method)
        tx = self._txs.get(key)
        if tx is None and key[0] == "b":  # §17.1.3: a client matches on branch and method alone
            tx = self._loose.get(_loose(key))
        if tx is None:
            tx = self._open(key, method, msg, branch, call_id, cseq, from_tag, orphan=True)
        to_tag = _tag(h.get("to"))
        status = msg.status
        seen = (status, to_tag, h.get("rseq"))
        if seen in tx.seen:
            self._copy(tx, msg, request=False)
            return self._touch(tx, msg, out)
        tx.seen.add(seen)
        if to_tag is not None and to_tag not in tx.to_tags:
            tx.to_tags.append(to_tag)
        if status < 200:
            tx.prov.append(msg)
        elif tx.final is None:
            tx.final, tx.answered = msg, msg.time
            if status in (401, 407):
                self._challenges[_challenge_key(tx)] = tx
        else:
            tx.more_finals.append(msg)
        if tx.initial and to_tag is not None:
            if 100 < status < 200:
                self._dialog(tx, to_tag, "early", msg)
            elif 200 <= status < 300:
                self._dialog(tx, to_tag, "confirmed", msg)
        if status >= 300 and tx.initial and tx.final is msg:
            for d in tx.dialogs:
                d.end("rejected", msg, msg.src)
        elif tx.dialog is not None and status >= 200 and tx.final is msg:
            d = tx.dialog
            if d.bye is tx and status in (401, 407):  # a challenged BYE: its retry will end the dialog
                d.bye = d.ended_by = d.reason = None
            elif d.bye is tx:
                d.end("bye", msg, d.ended_by)
            elif status in (481, 408):
                d.end(str(status), msg, msg.src)
        self._touch(tx, msg, out)

    def _open(self, key, method, msg, branch, call_id, cseq, from_tag, orphan: bool) -> _Tx:
        tx = self._txs[key] = _Tx(key, method, msg, branch, call_id, cseq, from_tag, orphan)
        if key[0] == "b":
            self._loose[_loose(key)] = tx
        return tx

    def _dialog(self, tx: _Tx, to_tag: str, state: str, msg: Message) -> _Dialog:
        id_ = (tx.call_id, tx.from_tag, to_tag)
        d = self._dialogs.get(id_)
        if d is None:
            d = self._dialogs[id_] = _Dialog(id_, tx)
            tx.dialogs.append(d)
            d.pending += 1
        d.enter(state, msg)
        return d

    # -- bookkeeping --------------------------------------------------------------------------------

    def _copy(self, tx: _Tx, msg: Message, request: bool) -> None:
        tx.copies.append(msg.frame)
        if request:
            tx.retrans += 1
            if msg.method == tx.method:  # not an ACK copy
                tx.frames.append(msg.frame)
        else:
            tx.resp_retrans += 1

    def _touch(self, tx: _Tx, msg: Message, out: list) -> None:
        """Activity on ``tx`` at ``msg``: (re)arm its timer, or finish it now on a reliable transport."""
        tx.segments.extend(msg.frames)
        if msg.time > tx.last:
            tx.last = msg.time
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
        tx.deadline = tx.last + wait
        self._push(tx.deadline, 0, tx)

    def _push(self, when: float, kind: int, obj) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, kind, obj))

    def _expire(self, now: float, out: list) -> None:
        timers = self._timers
        while timers and timers[0][0] < now:
            when, _, kind, obj = heapq.heappop(timers)
            if kind == 0:
                if obj.record is None and obj.deadline == when:
                    self._emit(obj, out)
            elif self._challenges.get(obj[0]) is obj[1]:  # an answered challenge nobody retried
                del self._challenges[obj[0]]

    def _emit(self, tx: _Tx, out: list) -> None:
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
            if tx.key[0] == "b" and self._loose.get(_loose(tx.key)) is tx:
                del self._loose[_loose(tx.key)]
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
            ckey = _challenge_key(tx)
            if self._challenges.get(ckey) is tx:
                self._push(self._now + self.challenge_window, 1, (ckey, tx))
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

    def _emit_dialog(self, d: _Dialog, out: list) -> None:
        d.emitted = True
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

    def _unmatchable(self, msg: Message, out: list) -> None:
        """A message without Call-ID or CSeq (the parser reported it): a transaction of its own, now."""
        cseq, method = _cseq(msg.headers.get("cseq"))
        request = msg.kind == "request"
        tx = _Tx(None, msg.method if request else method, msg, None, msg.headers.get("call-id"), cseq,
                 _tag(msg.headers.get("from")), orphan=True)
        if request:
            tx.request, tx.frames, tx.client, tx.server = msg, [msg.frame], msg.src, msg.dst
        elif msg.status >= 200:
            tx.final, tx.answered = msg, msg.time
        else:
            tx.prov.append(msg)
        tx.segments = list(msg.frames)
        self._emit(tx, out)


def track(items: Iterable, passthrough: bool = False, **options) -> Iterator:
    """Transactions and dialogs of ``items`` (capture order), as they complete.

    ``passthrough=True`` also yields every item that is not a SIP message (HTTP messages, TLS hellos)
    untouched, in its place. ``options`` go to ``TransactionTracker``.
    """
    tracker = TransactionTracker(**options)
    for item in items:
        yield from tracker.feed(item)
        if passthrough and not (isinstance(item, Message) and item.proto == "sip"):
            yield item
    yield from tracker.close()
