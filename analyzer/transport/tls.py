"""TLS seen from outside: recognise a TLS stream and read the server name (SNI) from its ClientHello.

Nothing is decrypted. ``parse_client_hello`` is a pure function over the first bytes of the client's
stream (records, possibly several, possibly incomplete); every length is bounds-checked and anything
inconsistent raises ``TlsFormatError``, the only exception it raises. ``ClientHelloReader`` feeds it
incrementally (same interface as the framers) and turns errors into a diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.buffer import NEED_DATA, Lost, Sentinel, StreamBuffer
from analyzer.transport.records import TlsHello

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_HOST_NAME = 0
_MAX_RECORD = (1 << 14) + 2048  # RFC 8446 §5.2: TLSCiphertext fragment limit
_MAX_HELLO = 1 << 16  # far above real hellos (post-quantum key shares included)


class TlsFormatError(ValueError):
    """Bytes that claim to be a TLS ClientHello are inconsistent (lengths, types, encoding)."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What we keep of a ClientHello: the server name, and where the hello ends in the stream."""

    sni: str | None
    end: int  # stream offset just past the ClientHello's last byte


def is_tls_record(head: bytes | bytearray) -> bool:
    """True if ``head`` (>= 3 bytes) starts like a TLS record: content type 20..23, version 3.0..3.4."""
    return len(head) >= 3 and 20 <= head[0] <= 23 and head[1] == 3 and head[2] <= 4


def parse_client_hello(data: bytes | bytearray) -> ClientHello | Sentinel:
    """Read the ClientHello at the start of ``data``; ``NEED_DATA`` if it is not all there yet."""
    return HelloParser().feed(data)


class HelloParser:
    """``parse_client_hello`` resumable over a growing buffer, in time linear in the bytes.

    Complete records are read once (their handshake bytes kept); a call returns at once until the buffer
    reaches the length at which something can change (``need``): the next record header, the hello's
    first four bytes, the end of the record or of the hello. So a hello sent in one-byte records, one
    byte per segment, is not re-read from its start on every segment.
    """

    __slots__ = ("hs", "need", "pos")

    def __init__(self):
        self.hs = bytearray()  # handshake bytes gathered from the complete records before ``pos``
        self.pos = 0  # start of the next record
        self.need = 5

    def feed(self, data: bytes | bytearray) -> ClientHello | Sentinel:
        """The ClientHello once ``data`` (the same stream as before, grown) holds it all, else
        ``NEED_DATA``; raises ``TlsFormatError`` as soon as the bytes cannot be one."""
        hs = self.hs
        while len(data) >= self.need:
            pos = self.pos
            if len(data) - pos < 5:
                self.need = pos + 5
                break
            ctype, major, minor = data[pos], data[pos + 1], data[pos + 2]
            length = int.from_bytes(data[pos + 3:pos + 5], "big")
            if ctype != _HANDSHAKE:
                raise TlsFormatError(f"record type {ctype} before the ClientHello was complete")
            if major != 3 or minor > 4:
                raise TlsFormatError(f"record version {major}.{minor}")
            if not 0 < length <= _MAX_RECORD:
                raise TlsFormatError(f"record length {length}")
            start = pos + 5
            available = min(length, len(data) - start)
            before = len(hs)
            head = hs[:4] if before >= 4 else bytes(hs) + data[start:start + min(available, 4 - before)]
            hello_end = None  # where the hello ends in ``data``, once its header is known
            if len(head) >= 4:
                if head[0] != _CLIENT_HELLO:
                    raise TlsFormatError(f"first handshake message is type {head[0]}, not ClientHello")
                size = int.from_bytes(head[1:4], "big")
                if size > _MAX_HELLO:
                    raise TlsFormatError(f"ClientHello of {size} bytes")
                hello_end = start + 4 + size - before
                if hello_end <= start + available:
                    whole = bytes(hs) + data[start:hello_end]
                    return ClientHello(_server_name(whole[4:4 + size]), hello_end)
            if available == length:  # a complete record: keep its bytes, go on with the next
                hs += data[start:start + length]
                self.pos = self.need = start + length
                continue
            self.need = min(start + length, hello_end if hello_end is not None else start + 4 - before)
        return NEED_DATA


def client_hello_sni(data: bytes | bytearray) -> str | Sentinel | None:
    """The SNI host name of the ClientHello at the start of ``data`` (None without one), or NEED_DATA."""
    hello = parse_client_hello(data)
    return hello if hello is NEED_DATA else hello.sni


class _Reader:
    """Bounds-checked cursor over one ClientHello body."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def take(self, n: int, what: str) -> bytes:
        if self.end - self.pos < n:
            raise TlsFormatError(f"ClientHello truncated in {what}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int, what: str) -> int:
        return int.from_bytes(self.take(n, what), "big")

    def vector(self, len_bytes: int, what: str) -> _Reader:
        """A length-prefixed sub-range, returned as its own reader; the cursor skips past it."""
        size = self.uint(len_bytes, what)
        sub = _Reader(self.data, self.pos, self.pos + size)
        self.take(size, what)
        return sub

    @property
    def left(self) -> int:
        return self.end - self.pos


# ClientHello body before the extensions (RFC 8446 §4.1.2): (field, length-prefix size or fixed size).
_PREAMBLE = (("legacy_version", 0, 2), ("random", 0, 32), ("legacy_session_id", 1, 0),
             ("cipher_suites", 2, 0), ("legacy_compression_methods", 1, 0))


def _server_name(body: bytes) -> str | None:
    r = _Reader(body)
    for what, prefix, fixed in _PREAMBLE:
        if prefix:
            r.vector(prefix, what)
        else:
            r.take(fixed, what)
    if not r.left:
        return None  # no extensions at all (a TLS 1.0-style hello)
    extensions = r.vector(2, "extensions")
    if r.left:
        raise TlsFormatError(f"{r.left} bytes after the extensions")
    while extensions.left:
        ext_type = extensions.uint(2, "extension type")
        ext = extensions.vector(2, "extension data")
        if ext_type != _EXT_SERVER_NAME:
            continue
        names = ext.vector(2, "server_name list")
        while names.left:
            name_type = names.uint(1, "server_name type")
            name = names.vector(2, "server_name")
            if name_type == _HOST_NAME:
                raw = name.take(name.left, "host_name")
                try:
                    return raw.decode("ascii")
                except UnicodeDecodeError:
                    raise TlsFormatError("host_name is not ASCII") from None
        return None
    return None


class ClientHelloReader:
    """Incremental ClientHello reader for the client direction of a TLS connection.

    Yields one ``TlsHello`` (frame and time of the ClientHello's last byte) and then ignores the stream.
    Garbage, a gap or the end of the stream before the hello completes give ``TlsHello(sni=None)`` and a
    ``malformed-tls`` diagnostic: the flow is still known to be TLS.
    """

    __slots__ = ("_buf", "_diag", "_done", "_dst", "_last", "_parser", "_result", "_src")

    def __init__(self, diagnostics: Diagnostics, src: str, dst: str):
        self._diag = diagnostics
        self._src, self._dst = src, dst
        self._buf = StreamBuffer()
        self._parser = HelloParser()
        self._done = False
        self._result: TlsHello | None = None
        self._last: tuple[int, float] | None = None  # frame and time of the last byte received

    def receive_data(self, data: bytes, frame: int, time: float) -> None:
        if self._done:
            return  # the rest of a TLS stream is opaque: do not even buffer it
        self._last = (frame, time)
        self._buf.append(data, frame, time)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_message(self) -> TlsHello | Sentinel:
        if self._result is None and not self._done and len(self._buf):
            try:
                hello = self._parser.feed(self._buf.data)
            except TlsFormatError as exc:
                self._fail(str(exc))
            else:
                if hello is NEED_DATA:
                    if len(self._buf) > 6 * _MAX_HELLO:  # even in 1-byte records
                        self._fail("ClientHello spans more bytes than any real one")
                else:
                    frames, time = self._buf.origin(0, hello.end)
                    self._finish(TlsHello(frames[-1], time, self._src, self._dst, hello.sni))
        result, self._result = self._result, None
        return NEED_DATA if result is None else result

    def gap(self, missing: int) -> Lost | None:
        if self._done:
            return None
        lost = Lost(len(self._buf), self._buf.origin(0, len(self._buf))[0]) if len(self._buf) else None
        self._fail(f"{missing} bytes missing inside the ClientHello")
        return lost

    def close(self) -> list[TlsHello]:
        out = []
        if (m := self.next_message()) is not NEED_DATA:
            out.append(m)
        if not self._done and len(self._buf):
            self._fail("stream ended inside the ClientHello")
            out.append(self._result)
            self._result = None
        return out

    def _fail(self, why: str) -> None:
        frames = self._buf.origin(0, len(self._buf))[0] if len(self._buf) else ()
        self._diag.add("malformed-tls", f"{self._src} → {self._dst}: {why}; server name unknown", frames)
        if self._last is not None:
            self._finish(TlsHello(self._last[0], self._last[1], self._src, self._dst, None))
        else:
            self._done = True

    def _finish(self, hello: TlsHello) -> None:
        self._result = hello
        self._done = True
        self._buf.clear()
