"""Records of the transport stage: what it hands to the message parsers (``Payload``, ``TlsHello``,
``ControlPayload``), and the ``FramedMessage`` its SIP/HTTP framer hands to the TCP connection."""

from __future__ import annotations

from dataclasses import dataclass

#: What became of a packet, for the packet accounting (``analyzer.engines.FATES`` says what each means).
SIGNALLING, MEDIA, OTHER, DIAGNOSTIC = "signalling", "media", "other", "diagnostic"
ENCRYPTED = "encrypted"  # IPsec ESP not opened (no key for its SPI, not NULL-encrypted)


@dataclass(frozen=True, slots=True)
class Payload:
    """The bytes of one complete application message (SIP or HTTP) and where they came from.

    ``frames`` lists every frame that contributed bytes, in capture order; the last one completed the
    message and is the frame Wireshark shows it in. ``time`` is that frame's capture time.
    """

    data: bytes
    frames: tuple[int, ...]
    time: float
    src: str  # "ip:port", IPv6 in brackets
    dst: str
    transport: str  # udp | tcp | tls | sctp
    framing: str | None = None  # None, or "websocket" (RFC 7118)
    reply_to: int | None = None  # HTTP response: frame of the request it answers

    def __post_init__(self):
        if not self.frames:
            raise ValueError("a payload needs at least one frame")


@dataclass(frozen=True, slots=True)
class FramedMessage:
    """One complete SIP or HTTP message as it appeared on the stream.

    ``frames``: every frame that contributed bytes, in capture order, de-duplicated; ``time``: capture time
    of the frame holding the last byte. For a chunked HTTP message ``data`` is rewritten to carry the
    de-chunked body with a Content-Length (and trailer fields appended to the header section).
    """

    data: bytes
    frames: tuple[int, ...]
    time: float
    protocol: str  # "sip" | "http"
    method: str | None = None  # requests
    status: int | None = None  # responses
    reply_to: int | None = None  # HTTP response: last frame of the request it answers
    upgrade: str | None = None  # HTTP: lower-cased Upgrade value (request, or 101 response)
    close: bool = False  # HTTP: Connection: close

    def __post_init__(self):
        if not self.frames:
            raise ValueError("a framed message needs at least one frame")



@dataclass(frozen=True, slots=True)
class TlsHello:
    """A TLS ClientHello: the flow is encrypted; the SNI names the server the client wanted."""

    frame: int
    time: float
    src: str
    dst: str
    sni: str | None


@dataclass(frozen=True, slots=True)
class ControlPayload:
    """A UDP payload between media ports that starts with an MC media-plane control packet
    (``analyzer.transport.rtcp``): ``analyzer.messages.floor`` decodes it."""

    data: bytes
    frames: tuple[int, ...]
    time: float
    src: str
    dst: str


def endpoint(ip: str, port: int) -> str:
    """Format an address as the contract wants it: ``ip:port``, IPv6 in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def endpoint_parts(text: str) -> tuple[str, str]:
    """``endpoint``'s inverse: the address (no brackets) and the port text of ``ip:port``."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), port
