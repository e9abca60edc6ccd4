"""SIP messages and MC bodies as an MCPTT/MCVideo client and MC systems write them (REFERENCE.md §2–3).

``SipMessage`` is a start line, ordered header fields and a body; ``bytes()`` adds an exact
``Content-Length``. ``response`` copies Via/From/To/Call-ID/CSeq from the request, as every UAS does. The
body builders write the documented shapes: mcptt-info (``contentType`` wrappers), poc-settings, pidf with
the affiliation extension, resource-lists with ``recipient-list`` disposition, and SDP with the floor
control ``m=application <port> udp MCPTT`` line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

CRLF = "\r\n"
ALLOW = "INVITE,ACK,CANCEL,BYE,UPDATE,REFER,NOTIFY,MESSAGE,OPTIONS,INFO,PUBLISH,SUBSCRIBE"


@dataclass(frozen=True, slots=True)
class Service:
    """Names one MC service puts on the wire (REFERENCE.md §2.1)."""

    name: str  # mcptt | mcvideo
    icsi: str
    info_type: str
    info_ns: str
    pres_ns: str
    profile_auid: str
    profile_type: str
    media: str  # the SDP media line of the call: audio | video
    floor: str  # the floor / transmission control format name in m=application

    @property
    def feature_tag(self) -> str:
        return f"+g.3gpp.{self.name}"

    @property
    def icsi_param(self) -> str:
        """The ICSI as a Contact / Accept-Contact feature parameter (percent-encoded, quoted)."""
        return f'+g.3gpp.icsi-ref="{self.icsi.replace(":", "%3A")}"'

    @property
    def contact_params(self) -> str:
        return f";{self.icsi_param};{self.feature_tag}"

    @property
    def accept_contact(self) -> list[tuple[str, str]]:
        return [("Accept-Contact", f"*;{self.feature_tag};require;explicit"),
                ("Accept-Contact", f"*;{self.icsi_param};require;explicit")]

    @property
    def pres_prefix(self) -> str:
        return f"{self.name}PI10"


SERVICES: dict[str, Service] = {
    "mcptt": Service("mcptt", "urn:urn-7:3gpp-service.ims.icsi.mcptt", "application/vnd.3gpp.mcptt-info+xml",
                     "urn:3gpp:ns:mcpttInfo:1.0", "urn:3gpp:ns:mcpttPresInfo:1.0",
                     "org.3gpp.mcptt.user-profile", "application/vnd.3gpp.mcptt-user-profile+xml",
                     "audio", "MCPTT"),
    "mcvideo": Service("mcvideo", "urn:urn-7:3gpp-service.ims.icsi.mcvideo",
                       "application/vnd.3gpp.mcvideo-info+xml", "urn:3gpp:ns:mcvideoInfo:1.0",
                       "urn:3gpp:ns:mcvideoPresInfo:1.0", "org.3gpp.mcvideo.user-profile",
                       "application/vnd.3gpp.mcvideo-user-profile+xml", "video", "MCVideo"),
}

#: Reason phrases (RFC 3261 §21 and extensions); other codes get their class's phrase.
REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK", 202: "Accepted",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    412: "Conditional Request Failed", 420: "Bad Extension", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
_CLASS_REASONS = {1: "Progress", 2: "OK", 3: "Redirection", 4: "Client Error", 5: "Server Error",
                  6: "Global Failure"}


def reason_phrase(status: int) -> str:
    return REASONS.get(status, _CLASS_REASONS.get(status // 100, "Unknown"))


Headers = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SipMessage:
    """One SIP message: ``start`` line, header fields in order (no Content-Length), body bytes."""

    start: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self) -> str | None:
        return self.start.split(" ", 1)[0] if self.is_request else None

    @property
    def uri(self) -> str | None:
        return self.start.split(" ")[1] if self.is_request else None

    @property
    def status(self) -> int | None:
        return None if self.is_request else int(self.start.split(" ")[1])

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    def getall(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    def __bytes__(self) -> bytes:
        lines = [self.start, *(f"{n}: {v}" for n, v in self.headers), f"Content-Length: {len(self.body)}"]
        return (CRLF.join(lines) + CRLF + CRLF).encode() + self.body


def request(method: str, uri: str, headers: Headers, body: bytes = b"",
            content_type: str | None = None) -> SipMessage:
    items = list(headers)
    if body:
        items.append(("Content-Type", content_type or "application/sdp"))
    return SipMessage(f"{method} {uri} SIP/2.0", tuple(items), body)


def response(req: SipMessage, status: int, *, to_tag: str | None = None, headers: Headers = (),
             body: bytes = b"", content_type: str | None = None,
             via: Iterable[str] | None = None) -> SipMessage:
    """A response to ``req``: its Vias (or ``via``), From, To (+ ``to_tag`` unless it has one), Call-ID
    and CSeq, then ``headers``."""
    to = req.get("To") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    items = [("Via", v) for v in (req.getall("Via") if via is None else via)]
    items += [("From", req.get("From") or ""), ("To", to), ("Call-ID", req.call_id),
              ("CSeq", req.get("CSeq") or "")]
    items += headers
    if body:
        items.append(("Content-Type", content_type or "application/sdp"))
    return SipMessage(f"SIP/2.0 {status} {reason_phrase(status)}", tuple(items), body)


def tag_of(value: str) -> str | None:
    """The ``tag`` parameter of a From/To value."""
    _, sep, rest = value.partition(";tag=")
    return rest.split(";", 1)[0] if sep else None


# -- bodies -----------------------------------------------------------------------------------------------

XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'


def multipart(parts: Iterable[tuple[Headers, bytes]], boundary: str) -> tuple[str, bytes]:
    """``multipart/mixed`` of ``(part headers, part body)``; returns (Content-Type value, body)."""
    out = []
    for headers, body in parts:
        head = CRLF.join(f"{n}: {v}" for n, v in headers)
        out.append(f"--{boundary}{CRLF}{head}{CRLF}{CRLF}".encode() + body + CRLF.encode())
    out.append(f"--{boundary}--{CRLF}".encode())
    return f"multipart/mixed;boundary={boundary}", b"".join(out)


def _xml(lines: Iterable[str]) -> bytes:
    return (CRLF.join([XML_DECL, *lines]) + CRLF).encode()


def info_xml(service: Service, params: Iterable[tuple[str, str, str]]) -> bytes:
    """mcptt-info (or mcvideo-info). ``params``: (element, kind, value); kind ``uri`` / ``string`` /
    ``boolean`` wraps the value in ``<mcpttURI>`` / ``<mcpttString>`` / ``<mcpttBoolean>``
    (``type="Normal"``), ``plain`` writes it as text.
    Element names containing ``{s}`` get the service name (``{s}-request-uri``)."""
    s = service.name
    lines = [f'<{s}info xmlns="{service.info_ns}">', f"<{s}-Params>"]
    for element, kind, value in params:
        element = element.format(s=s)
        if kind == "plain":
            lines.append(f"<{element}>{escape(value)}</{element}>")
        else:
            wrap = f"{s}" + {"uri": "URI", "boolean": "Boolean"}.get(kind, "String")
            lines.append(f'<{element} type="Normal"><{wrap}>{escape(value)}</{wrap}></{element}>')
    lines += [f"</{s}-Params>", f"</{s}info>"]
    return _xml(lines)


def poc_settings_xml(client_id: str, profile_index: int = 1) -> bytes:
    return _xml([
        '<poc-settings xmlns="urn:oma:params:xml:ns:poc:poc-settings" '
        'xmlns:mcs10Set="urn:3gpp:mcsSettings:1.0">',
        f"<entity id={quoteattr(client_id)}>",
        "<am-settings><answer-mode>automatic</answer-mode></am-settings>",
        f"<mcs10Set:selected-user-profile-index><mcs10Set:user-profile-index>{profile_index}"
        "</mcs10Set:user-profile-index></mcs10Set:selected-user-profile-index>",
        "</entity>", "</poc-settings>"])


def pidf_affiliation(service: Service, entity: str, client_id: str, groups: Iterable[str],
                     p_id: str) -> bytes:
    """The affiliation PUBLISH body: one ``affiliation`` element per group the client wants (full set)."""
    px = service.pres_prefix
    lines = [f'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:{px}="{service.pres_ns}" '
             f"entity={quoteattr(entity)}>", f"<tuple id={quoteattr(client_id)}>", "<status>"]
    lines += [f"<{px}:affiliation group={quoteattr(g)}/>" for g in groups]
    lines += ["</status>", "</tuple>", f"<{px}:p-id>{escape(p_id)}</{px}:p-id>", "</presence>"]
    return _xml(lines)


def pidf_status(service: Service, entity: str, client_id: str,
                entries: Iterable[tuple[str, str, str]], p_id: str | None = None) -> bytes:
    """The affiliation status NOTIFY body: ``entries`` of (group, status, expires dateTime)."""
    px = service.pres_prefix
    lines = [f'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:{px}="{service.pres_ns}" '
             f"entity={quoteattr(entity)}>", f"<tuple id={quoteattr(client_id)}>", "<status>"]
    lines += [f"<{px}:affiliation group={quoteattr(g)} client={quoteattr(client_id)} status={quoteattr(st)} "
              f"expires={quoteattr(exp)}/>" for g, st, exp in entries]
    lines += ["</status>", "</tuple>"]
    if p_id:
        lines.append(f"<{px}:p-id>{escape(p_id)}</{px}:p-id>")
    lines.append("</presence>")
    return _xml(lines)


def resource_lists_xml(uris: Iterable[str]) -> bytes:
    lines = ['<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" '
             'xmlns:cc="urn:ietf:params:xml:ns:copycontrol">', "<list>"]
    lines += [f'<entry uri={quoteattr(u)} cc:copyControl="to"/>' for u in uris]
    lines += ["</list>", "</resource-lists>"]
    return _xml(lines)


def sdp(service: Service, address: str, session_id: int, media_port: int, floor_port: int, *,
        offer: bool, priority: int = 7, origin: str = "-") -> bytes:
    """An SDP offer (AMR-WB and G.711, or H.264 for video) or answer (G.711 / H.264) with floor control."""
    ipv = "IP6" if ":" in address else "IP4"
    lines = ["v=0", f"o={origin} {session_id} {session_id} IN {ipv} {address}", "s=-",
             f"c=IN {ipv} {address}", "t=0 0"]
    if service.media == "audio":
        if offer:
            lines += [f"m=audio {media_port} RTP/AVP 96 0", "a=rtpmap:96 AMR-WB/16000/1",
                      "a=fmtp:96 mode-change-capability=2;max-red=0", "a=rtpmap:0 PCMU/8000"]
        else:
            lines += [f"m=audio {media_port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
        lines += ["a=ptime:20", "a=sendrecv"]
    else:
        lines += [f"m=video {media_port} RTP/AVP 97", "a=rtpmap:97 H264/90000",
                  "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1", "a=sendrecv"]
    fmtp = f"mc_queueing;mc_priority={priority};mc_granted" + (";mc_implicit_request" if offer else "")
    lines += [f"m=application {floor_port} udp {service.floor}", f"a=fmtp:{service.floor} {fmtp}"]
    return (CRLF.join(lines) + CRLF).encode()
