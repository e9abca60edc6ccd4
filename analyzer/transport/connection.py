"""One TCP connection: two reassembled directions, each feeding the right framer, out come Payloads.

The first bytes decide what the connection is: a TLS record makes it TLS (the client's ClientHello gives
a ``TlsHello``, everything after is ignored without buffering), anything else is framed as SIP/HTTP.
HTTP requests tell the other direction's framer what its responses answer (HEAD has no body; ``reply_to``
pairs by order, so pipelining works). A ``101`` with ``Upgrade: websocket`` switches both directions to
WebSocket; each SIP message they carry becomes a ``Payload`` with ``framing='websocket'``.

A connection whose first bytes are neither a SIP/HTTP start line nor a TLS record is not ours: it becomes
``finished`` and not ``interesting`` at once, so the caller can stop following it, without a diagnostic.
"""

from __future__ import annotations

import re

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.buffer import NEED_DATA, FramingLimits, Lost
from analyzer.transport.framing import MessageFramer
from analyzer.transport.records import FramedMessage, Payload, TlsHello
from analyzer.transport.resync import start_line_protocol
from analyzer.transport.tcp import ACK, FIN, RST, SYN, Chunk, Gap, TcpLimits, TcpStream
from analyzer.transport.tls import ClientHelloReader, is_tls_record
from analyzer.transport.websocket import WebSocketFramer, WsMessage

_UNKNOWN, _STREAM, _TLS, _OPAQUE, _IGNORED = range(5)  # what the connection carries
_DEFLATE = re.compile(rb"^sec-websocket-extensions[ \t]*:[^\r\n]*permessage-deflate", re.I | re.M)

Handler = MessageFramer | WebSocketFramer | ClientHelloReader
_TCP_DEFAULTS, _FRAMING_DEFAULTS = TcpLimits(), FramingLimits()


class _Side:
    """One direction: its reassembler and whatever currently interprets its bytes."""

    __slots__ = ("dst", "finished", "handler", "late", "late_frames", "name", "sniff", "sniffed", "src",
                 "stream")

    def __init__(self, src: str, dst: str, diagnostics: Diagnostics, limits: TcpLimits):
        self.src, self.dst = src, dst
        self.name = f"{src} → {dst}"
        self.stream = TcpStream(diagnostics, self.name, limits)
        self.handler: Handler | None = None
        self.sniff: list[tuple[bytes, int, float]] = []  # first bytes, until there are enough to decide
        self.sniffed = 0  # their length
        self.finished = False  # FIN or RST seen: the handler has been closed
        self.late = 0  # bytes that arrived after FIN/RST
        self.late_frames: list[int] = []


class TcpConnection:
    """Turns the segments of one TCP connection (both directions, capture order) into Payloads.

    ``a`` and ``b`` are the endpoints (``ip:port``); which one is the client is worked out (``client``):
    the side that sent the SYN, else the side that sent the first request.
    """

    def __init__(self, a: str, b: str, diagnostics: Diagnostics, *, tcp_limits: TcpLimits | None = None,
                 framing_limits: FramingLimits | None = None):
        if a == b:
            raise ValueError(f"a TCP connection needs two different endpoints, got {a!r} twice")
        self._a, self._b = a, b
        self._diag = diagnostics
        self._tcp_limits = tcp_limits or _TCP_DEFAULTS
        self._framing_limits = framing_limits or _FRAMING_DEFAULTS
        self._carried = False
        self._sides: dict[str, _Side] = {}  # endpoint → its direction, made when it first sends (``_side``)
        self._mode = _UNKNOWN
        self._closed = False
        self.client: str | None = None

    def _start(self) -> None:
        """The address pair is reused by a new connection: start over; what it carried stays true."""
        self._carried = self.carried
        self._sides = {}
        self._mode = _UNKNOWN
        self._closed = False
        self.client = None

    @property
    def name(self) -> str:
        """``a ↔ b``, for messages."""
        return f"{self._a} ↔ {self._b}"

    @property
    def finished(self) -> bool:
        """No later segment can yield anything: both sides closed (FIN each, or a RST) or the flow is not
        SIP/HTTP/TLS. Everything ``close`` would return has already been returned by ``segment``."""
        return self._closed

    @property
    def interesting(self) -> bool:
        """The connection carries SIP/HTTP (framed) or TLS, as its first bytes showed."""
        return self._mode in (_STREAM, _TLS, _OPAQUE)

    @property
    def memory(self) -> int:
        """Bytes held for this connection (reassembly, framing, retransmission history): what the
        demultiplexer's ``tcp_buffered_bytes`` cap adds up."""
        total = 0
        for side in self._sides.values():
            total += side.stream.memory + side.sniffed
            if side.handler is not None:
                total += side.handler.buffered
        return total

    @property
    def unfinished_frames(self) -> int:
        """Frames that carried nothing but the start of a message the end of its stream cut off."""
        return sum(side.handler.unfinished_frames for side in self._sides.values()
                   if type(side.handler) is MessageFramer)

    def drop_history(self) -> None:
        """Memory is short: forget the retransmission histories (nothing decoded is lost)."""
        for side in self._sides.values():
            side.stream.drop_history()

    @property
    def carried(self) -> bool:
        """The connection is, or was before its address pair was reused, ``interesting``: its packets are
        signalling in the packet accounting."""
        return self._carried or self.interesting

    # -- public API --------------------------------------------------------------------------------------

    def segment(self, src: str, seq: int, flags: int, data: bytes, frame: int,
                time: float) -> list[Payload | TlsHello]:
        """One captured segment sent by ``src``; returns the messages it completes."""
        side = self._sides.get(src) or self._side(src)
        out: list[Payload | TlsHello] = []
        if flags & SYN and not flags & ACK:
            if side.stream.started and side.stream.isn != seq:
                out += self.close()  # port reuse: a new connection on the same address pair
                self._start()
                side = self._side(src)
            if self.client is None:
                self.client = src
        if self._closed:
            return out
        if self._mode >= _OPAQUE:  # nothing more to decode: only watch for the end
            if flags & FIN:
                side.finished = True
        else:
            for event in side.stream.segment(seq, flags, data, frame, time):
                self._on_event(side, event, out)
            if flags & (FIN | RST) and not side.finished:
                self._finish(side, out)
        if self._mode == _IGNORED or flags & RST or (
                len(self._sides) == 2 and all(s.finished for s in self._sides.values())):
            out += self.close()
        return out

    def _side(self, src: str) -> _Side:
        """The direction ``src`` sends, made on first use."""
        side = self._sides.get(src)
        if side is None:
            if src not in (self._a, self._b):
                raise ValueError(f"{src!r} is not an endpoint of the connection {self._a} ↔ {self._b}")
            dst = self._b if src == self._a else self._a
            side = self._sides[src] = _Side(src, dst, self._diag, self._tcp_limits)
        return side

    def close(self) -> list[Payload | TlsHello]:
        """End of the capture: release held segments, complete what the end of stream completes."""
        out: list[Payload | TlsHello] = []
        if self._closed:
            return out
        if self._mode < _OPAQUE:  # (a list: an HTTP request makes the other direction, for its answer)
            for side in list(self._sides.values()):
                for event in side.stream.close():
                    self._on_event(side, event, out)
            for side in list(self._sides.values()):
                if not side.finished and self._mode < _OPAQUE:
                    self._finish(side, out)
        for side in self._sides.values():
            if side.late:
                self._diag.add("tcp-unfinished", f"{side.name}: {side.late} bytes after FIN/RST were ignored",
                               tuple(dict.fromkeys(side.late_frames)))
        self._closed = True
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _on_event(self, side: _Side, event: Chunk | Gap, out: list) -> None:
        if side.finished:  # only bogus data can follow a FIN: count it, decode nothing
            if type(event) is Chunk:
                side.late += len(event.data)
                if not side.late_frames:
                    side.late_frames = [event.frame, event.frame]
                side.late_frames[1] = event.frame
            return
        if type(event) is Chunk:
            self._feed(side, event.data, event.frame, event.time, out)
            return
        handler = self._handler(side)
        lost = handler.gap(event.missing) if handler is not None else None
        if side.sniff:  # first bytes still waiting for a decision: they cannot be joined across the hole
            frames = tuple(dict.fromkeys(frame for _, frame, _ in side.sniff))
            lost = Lost(side.sniffed, frames)
            side.sniff, side.sniffed = [], 0
        where = f"between frames {event.before} and {event.after}" if event.before is not None \
            else f"before frame {event.after}"
        message = f"{side.name}: {event.missing} bytes not captured {where}"
        if event.cap is not None:
            message = (f"{side.name}: {event.missing} bytes missing {where} given up on, as more was held "
                       f"out of order than the cap (--limit {event.cap} raises it)")
        frames = tuple(f for f in (event.before, event.after) if f is not None)
        if lost is not None:
            message += f"; {lost.size} bytes of an unfinished message discarded (frames " \
                       f"{', '.join(map(str, lost.frames))})"
        if isinstance(handler, WebSocketFramer):
            message += "; WebSocket framing lost, rest of this direction skipped"
        self._diag.add("tcp-gap", message, frames)
        if handler is not None:
            self._drain(side, out)

    def _feed(self, side: _Side, data: bytes, frame: int, time: float, out: list) -> None:
        if self._mode == _UNKNOWN:
            side.sniff.append((data, frame, time))
            side.sniffed += len(data)
            max_line = self._framing_limits.max_line
            # Once the first bytes have been looked at, only a line end (or reaching max_line) can
            # decide: do not join and look again per segment (quadratic in max_line for 1-byte segments).
            if side.sniffed - len(data) > 8 and b"\n" not in data and side.sniffed < max_line:
                return
            sniff = side.sniff
            head = sniff[0][0] if len(sniff) == 1 else b"".join(piece for piece, _, _ in sniff)
            mode = _sniff(head, max_line)
            if mode == _UNKNOWN:
                return
            self._decide(side, mode)
            pieces, side.sniff, side.sniffed = side.sniff, [], 0
        else:
            pieces = ((data, frame, time),)
        handler = self._handler(side)
        if handler is None:
            return
        for piece in pieces:
            handler.receive_data(*piece)
        self._drain(side, out)

    def _decide(self, side: _Side, mode: int) -> None:
        """Set up the handlers for what the first bytes (sent by ``side``) showed the connection to be."""
        self._mode = mode
        if mode == _TLS:
            if self.client is None:
                self.client = side.src
            if side.sniff[0][0][0] == 22:
                side.handler = ClientHelloReader(self._diag, side.src, side.dst)
            else:
                self._diag.add("malformed-tls", f"{side.name}: TLS stream seen from the middle (record type "
                               f"{side.sniff[0][0][0]}), no ClientHello", (side.sniff[0][1],))
                self._mode = _OPAQUE
        elif mode == _STREAM:  # (the other side's framer is made when it is first needed)
            self._handler(side)
            other = self._sides.get(side.dst)
            if other is not None and other.sniff:  # its few bytes waited for this decision
                pieces, other.sniff, other.sniffed = other.sniff, [], 0
                for piece in pieces:
                    self._handler(other).receive_data(*piece)

    def _handler(self, side: _Side) -> Handler | None:
        """What interprets ``side``'s bytes; on a SIP/HTTP connection a framer is made on first use (half
        the connections of a busy capture never see the other direction send a byte)."""
        if side.handler is None and self._mode == _STREAM:
            side.handler = MessageFramer(self._diag, side.name, self._framing_limits)
        return side.handler

    def _drain(self, side: _Side, out: list) -> None:
        handler = side.handler
        while handler is side.handler and (message := handler.next_message()) is not NEED_DATA:
            if type(message) is FramedMessage:
                self._on_message(side, message, out)
            elif type(message) is WsMessage:
                self._on_websocket(side, message, out)
            else:
                out.append(message)  # the TlsHello: the rest of the connection is opaque
                self._mode = _OPAQUE

    def _on_message(self, side: _Side, m: FramedMessage, out: list) -> None:
        out.append(Payload(m.data, m.frames, m.time, side.src, side.dst, "tcp", None, m.reply_to))
        if m.method is not None and self.client is None:
            self.client = side.src
        if m.protocol != "http":
            return
        other = self._side(side.dst)
        framer = self._handler(other)
        if m.method is not None:
            if isinstance(framer, MessageFramer):
                framer.expect_response(m.method, m.frames[-1])
        elif m.status == 101:
            self._switch(side, other, m, out)
        elif m.status >= 200 and isinstance(framer, MessageFramer) and framer.paused:
            framer.resume()  # the Upgrade was refused: the client's stream is HTTP again
            self._drain(other, out)

    def _switch(self, server: _Side, client: _Side, response: FramedMessage, out: list) -> None:
        """After ``101 Switching Protocols`` both directions carry the new protocol."""
        if response.upgrade != "websocket":
            self._diag.add("unsupported-protocol", f"{server.name}: connection switched to "
                           f"{response.upgrade or 'an unnamed protocol'!r}; rest of the connection skipped",
                           response.frames)
            self._mode = _OPAQUE
            return
        deflate = bool(_DEFLATE.search(response.data))
        for s in (server, client):
            old = s.handler
            pieces = old.pieces() if isinstance(old, MessageFramer) else []
            s.handler = WebSocketFramer(self._diag, s.name, deflate=deflate,
                                        max_message=self._framing_limits.max_body)
            for piece in pieces:
                s.handler.receive_data(*piece)
        self._drain(server, out)
        self._drain(client, out)

    def _on_websocket(self, side: _Side, m: WsMessage, out: list) -> None:
        if start_line_protocol(m.data) == "sip":
            out.append(Payload(m.data, m.frames, m.time, side.src, side.dst, "tcp", "websocket"))
        elif m.data.strip(b"\r\n"):
            self._diag.add("unsupported-protocol", f"{side.name}: WebSocket message is not a SIP message "
                           f"({m.data[:20]!r}...)", m.frames)

    def _finish(self, side: _Side, out: list) -> None:
        """FIN or RST from this side: its stream is over, so a body delimited by close is complete."""
        side.finished = True
        if side.sniff and self._mode == _UNKNOWN:
            head = b"".join(piece for piece, _, _ in side.sniff)
            mode = _sniff(head, len(head))
            self._decide(side, mode if mode != _UNKNOWN else _IGNORED)
            pieces, side.sniff, side.sniffed = side.sniff, [], 0
            if side.handler is not None:
                for piece in pieces:
                    side.handler.receive_data(*piece)
        handler = side.handler
        if handler is None or self._mode >= _OPAQUE:
            return
        self._drain(side, out)
        for message in handler.close():
            if type(message) is FramedMessage:
                self._on_message(side, message, out)
            elif type(message) is WsMessage:
                self._on_websocket(side, message, out)
            else:
                out.append(message)
                self._mode = _OPAQUE


def _sniff(head: bytes, max_line: int) -> int:
    """What a connection's first bytes say it is: TLS, a SIP/HTTP stream, not ours, or not known yet.

    The whole first line is awaited (up to ``max_line`` bytes) unless the first byte already rules SIP
    and HTTP out: start lines begin with an upper-case letter (methods, ``SIP/2.0``, ``HTTP/1.x``).
    """
    if head and 20 <= head[0] <= 23:
        if len(head) < 3:
            return _UNKNOWN
        return _TLS if is_tls_record(head) else _IGNORED
    text = head.lstrip(b"\r\n")  # CRLF keep-alives may come first on a SIP connection
    if not text:
        return _UNKNOWN
    if not 0x41 <= text[0] <= 0x5A:
        return _IGNORED
    nl = text.find(b"\n")
    if nl < 0:
        return _UNKNOWN if len(head) < max_line else _IGNORED
    return _STREAM if start_line_protocol(text[:nl + 1]) else _IGNORED
