"""Where a SIP or HTTP/1.x message may start on a stream: the start-line test the framer applies at the
buffer start, and the search for the next start line in junk (resynchronisation after junk, a gap or a
message that could not be framed), linear in the bytes searched whatever they are, and the account of the
junk skipped on the way.

Looser than ``startline`` (any token as method, any target): framing only needs to know where a message
begins; the message stage judges what it says.
"""

from __future__ import annotations

import re

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.buffer import StreamBuffer

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]++"
_VERSION = rb"(?:SIP/2\.0|HTTP/1\.[01])"
#: A start line at the buffer start: request (method, target, version) or response (version, status).
#: Possessive (``++``, ``*+``): no piece ever gives back bytes, so one match is one pass over the line.
START_LINE = re.compile(
    rb"(?:(" + _TOKEN + rb") ([^ \r\n]++) (" + _VERSION + rb")|(" + _VERSION + rb") ([1-9][0-9][0-9])"
    rb"(?:[ \t][^\r\n]*+)?)\r?\n")
#: ``START_LINE`` judged at a marker in O(1), from facts about its line gathered once (``_line_facts``).
_STATUS_AT = re.compile(_VERSION + rb" [1-9][0-9][0-9](?:[ \t]|\r?\n)")
_REQUEST_END = re.compile(rb" " + _VERSION)
_NOT_TOKEN = bytes(0 if re.fullmatch(_TOKEN, bytes([b])) else 1 for b in range(256))  # for translate
#: Where a start line may hide in junk: the version token every start line contains.
_MARKER = re.compile(_VERSION)
#: The method just before a request target, after junk: upper case (as every registered method is).
_METHOD_BEFORE = re.compile(rb"[A-Z][A-Z0-9._!%*+`'~-]{0,31}\Z")


def protocol_of(m: re.Match) -> str:
    """``"sip"`` or ``"http"``: the protocol of a ``START_LINE`` match, by its version token."""
    return "sip" if (m.group(3) or m.group(4))[0] == 0x53 else "http"


def start_line_protocol(data: bytes) -> str | None:
    """``"sip"`` or ``"http"`` if ``data`` begins with a complete start line of that protocol, else None."""
    m = START_LINE.match(data)
    return None if m is None else protocol_of(m)


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
            return i, -1  # what START_LINE.match(buf, i, line_end + 1) says, without rescanning the line
        if line_end - e <= 1 and buf[e:line_end] in (b"", b"\r"):  # the marker ends its line: a request?
            start = _request_start(buf, i, max_line)
            if start >= 0:
                return start, -1
    return -1, max(pos, n - 8)


def _line_facts(buf: bytearray | bytes, lo: int, line_end: int) -> tuple[int, int, int]:
    """What decides ``START_LINE`` at any marker from ``lo`` on in the line ending at ``line_end`` (its LF).

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


class Resync:
    """One framer's search for the next start line: where the next search starts, and the junk skipped so
    far (bytes, first and last frame, why), reported as one ``junk-before-message`` diagnostic."""

    __slots__ = ("frames", "pos", "reason", "size")

    def __init__(self):
        self.pos = 0
        self.reason = ""  # after what the framer lost its way, for the diagnostic
        self.size = 0
        self.frames: tuple[int, ...] = ()

    def start(self, reason: str, pos: int) -> None:
        self.reason, self.pos = reason, pos

    def search(self, buf: StreamBuffer, max_line: int) -> bool:
        """Skip junk up to the next start line: True once one is at the buffer start. Until then only the
        tail that may still become a start line is kept."""
        data = buf.data
        found, resume = find_start_line(data, self.pos, max_line)
        if found >= 0:
            self.skip(buf, found)
            return True
        keep = max(data.rfind(b"\n") + 1, len(data) - max_line)
        keep = min(keep, resume)
        self.skip(buf, keep)
        self.pos = resume - keep
        return False

    def skip(self, buf: StreamBuffer, n: int) -> None:
        """Skip ``n`` junk bytes from the buffer start, remembering how many and where from."""
        if n <= 0:
            return
        frames, _ = buf.origin(0, n)
        self.frames = (self.frames[0] if self.frames else frames[0], frames[-1])
        self.size += n
        buf.consume(n)

    def report(self, diagnostics: Diagnostics, name: str) -> None:
        if self.size:
            reason = f" ({self.reason})" if self.reason else ""
            diagnostics.add("junk-before-message", f"{name}: {self.size} bytes skipped before a SIP/HTTP "
                            f"start line{reason}", tuple(dict.fromkeys(self.frames)))
            self.size = 0
            self.frames = ()
