"""From transactions, HTTP exchanges and TLS hellos to MC events: the only place that decides meaning.

Two passes. The first streams: every SIP transaction, HTTP request/response pair and TLS hello becomes a
small ``_Fact`` (what the messages say, via ``analyzer.mcfacts``), so no message body is kept. The second
works on the facts of the whole capture: it learns which addresses are servers and which systems exist,
computes affiliation differences per client (PUBLISH sets are replacements), gives BYEs the meaning of the
call they end, and builds ``Event`` records in time order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from analyzer import mcfacts
from analyzer.events import MIGRATION_REASON, Event
from analyzer.messages.records import Message
from analyzer.systems import SystemMap
from analyzer.transactions import Transaction, track
from analyzer.transport.records import TlsHello

_CALL_KINDS = {  # (session type, UE originates?) -> event kind
    ("prearranged", True): "group-call-originate",
    ("chat", True): "group-call-join",
    ("private", True): "private-call-setup",
    ("private", False): "private-call-setup",
}


@dataclass(frozen=True, slots=True)
class _Fact:
    """What one exchange said, without the message bodies."""

    method: str  # SIP method, HTTP-GET/HTTP-POST/..., or TLS
    time: float
    end: float | None
    frames: tuple[int, ...]
    client: str
    server: str
    status: int | None
    call_id: str | None = None
    domain: str | None = None  # Request-URI / HTTP host
    from_uri: str | None = None
    to_uri: str | None = None
    service: str | None = None
    instance: str | None = None
    client_id: str | None = None
    mc_uri: str | None = None  # MC info request-uri (own MC ID for PUBLISH; target for INVITE)
    calling_user: str | None = None
    calling_group: str | None = None
    called_party: str | None = None
    session_type: str | None = None
    recipients: tuple[str, ...] = ()
    affiliation: mcfacts.AffiliationSet | None = None
    event_package: str | None = None
    expires: int | None = None
    reason: str | None = None  # Reason text (BYE) or Warning text (errors)
    xcap: mcfacts.XcapTarget | None = None
    token: mcfacts.TokenRequest | None = None
    claims_mc_id: str | None = None
    challenged: bool = False
    mc_body: bool = False  # carries an MC info body (REGISTER service authorisation)
    contact: str | None = None  # Contact URI of a 3xx


# -- pass 1: facts ---------------------------------------------------------------------------------------

def _uri(value: str | None) -> str | None:
    """The address of record of a From/To/Contact value: URI parameters and tags dropped."""
    parsed = mcfacts.name_addr(value) if value else None
    return parsed.uri.aor if parsed and parsed.uri else None


def _status_note(final: Message | None) -> str | None:
    if final is None:
        return None
    warns = mcfacts.warnings(final)
    text = f"{final.status} {final.reason or ''}".strip()
    return f"{text} (Warning: {warns[0].code} {warns[0].text})" if warns else text


def _sip_fact(tx: Transaction, problems: list) -> _Fact | None:
    req = tx.request
    if req is None or tx.method in ("ACK", "CANCEL", "PRACK", "UPDATE", "INFO"):
        return None
    method = tx.method or ""
    info = mcfacts.mc_info(req, problems)
    contact = mcfacts.contact_facts(req) if method == "REGISTER" else None  # instance, expiry
    expires = None
    if method == "REGISTER":
        expires = contact.expires if contact and contact.expires is not None \
            else _int(req.headers.get("expires"))
    reason = None
    if method == "BYE":
        r = mcfacts.reason(req)
        reason = r.text if r and r.text else (req.headers.get("reason") or None)
    elif tx.final is not None and (tx.final.status or 0) >= 300:
        reason = _status_note(tx.final)
    affiliation = mcfacts.affiliation_set(req, problems) if method in ("PUBLISH", "NOTIFY") else None
    redirect = None
    if tx.final is not None and 300 <= (tx.final.status or 0) < 400:
        redirect = _uri(tx.final.headers.get("contact"))
    ruri = mcfacts.uri_parts(req.uri or "")
    return _Fact(
        method, tx.time, tx.answered, tx.frames, tx.client or req.src, tx.server or req.dst, tx.status,
        call_id=tx.call_id, domain=ruri.host if ruri else None, from_uri=_uri(req.headers.get("from")),
        to_uri=_uri(req.headers.get("to")),
        service=(info.service if info else None) or mcfacts.mc_service(req),
        instance=contact.instance if contact else None, client_id=info.client_id if info else None,
        mc_uri=info.request_uri if info else None, calling_user=info.calling_user_id if info else None,
        calling_group=info.calling_group_id if info else None,
        called_party=info.called_party_id if info else None,
        session_type=info.session_type if info else None,
        recipients=mcfacts.recipients(req, problems) if method == "INVITE" else (),
        affiliation=affiliation, event_package=(req.headers.get("event") or "").split(";")[0].strip().lower()
        or None, expires=expires, reason=reason, challenged=tx.challenge_of is not None,
        mc_body=info is not None, contact=redirect,
        claims_mc_id=info.token_claims.mc_id if info and info.token_claims else None)


def _http_fact(request: Message, response: Message | None) -> _Fact:
    target = mcfacts.xcap_target(request)
    claims = mcfacts.bearer_token_claims(request)
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower() or None
    return _Fact(f"HTTP-{request.method}", request.time, response.time if response else None,
                 tuple(sorted({*request.frames, *(response.frames if response else ())})),
                 request.src, request.dst, response.status if response else None, domain=host,
                 service=target.service if target else None, xcap=target,
                 token=mcfacts.token_request(request),
                 claims_mc_id=claims.mc_id if claims else None,
                 reason=_status_note(response) if response and (response.status or 0) >= 400 else None)


def _tls_fact(hello: TlsHello) -> _Fact:
    return _Fact("TLS", hello.time, None, (hello.frame,), hello.src, hello.dst, None, domain=hello.sni)


def collect_facts(items: Iterable, problems: list | None = None) -> list[_Fact]:
    """Pass 1 over decoded items (capture order): one fact per exchange, sorted by time."""
    problems = [] if problems is None else problems
    facts: list[_Fact | None] = []
    challenged: dict[int, int] = {}  # id of a 401/407-answered transaction → index of its fact
    http_pending: dict[int, Message] = {}
    for item in track(items, passthrough=True):
        if isinstance(item, Transaction):
            fact = _sip_fact(item, problems)
            if fact is None:
                continue
            first = challenged.pop(id(item.challenge_of), None) if item.challenge_of else None
            if first is not None:  # the challenge and its authenticated retry are one exchange
                earlier, facts[first] = facts[first], None
                fact = replace(fact, time=earlier.time, frames=tuple(sorted({*earlier.frames, *fact.frames})))
            if item.status in (401, 407):
                challenged[id(item)] = len(facts)
            facts.append(fact)
        elif isinstance(item, Message) and item.proto == "http":
            if item.kind == "request":
                http_pending[item.frame] = item
            elif item.reply_to in http_pending:
                facts.append(_http_fact(http_pending.pop(item.reply_to), item))
        elif isinstance(item, TlsHello):
            facts.append(_tls_fact(item))
    facts += [_http_fact(request, None) for request in http_pending.values()]
    kept = [f for f in facts if f is not None]
    kept.sort(key=lambda f: (f.time, f.frames[0]))
    return kept


# -- pass 2: meaning -------------------------------------------------------------------------------------

def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _outcome(fact: _Fact) -> str:
    if fact.status is None:
        return "no-answer"
    return "success" if fact.status < 300 else "failure"


def _host(uri: str | None) -> str | None:
    parsed = mcfacts.uri_parts(uri) if uri else None
    return parsed.host if parsed else None


def _to_ue(fact: _Fact) -> bool:
    """Requests the network sends to the UE: NOTIFY, and INVITEs naming who calls (group or user)."""
    if fact.method == "NOTIFY":
        return True
    return fact.method == "INVITE" and bool(fact.calling_group or fact.calling_user)


class _Builder:
    """Pass 2: facts of one capture → events."""

    def __init__(self, systems: SystemMap | None, migration_reason: re.Pattern):
        self.configured = systems
        self.migration_reason = migration_reason
        self.events: list[Event] = []
        self.affiliated: dict[str, frozenset[str]] = {}  # client (or entity, or address) → current set
        # call_id → (group|private, UE address, service, identity fields for the BYE's event)
        self.calls: dict[str, tuple[str, str, str | None, dict]] = {}

    def build(self, facts: list[_Fact]) -> tuple[list[Event], SystemMap]:
        observations = []
        for f in facts:
            server = f.client if _to_ue(f) else f.server
            for domain in (f.domain, _host(f.from_uri) if _to_ue(f) else None):
                observations.append((domain, server))
        inferred = SystemMap.infer(observations)
        self.systems = self.configured.merged_with(inferred) if self.configured else inferred
        deferred = []
        for f in facts:
            handler = _HANDLERS.get(f.method)
            if handler is None:
                continue
            if f.method == "BYE" and f.call_id not in self.calls:
                deferred.append(f)
                continue
            handler(self, f)
        for f in deferred:
            if f.call_id in self.calls:
                self._bye(f)
        self.events.sort(key=lambda e: (e.time, e.frame))
        return self.events, self.systems

    def emit(self, f: _Fact, kind: str, *, to_ue: bool = False, **fields) -> None:
        ue, server = (f.server, f.client) if to_ue else (f.client, f.server)
        domain = fields.pop("domain", f.domain if not to_ue else _host(f.from_uri))
        system = self.systems.of_address(server) or self.systems.of_host(domain)
        fields.setdefault("outcome", _outcome(f))
        self.events.append(Event(
            kind, f.time, f.frames, "to-ue" if to_ue else "from-ue", ue, server, status=f.status, end=f.end,
            service=f.service, system=system, call_id=f.call_id, domain=domain, **fields))

    # -- SIP ------------------------------------------------------------------------------------------
    def _register(self, f: _Fact) -> None:
        kind = "deregistration" if f.expires == 0 else "registration"
        detail = "after a 401/407 challenge" if f.challenged else None
        if f.status in (401, 407):
            detail = "challenged, no authenticated retry in the capture"
        elif f.reason:  # a rejection: its status and Warning first
            detail = "; ".join(filter(None, (f.reason, detail)))
        self.emit(f, kind, impu=f.to_uri, instance=f.instance, detail=detail)
        if f.mc_body and kind == "registration":
            self.emit(f, "service-authorisation", impu=f.to_uri, identity=f.mc_uri, client_id=f.client_id,
                      instance=f.instance)

    def _publish(self, f: _Fact) -> None:
        if f.event_package == "poc-settings":
            self.emit(f, "service-authorisation", identity=f.mc_uri or f.claims_mc_id, impu=f.from_uri,
                      client_id=f.client_id, detail=f.reason)
            return
        aff = f.affiliation
        if aff is None or aff.kind != "publish" or (aff.groups is None and not aff.clears):
            return
        key = aff.client or aff.entity or f.client_id or f.client
        before = self.affiliated.get(key, frozenset())
        after = frozenset() if aff.clears else aff.groups
        identity = aff.entity or f.mc_uri or f.from_uri
        ids = {"identity": identity, "impu": f.from_uri, "client_id": aff.client or f.client_id}
        for group in sorted(after - before):
            self.emit(f, "affiliation", group=group, detail=f.reason, **ids)
        for group in sorted(before - after):
            cleared = "Expires: 0" if aff.clears else None
            self.emit(f, "deaffiliation", group=group, detail=f.reason or cleared, **ids)
        if _outcome(f) == "success":
            self.affiliated[key] = after

    def _notify(self, f: _Fact) -> None:
        aff = f.affiliation
        if aff is None or aff.kind != "notify":
            return
        for entry in aff.entries:
            self.emit(f, "affiliation-status", to_ue=True, group=entry.group, identity=aff.entity,
                      client_id=entry.client, impu=f.to_uri, detail=entry.status)

    def _invite(self, f: _Fact) -> None:
        to_ue = _to_ue(f)
        ue = f.server if to_ue else f.client
        if f.call_id in self.calls:  # a re-INVITE inside a known call
            return
        if f.status is not None and 300 <= f.status < 400:
            self.emit(f, "redirect", to_ue=to_ue, peer=f.contact, detail=f.reason, impu=f.from_uri)
        session = f.session_type or ("private" if f.recipients or f.calling_user else None)
        if to_ue and f.calling_group:
            group, peer, kind, family = f.calling_group, None, "group-call-incoming", "group"
        elif session in ("prearranged", "chat") and not to_ue:
            group, peer, family = f.mc_uri, None, "group"
            kind = _CALL_KINDS[(session, True)]
        elif session == "private":
            group, family, kind = None, "private", "private-call-setup"
            peer = f.calling_user if to_ue else (f.recipients[0] if f.recipients else f.called_party)
        else:
            return
        identity = (f.mc_uri or f.called_party) if to_ue else None
        impu = f.to_uri if to_ue else f.from_uri
        self.emit(f, kind, to_ue=to_ue, group=group, peer=peer, identity=identity, impu=impu,
                  client_id=f.client_id, detail=f.reason)
        if f.status is not None and f.status < 300:
            ids = {"group": group, "peer": peer, "identity": identity, "impu": impu, "client_id": f.client_id}
            self.calls[f.call_id] = (family, ue, f.service, ids)
            if family == "private":
                self.emit(replace(f, time=f.end or f.time), "private-call-established", to_ue=to_ue,
                          peer=peer, identity=identity, impu=impu, client_id=f.client_id)

    def _bye(self, f: _Fact) -> None:
        family, ue, service, call = self.calls.pop(f.call_id)
        to_ue, f = f.client != ue, replace(f, service=f.service or service)
        if family == "group":
            self.emit(f, "group-call-leave", to_ue=to_ue, detail=f.reason, **call)
        else:
            migration = None if f.reason is None else bool(self.migration_reason.search(f.reason))
            self.emit(f, "private-call-release", to_ue=to_ue, detail=f.reason, migration=migration, **call)

    # -- HTTP and TLS --------------------------------------------------------------------------------
    def _http(self, f: _Fact) -> None:
        if f.token is not None:
            self.emit(f, "token-request", detail=f.token.grant_type, identity=f.claims_mc_id)
        elif f.xcap is not None:
            kind = "profile-retrieval" if f.xcap.is_user_profile else "config-retrieval"
            outcome = "success" if f.status in (200, 304) else _outcome(f)
            self.emit(f, kind, identity=f.xcap.xui or f.claims_mc_id, outcome=outcome,
                      detail=f.reason or f.xcap.auid)

    def _tls(self, f: _Fact) -> None:
        kind = {"cms": "config-access-encrypted", "idms": "token-request"}.get(
            self.systems.server_kind(f.domain) or "")
        if kind:
            self.emit(f, kind, outcome="encrypted", detail=f"TLS to {f.domain}")


_HANDLERS = {
    "REGISTER": _Builder._register,
    "PUBLISH": _Builder._publish,
    "NOTIFY": _Builder._notify,
    "INVITE": _Builder._invite,
    "BYE": _Builder._bye,
    "HTTP-GET": _Builder._http,
    "HTTP-POST": _Builder._http,
    "TLS": _Builder._tls,
}


def extract_events(items: Iterable, systems: SystemMap | None = None,
                   migration_reason: re.Pattern = MIGRATION_REASON,
                   problems: list | None = None) -> tuple[list[Event], SystemMap]:
    """Decoded items (Messages and TlsHellos, capture order) → events in time order, and the systems."""
    return _Builder(systems, migration_reason).build(collect_facts(items, problems))
