"""Events: what SIP/HTTP traffic means in the MC domain, one record per thing that happened to a UE.

This is the vocabulary the rules read. Every kind is listed once in ``KINDS`` with one line of meaning;
``extract`` (in ``analyzer.meaning.events.extract``) is the only place that decides which messages make which
events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from operator import attrgetter

from analyzer.base.runs import rebuilder

#: A Reason text that says the release is due to migration (TS 23.280 §10.16.4 step 3 "may indicate").
#: No stage-3 encoding is known (REFERENCE.md §1.3): configurable with ``--migration-reason``.
MIGRATION_REASON = re.compile(r"migrat", re.I)

#: Every event kind, with what it means on the wire. Rules may only name these.
KINDS: dict[str, str] = {
    "registration": "REGISTER with a non-zero expiry (a 401/407 challenge and the authenticated retry are "
                    "one event)",
    "deregistration": "REGISTER with expiry 0",
    "service-authorisation": "PUBLISH Event: poc-settings (or a REGISTER carrying an MC info body): the "
                             "client asks the MC server to authorise it (24.379 cl.7)",
    "affiliation": "the client became affiliated to a group (one event per group; ``evidence`` says how): "
                   "newly present in its affiliation publication (an initial or modifying PUBLISH, RFC "
                   "3903), implicitly by joining a chat group or starting an emergency or imminent-peril "
                   "group call (24.379 cl. 9), or by an affiliation command the MC server sent it (remote "
                   "affiliation, negotiated mode)",
    "deaffiliation": "a group gone from the client's affiliation publication: left out by a modifying "
                     "PUBLISH, or every group of a publication removed (Expires: 0) or expired without "
                     "refresh; or a de-affiliation command the MC server sent it (one event per group)",
    "affiliation-status": "NOTIFY from the MC server giving a group's affiliation status for the client",
    "profile-retrieval": "HTTP GET of an MC user-profile document (XCAP AUID org.3gpp.mc*.user-profile)",
    "config-retrieval": "HTTP GET of another configuration document (UE config, groups, service config)",
    "config-access-encrypted": "TLS to a configuration-management server: the retrieval cannot be read "
                               "without keys (SNI names the server)",
    "token-request": "OAuth/OIDC token request to an identity-management server (HTTP, or TLS to it)",
    "group-call-originate": "the UE's INVITE starting a prearranged group call, or its REFER asking for "
                            "one over a pre-established session (``via``)",
    "group-call-join": "the UE's INVITE joining a chat group call (24.379 §10.1.2), or its REFER asking for "
                       "it over a pre-established session (``via``)",
    "group-call-incoming": "a server-initiated INVITE bringing the UE into a group call (carries "
                           "mcptt-calling-group-id): call set-up towards a receiving member, or late entry "
                           "into an ongoing call — on the wire the two look the same; over a "
                           "pre-established session, the server's MCPC Connect naming the group (24.380 "
                           "§8.3), decided by the UE's Acknowledgement (``via``)",
    "group-call-leave": "BYE ending the UE's participation in a group call (either side); over a "
                        "pre-established session, the UE's REFER with Refer-To method=BYE, an MCPC "
                        "Disconnect (either side), or the end of the session",
    "private-call-setup": "INVITE of a private call, from or to the UE; or the UE's REFER asking for one "
                          "over a pre-established session, or the server's MCPC Connect of a private call "
                          "to it",
    "private-call-established": "2xx answer to a private-call INVITE",
    "private-call-release": "BYE of a private call (either side), with its Reason if any; over a "
                            "pre-established session, the UE's REFER with Refer-To method=BYE, an MCPC "
                            "Disconnect (either side), or the end of the session",
    "pre-established-session": "the UE's INVITE setting up a session with its participating MC server "
                               "ahead of any call (24.379 cl. 6.3.3: media offered, no group or peer); "
                               "calls are then made in it by REFER",
    "pre-established-session-release": "BYE ending a pre-established session (either side)",
    "redirect": "3xx answer to an INVITE: the callee is reached elsewhere (e.g. a migrated user, §10.16.5)",
    "floor-request": "MCPTT Floor Request (TS 24.380 floor control, RTCP APP MCPT) on the ports a call "
                     "of the UE negotiated: the UE asks to talk",
    "floor-granted": "MCPTT Floor Granted on a call's floor control port: the UE may talk",
    "floor-deny": "MCPTT Floor Deny on a call's floor control port (with its reject cause)",
    "floor-taken": "MCPTT Floor Taken on a call's floor control port: another participant talks (the UE "
                   "hears the call)",
    "floor-release": "MCPTT Floor Release on a call's floor control port: the UE stops talking",
    "floor-idle": "MCPTT Floor Idle on a call's floor control port: nobody talks",
    "floor-revoke": "MCPTT Floor Revoke on a call's floor control port (with its reject cause)",
}

OUTCOMES = ("success", "failure", "no-answer", "encrypted")
DIRECTIONS = ("from-ue", "to-ue")
#: What happened to a publication (RFC 3903) in an affiliation or service-authorisation event
#: (``Event.transition``); see ``analyzer.meaning.events.publications``.
TRANSITIONS: dict[str, str] = {
    "initial": "a PUBLISH with a body and no SIP-If-Match: a new publication",
    "refresh": "SIP-If-Match and no body: the publication lives on unchanged",
    "modify": "SIP-If-Match and a body: the body replaces the publication's state",
    "remove": "Expires: 0: the publication ends now",
    "expiry": "no refresh came before the granted lifetime ran out: the publication ended then",
}
#: How a call event came about (``Event.via``): an INVITE/BYE of its own, or a REFER over a pre-established
#: session (24.379 cl. 6.3.3). Rules that name the kind match both.
VIAS = ("on-demand", "pre-established")
#: What shows an affiliation (``Event.evidence``, on affiliation, deaffiliation and affiliation-status).
EVIDENCE: dict[str, str] = {
    "publish": "the client's own PUBLISH (24.379 §9.2.1.2)",
    "notify": "the MC server's NOTIFY of the client's affiliation status (§9.2.1.3): also what shows an "
              "implicit affiliation from the profile at registration",
    "implicit-chat": "joining a chat group call affiliates implicitly (§9.1, §10.1.2)",
    "implicit-emergency": "an emergency or imminent-peril group call affiliates implicitly (§9.1)",
    "remote": "an affiliation command about the client sent to it by the MC server (another user or a "
              "dispatcher asked, §9.2.1.4)",
}
#: The MC services an event may name (``Event.service``).
SERVICES = ("mcptt", "mcvideo", "mcdata")

_ANSWERED = ("success", "failure", "no-answer")  # a request that got an answer, a rejection, or none
_BOTH = DIRECTIONS


@dataclass(frozen=True, slots=True)
class Shape:
    """What events of one kind can look like: rules are checked against it, so a pattern that can never
    match (a registration for a group, an encrypted affiliation) is an error when the rule is loaded."""

    directions: tuple[str, ...]
    outcomes: tuple[str, ...]
    carries: frozenset[str] = frozenset()  # which of the optional subject fields (group, peer, migration)


#: The subject fields only some kinds carry; every other field may be set on any kind.
SUBJECT_FIELDS = frozenset(("group", "peer", "migration"))

SHAPES: dict[str, Shape] = {
    "registration": Shape(("from-ue",), _ANSWERED),
    "deregistration": Shape(("from-ue",), _ANSWERED),
    "service-authorisation": Shape(("from-ue",), _ANSWERED),
    "affiliation": Shape(_BOTH, _ANSWERED, frozenset({"group"})),
    "deaffiliation": Shape(_BOTH, _ANSWERED, frozenset({"group"})),
    "affiliation-status": Shape(("to-ue",), _ANSWERED, frozenset({"group"})),
    "profile-retrieval": Shape(("from-ue",), _ANSWERED),
    "config-retrieval": Shape(("from-ue",), _ANSWERED),
    "config-access-encrypted": Shape(("from-ue",), ("encrypted",)),
    "token-request": Shape(("from-ue",), OUTCOMES),
    "group-call-originate": Shape(("from-ue",), _ANSWERED, frozenset({"group"})),
    "group-call-join": Shape(("from-ue",), _ANSWERED, frozenset({"group"})),
    "group-call-incoming": Shape(("to-ue",), _ANSWERED, frozenset({"group"})),
    "group-call-leave": Shape(_BOTH, _ANSWERED, frozenset({"group"})),
    "private-call-setup": Shape(_BOTH, _ANSWERED, frozenset({"peer"})),
    "private-call-established": Shape(_BOTH, ("success",), frozenset({"peer"})),
    "private-call-release": Shape(_BOTH, _ANSWERED, frozenset({"peer", "migration"})),
    "redirect": Shape(_BOTH, ("failure",), frozenset({"peer"})),
    **{kind: Shape(_BOTH, ("success",), frozenset({"group", "peer"}))
       for kind in ("floor-request", "floor-granted", "floor-deny", "floor-taken", "floor-release",
                    "floor-idle", "floor-revoke")},
    "pre-established-session": Shape(("from-ue",), _ANSWERED),
    "pre-established-session-release": Shape(_BOTH, _ANSWERED),
}


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to one UE, with the evidence (frames) and everything rules may test."""

    kind: str
    time: float  # when it started (request time)
    frames: tuple[int, ...]  # the frame that completed each message (request copies, responses), sorted
    direction: str  # from-ue (the UE asked) | to-ue (the network asked the UE)
    ue_address: str  # the UE's ip:port in this exchange
    server: str | None  # the network side's ip:port
    outcome: str  # success | failure | no-answer | encrypted
    status: int | None = None  # final status code (SIP or HTTP)
    end: float | None = None  # time of the final answer
    service: str | None = None  # mcptt | mcvideo | mcdata
    system: str | None = None  # MC system (filled once systems are known)
    identity: str | None = None  # the UE's MC service ID when known, else its IMPU
    impu: str | None = None
    instance: str | None = None  # +sip.instance of the device
    client_id: str | None = None  # mcptt-client-id
    group: str | None = None
    peer: str | None = None  # the other party of a private call
    call_id: str | None = None
    detail: str | None = None  # a short human note: Reason, Warning, challenge, server name ...
    domain: str | None = None  # the SIP domain / host the request was addressed to
    migration: bool | None = None  # private-call-release: the Reason says migration (None: no Reason)
    all_frames: tuple[int, ...] = ()  # every frame that carried bytes of those messages (TCP segments...)
    transition: str | None = None  # (de)affiliation, service-authorisation: a key of ``TRANSITIONS``
    impi: str | None = None  # (de)registration: the private identity it authenticated with
    via: str | None = None  # call events: one of ``VIAS``
    evidence: str | None = None  # (de)affiliation, affiliation-status: a key of ``EVIDENCE``
    media: tuple[str, ...] = ()  # call events: the ip:ports the UE's own SDP named (RTP, RTCP, floor)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if self.outcome not in OUTCOMES or self.direction not in DIRECTIONS:
            raise ValueError(f"bad event outcome/direction {self.outcome}/{self.direction}")
        if self.transition is not None and self.transition not in TRANSITIONS:
            raise ValueError(f"unknown publication transition {self.transition!r}")
        if self.via is not None and self.via not in VIAS:
            raise ValueError(f"unknown call path {self.via!r}")
        if self.evidence is not None and self.evidence not in EVIDENCE:
            raise ValueError(f"unknown affiliation evidence {self.evidence!r}")
        if not self.frames:
            raise ValueError("an event cites at least one frame")

    @property
    def frame(self) -> int:
        return self.frames[0]


#: An event as a plain tuple of its fields, and back: what packs fast (``base.runs.SortedRuns``).
event_values = attrgetter(*(f.name for f in fields(Event)))
event_of = rebuilder(Event)
