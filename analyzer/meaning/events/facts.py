"""What one exchange says: a small ``Fact``, with no message body kept (pass 1, ``collect``, makes them).

A SIP transaction (a 401/407 challenge and its authenticated retry together), an HTTP request/response pair
or a TLS ClientHello says, through ``analyzer.meaning.mcfacts``, what the events stage needs.

Frames: ``Fact.frames`` are the frames that completed each message (``Message.frame``, as Wireshark and
``mcxa messages`` number them); ``Fact.all_frames`` every frame that carried bytes of them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace

from analyzer.meaning import mcfacts
from analyzer.meaning.mcfacts.common import content_types
from analyzer.meaning.transactions import Transaction
from analyzer.messages.records import Headers, Message
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
    impi: str | None = None  # REGISTER: the private identity it authenticates with (Authorization username)
    emergency: bool = False  # MC info: an emergency or imminent-peril call (implicit affiliation, cl. 9)
    sdp: bool = False  # the request offers media (a pre-established session's INVITE does)
    refer_target: str | None = None  # REFER: the Refer-To URI's address of record (the group or the user)
    refer_method: str | None = None  # REFER: the Refer-To's method= (BYE: release the call)
    target_dialog: str | None = None  # REFER: the Call-ID its Target-Dialog names (the session it is about)
    offer_media: tuple[str, ...] = ()  # INVITE: the ip:ports its SDP offers (RTP, RTCP, floor control)
    answer_media: tuple[str, ...] = ()  # INVITE: those the SDP of its 2xx answers


def _uri(value: str | None) -> str | None:
    """The address of record of a From/To/Contact value: URI parameters and tags dropped."""
    parsed = mcfacts.name_addr(value) if value else None
    return parsed.uri.aor if parsed and parsed.uri else None


#: The ``username`` of an Authorization header: the IMPI of a REGISTER (TS 24.229 §5.1.1.2). Bounded.
_USERNAME = re.compile(r'(?:^|[\s,])username\s*=\s*"([^"]{1,256})"', re.I)


def _impi(req: Message) -> str | None:
    for value in req.headers.getall("authorization") + req.headers.getall("proxy-authorization"):
        found = _USERNAME.search(value)
        if found:
            return found.group(1)
    return None


def _int(text: str | None) -> int | None:
    """A non-negative header number; None for anything else (hostile digits included)."""
    text = text.strip() if text else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def _header(message: Message | None, name: str) -> str | None:
    value = message.headers.get(name) if message is not None else None
    return value.strip() or None if value else None


def uri_host(uri: str | None) -> str | None:
    parsed = mcfacts.uri_parts(uri) if uri else None
    return parsed.host if parsed else None


def sent_to_ue(fact: Fact) -> bool:
    """Requests the network sends to the UE: NOTIFY, and INVITEs naming who calls (group or user)."""
    if fact.method == "NOTIFY":
        return True
    return fact.method == "INVITE" and bool(fact.calling_group or fact.calling_user)


def observations(fact: Fact) -> tuple[tuple[str | None, str | None], ...]:
    """The (domain, server address) pairs an exchange shows, which MC systems are inferred from."""
    if sent_to_ue(fact):  # the server is the sender; the caller's domain is its system's too
        return (fact.domain, fact.client), (uri_host(fact.from_uri), fact.client)
    return ((fact.domain, fact.server),)


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


def _types(req: Message) -> list[str]:
    """The media types of a request's body (a multipart's parts too), lower case."""
    return [t.strip().lower() for t in content_types(req)]


def _with_reason(req: Message, text: str | None) -> Message:
    """``req`` with ``text`` as its Reason header, so a Reason from a Refer-To URI header is read alike."""
    return replace(req, headers=Headers([("reason", text)] if text else []))


def sip_fact(tx: Transaction, problems: list) -> Fact | None:
    req = tx.request
    if req is None or tx.method in _QUIET:
        return None
    method = tx.method or ""
    refer = mcfacts.refer_to(req) if method == "REFER" else None
    if method == "REFER":
        info, listed = mcfacts.referred(req, refer, problems)
    else:
        info = mcfacts.mc_info(req, problems)
        listed = mcfacts.recipients(req, problems) if method == "INVITE" else ()
    contact = mcfacts.contact_facts(req) if method == "REGISTER" else None  # instance, expiry
    extra: dict = {}
    if method == "REGISTER":
        extra["expires"] = contact.expires if contact and contact.expires is not None \
            else _int(req.headers.get("expires"))
        extra["impi"] = _impi(req)
    elif method == "PUBLISH":
        extra = _publication(req, tx.final)
    elif method == "INVITE":  # where its media flows: floor control is tied to the call by these
        ok = tx.final is not None and 200 <= (tx.final.status or 0) < 300
        extra = {"offer_media": mcfacts.media_endpoints(req, problems),
                 "answer_media": mcfacts.media_endpoints(tx.final, problems) if ok else ()}
    elif method == "REFER":
        dialog = mcfacts.target_dialog(req)
        extra = {"refer_target": refer.uri.aor if refer and refer.uri else None,
                 "refer_method": refer.method if refer else None,
                 "target_dialog": dialog.call_id if dialog else None}
    reason = None
    if method == "BYE" or (refer is not None and refer.method == "BYE"):
        r = mcfacts.reason(req)
        reason = r.text if r and r.text else (req.headers.get("reason") or None)
        if reason is None and refer is not None:  # a Reason carried as a URI header of the Refer-To
            r = mcfacts.reason(_with_reason(req, refer.header("reason")))
            reason = r.text if r and r.text else refer.header("reason")
    elif tx.final is not None and (tx.final.status or 0) >= 300:
        reason = _status_note(tx.final)
    affiliation = mcfacts.affiliation_set(req, problems) if method in ("PUBLISH", "NOTIFY", "MESSAGE") \
        else None
    redirect = None
    if tx.final is not None and 300 <= (tx.final.status or 0) < 400:
        redirect = _uri(tx.final.headers.get("contact"))
    ruri = mcfacts.uri_parts(req.uri or "")
    frames = tx.frames
    all_frames = _same(frames, tx.all_frames or frames)
    return Fact(
        _shared(method), tx.time, tx.answered, frames, _shared(tx.client or req.src),
        _shared(tx.server or req.dst), tx.status, call_id=_shared(tx.call_id),
        domain=_shared(ruri.host) if ruri else None, from_uri=_shared(_uri(req.headers.get("from"))),
        to_uri=_shared(_uri(req.headers.get("to"))),
        service=_shared((info.service if info else None) or (affiliation.service if affiliation else None)
                        or mcfacts.mc_service(req)),
        instance=contact.instance if contact else None, client_id=info.client_id if info else None,
        mc_uri=info.request_uri if info else None, calling_user=info.calling_user_id if info else None,
        calling_group=info.calling_group_id if info else None,
        called_party=info.called_party_id if info else None,
        session_type=info.session_type if info else None,
        recipients=listed, emergency=bool(info and (info.emergency or info.imminent_peril)),
        sdp=any(t.startswith("application/sdp") for t in _types(req)) if method == "INVITE" else False,
        affiliation=affiliation,
        event_package=_shared((req.headers.get("event") or "").split(";")[0].strip().lower() or None),
        reason=reason, challenged=tx.challenge_of is not None,
        mc_body=info is not None, contact=redirect,
        claims_mc_id=info.token_claims.mc_id if info and info.token_claims else None,
        all_frames=all_frames, **extra)


#: The fields whose values many facts (and the events made of them) repeat: a UE's addresses and URIs,
#: methods, a call's Call-ID. One string object for each value: they were a third of the facts' memory.
SHARED_FIELDS = ("method", "client", "server", "call_id", "domain", "from_uri", "to_uri", "service",
                 "event_package")


def _shared(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def http_fact(request: Message, response: Message | None) -> Fact:
    target = mcfacts.xcap_target(request)
    claims = mcfacts.bearer_token_claims(request)
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower() or None
    frames = tuple(sorted({request.frame, *((response.frame,) if response else ())}))
    carried = tuple(sorted({*request.frames, *(response.frames if response else ())}))
    return Fact(f"HTTP-{request.method}", request.time, response.time if response else None, frames,
                request.src, request.dst, response.status if response else None, domain=host,
                service=target.service if target else None, xcap=target,
                token=mcfacts.token_request(request),
                claims_mc_id=claims.mc_id if claims else None,
                reason=_status_note(response) if response and (response.status or 0) >= 400 else None,
                all_frames=_same(frames, carried))


def tls_fact(hello: TlsHello) -> Fact:
    frames = (hello.frame,)
    return Fact("TLS", hello.time, None, frames, hello.src, hello.dst, None, domain=hello.sni,
                all_frames=frames)


def challenge_and_retry(earlier: Fact, retry: Fact) -> Fact:
    """A 401/407-challenged request and its authenticated retry: one exchange, from the first request."""
    frames = tuple(sorted({*earlier.frames, *retry.frames}))
    return replace(retry, time=earlier.time, frames=frames,
                   all_frames=_same(frames, tuple(sorted({*earlier.all_frames, *retry.all_frames}))))


def _same(frames: tuple[int, ...], all_frames: tuple[int, ...]) -> tuple[int, ...]:
    """``all_frames``, as the very tuple ``frames`` when equal (as for most messages, one frame each): half
    the frame lists facts and events hold (pickle keeps them one object in the fact store)."""
    return frames if all_frames == frames else all_frames


def fact_order(f: Fact) -> tuple:
    """Facts in time order, then by frames: a total order, so facts collected apart (``shard``) merge
    into the order one collector gives."""
    return f.time, f.frames, f.method, f.call_id or ""
