"""RFC 6455 WebSocket framing on one direction of a stream, for SIP over WebSocket (RFC 7118).

``WebSocketFramer`` works like ``MessageFramer``: bytes in with their frame and time, complete data
messages out (``WsMessage`` or ``NEED_DATA``). Masking is undone, continuation frames are joined and
control frames (ping, pong, close) are skipped; ``permessage-deflate`` (RFC 7692) is inflated when the
handshake negotiated it. A frame that cannot be decoded leaves no way to find the next frame boundary,
so the rest of the direction is skipped after one diagnostic.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT
from analyzer.transport.buffer import NEED_DATA, Lost, Sentinel, StreamBuffer

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA_OPCODES = (_TEXT, _BINARY)
_CONTROL_OPCODES = (_CLOSE, _PING, _PONG)
_DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: appended before inflating each message


@dataclass(frozen=True, slots=True)
class WsMessage:
    """One complete text or binary WebSocket message (payload unmasked, joined and inflated)."""

    data: bytes
    frames: tuple[int, ...]  # capture frames that carried any byte of its WebSocket frames
    time: float  # capture time of the frame holding its last byte
    text: bool


def unmask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """XOR with the 4-byte masking key, as one big-integer operation instead of a per-byte loop."""
    n = len(payload)
    if not n:
        return b""
    stream = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


class WebSocketFramer:
    """Decodes the WebSocket frames of one direction into data messages."""

    __slots__ = (
        "_after_close",
        "_after_frames",
        "_broken",
        "_buf",
        "_closed",
        "_compressed",
        "_data",
        "_diag",
        "_ended",
        "_inflater",
        "_max",
        "_name",
        "_opcode",
        "_pos",
        "_size",
    )

    def __init__(self, diagnostics: Diagnostics, name: str = "", *, deflate: bool = False,
                 max_message: int = DEFAULT.message_bytes):
        self._diag = diagnostics
        self._name = name
        self._max = max_message
        self._buf = StreamBuffer()
        self._pos = 0  # start of the next undecoded frame in the buffer
        # payloads of the message being assembled, joined as they come (a list of them would cost 40
        # bytes per 1-byte frame)
        self._data = bytearray()
        self._size = 0
        self._opcode: int | None = None  # opcode of the message being assembled, None between messages
        self._compressed = False
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflate else None
        self._broken = False  # framing lost: skip everything
        self._closed = False  # a Close frame was seen
        self._after_close = 0
        self._after_frames: list[int] = []
        self._ended = False

    def receive_data(self, data: bytes, frame: int, time: float) -> None:
        if self._broken:
            return
        if self._closed:
            self._after_close += len(data)
            self._after_frames.append(frame)
            del self._after_frames[1:-1]
            return
        self._buf.append(data, frame, time)

    @property
    def buffered(self) -> int:
        """Bytes held: the undecoded stream and the parts of the message being assembled."""
        return len(self._buf) + self._size

    def next_message(self) -> WsMessage | Sentinel:
        """The next complete data message, or ``NEED_DATA``."""
        while not (self._broken or self._closed):
            buf = self._buf.data
            n = len(buf)
            pos = self._pos
            if n - pos < 2:
                return NEED_DATA
            b0, b1 = buf[pos], buf[pos + 1]
            opcode, length, head = b0 & 0x0F, b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    return NEED_DATA
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    return NEED_DATA
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            masked = b1 & 0x80
            if masked:
                head += 4
            problem = self._check(b0, opcode, length)
            if problem:
                self._break(problem, pos)
                return NEED_DATA
            end = pos + head + length
            if n < end:
                return NEED_DATA
            payload = buf[pos + head:end]
            if masked:
                payload = unmask(payload, buf[pos + head - 4:pos + head])
            self._pos = end
            if opcode in _CONTROL_OPCODES:
                if opcode == _CLOSE:
                    self._closed = True
                    if n > end:
                        frames = self._buf.origin(end, n)[0]
                        self._after_close = n - end
                        self._after_frames = [frames[0], frames[-1]]
                    self._buf.clear()
                    self._pos = 0
                elif self._opcode is None:
                    self._consume()
                continue
            if opcode == _CONTINUATION:
                if self._opcode is None:
                    self._drop("continuation frame without a message to continue", end)
                    continue
            else:
                if self._opcode is not None:
                    self._drop("new message started before the previous one ended", pos)
                    end -= pos  # the buffer now starts with this frame
                self._opcode = opcode
                self._compressed = bool(b0 & 0x40)
            self._data += payload
            self._size += length
            if self._size > self._max:
                self._drop(f"message over the {self._max}-byte cap (--limit message_bytes={self._max} raises "
                           "it)", end)
                continue
            if b0 & 0x80:
                message = self._finish(end)
                if message is not None:
                    return message
        return NEED_DATA

    def gap(self, missing: int) -> Lost | None:
        """Bytes are missing: frame boundaries are lost for good, so the rest of this direction is skipped."""
        if self._broken or self._closed:
            return None
        lost = None
        if len(self._buf):
            frames, _ = self._buf.origin(0, len(self._buf))
            lost = Lost(len(self._buf), frames)
        self._buf.clear()
        self._broken = True
        return lost

    def close(self) -> list[WsMessage]:
        out = []
        while (m := self.next_message()) is not NEED_DATA:
            out.append(m)
        if self._ended:
            return out
        self._ended = True
        if self._after_close:
            self._diag.add("malformed-websocket", f"{self._name}: {self._after_close} bytes after a Close "
                           f"frame were skipped", tuple(dict.fromkeys(self._after_frames)))
        elif len(self._buf) and not self._broken:
            frames, _ = self._buf.origin(0, len(self._buf))
            self._diag.add("tcp-unfinished", f"{self._name}: stream ended inside a WebSocket message; "
                           f"{len(self._buf)} bytes not decoded", frames)
        self._buf.clear()
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _check(self, b0: int, opcode: int, length: int) -> str | None:
        """Why a frame header is unacceptable (RFC 6455 §5.2, §5.5), or None."""
        if opcode in _CONTROL_OPCODES:
            if not b0 & 0x80 or length > 125:
                return "fragmented or over-long control frame"
            if b0 & 0x70:
                return "reserved bits set on a control frame"
            return None
        if opcode not in _DATA_OPCODES and opcode != _CONTINUATION:
            return f"reserved opcode {opcode:#x}"
        rsv = b0 & 0x70
        if rsv and not (rsv == 0x40 and self._inflater is not None and opcode != _CONTINUATION):
            return f"reserved bits {rsv >> 4:#x} set without a negotiated extension"
        if length >> 63:
            return "payload length has its top bit set"
        if length > self._max:
            return (f"frame of {length} bytes is over the {self._max}-byte cap "
                    f"(--limit message_bytes={length})")
        return None

    def _finish(self, end: int) -> WsMessage | None:
        data = bytes(self._data)
        text = self._opcode == _TEXT
        frames, time = self._buf.origin(0, end)
        if self._compressed:
            try:
                data = self._inflate(data)
            except (zlib.error, ValueError) as exc:
                self._drop(f"permessage-deflate payload does not inflate ({exc})", end)
                return None
        self._reset()
        self._consume()
        return WsMessage(data, frames, time, text)

    def _inflate(self, data: bytes) -> bytes:
        inflater = self._inflater
        out = inflater.decompress(data + _DEFLATE_TAIL, self._max)
        if inflater.unconsumed_tail:
            raise ValueError(f"inflates to more than {self._max} bytes")
        return out

    def _consume(self) -> None:
        self._buf.consume(self._pos)
        self._pos = 0

    def _reset(self) -> None:
        self._data = bytearray()
        self._size = 0
        self._opcode = None
        self._compressed = False

    def _drop(self, why: str, upto: int) -> None:
        """The message being assembled is unusable, but frame boundaries still hold: report and go on."""
        frames, _ = self._buf.origin(0, max(upto, 1))
        self._diag.add("malformed-websocket", f"{self._name}: {why}; message discarded", frames)
        self._reset()
        self._buf.consume(upto)
        self._pos -= upto

    def _break(self, why: str, pos: int) -> None:
        frames, _ = self._buf.origin(pos, len(self._buf))
        self._diag.add("malformed-websocket", f"{self._name}: {why}; rest of the direction skipped", frames)
        self._buf.clear()
        self._pos = 0
        self._reset()
        self._broken = True
