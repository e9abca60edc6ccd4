"""Mutable state while a transaction or dialog is open: the tracker builds records from it."""

from __future__ import annotations

from analyzer.meaning.transactions.records import DialogState, Transaction
from analyzer.messages.records import Message


class OpenTx:
    """One transaction while it is open: every copy, response and frame gathered so far, and its timer."""

    __slots__ = ("ack", "answered", "branch", "call_id", "cancelled", "challenge_of", "client", "copies",
                 "cseq", "deadline", "dialog", "dialogs", "direction", "final", "frames", "from_tag",
                 "initial", "key", "last", "method", "more_finals", "orphan", "prov", "record", "request",
                 "resp_retrans", "retrans", "seen", "segments", "server", "time", "timer", "to_tags",
                 "transport")

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
        self.to_tags: dict[str, None] = {}  # in order of arrival (a dict: forks may be many)
        self.time = self.last = msg.time
        self.answered: float | None = None
        self.challenge_of: Transaction | None = None
        self.cancelled = False
        self.deadline: float | None = None
        self.timer = 0  # sequence number of its one armed timer (older heap entries are stale)
        self.record: Transaction | None = None
        self.dialogs: list[OpenDialog] = []  # dialogs waiting for this transaction's record
        self.initial = False  # creates dialogs (INVITE/SUBSCRIBE without To tag)
        self.dialog: OpenDialog | None = None  # the dialog an in-dialog request belongs to

    @property
    def finished(self) -> bool:
        """Nothing more is expected but copies: ACK, answered non-INVITE, 2xx INVITE, acked non-2xx INVITE."""
        if self.method == "ACK":
            return True
        if self.final is None:
            return False
        return self.method != "INVITE" or self.final.status < 300 or self.ack is not None


class OpenDialog:
    """One dialog while it is open: its states so far and the transactions inside it."""

    __slots__ = ("bye", "call_id", "cause", "emitted", "ended_by", "id", "initial", "local", "method",
                 "pending", "reason", "remote", "states", "txs")

    def __init__(self, id_, initial: OpenTx):
        self.id, self.initial, self.method = id_, initial, initial.method
        self.call_id, self.local, self.remote = id_
        self.states: list[DialogState] = []
        self.txs: list[OpenTx] = []
        self.bye: OpenTx | None = None
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
