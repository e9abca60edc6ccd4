"""SIP and HTTP/1.x message framing on one direction of a byte stream, in the style of h11.

``MessageFramer`` does no I/O: ``receive_data`` appends stream bytes (with the frame and time that carried
them), ``next_message`` returns a ``FramedMessage`` or ``NEED_DATA``. It finds where each message ends and
nothing more; parsing header fields is the message stage's job. The framer only reads the fields that
decide the length (Content-Length / ``l``, Transfer-Encoding), Connection and Upgrade.

Recovery is by resynchronisation: after junk, a TCP gap or a message whose length cannot be known, bytes
are skipped (and counted in a diagnostic) up to the next plausible start line. Every buffer is capped, so
memory never grows with the stream. The protocols' length rules are ``bodies``; the start-line search is
``resync``; this module is the state machine that applies them to one direction's buffer.
"""

from __future__ import annotations

import re
from collections import deque

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.bodies import (
    CHUNKED,
    NO_LENGTH,
    UNTIL_CLOSE,
    ChunkedBody,
    FramingError,
    blank_line_end,
    body_framing,
    framing_fields,
    plain_message,
)
from analyzer.transport.buffer import NEED_DATA, FramingLimits, Lost, Sentinel, StreamBuffer
from analyzer.transport.records import FramedMessage
from analyzer.transport.resync import START_LINE, Resync, protocol_of

_CRLFS = re.compile(rb"[\r\n]*")

# States of a MessageFramer.
_START, _RESYNC, _BODY, _CHUNKED, _UNTIL_CLOSE, _SKIP, _DISCARD, _PAUSED, _CLOSED = range(9)
_AGAIN = Sentinel("AGAIN")  # internal: state changed, run the loop again
_DEFAULT_LIMITS = FramingLimits()


def _long_line(max_line: int) -> str:
    """Why bytes were skipped when the first line was over the cap (the reason in the junk diagnostic)."""
    return f"the first line was longer than {max_line} bytes: --limit line_bytes={max_line} raises the cap"


class MessageFramer:
    """Splits one direction of a TCP stream into SIP/HTTP messages.

    HTTP responses need the request methods (a response to HEAD has no body) and the request frames for
    ``reply_to``: the connection calls ``expect_response`` on this (the response-direction) framer for each
    request framed in the other direction. After a request carrying ``Upgrade`` or a 101 response the
    framer pauses: the connection decides what the rest of the stream is (``resume``, or ``pieces`` to hand
    the bytes to a WebSocket framer).
    """

    __slots__ = ("_buf", "_chunked", "_closed", "_diag", "_dropped", "_dropped_frames", "_junk", "_last_out",
                 "_limits", "_line", "_msg", "_name", "_nl", "_requests", "_scan", "_skip", "_state",
                 "_total", "unfinished_frames")

    def __init__(self, diagnostics: Diagnostics, name: str = "", limits: FramingLimits = _DEFAULT_LIMITS):
        self._limits = limits
        self._diag = diagnostics
        self._name = name
        self._buf = StreamBuffer()
        self._state = _START
        self._scan = 0  # where the next search for a line end may start (no rescans byte by byte)
        self._nl = -1  # end of the start line at the buffer start, once found
        self._line: re.Match | None = None  # its match, valid while _nl >= 0 (the buffer start stays put)
        self._junk = Resync()  # where to look for the next start line, and the junk skipped so far
        self._requests: deque[tuple[str, int]] | None = None  # (method, frame) awaiting a response
        self._msg: dict = {}  # the message being framed: protocol, method, status, ...
        self._total = 0  # body states: length of the whole message in the buffer
        self._chunked: ChunkedBody | None = None  # chunked: the body read so far
        self._skip = 0  # bytes of an over-long body still to skip
        self._dropped = 0  # bytes discarded after Connection: close / in _DISCARD
        self._dropped_frames: tuple[int, ...] = ()  # the first and last frame they came in
        self._closed = False
        self._last_out: int | None = None  # the frame that completed the last message framed
        #: At close: the frames that carried nothing but the start of the message the stream's end cut off
        #: (the packet accounting counts them as "with a diagnostic").
        self.unfinished_frames = 0

    # -- public API --------------------------------------------------------------------------------------

    def receive_data(self, data: bytes, frame: int, time: float) -> None:
        """Append stream bytes. Cheap in the discarding states: nothing is buffered there."""
        state = self._state
        if state == _SKIP:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip:]
            self._skip = 0
            self._state = _START
        elif state in (_DISCARD, _CLOSED):
            self._dropped += len(data)
            self._dropped_frames = (self._dropped_frames[0] if self._dropped_frames else frame, frame)
            return
        self._buf.append(data, frame, time)
        if state == _PAUSED and len(self._buf) > self._limits.max_head:
            self._state = _START  # no answer to the Upgrade came: do not buffer without bound

    def expect_response(self, method: str, frame: int) -> None:
        """A request was sent the other way: its response, in order, will come on this stream."""
        if self._requests is None:
            self._requests = deque()  # made on first use: most framers never see an HTTP request
        self._requests.append((method, frame))

    def next_message(self) -> FramedMessage | Sentinel:
        """The next complete message, or ``NEED_DATA``."""
        while True:
            state = self._state
            if state == _START:
                r = self._read_head()
            elif state == _BODY:
                r = self._read_body()
            elif state == _CHUNKED:
                r = self._read_chunks()
            elif state == _RESYNC:
                r = self._resync()
            elif state == _UNTIL_CLOSE:
                r = self._read_until_close()
            else:  # paused, skipping, discarding, closed
                return NEED_DATA
            if r is not _AGAIN:
                return r

    @property
    def buffered(self) -> int:
        """Bytes held: what the caps bound."""
        return len(self._buf) + (len(self._chunked.body) if self._chunked is not None else 0)

    @property
    def paused(self) -> bool:
        return self._state == _PAUSED

    def resume(self) -> None:
        """The upgrade did not happen: go on framing HTTP."""
        if self._state == _PAUSED:
            self._state = _START

    def pieces(self) -> list[tuple[bytes, int, float]]:
        """Hand over the unconsumed bytes (after a protocol switch) as ``(data, frame, time)``."""
        self._state = _DISCARD
        return self._buf.pieces()

    def gap(self, missing: int) -> Lost | None:
        """``missing`` bytes were never captured here. Returns what had to be thrown away, if anything."""
        state = self._state
        if state == _SKIP and missing <= self._skip:
            self._skip -= missing  # the hole lies inside a body we were skipping anyway
            return None
        if state in (_DISCARD, _CLOSED, _PAUSED):
            return None
        self._junk.report(self._diag, self._name)
        lost = None
        if len(self._buf) and state != _RESYNC:
            frames, _ = self._buf.origin(0, len(self._buf))
            lost = Lost(len(self._buf), frames)
        self._buf.clear()
        self._enter_resync("after a TCP gap", 0)
        return lost

    def close(self) -> list[FramedMessage]:
        """End of stream: returns the messages it completes (a body delimited by close), reports leftovers."""
        out = []
        while (m := self.next_message()) is not NEED_DATA:
            out.append(m)
        if self._closed:
            return out
        self._closed = True
        buf, state = self._buf, self._state
        if state == _UNTIL_CLOSE:
            out.append(self._emit(len(buf)))
        elif state == _RESYNC:
            self._junk.skip(buf, len(buf))
        elif state in (_DISCARD, _CLOSED):
            if self._dropped and state == _CLOSED:
                self._diag.add("malformed-http", f"{self._name}: {self._dropped} bytes after a message with "
                               "'Connection: close' were skipped", tuple(dict.fromkeys(self._dropped_frames)))
        elif state == _SKIP:
            self._diag.add("tcp-unfinished", f"{self._name}: stream ended {self._skip} bytes before the end "
                           f"of an over-long body")
        elif len(buf):
            frames, _ = buf.origin(0, len(buf))
            self.unfinished_frames = sum(1 for frame in frames if frame != self._last_out)
            if self._diag.wants("tcp-unfinished"):
                what = "after an Upgrade request" if state == _PAUSED else "in the middle of a message"
                self._diag.add("tcp-unfinished", f"{self._name}: stream ended {what}; {len(buf)} bytes "
                               f"not decoded", frames)
        self._junk.report(self._diag, self._name)
        buf.clear()
        return out

    # -- states ------------------------------------------------------------------------------------------

    def _read_head(self):
        buf = self._buf.data
        n = len(buf)
        if not n:
            return NEED_DATA
        if buf[0] in b"\r\n":  # SIP keep-alive (CRLFCRLF ping, CRLF pong) or empty lines before HTTP
            skip = _CRLFS.match(buf).end()
            self._buf.consume(skip)
            n -= skip
            if not n:
                return NEED_DATA
        limits = self._limits
        nl = self._nl
        if nl < 0:
            nl = buf.find(b"\n", self._scan)
            if nl < 0:
                if n > limits.max_line:
                    self._enter_resync(_long_line(limits.max_line), 1)
                    return _AGAIN
                self._scan = n
                return NEED_DATA
            self._scan = nl
            m = START_LINE.match(buf, 0, nl + 1) if nl < limits.max_line else None
            if m is None:
                self._enter_resync("" if nl < limits.max_line else _long_line(limits.max_line), 1)
                return _AGAIN
        else:  # matched when its end was found (a header section in 1-byte segments must not re-match it)
            m = self._line
        hend = blank_line_end(buf, max(nl, self._scan - 2))
        if hend < 0 or hend > limits.max_head:
            if n > limits.max_head:  # judged on the bytes, never on how they were split into segments
                self._fail(m, f"header section longer than {limits.max_head} bytes (--limit header_bytes="
                              f"{limits.max_head} raises the cap)", n)
                return _AGAIN
            self._nl, self._line = nl, m
            self._scan = n
            return NEED_DATA
        self._scan = 0
        self._nl = -1
        return self._frame_head(m, nl, hend)

    def _frame_head(self, m: re.Match, nl: int, hend: int):
        """Decide how the body is delimited, from the header section ``[nl + 1, hend)``."""
        method, _, _, _, status = m.groups()
        protocol = protocol_of(m)
        sip = protocol == "sip"
        code = None if status is None else int(status)
        lengths, codings, upgrade, close = framing_fields(self._buf.data, nl + 1, hend, sip)
        requests = self._requests if code is not None and not sip else None
        try:
            how, length = body_framing(sip, code, lengths, codings, requests[0][0] if requests else None)
        except FramingError as e:
            self._fail(m, str(e), hend)
            return _AGAIN
        msg = self._msg = {"protocol": protocol, "close": close}
        if method is not None:
            msg["method"] = method.decode("latin-1")
            if upgrade is not None:
                msg["upgrade"] = upgrade
        else:
            msg["status"] = code
            if requests:
                msg["reply_to"] = requests[0][1]
                if code >= 200 or code == 101:  # 100 and 103 are interim: more follows
                    requests.popleft()
            if code == 101 and upgrade is not None:
                msg["upgrade"] = upgrade
        if how == CHUNKED:
            return self._start_chunks(hend)
        if how == UNTIL_CLOSE:
            self._total = hend
            self._state = _UNTIL_CLOSE
            return _AGAIN
        if how == NO_LENGTH:
            frames, _ = self._buf.origin(0, hend)
            self._diag.add("sip-no-content-length", f"{self._name}: {self._describe(m)} has no "
                           f"Content-Length; body taken as empty", frames)

        total = hend + length
        if length > self._limits.max_body:
            self._diag.add(f"malformed-{msg['protocol']}",
                           f"{self._name}: {self._describe(m)} announces a {length}-byte body, over the "
                           f"{self._limits.max_body}-byte cap (--limit message_bytes={length} would take "
                           "it); skipped",
                           self._buf.origin(0, hend)[0])
            self._start_skip(total)
            return _AGAIN
        if len(self._buf) >= total:
            return self._emit(total)
        self._total = total
        self._state = _BODY
        return NEED_DATA

    def _read_body(self):
        if len(self._buf) >= self._total:
            return self._emit(self._total)
        return NEED_DATA

    def _start_chunks(self, hend: int):
        self._total = hend
        self._chunked = ChunkedBody(hend)
        self._state = _CHUNKED
        return _AGAIN

    def _read_chunks(self):
        limits = self._limits
        buf = self._buf.data
        try:
            done = self._chunked.read(buf, limits.max_line, limits.max_head, limits.max_body)
        except FramingError as e:
            frames, _ = self._buf.origin(0, self._total)
            self._diag.add("malformed-http", f"{self._name}: {e}; message discarded", frames)
            self._buf.consume(self._total)
            self._enter_resync("after a malformed chunked message", 0)
            return _AGAIN
        if done is NEED_DATA:
            return NEED_DATA
        trailers, tend = done  # the message goes on as a plain one: framing fields out, Content-Length in
        data = plain_message(bytes(buf[:self._total]).rstrip(b"\r\n") + b"\r\n", bytes(self._chunked.body),
                             trailers)
        self._chunked = None
        return self._emit(tend, data)

    def _read_until_close(self):
        limits = self._limits
        if len(self._buf) - self._total > limits.max_body:
            frames, _ = self._buf.origin(0, len(self._buf))
            self._diag.add("malformed-http", f"{self._name}: body delimited by connection close is over "
                           f"the {limits.max_body}-byte cap (--limit message_bytes={limits.max_body} raises "
                           "it); rest of the stream skipped", frames)
            self._buf.clear()
            self._state = _DISCARD
        return NEED_DATA

    def _resync(self):
        if not self._junk.search(self._buf, self._limits.max_line):
            return NEED_DATA
        self._junk.report(self._diag, self._name)
        self._state = _START
        self._scan = 0
        self._nl = -1
        return _AGAIN

    # -- helpers -----------------------------------------------------------------------------------------

    def _emit(self, total: int, data: bytes | None = None) -> FramedMessage:
        buf = self._buf
        frames, time = buf.origin(0, total)
        self._last_out = frames[-1] if frames else None
        if data is None:
            data = bytes(buf.data[:total])
        buf.consume(total)
        msg = self._msg
        self._scan = 0
        self._nl = -1
        if msg.get("upgrade") is not None:
            self._state = _PAUSED
        elif msg["close"]:
            self._state = _CLOSED
            self._dropped = len(buf)
            self._dropped_frames = ()
            if self._dropped:
                rest, _ = buf.origin(0, self._dropped)
                self._dropped_frames = (rest[0], rest[-1])
                buf.clear()
        else:
            self._state = _START
        return FramedMessage(data, frames, time, **msg)

    def _fail(self, m: re.Match, why: str, upto: int) -> None:
        """The message at the buffer start cannot be framed: report it and resync after its start line."""
        protocol = protocol_of(m)
        frames, _ = self._buf.origin(0, min(upto, len(self._buf)))
        self._diag.add(f"malformed-{protocol}", f"{self._name}: {self._describe(m)}: {why}; message "
                       f"discarded", frames)
        self._buf.consume(m.end())
        self._enter_resync("after a malformed message", 0)

    def _start_skip(self, total: int) -> None:
        have = len(self._buf)
        self._buf.consume(min(total, have))
        self._skip = max(0, total - have)
        self._state = _SKIP if self._skip else _START

    def _enter_resync(self, reason: str, pos: int) -> None:
        self._state = _RESYNC
        self._junk.start(reason, pos)
        self._scan = 0
        self._nl = -1
        self._chunked = None  # (a chunked message being framed is abandoned)

    @staticmethod
    def _describe(m: re.Match) -> str:
        line = m.group(0).rstrip(b"\r\n")
        return repr(line[:80].decode("latin-1"))
