"""What the transaction stage yields: ``Transaction`` and ``Dialog`` records (with its states), counters."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.messages.records import Message

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

    @property
    def first_frame(self) -> int:
        """The frame of its first message: a message belongs to one transaction, so this names it."""
        return self.frames[0]


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
    evicted: int = 0  # transactions yielded early: more than ``Limits.transactions`` open at once
    evicted_dialogs: int = 0  # dialogs yielded early: too many open, or holding too many transactions
    forgotten_challenges: int = 0  # 401/407 answers forgotten before a retry could link to them

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
