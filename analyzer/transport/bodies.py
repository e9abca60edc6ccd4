"""How long a SIP or HTTP/1.x message on a stream is: where its header section ends, which header fields
decide the body's length and what they decide (RFC 9112 §6.3, RFC 3261 §18.3), and the chunked coding
(RFC 9112 §7.1), read as bytes arrive and rewritten as a plain message.

Apart from the framer's state machine (``framing``) because these are the protocols' rules, pure functions
of bytes; the framer only applies them to its buffer and decides what to do when they fail.
"""

from __future__ import annotations

import re

from analyzer.transport.buffer import NEED_DATA, Sentinel

#: A framing field at a line start: searched from the line end before the header section (``\n`` is a
#: literal the engine scans for, where ``^`` with re.M is tried at every position).
_FIELD = re.compile(rb"\n(content-length|l|transfer-encoding|upgrade|connection)[ \t]*:[ \t]*([^\r\n]*)",
                    re.I)
_DIGITS = re.compile(rb"[0-9]{1,15}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*+(?:;[^\r\n]*+)?\r?\n")
_LENGTH_FIELDS = re.compile(rb"^(?:transfer-encoding|content-length)[ \t]*:[^\n]*\n", re.I | re.M)

#: How a body is delimited (``body_framing``): by a length, by the chunked coding, by the connection's
#: close, or (SIP without Content-Length) not at all: taken as empty, with a diagnostic.
LENGTH, CHUNKED, UNTIL_CLOSE, NO_LENGTH = "length", "chunked", "until-close", "no-length"


class FramingError(ValueError):
    """A message's length cannot be known (contradicting fields, a broken chunked coding, a cap)."""


def blank_line_end(buf: bytearray, frm: int, end: int | None = None) -> int:
    """Index just past the first empty line after the line break at or after ``frm``, or -1."""
    end = len(buf) if end is None else end
    crlf = buf.find(b"\n\r\n", frm, end)
    lf = buf.find(b"\n\n", frm, crlf + 2 if crlf >= 0 else end)
    if lf >= 0:
        return lf + 2
    return crlf + 3 if crlf >= 0 else -1


def framing_fields(buf: bytearray, lo: int, hi: int, sip: bool
                   ) -> tuple[list[bytes], list[bytes], str | None, bool]:
    """The fields of the header section ``buf[lo:hi]`` that frame the message: the Content-Length values
    (``l`` too in SIP), the transfer codings, the lower-cased Upgrade and whether Connection says close
    (the last three HTTP only)."""
    lengths, codings = [], []
    upgrade = None
    close = False
    for name, value in _FIELD.findall(buf, lo - 1 if lo else 0, hi):  # (``lo`` follows a line end)
        name = name.lower()
        if name == b"content-length" or (name == b"l" and sip):
            if b"," in value:
                lengths.extend(v.strip() for v in value.split(b","))
            else:
                lengths.append(value.strip())
        elif sip:
            continue
        elif name == b"transfer-encoding":
            codings.extend(v.strip().lower() for v in value.split(b",") if v.strip())
        elif name == b"upgrade":
            upgrade = value.strip().decode("latin-1").lower()
        elif name == b"connection" and b"close" in value.lower():
            close = any(v.strip().lower() == b"close" for v in value.split(b","))
    return lengths, codings, upgrade, close


def body_framing(sip: bool, status: int | None, lengths: list[bytes], codings: list[bytes],
                 asked: str | None) -> tuple[str, int]:
    """How the body after a header section is delimited: ``(LENGTH, n)``, ``(CHUNKED, 0)``,
    ``(UNTIL_CLOSE, 0)`` or ``(NO_LENGTH, 0)``. ``status`` is None for a request; ``asked`` is the method of
    the request an HTTP response answers (a response to HEAD has no body). Raises ``FramingError``."""
    length = None
    if lengths:
        if (not _DIGITS.fullmatch(lengths[0]) if len(lengths) == 1
                else not all(_DIGITS.fullmatch(v) for v in lengths) or len(set(lengths)) > 1):
            shown = b", ".join(lengths).decode("latin-1")
            raise FramingError(f"invalid Content-Length {shown!r}")
        length = int(lengths[0])
    if sip:
        return (NO_LENGTH, 0) if length is None else (LENGTH, length)
    if status is None:  # HTTP request
        if not codings:
            return LENGTH, length or 0
        if codings[-1] != b"chunked":
            raise FramingError("request Transfer-Encoding does not end in chunked")
        return CHUNKED, 0
    if status < 200 or status in (204, 304) or asked == "HEAD":
        return LENGTH, 0
    if codings:  # RFC 9112 §6.3: with other codings than chunked last, the body runs until close
        return (CHUNKED, 0) if codings[-1] == b"chunked" else (UNTIL_CLOSE, 0)
    return (UNTIL_CLOSE, 0) if length is None else (LENGTH, length)


class ChunkedBody:
    """The chunked body of one message, read from the framer's buffer as bytes arrive.

    ``pos``: where the next chunk-size line starts in the buffer; ``body``: the data de-chunked so far (one
    bytearray, not a list of spans: 1-byte chunks would cost 60 bytes of list and tuple per byte).
    """

    __slots__ = ("body", "pos")

    def __init__(self, start: int):
        self.pos = start
        self.body = bytearray()

    def read(self, buf: bytearray, max_line: int, max_head: int, max_body: int
             ) -> tuple[bytes, int] | Sentinel:
        """``(trailers, end)`` once the last chunk and the trailer section are in (``end``: just past
        them), else ``NEED_DATA``. Raises ``FramingError`` on a broken coding or a line, trailer section or
        body over its cap."""
        n = len(buf)
        while True:
            pos = self.pos
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if n - pos > max_line:
                    raise FramingError(f"chunk-size line longer than {max_line} bytes "
                                       f"(--limit line_bytes={max_line} raises the cap)")
                return NEED_DATA
            m = _CHUNK_SIZE.match(buf, pos, nl + 1)
            if m is None:
                raise FramingError("bad chunk-size line")
            size = int(m.group(1), 16)
            if size == 0:
                tend = blank_line_end(buf, nl)
                if tend < 0:
                    if n - nl > max_head:
                        raise FramingError(f"trailer section longer than {max_head} bytes "
                                           f"(--limit header_bytes={max_head} raises the cap)")
                    return NEED_DATA
                return bytes(buf[nl + 1:tend]).rstrip(b"\r\n"), tend
            if len(self.body) + size > max_body:
                raise FramingError(f"chunked body over the {max_body}-byte cap (--limit "
                                   f"message_bytes={max_body} raises it)")
            d0 = nl + 1
            d1 = d0 + size
            if n < d1 + 1 or (n == d1 + 1 and buf[d1] == 0x0D):
                return NEED_DATA
            if buf[d1] == 0x0A:
                self.pos = d1 + 1
            elif buf[d1:d1 + 2] == b"\r\n":
                self.pos = d1 + 2
            else:
                raise FramingError("chunk data not followed by CRLF")
            self.body += buf[d0:d1]


def plain_message(head: bytes, body: bytes, trailers: bytes = b"") -> bytes:
    """A chunked message rewritten as a plain one: ``head`` (start line and header fields, ending in a line
    break) and ``trailers`` without their framing fields, a Content-Length, then the de-chunked ``body``.
    Both engines hand chunked HTTP messages on this way."""
    head = _LENGTH_FIELDS.sub(b"", head)
    if trailers:
        trailers = _LENGTH_FIELDS.sub(b"", trailers.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n")
    return b"%s%sContent-Length: %d\r\n\r\n%s" % (head, trailers, len(body), body)
