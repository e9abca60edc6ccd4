"""Pass 1 of the events stage: every exchange becomes a small ``Fact``, with no message body kept.

A SIP transaction (a 401/407 challenge and its authenticated retry together), an HTTP request/response pair
or a TLS ClientHello says, through ``analyzer.mcfacts``, what the events stage needs; the capture streams
through here once and only the facts stay in memory.

Frames: ``Fact.frames`` are the frames that completed each message (``Message.frame``, as Wireshark and
``mcxa messages`` number them); ``Fact.all_frames`` every frame that carried bytes of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from analyzer import mcfacts
from analyzer.messages.records import Message
from analyzer.transactions import Transaction, track
from analyzer.transport.records import TlsHello

#: SIP methods that never make an event on their own.
_QUIET = frozenset(("ACK", "CANCEL", "PRACK", "UPDATE", "INFO"))


@dataclass(frozen=True, slots=True)
class Fact:
    """What one exchange said, without the message bodies."""

    method: str  # SIP method, HTTP-GET/HTTP-POST/..., or TLS
    time: float
    end: float | None
    frames: tuple[int, ...]  # the completing frame of each message
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
    expires: int | None = None  # REGISTER: the binding's expiry; PUBLISH: the Expires header
    reason: str | None = None  # Reason text (BYE) or Warning text (errors)
    xcap: mcfacts.XcapTarget | None = None
    token: mcfacts.TokenRequest | None = None
    claims_mc_id: str | None = None
    challenged: bool = False
    mc_body: bool = False  # carries an MC info body (REGISTER service authorisation)
    contact: str | None = None  # Contact URI of a 3xx
    all_frames: tuple[int, ...] = ()  # every frame that carried bytes of the exchange
    has_body: bool = False  # the request carried a body (PUBLISH: an initial or modifying publication)
    if_match: str | None = None  # PUBLISH: SIP-If-Match, the entity-tag of the publication it refreshes
    etag: str | None = None  # PUBLISH: SIP-ETag of the 2xx, the publication's entity-tag from now on
    granted: int | None = None  # PUBLISH: Expires of the 2xx, the lifetime the server granted


def _uri(value: str | None) -> str | None:
    """The address of record of a From/To/Contact value: URI parameters and tags dropped."""
    parsed = mcfacts.name_addr(value) if value else None
    return parsed.uri.aor if parsed and parsed.uri else None


def _int(text: str | None) -> int | None:
    """A non-negative header number; None for anything else (hostile digits included)."""
    text = text.strip() if text else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def _header(message: Message | None, name: str) -> str | None:
    value = message.headers.get(name) if message is not None else None
    return value.strip() or None if value else None


def _status_note(final: Message | None) -> str | None:
    if final is None:
        return None
    warns = mcfacts.warnings(final)
    text = f"{final.status} {final.reason or ''}".strip()
    return f"{text} (Warning: {warns[0].code} {warns[0].text})" if warns else text


def _publication(req: Message, final: Message | None) -> dict:
    """RFC 3903 fields of a PUBLISH and its answer (only a 2xx names and times a publication)."""
    ok = final if final is not None and 200 <= (final.status or 0) < 300 else None
    return {"if_match": _header(req, "sip-if-match"), "etag": _header(ok, "sip-etag"),
            "granted": _int(_header(ok, "expires")), "expires": _int(_header(req, "expires")),
            "has_body": bool(req.body.strip())}


def _sip_fact(tx: Transaction, problems: list) -> Fact | None:
    req = tx.request
    if req is None or tx.method in _QUIET:
        return None
    method = tx.method or ""
    info = mcfacts.mc_info(req, problems)
    contact = mcfacts.contact_facts(req) if method == "REGISTER" else None  # instance, expiry
    extra: dict = {}
    if method == "REGISTER":
        extra["expires"] = contact.expires if contact and contact.expires is not None \
            else _int(req.headers.get("expires"))
    elif method == "PUBLISH":
        extra = _publication(req, tx.final)
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
    return Fact(
        method, tx.time, tx.answered, tx.frames, tx.client or req.src, tx.server or req.dst, tx.status,
        call_id=tx.call_id, domain=ruri.host if ruri else None, from_uri=_uri(req.headers.get("from")),
        to_uri=_uri(req.headers.get("to")),
        service=(info.service if info else None) or (affiliation.service if affiliation else None)
        or mcfacts.mc_service(req),
        instance=contact.instance if contact else None, client_id=info.client_id if info else None,
        mc_uri=info.request_uri if info else None, calling_user=info.calling_user_id if info else None,
        calling_group=info.calling_group_id if info else None,
        called_party=info.called_party_id if info else None,
        session_type=info.session_type if info else None,
        recipients=mcfacts.recipients(req, problems) if method == "INVITE" else (),
        affiliation=affiliation, event_package=(req.headers.get("event") or "").split(";")[0].strip().lower()
        or None, reason=reason, challenged=tx.challenge_of is not None,
        mc_body=info is not None, contact=redirect,
        claims_mc_id=info.token_claims.mc_id if info and info.token_claims else None,
        all_frames=tx.all_frames or tx.frames, **extra)


def _http_fact(request: Message, response: Message | None) -> Fact:
    target = mcfacts.xcap_target(request)
    claims = mcfacts.bearer_token_claims(request)
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower() or None
    return Fact(f"HTTP-{request.method}", request.time, response.time if response else None,
                tuple(sorted({request.frame, *((response.frame,) if response else ())})),
                request.src, request.dst, response.status if response else None, domain=host,
                service=target.service if target else None, xcap=target,
                token=mcfacts.token_request(request),
                claims_mc_id=claims.mc_id if claims else None,
                reason=_status_note(response) if response and (response.status or 0) >= 400 else None,
                all_frames=tuple(sorted({*request.frames, *(response.frames if response else ())})))


def _tls_fact(hello: TlsHello) -> Fact:
    return Fact("TLS", hello.time, None, (hello.frame,), hello.src, hello.dst, None, domain=hello.sni,
                all_frames=(hello.frame,))


def _merged(earlier: Fact, retry: Fact) -> Fact:
    """A 401/407-challenged request and its authenticated retry: one exchange, from the first request."""
    return replace(retry, time=earlier.time, frames=tuple(sorted({*earlier.frames, *retry.frames})),
                   all_frames=tuple(sorted({*earlier.all_frames, *retry.all_frames})))


def collect_facts(items: Iterable, problems: list | None = None) -> list[Fact]:
    """Pass 1 over decoded items (capture order): one fact per exchange, sorted by time."""
    problems = [] if problems is None else problems
    facts: list[Fact | None] = []
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
                fact = _merged(earlier, fact)
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
