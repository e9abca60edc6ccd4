"""SIP and HTTP/1.x message framing on one direction of a byte stream, in the style of h11.

``MessageFramer`` does no I/O: ``receive_data`` appends stream bytes (with the frame and time that carried
them), ``next_message`` returns a ``FramedMessage`` or ``NEED_DATA``. It finds where each message ends and
nothing more; parsing header fields is the message stage's job. The framer only reads the fields that
decide the length (Content-Length / ``l``, Transfer-Encoding), Connection and Upgrade.

Recovery is by resynchronisation: after junk, a TCP gap or a message whose length cannot be known, bytes
are skipped (and counted in a diagnostic) up to the next plausible start line. Every buffer is capped, so
memory never grows with the stream.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT, Limits


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Returned by ``next_message`` (and the other incremental parsers) when more bytes are needed.
NEED_DATA = _Sentinel("NEED_DATA")


@dataclass(frozen=True, slots=True)
class FramingLimits:
    """Caps that keep one direction's memory bounded; exceeding one is a diagnostic and a resync. The
    numbers are ``Limits``'."""

    max_line: int = DEFAULT.line_bytes  # start line, chunk-size line
    max_head: int = DEFAULT.header_bytes  # start line + header section (and chunked trailers)
    max_body: int = DEFAULT.message_bytes

    @classmethod
    def of(cls, limits: Limits) -> FramingLimits:
        return cls(limits.line_bytes, limits.header_bytes, limits.message_bytes)


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
class Lost:
    """What a framer threw away because the stream broke (a gap): bytes and the frames they came from."""

    size: int
    frames: tuple[int, ...]


class StreamBuffer:
    """Bytes received but not yet consumed, remembering which frame brought each byte.

    ``marks`` holds ``(end, frame, time)`` per received piece, ``end`` being an absolute stream offset,
    from index ``head`` on (a list trimmed by moving its head: one framer per TCP direction, and an empty
    deque costs 600 bytes); ``base`` is the absolute offset of ``data[0]``. Deleting from the front of a
    ``bytearray`` is amortised O(1) in CPython, so consuming messages one by one stays linear.
    """

    __slots__ = ("base", "data", "head", "marks")

    def __init__(self):
        self.data = bytearray()
        self.base = 0
        self.marks: list[tuple[int, int, float]] = []
        self.head = 0

    def __len__(self) -> int:
        return len(self.data)

    def append(self, data: bytes, frame: int, time: float) -> None:
        self.data += data
        end = self.base + len(self.data)
        marks = self.marks
        if len(marks) > self.head and marks[-1][1] == frame:
            marks[-1] = (end, frame, time)
        else:
            marks.append((end, frame, time))

    def consume(self, n: int) -> None:
        del self.data[:n]
        self.base += n
        marks, head = self.marks, self.head
        while head < len(marks) and marks[head][0] <= self.base:
            head += 1
        if head == len(marks):
            marks.clear()
            head = 0
        elif head > 64 and head * 2 > len(marks):
            del marks[:head]
            head = 0
        self.head = head

    def clear(self) -> None:
        self.consume(len(self.data))

    def origin(self, start: int, end: int) -> tuple[tuple[int, ...], float]:
        """Frames and time of buffer bytes ``[start, end)``.

        Frames come in capture order, de-duplicated; the last is the one that completed the bytes (the
        latest to arrive, even when segments came out of order), which is where Wireshark shows a
        reassembled message, and ``time`` is its capture time.
        """
        lo, hi = self.base + start, self.base + end
        times: dict[int, float] = {}
        marks = self.marks
        for k in range(self.head, len(marks)):
            mend, frame, t = marks[k]
            if mend <= lo:
                continue
            times[frame] = t
            if mend >= hi:
                break
        if not times:
            return (), 0.0
        frames = tuple(sorted(times)) if len(times) > 1 else tuple(times)
        return frames, times[frames[-1]]

    def pieces(self) -> list[tuple[bytes, int, float]]:
        """The unconsumed bytes split back into ``(data, frame, time)`` per piece, then cleared."""
        out, pos = [], self.base
        for mend, frame, t in self.marks[self.head:]:
            if mend > pos:
                out.append((bytes(self.data[pos - self.base:mend - self.base]), frame, t))
                pos = mend
        self.clear()
        return out


_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]++"
_VERSION = rb"(?:SIP/2\.0|HTTP/1\.[01])"
#: A start line at the buffer start: request (method, target, version) or response (version, status).
#: Possessive (``++``, ``*+``): no piece ever gives back bytes, so one match is one pass over the line.
_START_LINE = re.compile(
    rb"(?:(" + _TOKEN + rb") ([^ \r\n]++) (" + _VERSION + rb")|(" + _VERSION + rb") ([1-9][0-9][0-9])"
    rb"(?:[ \t][^\r\n]*+)?)\r?\n")
#: ``_START_LINE`` judged at a marker in O(1), from facts about its line gathered once (``_line_facts``).
_STATUS_AT = re.compile(_VERSION + rb" [1-9][0-9][0-9](?:[ \t]|\r?\n)")
_REQUEST_END = re.compile(rb" " + _VERSION)
_NOT_TOKEN = bytes(0 if re.fullmatch(_TOKEN, bytes([b])) else 1 for b in range(256))  # for translate
#: Where a start line may hide in junk: the version token every start line contains.
_MARKER = re.compile(_VERSION)
#: The method just before a request target, after junk: upper case (as every registered method is).
_METHOD_BEFORE = re.compile(rb"[A-Z][A-Z0-9._!%*+`'~-]{0,31}\Z")
_CRLFS = re.compile(rb"[\r\n]*")
_FIELD = re.compile(rb"^(content-length|l|transfer-encoding|upgrade|connection)[ \t]*:[ \t]*([^\r\n]*)",
                    re.I | re.M)
_DIGITS = re.compile(rb"[0-9]{1,15}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*+(?:;[^\r\n]*+)?\r?\n")
_DROP_LENGTH_FIELDS = re.compile(rb"^(?:transfer-encoding|content-length)[ \t]*:[^\n]*\n", re.I | re.M)

# States of a MessageFramer.
_START, _RESYNC, _BODY, _CHUNKED, _UNTIL_CLOSE, _SKIP, _DISCARD, _PAUSED, _CLOSED = range(9)
_AGAIN = _Sentinel("AGAIN")  # internal: state changed, run the loop again


def _blank_line_end(buf: bytearray, frm: int, end: int | None = None) -> int:
    """Index just past the first empty line after the line break at or after ``frm``, or -1."""
    end = len(buf) if end is None else end
    crlf = buf.find(b"\n\r\n", frm, end)
    lf = buf.find(b"\n\n", frm, crlf + 2 if crlf >= 0 else end)
    if lf >= 0:
        return lf + 2
    return crlf + 3 if crlf >= 0 else -1


def _long_line(max_line: int) -> str:
    """Why bytes were skipped when the first line was over the cap (the reason in the junk diagnostic)."""
    return f"the first line was longer than {max_line} bytes: --limit line_bytes={max_line} raises the cap"


def start_line_protocol(data: bytes) -> str | None:
    """``"sip"`` or ``"http"`` if ``data`` begins with a complete start line of that protocol, else None."""
    m = _START_LINE.match(data)
    if m is None:
        return None
    return "sip" if (m.group(3) or m.group(4))[0] == 0x53 else "http"


def find_start_line(buf: bytearray | bytes, pos: int, max_line: int = 8192) -> tuple[int, int]:
    """Search junk for the next SIP/HTTP start line, using the version token as the anchor.

    Returns ``(index, -1)`` when found, else ``(-1, resume)``: the position a later search (with more bytes)
    must start from so that a start line straddling the end is not missed. Linear in the bytes searched,
    whatever they are: no regex here backtracks over more than one bounded line.
    """
    n = len(buf)
    line_end = -1  # the first line break after the current marker (n: none yet)
    facts = None
    for m in _MARKER.finditer(buf, pos):
        i, e = m.start(), m.end()
        if line_end < e:
            line_end = buf.find(b"\n", e)
            if line_end < 0:
                line_end = n
            facts = None
        if line_end == n:
            if n - i <= max_line:
                return -1, i  # the line is not complete yet: decide when it is
            continue
        if line_end - i > max_line:
            continue  # too long for a start line
        if facts is None:
            facts = _line_facts(buf, i, line_end)
        cr, first, last = facts
        status = _STATUS_AT.match(buf, i, line_end + 1)
        if (status and (status.end() > line_end or cr < status.end())) or first <= i < last:
            return i, -1  # what _START_LINE.match(buf, i, line_end + 1) says, without rescanning the line
        if line_end - e <= 1 and buf[e:line_end] in (b"", b"\r"):  # the marker ends its line: a request?
            start = _request_start(buf, i, max_line)
            if start >= 0:
                return start, -1
    return -1, max(pos, n - 8)


def _line_facts(buf: bytearray | bytes, lo: int, line_end: int) -> tuple[int, int, int]:
    """What decides ``_START_LINE`` at any marker from ``lo`` on in the line ending at ``line_end`` (its LF).

    ``cr``: the last CR before the line's end (a reason phrase cannot hold one, so a status line matches
    only if it runs past it); ``[first, last)``: the markers that can start ``TOKEN SP target SP version``
    (the version ends the line, the target is the word before it, the token the run of token bytes before
    that). Gathered once per line: matching the regex at every marker rescanned the rest of the line each
    time, quadratic in a line full of markers.
    """
    stop = line_end - 1 if buf[line_end - 1] == 0x0D else line_end
    cr = buf.rfind(b"\r", lo, stop)
    first = last = -1
    v = buf.rfind(b" ", lo, stop)
    if v > lo and _REQUEST_END.fullmatch(buf, v, stop):
        t = buf.rfind(b" ", lo, v)
        if 0 <= t < v - 1 and cr < t:  # a target, without CR
            first, last = lo + buf[lo:t].translate(_NOT_TOKEN).rfind(b"\x01") + 1, t
    return cr, first, last


def _request_start(buf: bytearray | bytes, i: int, max_line: int) -> int:
    """Where the request line ending in the version token at ``i`` starts (``METHOD SP target SP``), or -1."""
    if i < 4 or buf[i - 1] != 0x20:
        return -1
    lo = max(0, i - max_line)
    nl = buf.rfind(b"\n", lo, i)
    line = nl + 1 if nl >= 0 else lo
    sp = buf.rfind(b" ", line, i - 1)
    if sp < 0 or sp == i - 2 or b"\r" in buf[sp + 1:i - 1]:
        return -1
    method = _METHOD_BEFORE.search(buf, max(line, sp - 32), sp)
    return method.start() if method else -1


class MessageFramer:
    """Splits one direction of a TCP stream into SIP/HTTP messages.

    HTTP responses need the request methods (a response to HEAD has no body) and the request frames for
    ``reply_to``: the connection calls ``expect_response`` on this (the response-direction) framer for each
    request framed in the other direction. After a request carrying ``Upgrade`` or a 101 response the
    framer pauses: the connection decides what the rest of the stream is (``resume``, or ``pieces`` to hand
    the bytes to a WebSocket framer).
    """

    __slots__ = (
        "_buf",
        "_chunks",
        "_closed",
        "_cpos",
        "_csize",
        "_diag",
        "_dropped",
        "_junk",
        "_junk_frames",
        "_limits",
        "_line",
        "_msg",
        "_name",
        "_nl",
        "_reason",
        "_requests",
        "_rpos",
        "_scan",
        "_skip",
        "_state",
        "_total",
    )

    def __init__(self, diagnostics: Diagnostics, name: str = "", limits: FramingLimits = FramingLimits()):
        self._limits = limits
        self._diag = diagnostics
        self._name = name
        self._buf = StreamBuffer()
        self._state = _START
        self._scan = 0  # where the next search for a line end may start (no rescans byte by byte)
        self._nl = -1  # end of the start line at the buffer start, once found
        self._line: re.Match | None = None  # its match, valid while _nl >= 0 (the buffer start stays put)
        self._rpos = 0  # resync: where the next marker search starts
        self._reason = ""  # why we are resynchronising, for the junk diagnostic
        self._junk = 0
        self._junk_frames: list[int] = []
        self._requests: deque[tuple[str, int]] | None = None  # (method, frame) awaiting a response
        self._msg: dict = {}  # the message being framed: protocol, method, status, ...
        self._total = 0  # body states: length of the whole message in the buffer
        self._cpos = 0  # chunked: position of the next chunk-size line
        self._chunks = bytearray()  # chunked: the body de-chunked so far (not a list of spans: 1-byte
        # chunks would cost 60 bytes of list and tuple per byte)
        self._csize = 0
        self._skip = 0  # bytes of an over-long body still to skip
        self._dropped = 0  # bytes discarded after Connection: close / in _DISCARD
        self._closed = False

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
            if not self._junk_frames:
                self._junk_frames = [frame, frame]
            self._junk_frames[1] = frame
            return
        self._buf.append(data, frame, time)
        if state == _PAUSED and len(self._buf) > self._limits.max_head:
            self._state = _START  # no answer to the Upgrade came: do not buffer without bound

    def expect_response(self, method: str, frame: int) -> None:
        """A request was sent the other way: its response, in order, will come on this stream."""
        if self._requests is None:
            self._requests = deque()  # made on first use: most framers never see an HTTP request
        self._requests.append((method, frame))

    def next_message(self) -> FramedMessage | _Sentinel:
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
        return len(self._buf) + len(self._chunks)

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
        self._report_junk()
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
            self._junk_run(len(buf))
        elif state in (_DISCARD, _CLOSED):
            if self._dropped and state == _CLOSED:
                self._diag.add("malformed-http", f"{self._name}: {self._dropped} bytes after a message with "
                               f"'Connection: close' were skipped", tuple(dict.fromkeys(self._junk_frames)))
        elif state == _SKIP:
            self._diag.add("tcp-unfinished", f"{self._name}: stream ended {self._skip} bytes before the end "
                           f"of an over-long body")
        elif len(buf):
            frames, _ = buf.origin(0, len(buf))
            what = "after an Upgrade request" if state == _PAUSED else "in the middle of a message"
            self._diag.add("tcp-unfinished", f"{self._name}: stream ended {what}; {len(buf)} bytes "
                           f"not decoded", frames)
        self._report_junk()
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
            m = _START_LINE.match(buf, 0, nl + 1) if nl < limits.max_line else None
            if m is None:
                self._enter_resync("" if nl < limits.max_line else _long_line(limits.max_line), 1)
                return _AGAIN
        else:  # matched when its end was found (a header section in 1-byte segments must not re-match it)
            m = self._line
        hend = _blank_line_end(buf, max(nl, self._scan - 2))
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
        buf = self._buf.data
        method, _, rversion, sversion, status = m.groups()
        sip = (rversion or sversion)[0] == 0x53  # "S"
        lengths, codings = [], []
        upgrade = None
        close = False
        for name, value in _FIELD.findall(buf, nl + 1, hend):
            name = name.lower()
            if name == b"content-length" or (name == b"l" and sip):
                lengths.extend(v.strip() for v in value.split(b","))
            elif sip:
                continue
            elif name == b"transfer-encoding":
                codings.extend(v.strip().lower() for v in value.split(b",") if v.strip())
            elif name == b"upgrade":
                upgrade = value.strip().decode("latin-1").lower()
            elif name == b"connection" and b"close" in value.lower():
                close = any(v.strip().lower() == b"close" for v in value.split(b","))
        msg = self._msg = {"protocol": "sip" if sip else "http", "close": close}
        if method is not None:
            msg["method"] = method.decode("latin-1")
        else:
            msg["status"] = int(status)

        length: int | None = None
        if lengths:
            if not all(_DIGITS.fullmatch(v) for v in lengths) or len(set(lengths)) > 1:
                shown = b", ".join(lengths).decode("latin-1")
                self._fail(m, f"invalid Content-Length {shown!r}", hend)
                return _AGAIN
            length = int(lengths[0])

        if sip:
            if length is None:
                frames, _ = self._buf.origin(0, hend)
                self._diag.add("sip-no-content-length", f"{self._name}: {self._describe(m)} has no "
                               f"Content-Length; body taken as empty", frames)
                length = 0
        elif method is not None:  # HTTP request
            if upgrade is not None:
                msg["upgrade"] = upgrade
            if codings:
                if codings[-1] != b"chunked":
                    self._fail(m, "request Transfer-Encoding does not end in chunked", hend)
                    return _AGAIN
                return self._start_chunks(hend)
            length = length or 0
        else:  # HTTP response
            code = msg["status"]
            requests = self._requests
            if requests:
                msg["reply_to"] = requests[0][1]
            asked = requests[0][0] if requests else None
            if requests and (code >= 200 or code == 101):  # 100 and 103 are interim: more follows
                requests.popleft()
            if code == 101 and upgrade is not None:
                msg["upgrade"] = upgrade
            if code < 200 or code in (204, 304) or asked == "HEAD":
                length = 0
            elif codings:
                if codings[-1] == b"chunked":
                    return self._start_chunks(hend)
                length = None  # RFC 9112 §6.3: other codings, the body runs until close
            if length is None:
                self._total = hend
                self._state = _UNTIL_CLOSE
                return _AGAIN

        total = hend + length
        if length > self._limits.max_body:
            self._diag.add(f"malformed-{msg['protocol']}",
                           f"{self._name}: {self._describe(m)} announces a {length}-byte body, over the "
                           f"{self._limits.max_body}-byte cap (--limit message_bytes={length} would take "
                           "it); skipped",
                           self._buf.origin(0, hend)[0])
            self._start_skip(total)
            return _AGAIN
        if len(buf) >= total:
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
        self._cpos = hend
        self._chunks = bytearray()
        self._csize = 0
        self._state = _CHUNKED
        return _AGAIN

    def _read_chunks(self):
        buf = self._buf.data
        n = len(buf)
        limits = self._limits
        while True:
            cpos = self._cpos
            nl = buf.find(b"\n", cpos)
            if nl < 0:
                if n - cpos > limits.max_line:
                    return self._chunk_error(f"chunk-size line longer than {limits.max_line} bytes "
                                             f"(--limit line_bytes={limits.max_line} raises the cap)")
                return NEED_DATA
            m = _CHUNK_SIZE.match(buf, cpos, nl + 1)
            if m is None:
                return self._chunk_error("bad chunk-size line")
            size = int(m.group(1), 16)
            if size == 0:
                tend = _blank_line_end(buf, nl)
                if tend < 0:
                    if n - nl > limits.max_head:
                        return self._chunk_error(f"trailer section longer than {limits.max_head} bytes "
                                                 f"(--limit header_bytes={limits.max_head} raises the cap)")
                    return NEED_DATA
                return self._emit_chunked(bytes(buf[nl + 1:tend]).rstrip(b"\r\n"), tend)
            if self._csize + size > limits.max_body:
                return self._chunk_error(f"chunked body over the {limits.max_body}-byte cap (--limit "
                                         f"message_bytes={limits.max_body} raises it)")
            d0 = nl + 1
            d1 = d0 + size
            if n < d1 + 1 or (n == d1 + 1 and buf[d1] == 0x0D):
                return NEED_DATA
            if buf[d1] == 0x0A:
                self._cpos = d1 + 1
            elif buf[d1:d1 + 2] == b"\r\n":
                self._cpos = d1 + 2
            else:
                return self._chunk_error("chunk data not followed by CRLF")
            self._chunks += buf[d0:d1]
            self._csize += size

    def _emit_chunked(self, trailers: bytes, tend: int) -> FramedMessage:
        """Rewrite the chunked message as a plain one: same head minus framing fields, trailers, body."""
        buf = self._buf.data
        hend = self._total
        head = _DROP_LENGTH_FIELDS.sub(b"", bytes(buf[:hend]).rstrip(b"\r\n") + b"\r\n")
        if trailers:
            trailers = _DROP_LENGTH_FIELDS.sub(b"", trailers.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                                               + b"\r\n")
        body = bytes(self._chunks)
        data = b"%s%sContent-Length: %d\r\n\r\n%s" % (head, trailers, len(body), body)
        self._chunks = bytearray()
        return self._emit(tend, data)

    def _chunk_error(self, why: str):
        frames, _ = self._buf.origin(0, self._total)
        self._diag.add("malformed-http", f"{self._name}: {why}; message discarded", frames)
        self._buf.consume(self._total)
        self._enter_resync("after a malformed chunked message", 0)
        return _AGAIN

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
        buf = self._buf.data
        found, resume = find_start_line(buf, self._rpos, self._limits.max_line)
        if found >= 0:
            self._junk_run(found)
            self._report_junk()
            self._state = _START
            self._scan = 0
            self._nl = -1
            return _AGAIN
        # Keep only the tail that may still become a start line.
        keep = max(buf.rfind(b"\n") + 1, len(buf) - self._limits.max_line)
        keep = min(keep, resume)
        self._junk_run(keep)
        self._rpos = resume - keep
        return NEED_DATA

    # -- helpers -----------------------------------------------------------------------------------------

    def _emit(self, total: int, data: bytes | None = None) -> FramedMessage:
        buf = self._buf
        frames, time = buf.origin(0, total)
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
            self._junk_frames = []
            if self._dropped:
                rest, _ = buf.origin(0, self._dropped)
                self._junk_frames = [rest[0], rest[-1]]
                buf.clear()
        else:
            self._state = _START
        return FramedMessage(data, frames, time, **msg)

    def _fail(self, m: re.Match, why: str, upto: int) -> None:
        """The message at the buffer start cannot be framed: report it and resync after its start line."""
        protocol = "sip" if (m.group(3) or m.group(4))[0] == 0x53 else "http"
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
        self._reason = reason
        self._rpos = pos
        self._scan = 0
        self._nl = -1
        self._chunks = bytearray()  # (a chunked message being framed is abandoned)

    def _junk_run(self, n: int) -> None:
        """Skip ``n`` junk bytes from the buffer start, remembering how many and where from."""
        if n <= 0:
            return
        frames, _ = self._buf.origin(0, n)
        if not self._junk_frames:
            self._junk_frames = [frames[0], frames[-1]]
        self._junk_frames[1] = frames[-1]
        self._junk += n
        self._buf.consume(n)

    def _report_junk(self) -> None:
        if self._junk:
            reason = f" ({self._reason})" if self._reason else ""
            frames = tuple(dict.fromkeys(self._junk_frames))
            self._diag.add("junk-before-message", f"{self._name}: {self._junk} bytes skipped before a "
                           f"SIP/HTTP start line{reason}", frames)
            self._junk = 0
            self._junk_frames = []

    @staticmethod
    def _describe(m: re.Match) -> str:
        line = m.group(0).rstrip(b"\r\n")
        return repr(line[:80].decode("latin-1"))
