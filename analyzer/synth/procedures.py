"""Procedures → exchanges: what each ``do:`` of a scenario puts on the wire, as timed sends.

``PROCEDURES`` maps a ``do:`` name to its builder ``(context, step, time)``. Builders write SIP/HTTP
messages through ``Context``, which keeps what real endpoints keep between procedures: registrations
(Call-ID and CSeq reused for the authenticated retry and the de-registration), the affiliation
subscription dialog and its CSeq, the affiliated set and the PUBLISH entity tags, call dialogs (tags,
Contact targets, Record-Route), access tokens and profile ETags. ``Context.transaction`` applies a step's
fault to its main transaction (see ``scenario`` for the vocabulary, ``faults`` for the timing rules).

Topology: a UE talks to its system's ``sip_server`` (P-CSCF) only. With a separate ``mc_server`` the P-CSCF
record-routes dialogs and server-initiated requests carry two Vias (P-CSCF, MC server); session Contacts and
media live on the MC server.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from analyzer.synth import http as H
from analyzer.synth.faults import send_offsets, warning_for
from analyzer.synth.scenario import NO_FAULT, RELEASE_REASONS, STEP_KINDS, Scenario, Step, System, Ue
from analyzer.synth.sip import (
    ALLOW,
    SERVICES,
    Service,
    SipMessage,
    info_xml,
    multipart,
    pidf_affiliation,
    pidf_status,
    poc_settings_xml,
    request,
    resource_lists_xml,
    response,
    sdp,
)
from analyzer.synth.wire import Datagram, Endpoint, Link, MessageInfo, Send, StreamClose, StreamSend

SERVER_AGENT = "mcxa-synth MC-system/1.0"
REGISTER_EXPIRES = 600000
PUBLISH_EXPIRES = 4294967295
SUBSCRIBE_EXPIRES = 3600
ACCESS_NETWORK = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=2620100a1b2c3d4e5"


def host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# -- who talks to whom --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Leg:
    """The SIP path between one UE identity and its system's P-CSCF."""

    ue: Ue
    system: System
    service: Service
    mc_id: str
    impu: str
    impi: str
    ue_ep: Endpoint
    core_ep: Endpoint
    link: Link | None  # TCP: the logical connection; UDP: None

    @property
    def udp(self) -> bool:
        return self.link is None

    @property
    def via_transport(self) -> str:
        return "UDP" if self.udp else "TCP"

    @property
    def ue_hostport(self) -> str:
        return f"{host(self.ue_ep.ip)}:{self.ue_ep.port}"

    @property
    def core_hostport(self) -> str:
        return f"{host(self.core_ep.ip)}:{self.core_ep.port}"

    @property
    def mc_hostport(self) -> str:
        return f"{host(self.system.mc_server)}:5060"

    @property
    def ims_domain(self) -> str:
        return self.impu.split("@", 1)[1] if "@" in self.impu else self.system.domain

    @property
    def user(self) -> str:
        return self.impu.split(":", 1)[1].split("@", 1)[0]

    @property
    def contact_uri(self) -> str:
        return f"sip:{self.user}@{self.ue_hostport}" + ("" if self.udp else ";transport=tcp")

    def contact(self, register: bool = False, expires: int | None = None) -> str:
        value = f"<{self.contact_uri}>"
        if expires is not None:
            value += f";expires={expires}"
        if register:
            value += f';+sip.instance="<{self.ue.instance}>"'
        return value + self.service.contact_params

    def psi(self, function: str) -> str:
        return f"sip:{self.service.name}-{function}@{self.system.domain}"

    @property
    def routes(self) -> str:
        """Route set of out-of-dialog requests: the P-CSCF, then the Service-Route from registration."""
        return f"<sip:{self.core_hostport};lr>, <sip:orig@scscf.{self.ims_domain};lr>"

    @property
    def user_agent(self) -> str:
        return self.ue.user_agent or f"mcxa-synth {self.service.name.upper()}-client/1.0"


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


@dataclass(slots=True)
class MediaSpan:
    start: float
    src: Endpoint  # the MC server's media port
    dst: Endpoint  # the UE's media port
    end: float | None = None


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
    _http_links: int = 0

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

    # -- HTTP / TLS -------------------------------------------------------------------------------------
    def http_exchange(self, t: float, leg: Leg, server_name: str, address: str, over: str, req: bytes,
                      method: str, resp: bytes, status: int) -> float | None:
        """One request/response on a fresh connection (plain, or TLS records only); the client closes."""
        self._http_links += 1
        port = 80 if over == "http" else 443
        link = Link(("http", self._http_links), Endpoint(leg.ue_ep.ip, 0), Endpoint(address, port))
        split, fault = self.fault.split, self.fault

        def send(when: float, from_client: bool, data: bytes, info: MessageInfo | None = None,
                 sni: str | None = None) -> None:
            self.sends.append(StreamSend(when, link, from_client, data, info, split, sni))

        if over == "http":
            send(t, True, req, MessageInfo("http", method, None, None))
            if fault.no_answer:
                self.note(f"HTTP {method} never answered; the client gives up after 30 s")
                self.sends.append(StreamClose(t + 30.0, link, True))
                return None
            done = t + self.net() * 2 + self.server()
            send(done, False, resp, MessageInfo("http", None, status, None))
        else:
            hello, session = H.client_hello(self.rng, server_name)
            send(t, True, hello, sni=server_name)
            t1 = t + self.net() * 2 + 0.002
            send(t1, False, b"".join(H.server_flight(self.rng, session)))
            t2 = t1 + self.client()
            send(t2, True, H.client_finished(self.rng) + H.application_data(self.rng, len(req)))
            if fault.no_answer:
                self.note(f"HTTPS {method} never answered; the client gives up after 30 s")
                self.sends.append(StreamClose(t2 + 30.0, link, True))
                return None
            done = t2 + self.net() * 2 + self.server()
            send(done, False, H.session_tickets(self.rng) + H.application_data(self.rng, len(resp)))
            send(done + 0.001, True, H.close_notify(self.rng))
        self.sends.append(StreamClose(done + self.rng.uniform(0.005, 0.02), link, True))
        return done


# -- registration ---------------------------------------------------------------------------------------

def _digest(leg: Leg, nonce: str, method: str, nc: int, rng: random.Random) -> str:
    realm = leg.ims_domain
    cnonce = f"{rng.getrandbits(64):016x}"
    res = rng.randbytes(8).hex()  # AKA RES stands in for the password
    ha1 = hashlib.md5(f"{leg.impi}:{realm}:{res}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:sip:{realm}".encode()).hexdigest()
    answer = hashlib.md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (f'Digest username="{leg.impi}",realm="{realm}",uri="sip:{realm}",nonce="{nonce}",'
            f'response="{answer}",algorithm=AKAv1-MD5,cnonce="{cnonce}",qop=auth,nc={nc:08x}')


def _empty_digest(leg: Leg) -> str:
    """The IMS initial REGISTER's Authorization: no credentials yet, but the IMPI for the S-CSCF."""
    realm = leg.ims_domain
    return f'Digest username="{leg.impi}",realm="{realm}",uri="sip:{realm}",nonce="",response=""'


def _register_request(ctx: Context, leg: Leg, reg: Registration, expires: int,
                      authorization: str) -> SipMessage:
    reg.cseq += 1
    extra = [("Contact", leg.contact(register=True, expires=expires)), ("Authorization", authorization),
             ("Expires", str(expires)), ("Supported", "path,gruu"), ("P-Access-Network-Info", ACCESS_NETWORK),
             ("Allow", ALLOW), ("User-Agent", leg.user_agent)]
    headers = [("Via", ctx.ue_via(leg)), ("Max-Forwards", "70"),
               ("From", f"<{leg.impu}>;tag={reg.tag}"), ("To", f"<{leg.impu}>"), ("Call-ID", reg.call_id),
               ("CSeq", f"{reg.cseq} REGISTER"), *extra]
    return request("REGISTER", f"sip:{leg.ims_domain}", headers)


def _register_ok(ctx: Context, leg: Leg, t: float, expires: int) -> Answer:
    headers = [("Contact", leg.contact(register=True, expires=expires))]
    if expires:
        headers += [("P-Associated-URI", f"<{leg.impu}>"),
                    ("Service-Route", f"<sip:orig@scscf.{leg.ims_domain};lr>")]
    headers += [("Date", H.http_date(ctx.scenario.start + t)), ("Expires", str(expires))]
    return Answer(200, ctx.net() * 2 + ctx.server(), tuple(headers))


def register(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    reg = ctx.regs.get(key) or Registration(ctx.call_id(host(leg.ue_ep.ip)), ctx.tag())
    realm = leg.ims_domain
    first = _register_request(ctx, leg, reg, REGISTER_EXPIRES, _empty_digest(leg))
    nonce = base64.b64encode(ctx.rng.randbytes(32)).decode()
    challenge = Answer(401, ctx.net() * 2 + ctx.server(), (
        ("WWW-Authenticate", f'Digest realm="{realm}",nonce="{nonce}",algorithm=AKAv1-MD5,qop="auth"'),))
    out = ctx.transaction(t, leg, first, True, [challenge])
    assert out is not None
    t2 = out[0] + ctx.client() + 0.01  # the UE runs AKA on the (U)SIM
    reg.nonce, reg.nc = nonce, 1
    second = _register_request(ctx, leg, reg, REGISTER_EXPIRES, _digest(leg, nonce, "REGISTER", 1, ctx.rng))
    out = ctx.transaction(t2, leg, second, True, [_register_ok(ctx, leg, t2, REGISTER_EXPIRES)], main=True)
    if out is None or out[1].status >= 300:
        ctx.regs.pop(key, None)
        return
    ctx.regs[key] = reg
    if not any(r[0] == step.ue and r[1] == step.system and r[3] is None for r in ctx.registered):
        ctx.registered.append([step.ue, step.system, out[0], None])


def deregister(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    reg = ctx.regs.get(key)
    if reg is None:
        ctx.note("UE not registered in this system; the de-REGISTER goes out anyway")
        reg = Registration(ctx.call_id(host(leg.ue_ep.ip)), ctx.tag())
    if reg.nonce:
        reg.nc += 1
        auth = _digest(leg, reg.nonce, "REGISTER", reg.nc, ctx.rng)
    else:
        auth = _empty_digest(leg)
    req = _register_request(ctx, leg, reg, 0, auth)
    out = ctx.transaction(t, leg, req, True, [_register_ok(ctx, leg, t, 0)], main=True)
    for entry in ctx.registered:
        if entry[0] == step.ue and entry[1] == step.system and entry[3] is None:
            entry[3] = t
    if out is not None and out[1].status < 300:
        ctx.regs.pop(key, None)
        ctx.subs.pop(key, None)
        ctx.affiliated.pop(key, None)
        if leg.link is not None:
            ctx.sends.append(StreamClose(out[0] + ctx.rng.uniform(0.1, 0.3), leg.link, True))


# -- service authorisation, affiliation ------------------------------------------------------------------

def service_authorisation(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    s = leg.service
    info = info_xml(s, [("{s}-access-token", "string", ctx.access_token(leg, t)),
                        ("{s}-request-uri", "uri", leg.mc_id), ("{s}-client-id", "string", leg.ue.client_id)])
    ctype, body = multipart([((("Content-Type", s.info_type),), info),
                             ((("Content-Type", "application/poc-settings+xml"),),
                              poc_settings_xml(leg.ue.client_id))], ctx.boundary())
    extra = [*ctx.mc_headers(leg), ("Event", "poc-settings"), ("Expires", str(PUBLISH_EXPIRES))]
    req = ctx.ue_request(leg, "PUBLISH", leg.psi("participating"), f"<{leg.impu}>",
                         ctx.call_id(host(leg.ue_ep.ip)), extra, body, ctype)
    etag = f"{ctx.token(12)}"
    ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.server(), (
        ("SIP-ETag", etag), ("Expires", str(PUBLISH_EXPIRES))))], main=True)


def _notify(ctx: Context, dialog: Dialog, t: float, entries: list[tuple[str, str, str]],
            state: str = "active") -> float:
    leg = dialog.leg
    body = pidf_status(leg.service, leg.mc_id, leg.ue.client_id, entries)
    remaining = SUBSCRIBE_EXPIRES - 1
    req = ctx.in_dialog(dialog, "NOTIFY", False, [
        ("Contact", f"<{dialog.srv_target}>"), ("Event", "presence"),
        ("Subscription-State", f"{state};expires={remaining}" if state == "active" else state)],
        body, "application/pidf+xml")
    out = ctx.transaction(t, leg, req, False, [Answer(200, ctx.net() + ctx.client())])
    assert out is not None
    return out[0]


def _subscribe(ctx: Context, leg: Leg, t: float) -> float | None:
    """SUBSCRIBE to the UE's own affiliation status; the initial NOTIFY carries the current state."""
    psi = leg.psi("participating")
    s = leg.service
    body = info_xml(s, [("{s}-request-uri", "uri", leg.mc_id), ("{s}-client-id", "string", leg.ue.client_id)])
    tag = ctx.tag()
    call_id = ctx.call_id(host(leg.ue_ep.ip))
    extra = [*ctx.mc_headers(leg), ("Event", "presence"), ("Accept", "application/pidf+xml"),
             ("Expires", str(SUBSCRIBE_EXPIRES))]
    req = ctx.ue_request(leg, "SUBSCRIBE", psi, f"<{psi}>", call_id, extra, body, s.info_type, tag=tag)
    target = f"sip:{s.name}-participating@{leg.mc_hostport}"
    rr = ctx.record_route(leg)
    ok = Answer(200, ctx.net() * 2 + ctx.server(),
                (*(("Record-Route", r) for r in rr), ("Contact", f"<{target}>"),
                 ("Expires", str(SUBSCRIBE_EXPIRES))))
    out = ctx.transaction(t, leg, req, True, [ok])
    assert out is not None
    dialog = Dialog("presence", "subscription", leg, call_id, f"<{leg.impu}>", tag, f"<{psi}>",
                    _tag(out[1].get("To")), leg.contact_uri, target, 1, 0, rr)
    ctx.subs[(leg.ue.name, leg.system.name)] = dialog
    current = ctx.affiliated.get((leg.ue.name, leg.system.name), ())
    expires = ctx.iso(out[0] + SUBSCRIBE_EXPIRES)
    return _notify(ctx, dialog, out[0] + ctx.rng.uniform(0.005, 0.03),
                   [(g, "affiliated", expires) for g in current])


def _tag(value: str | None) -> str:
    return (value or "").partition(";tag=")[2].split(";", 1)[0]


def _publish_presence(ctx: Context, leg: Leg, t: float, groups: tuple[str, ...],
                      clear: bool = False) -> tuple[float, SipMessage] | None:
    key = (leg.ue.name, leg.system.name, "presence")
    s = leg.service
    extra = [*ctx.mc_headers(leg), ("Event", "presence"), ("Expires", "0" if clear else str(PUBLISH_EXPIRES))]
    if key in ctx.etags:
        extra.append(("SIP-If-Match", ctx.etags[key]))
    body, ctype = b"", None
    if not clear:
        pidf = pidf_affiliation(s, leg.mc_id, leg.ue.client_id, groups,
                                f"{leg.user.lstrip('+')}-{int(ctx.scenario.start + t)}")
        info = info_xml(s, [("{s}-request-uri", "uri", leg.mc_id),
                            ("{s}-client-id", "string", leg.ue.client_id)])
        ctype, body = multipart([((("Content-Type", "application/pidf+xml"),), pidf),
                                 ((("Content-Type", s.info_type),), info)], ctx.boundary())
    psi = leg.psi("participating")
    req = ctx.ue_request(leg, "PUBLISH", psi, f"<{psi}>", ctx.call_id(host(leg.ue_ep.ip)), extra, body, ctype)
    etag = ctx.token(12)
    headers = (("SIP-ETag", etag), ("Expires", "0" if clear else str(PUBLISH_EXPIRES)))
    out = ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.server(), headers)], main=True)
    if out is not None and out[1].status < 300:
        if clear:
            ctx.etags.pop(key, None)
        else:
            ctx.etags[key] = etag
    return out


def affiliate(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    if key not in ctx.subs:
        t = (_subscribe(ctx, leg, t) or t) + ctx.rng.uniform(0.02, 0.1)
    current = ctx.affiliated.get(key, ())
    wanted = current + tuple(g for g in step.groups if g not in current)
    out = _publish_presence(ctx, leg, t, wanted)
    if out is None or out[1].status >= 300:
        return
    ctx.affiliated[key] = wanted
    expires = ctx.iso(out[0] + SUBSCRIBE_EXPIRES)
    _notify(ctx, ctx.subs[key], out[0] + ctx.rng.uniform(0.02, 0.08),
            [(g, "affiliated", expires) for g in wanted])


def deaffiliate(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    key = (step.ue, step.system)
    current = ctx.affiliated.get(key, ())
    remaining = () if step.all else tuple(g for g in current if g not in step.groups)
    removed = tuple(g for g in current if g not in remaining) + tuple(
        g for g in step.groups if g not in current)
    out = _publish_presence(ctx, leg, t, remaining, clear=step.all)
    if out is None or out[1].status >= 300:
        return
    ctx.affiliated[key] = remaining
    if key not in ctx.subs:
        ctx.note("no affiliation status subscription: no NOTIFY follows")
        return
    expires = ctx.iso(out[0] + SUBSCRIBE_EXPIRES)
    entries = [(g, "affiliated", expires) for g in remaining] + [(g, "deaffiliating", ctx.iso(out[0]))
                                                                 for g in removed]
    _notify(ctx, ctx.subs[key], out[0] + ctx.rng.uniform(0.02, 0.08), entries)


# -- calls -------------------------------------------------------------------------------------------------

def _session_contact(leg: Leg, uri: str) -> str:
    return f"<{uri}>;isfocus{leg.service.contact_params}"


def _ue_invite(ctx: Context, step: Step, t: float, leg: Leg, psi: str, parts: list, answer_mode: str | None,
               ringing: bool) -> None:
    """A UE-originated call: INVITE to ``psi`` / 100 / (180) / 200 / ACK."""
    s = leg.service
    port = ctx.port()
    offer = sdp(s, leg.ue_ep.ip, ctx.rng.randrange(10**9, 4 * 10**9), port, port + 2, offer=True)
    ctype, body = multipart([((("Content-Type", "application/sdp"),), offer), *parts], ctx.boundary())
    tag, call_id = ctx.tag(), ctx.call_id(host(leg.ue_ep.ip))
    extra = [*ctx.mc_headers(leg)]
    if answer_mode:
        extra.append(("Answer-Mode", answer_mode))
    extra += [("P-Access-Network-Info", ACCESS_NETWORK), ("Allow", ALLOW), ("Supported", "timer")]
    req = ctx.ue_request(leg, "INVITE", psi, f"<{psi}>", call_id, extra, body, ctype, tag=tag)
    prefix = "pc" if step.do == "private-call" else "gc"
    session = f"sip:{prefix}-{ctx.token(6)}@{leg.mc_hostport}"
    rr = ctx.record_route(leg)
    srv_port = ctx.port()
    answer_sdp = sdp(s, leg.system.mc_server, ctx.rng.randrange(10**9, 4 * 10**9), srv_port, srv_port + 2,
                     offer=False, origin="mc-server")
    dialog_headers = (*(("Record-Route", r) for r in rr), ("Contact", _session_contact(leg, session)))
    answers = [Answer(100, ctx.net())]
    if ringing:
        answers.append(Answer(180, ctx.net() + ctx.server() * 2, dialog_headers))
    answers.append(Answer(200, ctx.rng.uniform(0.6, 1.5) if ringing else ctx.net() + ctx.server() * 2,
                          (*dialog_headers, ("P-Asserted-Service", s.icsi), ("Allow", ALLOW)),
                          answer_sdp, "application/sdp"))
    out = ctx.transaction(t, leg, req, True, answers, main=True)
    if out is None or out[1].status >= 300:
        return
    dialog = Dialog(step.id or "", step.do, leg, call_id, f"<{leg.impu}>", tag, f"<{psi}>",
                    _tag(out[1].get("To")), leg.contact_uri, session, 1, 0, rr)
    ack = ctx.in_dialog(dialog, "ACK", True, cseq=1)
    t_ack = out[0] + ctx.client()
    ctx.send_sip(t_ack, leg, ack, True)
    dialog.media = MediaSpan(t_ack, Endpoint(leg.system.mc_server, srv_port), Endpoint(leg.ue_ep.ip, port))
    ctx.media.append(dialog.media)
    ctx.dialogs[dialog.name] = dialog


def _server_invite(ctx: Context, step: Step, t: float, leg: Leg, function: str, info: list, answer_mode: str,
                   ringing: bool) -> None:
    """A server-initiated call towards the UE: INVITE / (180) / 200 from the UE / ACK."""
    s = leg.service
    psi = leg.psi(function)
    prefix = "pc" if step.do == "private-call" else "gc"
    session = f"sip:{prefix}-{ctx.token(6)}@{leg.mc_hostport}"
    srv_port = ctx.port()
    offer = sdp(s, leg.system.mc_server, ctx.rng.randrange(10**9, 4 * 10**9), srv_port, srv_port + 2,
                offer=True, origin="mc-server")
    ctype, body = multipart([((("Content-Type", "application/sdp"),), offer),
                             ((("Content-Type", s.info_type),), info_xml(s, info))], ctx.boundary())
    tag, call_id = ctx.tag(), ctx.call_id(host(leg.system.mc_server))
    rr = ctx.record_route(leg)
    headers = [("Via", v) for v in ctx.server_vias(leg)]
    headers += [("Max-Forwards", "69" if leg.system.separate_mc_server else "70"),
                *(("Record-Route", r) for r in rr), ("From", f"<{psi}>;tag={tag}"), ("To", f"<{leg.impu}>"),
                ("Call-ID", call_id), ("CSeq", "1 INVITE"), ("Contact", _session_contact(leg, session)),
                ("P-Asserted-Identity", f"<{psi}>"), ("P-Asserted-Service", s.icsi), *s.accept_contact,
                ("Answer-Mode", answer_mode), ("Allow", ALLOW), ("Supported", "timer")]
    req = request("INVITE", leg.contact_uri, headers, body, ctype)
    port = ctx.port()
    answer_sdp = sdp(s, leg.ue_ep.ip, ctx.rng.randrange(10**9, 4 * 10**9), port, port + 2, offer=False)
    dialog_headers = (*(("Record-Route", r) for r in rr), ("Contact", leg.contact()))
    answers = []
    if ringing:
        answers.append(Answer(180, ctx.client() * 4, dialog_headers))
    answers.append(Answer(200, ctx.rng.uniform(0.8, 2.0) if ringing else ctx.client() * 4,
                          (*dialog_headers, ("Allow", ALLOW)), answer_sdp, "application/sdp"))
    out = ctx.transaction(t, leg, req, False, answers, main=True)
    if out is None or out[1].status >= 300:
        return
    dialog = Dialog(step.id or "", step.do, leg, call_id, f"<{leg.impu}>", _tag(out[1].get("To")), f"<{psi}>",
                    tag, leg.contact_uri, session, 0, 1, rr)
    ack = ctx.in_dialog(dialog, "ACK", False, cseq=1)
    t_ack = out[0] + ctx.net()
    ctx.send_sip(t_ack, leg, ack, False)
    dialog.media = MediaSpan(t_ack, Endpoint(leg.system.mc_server, srv_port), Endpoint(leg.ue_ep.ip, port))
    ctx.media.append(dialog.media)
    ctx.dialogs[dialog.name] = dialog


def group_call(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    assert step.group is not None
    if step.role == "originate":
        info = info_xml(leg.service, [("session-type", "plain", step.type),
                                      ("{s}-request-uri", "uri", step.group),
                                      ("{s}-client-id", "string", leg.ue.client_id)])
        _ue_invite(ctx, step, t, leg, leg.psi("participating"),
                   [((("Content-Type", leg.service.info_type),), info)], "Auto", ringing=False)
    else:
        _server_invite(ctx, step, t, leg, "participating", [
            ("session-type", "plain", step.type), ("{s}-request-uri", "uri", leg.mc_id),
            ("{s}-calling-group-id", "uri", step.group)], "Auto", ringing=False)


def late_entry(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    assert step.group is not None
    _server_invite(ctx, step, t, leg, "participating", [
        ("session-type", "plain", "prearranged"), ("{s}-request-uri", "uri", leg.mc_id),
        ("{s}-calling-group-id", "uri", step.group)], "Auto", ringing=False)


def private_call(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    assert step.peer is not None
    mode = step.answer.capitalize()
    if step.role == "originate":
        info = info_xml(leg.service, [("session-type", "plain", "private"),
                                      ("{s}-client-id", "string", leg.ue.client_id)])
        parts = [((("Content-Type", "application/resource-lists+xml"),
                   ("Content-Disposition", "recipient-list")), resource_lists_xml([step.peer])),
                 ((("Content-Type", leg.service.info_type),), info)]
        _ue_invite(ctx, step, t, leg, leg.psi("private-call"), parts, mode, ringing=step.answer == "manual")
    else:
        _server_invite(ctx, step, t, leg, "private-call", [
            ("session-type", "plain", "private"), ("{s}-request-uri", "uri", leg.mc_id),
            ("{s}-calling-user-id", "uri", step.peer), ("{s}-called-party-id", "uri", leg.mc_id)],
            mode, ringing=step.answer == "manual")


def _bye(ctx: Context, step: Step, t: float, reason: str | None) -> None:
    dialog = ctx.dialogs.pop(step.call or "", None)
    if dialog is None:
        ctx.note(f"call '{step.call}' was never established: nothing to release")
        return
    extra = [("Reason", reason)] if reason else []
    from_ue = step.by == "ue"
    req = ctx.in_dialog(dialog, "BYE", from_ue, extra)
    delay = ctx.net() * 2 + (ctx.server() if from_ue else ctx.client())
    ctx.transaction(t, dialog.leg, req, from_ue, [Answer(200, delay)], main=True)
    if dialog.media is not None:
        dialog.media.end = t


def release(ctx: Context, step: Step, t: float) -> None:
    reason = None
    if step.reason or step.reason_text:
        protocol, cause, text = RELEASE_REASONS[step.reason or "migration"]
        text = (step.reason_text or text).replace("\\", "\\\\").replace('"', '\\"')
        reason = f'{protocol};cause={cause};text="{text}"'
    _bye(ctx, step, t, reason)


def leave(ctx: Context, step: Step, t: float) -> None:
    _bye(ctx, step, t, None)


# -- keep-alive --------------------------------------------------------------------------------------------

def options(ctx: Context, step: Step, t: float) -> None:
    _options(ctx, ctx.leg(step.ue, step.system), t, main=True)


def _options(ctx: Context, leg: Leg, t: float, main: bool = False) -> None:
    target = f"sip:{leg.core_hostport}"
    headers = [("Via", ctx.ue_via(leg)), ("Max-Forwards", "70"), ("From", f"<{leg.impu}>;tag={ctx.tag()}"),
               ("To", f"<{target}>"), ("Call-ID", ctx.call_id(host(leg.ue_ep.ip))), ("CSeq", "1 OPTIONS"),
               ("Contact", leg.contact()), ("Accept", "application/sdp"), ("User-Agent", leg.user_agent)]
    req = request("OPTIONS", target, headers)
    ctx.transaction(t, leg, req, True, [Answer(200, ctx.net() * 2 + ctx.rng.uniform(0.001, 0.005), (
        ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "path,gruu,timer")))], main=main)


# -- HTTP: IdMS token, user profile ----------------------------------------------------------------------

def _error_body(status: int) -> bytes:
    return f"{status} {H.HTTP_REASONS.get(status, 'Error')}\n".encode()


def token(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    system = leg.system
    assert system.idms is not None and system.idms_address is not None
    body = H.token_request_body(ctx.rng, f"{leg.service.name}_client")
    req = H.http_request("POST", "/token", [
        ("Host", system.idms), ("User-Agent", H.USER_AGENT_HTTP), ("Accept", "application/json"),
        ("Content-Type", "application/x-www-form-urlencoded")], body)
    status = ctx.fault.error or 200
    date = ("Date", H.http_date(ctx.scenario.start + t))
    if status == 200:
        access = ctx.new_token(leg, t)
        s = leg.service.name
        id_token = H.jwt(ctx.rng, f"https://{system.idms}", leg.impi.split("@")[0],
                         {"aud": f"{s}_client", f"{s}_id": leg.mc_id}, int(ctx.scenario.start + t))
        payload = H.token_response_body(access, id_token, ctx.token(32))
        resp = H.http_response(200, [("Server", H.SERVER_HTTP), date,
                                     ("Content-Type", "application/json;charset=UTF-8"),
                                     ("Cache-Control", "no-store"), ("Pragma", "no-cache")], payload)
    else:
        resp = H.http_response(status, [("Server", H.SERVER_HTTP), date, ("Content-Type", "text/plain")],
                               _error_body(status))
    done = ctx.http_exchange(t, leg, system.idms, system.idms_address, step.over, req, "POST", resp, status)
    if done is not None and status == 200:
        ctx.tokens[(leg.ue.name, system.name)] = access


def profile_retrieval(ctx: Context, step: Step, t: float) -> None:
    leg = ctx.leg(step.ue, step.system)
    system, s = leg.system, leg.service
    assert system.cms is not None and system.cms_address is not None
    key = (leg.ue.name, system.name)
    path = f"/xcap-root/{s.profile_auid}/users/{leg.mc_id}/{s.name}-user-profile.xml"
    headers = [("Host", system.cms), ("User-Agent", H.USER_AGENT_HTTP), ("Accept", s.profile_type),
               ("Authorization", f"Bearer {ctx.access_token(leg, t)}")]
    if key in ctx.profile_etags:
        headers.append(("If-None-Match", ctx.profile_etags[key]))
    req = H.http_request("GET", path, headers)
    date = ("Date", H.http_date(ctx.scenario.start + t))
    groups, peers = _profile_contents(ctx.scenario, leg.ue.name, system.name)
    document = H.user_profile_xml(s, leg.mc_id, leg.impu, leg.mc_id.split(":", 1)[1].split("@")[0].title(),
                                  f"{system.domain} public safety", groups, peers)
    etag = H.etag(document)
    status = ctx.fault.error or (304 if ctx.profile_etags.get(key) == etag else 200)
    if status == 200:
        resp = H.http_response(200, [("Server", H.SERVER_HTTP), date, ("Content-Type", s.profile_type),
                                     ("ETag", etag), ("Cache-Control", "no-cache")], document)
    elif status == 304:
        resp = H.http_response(304, [("Server", H.SERVER_HTTP), date, ("ETag", etag)])
    else:
        resp = H.http_response(status, [("Server", H.SERVER_HTTP), date, ("Content-Type", "text/plain")],
                               _error_body(status))
    done = ctx.http_exchange(t, leg, system.cms, system.cms_address, step.over, req, "GET", resp, status)
    if done is not None and status in (200, 304):
        ctx.profile_etags[key] = etag


def _profile_contents(scenario: Scenario, ue: str, system: str) -> tuple[list[str], list[str]]:
    """The groups and private-call peers the scenario has this UE use in this system."""
    groups: list[str] = []
    peers: list[str] = []
    for step in scenario.timeline:
        if step.ue != ue or step.system != system:
            continue
        for g in (*step.groups, *((step.group,) if step.group else ())):
            if g not in groups:
                groups.append(g)
        if step.peer and step.peer not in peers:
            peers.append(step.peer)
    return groups, peers


#: ``do:`` name → builder. Must name exactly the procedures the scenario vocabulary knows.
PROCEDURES: dict[str, Callable[[Context, Step, float], None]] = {
    "register": register,
    "deregister": deregister,
    "service-authorisation": service_authorisation,
    "affiliate": affiliate,
    "deaffiliate": deaffiliate,
    "group-call": group_call,
    "late-entry": late_entry,
    "private-call": private_call,
    "release": release,
    "leave": leave,
    "token": token,
    "profile-retrieval": profile_retrieval,
    "options": options,
}
assert set(PROCEDURES) == set(STEP_KINDS), "procedure registry and scenario vocabulary differ"


# -- background -------------------------------------------------------------------------------------------

RTP_INTERVAL = 0.020
_G711_PAYLOAD = 160


def add_noise(ctx: Context, end: float) -> None:
    """OPTIONS keep-alives while registered, then RTP streams (calls' downlink first, then random pairs)."""
    noise = ctx.scenario.noise
    ctx.step = None
    if noise.options_interval:
        for ue, system, t0, t1 in ctx.registered:
            leg = ctx.leg(ue, system)
            stop = min(end, t1 if t1 is not None else end)
            t = t0 + noise.options_interval
            while t < stop:
                _options(ctx, leg, t)
                t += noise.options_interval
    spans = sorted(ctx.media, key=lambda m: m.start)
    pairs = [(ue.name, name) for ue in ctx.scenario.ues.values() for name in ue.identities]
    pool = [bytes(ctx.rng.randrange(0x70, 0x80) | (ctx.rng.getrandbits(1) << 7) for _ in range(_G711_PAYLOAD))
            for _ in range(8)]
    for i in range(noise.rtp_streams):
        if i < len(spans):
            span = spans[i]
            src, dst, t0 = span.src, span.dst, span.start + 0.04
            t1 = span.end if span.end is not None else end
        else:
            leg = ctx.leg(*pairs[ctx.rng.randrange(len(pairs))])
            src = Endpoint(leg.system.mc_server, ctx.port())
            dst = Endpoint(leg.ue_ep.ip, ctx.port())
            t0, t1 = ctx.rng.uniform(0.0, 0.5), end
        _rtp_stream(ctx, src, dst, t0, min(t1, end), pool)


def _rtp_stream(ctx: Context, src: Endpoint, dst: Endpoint, t0: float, t1: float, pool: list[bytes]) -> None:
    rng = ctx.rng
    seq, stamp, ssrc = rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32)
    count = int((t1 - t0) / RTP_INTERVAL)
    sends = ctx.sends
    for n in range(count):
        header = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0x00, (seq + n) & 0xFFFF,
                             (stamp + n * _G711_PAYLOAD) & 0xFFFFFFFF, ssrc)
        jitter = rng.uniform(-0.0005, 0.0005) if n else 0.0
        sends.append(Datagram(t0 + n * RTP_INTERVAL + jitter, src, dst, header + pool[n % len(pool)]))
