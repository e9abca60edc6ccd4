"""What a scenario loads into: the frozen records the procedures build from, and the closed vocabulary
(``STEP_KINDS``, ``CHOICES``, ``FAULT_KEYS``) that the loader checks a file against. The format itself is
documented in the package docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
LATEST_START = datetime(2100, 1, 1, tzinfo=UTC).timestamp()  # (capture timestamps: seconds since 1970)
LONGEST = 30 * 86400  # seconds a scenario may last
URI_SCHEMES = ("sip:", "sips:", "tel:")
TRANSPORTS = ("udp", "tcp")
IPSEC = ("esp-null",)  # ``ipsec:`` of a UE: ESP on Gm, NULL encryption with an HMAC-SHA1-96 ICV
SERVICE_NAMES = ("mcptt", "mcvideo")

#: ``reason:`` of a release → (protocol, cause, text) of the Reason header (RFC 3326). The stage-3
#: encoding of "released due to migration" is unconfirmed (REFERENCE.md §1.3), hence ``reason_text``.
RELEASE_REASONS: dict[str, tuple[str, int, str]] = {"migration": ("SIP", 200, "MC migration")}


@dataclass(frozen=True, slots=True)
class System:
    name: str
    domain: str
    sip_server: str
    mc_server: str
    primary: bool = False
    cms: str | None = None
    cms_address: str | None = None
    idms: str | None = None
    idms_address: str | None = None

    @property
    def separate_mc_server(self) -> bool:
        return self.mc_server != self.sip_server


@dataclass(frozen=True, slots=True)
class Identity:
    """What a UE uses in one system: MC service ID, IMS public/private identity, address and SIP port."""

    system: str
    mc_id: str
    impu: str
    impi: str
    address: str
    port: int = 5060


@dataclass(frozen=True, slots=True)
class Ue:
    name: str
    instance: str
    client_id: str
    identities: Mapping[str, Identity]
    transport: str = "udp"
    service: str = "mcptt"
    user_agent: str | None = None
    ipsec: str | None = None  # "esp-null": its SIP with the P-CSCF in NULL-encrypted ESP (``synth.esp``)


@dataclass(frozen=True, slots=True)
class Noise:
    rtp_streams: int = 0
    options_interval: float | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one step (see the package docstring); the default is nothing."""

    omit: bool = False
    delay: float = 0.0
    reorder: str | None = None  # before-previous
    error: int | None = None
    warning: str | None = None
    no_answer: bool = False
    retransmit: int = 0
    split: int = 1


NO_FAULT = Fault()


@dataclass(frozen=True, slots=True)
class Step:
    """One timeline entry. Fields a procedure does not take keep their defaults."""

    index: int  # position in the timeline (0-based)
    line: int
    at: float
    ue: str
    do: str
    system: str  # for release/leave: the call's system
    groups: tuple[str, ...] = ()
    all: bool = False
    group: str | None = None
    id: str | None = None
    type: str = "prearranged"
    role: str = "originate"
    answer: str = "manual"
    peer: str | None = None
    call: str | None = None
    reason: str | None = None
    reason_text: str | None = None
    by: str = "ue"
    over: str = "https"
    alert: str | None = None  # group-call: an emergency or imminent-peril call (its MC info says so)
    fault: Fault = NO_FAULT

    @property
    def label(self) -> str:
        return f"step {self.index + 1} (line {self.line}, {self.do})"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    start: float  # epoch seconds
    systems: Mapping[str, System]
    ues: Mapping[str, Ue]
    timeline: tuple[Step, ...]
    noise: Noise = field(default_factory=Noise)
    truncate_at: float | None = None
    source: str = "<scenario>"


@dataclass(frozen=True, slots=True)
class StepKind:
    """The closed vocabulary of one ``do:``: its keys (with types), the required ones, SIP or HTTP."""

    keys: Mapping[str, type | tuple[type, ...]]
    required: tuple[str, ...]
    proto: str = "sip"  # sip | http | media (floor control: RTCP APP over UDP)


NUMBER = float  # check_mapping takes float for any number, int or float
COMMON_KEYS: dict[str, type | tuple[type, ...]] = {"at": NUMBER, "ue": str, "do": str, "fault": (str, dict)}
STEP_KINDS: dict[str, StepKind] = {
    "register": StepKind({"system": str}, ("system",)),
    "deregister": StepKind({"system": str}, ("system",)),
    "service-authorisation": StepKind({"system": str}, ("system",)),
    "affiliate": StepKind({"system": str, "groups": list}, ("system", "groups")),
    "deaffiliate": StepKind({"system": str, "groups": list, "all": bool}, ("system",)),
    "pre-established": StepKind({"system": str, "id": str}, ("system", "id")),
    "group-call": StepKind({"system": str, "group": str, "id": str, "type": str, "role": str, "over": str,
                            "alert": str}, ("system", "group", "id")),
    "late-entry": StepKind({"system": str, "group": str, "id": str, "over": str}, ("system", "group", "id")),
    "private-call": StepKind({"system": str, "peer": str, "id": str, "role": str, "answer": str,
                              "over": str}, ("system", "peer", "id")),
    "release": StepKind({"call": str, "reason": str, "reason_text": str, "by": str}, ("call",)),
    "leave": StepKind({"call": str, "by": str}, ("call",)),
    "token": StepKind({"system": str, "over": str}, ("system",), "http"),
    "profile-retrieval": StepKind({"system": str, "over": str}, ("system",), "http"),
    "options": StepKind({"system": str}, ("system",)),
    "floor": StepKind({"call": str, "by": str, "peer": str}, ("call",), "media"),
}
#: Keys whose value is one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "type": ("prearranged", "chat"), "role": ("originate", "receive"), "answer": ("auto", "manual"),
    "by": ("ue", "server"), "over": ("http", "https"), "reason": tuple(RELEASE_REASONS),
    "alert": ("emergency", "imminent-peril"),
}
#: ``over:`` of a call: its own INVITE, or a REFER over the UE's latest pre-established session in the system.
CALL_OVER = ("on-demand", "pre-established")
#: The steps that take such an ``over:`` (late entry over a session: the server's MCPC Connect).
CALL_OVER_STEPS = ("group-call", "private-call", "late-entry")
#: Which call-creating procedures each procedure naming a ``call:`` (ending it, or floor control in it)
#: may name.
CALL_ENDERS: dict[str, tuple[str, ...]] = {"release": ("private-call", "pre-established"),
                                           "leave": ("group-call", "late-entry"),
                                           "floor": ("group-call", "late-entry", "private-call")}
FAULT_KEYS: dict[str, type | tuple[type, ...]] = {
    "omit": bool, "delay": NUMBER, "reorder": str, "error": int, "warning": str, "no-answer": bool,
    "retransmit": int, "split": int,
}
