"""What the procedures of one synthesis share: ``Context``, which keeps what real endpoints keep between
procedures, and the SIP transaction and request builders every family uses.

Kept between procedures: registrations (Call-ID and CSeq reused for the authenticated retry and the
de-registration), the affiliation subscription dialog and its CSeq, the affiliated set and the PUBLISH
entity tags, call dialogs (tags, Contact targets, Record-Route), access tokens and profile ETags.
``Context.transaction`` applies a step's fault to its main transaction (see ``scenario`` for the
vocabulary, ``faults`` for the timing rules).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from analyzer.synth import http as H
from analyzer.synth.faults import send_offsets, warning_for
from analyzer.synth.procedures.topology import Leg, host
from analyzer.synth.scenario import NO_FAULT, Scenario, Step
from analyzer.synth.sip import SERVICES, SipMessage, request, response, tag_of
from analyzer.synth.wire import Datagram, Endpoint, Link, MessageInfo, Send, StreamSend

SERVER_AGENT = "mcxa-synth MC-system/1.0"
PUBLISH_EXPIRES = 4294967295


def to_tag_of(final: SipMessage) -> str:
    """The To tag a response gives a dialog (``Context.transaction`` sets one on every final response)."""
    return tag_of(final.get("To") or "") or ""


@dataclass(frozen=True, slots=True)
class Answer:
    """One response of a transaction; ``delay`` counts from the previous message."""

    status: int
    delay: float
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str | None = None


@dataclass(slots=True)
class Registration:
    call_id: str
    tag: str
    cseq: int = 0
    nonce: str | None = None
    nc: int = 0


@dataclass(slots=True)
class Dialog:
    """A SIP dialog between a UE and its system (call or subscription), UE side and server side."""

    name: str
    kind: str
    leg: Leg
    call_id: str
    ue_uri: str
    ue_tag: str
    srv_uri: str
    srv_tag: str
    ue_target: str
    srv_target: str
    ue_cseq: int
    srv_cseq: int
    record_route: tuple[str, ...] = ()
    media: MediaSpan | None = None
    target: str | None = None  # a call made by REFER: the group or user its Refer-To named
    session: Dialog | None = None  # a call made by REFER: the pre-established session it rides on


@dataclass(slots=True)
class MediaSpan:
    start: float
    src: Endpoint  # the MC server's media port
    dst: Endpoint  # the UE's media port
    end: float | None = None
    ssrc: int | None = None  # the downlink RTP's SSRC when floor control named it (else drawn at random)

    def control_ports(self) -> tuple[Endpoint, Endpoint]:
        """The UE's and the server's floor (and MCPC) control ports: each media port + 2, as ``sip.sdp``
        writes the application line."""
        return Endpoint(self.dst.ip, self.dst.port + 2), Endpoint(self.src.ip, self.src.port + 2)


@dataclass(slots=True)
class Context:
    """State shared by the procedures of one synthesis, and the sends they produced."""

    scenario: Scenario
    rng: random.Random = field(init=False)
    sends: list[Send] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    step: Step | None = None
    regs: dict[tuple[str, str], Registration] = field(default_factory=dict)
    subs: dict[tuple[str, str], Dialog] = field(default_factory=dict)
    affiliated: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    etags: dict[tuple[str, str, str], str] = field(default_factory=dict)
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    profile_etags: dict[tuple[str, str], str] = field(default_factory=dict)
    media: list[MediaSpan] = field(default_factory=list)
    registered: list[list] = field(default_factory=list)  # [ue, system, from, to or None]
    _legs: dict[tuple[str, str], Leg] = field(default_factory=dict)
    http_links: int = 0  # HTTP connections opened so far (each retrieval opens one)

    def __post_init__(self):
        self.rng = random.Random(f"mcxa-synth/{self.scenario.seed}")

    # -- identifiers ----------------------------------------------------------------------------------
    def token(self, n: int = 10) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def branch(self) -> str:
        return "z9hG4bK" + self.token(16)

    def tag(self) -> str:
        return self.token(10)

    def call_id(self, at: str) -> str:
        return f"{uuid.UUID(int=self.rng.getrandbits(128), version=4)}@{at}"

    def port(self) -> int:
        return self.rng.randrange(30000, 50000, 2)

    # -- timing ---------------------------------------------------------------------------------------
    def net(self) -> float:
        """UE ↔ P-CSCF one way, plus proxy work."""
        return self.rng.uniform(0.004, 0.012)

    def server(self) -> float:
        """A server's time to answer."""
        return self.rng.uniform(0.015, 0.060)

    def client(self) -> float:
        """A UE's time to answer or follow up."""
        return self.rng.uniform(0.002, 0.008)

    # -- sending --------------------------------------------------------------------------------------
    @property
    def fault(self):
        return self.step.fault if self.step is not None else NO_FAULT

    def leg(self, ue_name: str, system_name: str) -> Leg:
        leg = self._legs.get((ue_name, system_name))
        if leg is None:
            ue, system = self.scenario.ues[ue_name], self.scenario.systems[system_name]
            ident = ue.identities[system_name]
            ue_ep, core_ep = Endpoint(ident.address, ident.port), Endpoint(system.sip_server, 5060)
            link = Link(("sip", ue_name, system_name), ue_ep, core_ep) if ue.transport == "tcp" else None
            leg = Leg(ue, system, SERVICES[ue.service], ident.mc_id, ident.impu, ident.impi, ue_ep, core_ep,
                      link)
            self._legs[(ue_name, system_name)] = leg
        return leg

    def send_sip(self, t: float, leg: Leg, msg: SipMessage, from_ue: bool) -> None:
        info = MessageInfo("sip", msg.method, msg.status, msg.call_id)
        data = bytes(msg)
        if leg.link is not None:
            self.sends.append(StreamSend(t, leg.link, from_ue, data, info, self.fault.split))
        else:
            src, dst = (leg.ue_ep, leg.core_ep) if from_ue else (leg.core_ep, leg.ue_ep)
            self.sends.append(Datagram(t, src, dst, data, info))

    def note(self, text: str) -> None:
        where = f"{self.step.label}: " if self.step is not None else ""
        self.notes.append(where + text)

    # -- SIP building blocks --------------------------------------------------------------------------
    def ue_via(self, leg: Leg) -> str:
        return (f"SIP/2.0/{leg.via_transport} {leg.ue_hostport};branch={self.branch()}"
                + (";rport" if leg.udp else ""))

    def server_vias(self, leg: Leg) -> list[str]:
        vias = [f"SIP/2.0/{leg.via_transport} {leg.core_hostport};branch={self.branch()}"]
        if leg.system.separate_mc_server:
            vias.append(f"SIP/2.0/UDP {leg.mc_hostport};branch={self.branch()}")
        return vias

    def record_route(self, leg: Leg) -> tuple[str, ...]:
        return (f"<sip:{leg.core_hostport};lr>",) if leg.system.separate_mc_server else ()

    def transaction(self, t: float, leg: Leg, req: SipMessage, from_ue: bool, answers: list[Answer],
                    main: bool = False) -> tuple[float, SipMessage] | None:
        """Send ``req`` and its answers. On the main transaction the step's fault applies: retransmissions,
        no answer (returns None), or an error final response. Returns (time of the final response, it)."""
        fault = self.fault if main else NO_FAULT
        invite = req.method == "INVITE"
        offsets = send_offsets(invite, fault.retransmit, fault.no_answer, leg.udp)
        for offset in offsets:
            self.send_sip(t + offset, leg, req, from_ue)
        if fault.no_answer:
            self.note(f"{req.method} sent {len(offsets)} time(s), never answered")
            return None
        if fault.error is not None:
            warning = warning_for(self.step)
            agent = leg.system.domain if from_ue else host(leg.ue_ep.ip)
            headers = (("Warning", f'399 {agent} "{warning}"'),) if warning else ()
            final = Answer(fault.error, answers[-1].delay, headers)
            answers = [*(a for a in answers if a.status < 200), final]
        agent_header = ("Server", SERVER_AGENT) if from_ue else ("User-Agent", leg.user_agent)
        vias = req.getall("Via")
        if from_ue and leg.udp:
            # the P-CSCF fills in rport (RFC 3581); the UE's sent-by is its own address, so no received=
            top = vias[0]
            vias = [top[:-len(";rport")] + f";rport={leg.ue_ep.port}" if top.endswith(";rport") else top,
                    *vias[1:]]
        to_tag = self.tag()
        when, final = t + offsets[-1], None
        for answer in answers:
            when += answer.delay
            final = response(req, answer.status, to_tag=to_tag if answer.status > 100 else None,
                             headers=(*answer.headers, agent_header), body=answer.body,
                             content_type=answer.content_type, via=vias)
            self.send_sip(when, leg, final, not from_ue)
        assert final is not None
        if invite and final.status >= 300:  # RFC 3261 §17.1.1.3: the ACK is part of the INVITE transaction
            ack_headers = [("Via", req.getall("Via")[0]), ("Max-Forwards", "70")]
            ack_headers += [("Route", r) for r in req.getall("Route")]
            ack_headers += [("From", req.get("From") or ""), ("To", final.get("To") or ""),
                            ("Call-ID", req.call_id), ("CSeq", f"{(req.get('CSeq') or '1').split()[0]} ACK")]
            self.send_sip(when + self.client(), leg, request("ACK", req.uri or "", ack_headers), from_ue)
        return when, final

    def in_dialog(self, dialog: Dialog, method: str, from_ue: bool, extra: list[tuple[str, str]] = (),
                  body: bytes = b"", content_type: str | None = None, cseq: int | None = None) -> SipMessage:
        """A request inside ``dialog`` from the UE or from the server side (new branch; CSeq + 1 unless
        given, as for ACK)."""
        leg = dialog.leg
        if from_ue:
            if cseq is None:
                dialog.ue_cseq += 1
            headers = [("Via", self.ue_via(leg)), ("Max-Forwards", "70")]
            if dialog.record_route:
                headers.append(("Route", ", ".join(dialog.record_route)))
            headers += [("From", f"{dialog.ue_uri};tag={dialog.ue_tag}"),
                        ("To", f"{dialog.srv_uri};tag={dialog.srv_tag}"), ("Call-ID", dialog.call_id),
                        ("CSeq", f"{cseq or dialog.ue_cseq} {method}")]
            uri = dialog.srv_target
        else:
            if cseq is None:
                dialog.srv_cseq += 1
            headers = [("Via", v) for v in self.server_vias(leg)]
            headers += [("Max-Forwards", "69" if leg.system.separate_mc_server else "70"),
                        ("From", f"{dialog.srv_uri};tag={dialog.srv_tag}"),
                        ("To", f"{dialog.ue_uri};tag={dialog.ue_tag}"), ("Call-ID", dialog.call_id),
                        ("CSeq", f"{cseq or dialog.srv_cseq} {method}")]
            uri = dialog.ue_target
        headers += extra
        if from_ue and method not in ("ACK",):
            headers.append(("User-Agent", leg.user_agent))
        return request(method, uri, headers, body, content_type)

    def ue_request(self, leg: Leg, method: str, uri: str, to: str, call_id: str, extra: list[tuple[str, str]],
                   body: bytes = b"", content_type: str | None = None, tag: str | None = None,
                   cseq: int = 1) -> SipMessage:
        """An out-of-dialog request from the UE through the P-CSCF (Route = P-CSCF + Service-Route)."""
        headers = [("Via", self.ue_via(leg)), ("Max-Forwards", "70"), ("Route", leg.routes),
                   ("From", f"<{leg.impu}>;tag={tag or self.tag()}"), ("To", to), ("Call-ID", call_id),
                   ("CSeq", f"{cseq} {method}"), *extra, ("User-Agent", leg.user_agent)]
        return request(method, uri, headers, body, content_type)

    def mc_headers(self, leg: Leg) -> list[tuple[str, str]]:
        """What an MC client adds to its MC service requests (REFERENCE.md E1–E3)."""
        return [("Contact", leg.contact()), ("P-Preferred-Identity", f"<{leg.impu}>"),
                ("P-Preferred-Service", leg.service.icsi), *leg.service.accept_contact]

    def boundary(self) -> str:
        return f"mcx-{self.token(16)}"

    def access_token(self, leg: Leg, t: float) -> str:
        key = (leg.ue.name, leg.system.name)
        if key not in self.tokens:
            self.tokens[key] = self.new_token(leg, t)
        return self.tokens[key]

    def new_token(self, leg: Leg, t: float) -> str:
        issuer = f"https://{leg.system.idms or 'idms.' + leg.system.domain}"
        s = leg.service.name
        claims = {"aud": [f"{s}-server", "cms", "gms"], "client_id": leg.ue.client_id, f"{s}_id": leg.mc_id,
                  "scope": H.SCOPE}
        return H.jwt(self.rng, issuer, leg.impi.split("@")[0], claims, int(self.scenario.start + t))

    def iso(self, t: float) -> str:
        return datetime.fromtimestamp(self.scenario.start + t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
