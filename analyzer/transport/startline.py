"""SIP and HTTP/1.x start lines: the strict sniff of a payload's first line, and the leftmost start line
anywhere in a line, both in time linear in the line.

A start line may follow junk on its line (a resynchronised stream, a broken middlebox), so the parsers need
the leftmost start line anywhere in a line. A regex ``search`` retries its pattern at every position, and
with a ``[ \\t]*`` before the line end or a lazy reason phrase each retry rescans the rest of the line: a
60 KB line of spaces took 20 s. Each shape is read from the end it is anchored to instead: a request line
*ends* with `` SIP/2.0`` (its URI is the word before, its method the capitals before that), a status line
*starts* with ``SIP/2.0 ddd`` and its reason runs to the line end. The answer is what the regex
``(METHOD) (URI) SIP/2.0 | SIP/2.0 (STATUS)( REASON)?`` followed by ``[ \\t]*\\r?$`` would find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["HTTP", "SIP", "Grammar", "LineMatch", "looks_like_start_line", "search_line"]


@dataclass(frozen=True, slots=True)
class Grammar:
    """What a protocol's start lines look like."""

    proto: str
    version: re.Pattern  # SP and version closing a request line (fullmatch)
    version_len: int
    uri: re.Pattern  # the request target (fullmatch)
    method: re.Pattern  # the method just before the space in front of the target (search, ends in \Z)
    status_prefix: bytes  # literal every status line starts with
    status: re.Pattern  # version SP status code (match); group 1 is the code


# absoluteURI: scheme ':' then no space or control byte (UTF-8 let through: some clients send it raw)
_URI = rb"[A-Za-z][A-Za-z0-9+.-]*+:[!-~\x80-\xff]{1,8192}+"

SIP = Grammar("sip", re.compile(rb" SIP/2\.0"), 8, re.compile(_URI), re.compile(rb"[A-Z]{1,32}\Z"),
              b"SIP/2.0 ", re.compile(rb"SIP/2\.0 ([1-6][0-9]{2})"))
HTTP = Grammar("http", re.compile(rb" HTTP/1\.[0-9]"), 9, re.compile(rb"[!-~]{1,8192}+"),
               re.compile(rb"[A-Z][A-Z_-]{0,31}\Z"), b"HTTP/1.",
               re.compile(rb"HTTP/1\.[0-9] ([1-5][0-9]{2})"))


class LineMatch(NamedTuple):
    """A start line found in a line: where it starts, and its parts as bytes (``reason`` without the
    white space around it)."""

    start: int
    method: bytes | None
    uri: bytes | None
    status: int | None
    reason: bytes | None


def search_line(data: bytes, pos: int, end: int, grammar: Grammar) -> LineMatch | None:
    """The leftmost start line in ``data[pos:end]``, a line without its LF; None when there is none."""
    stop = end - 1 if end > pos and data[end - 1] == 0x0D else end  # the CR of CRLF is not content
    content = pos + len(data[pos:stop].rstrip(b" \t"))  # trailing white space is allowed after either
    request = _request(data, pos, content, grammar)
    status = _status(data, pos, stop, content, stop if request is None else request.start, grammar)
    return status or request


def _request(data: bytes, pos: int, content: int, g: Grammar) -> LineMatch | None:
    v = content - g.version_len
    if v <= pos or not g.version.fullmatch(data, v, content):
        return None
    sp = data.rfind(b" ", pos, v)  # the target has no space: it is the word before the version
    if sp < 0 or not g.uri.fullmatch(data, sp + 1, v):
        return None
    method = g.method.search(data, max(pos, sp - 32), sp)  # leftmost: a 32-byte window, not the line
    if method is None:
        return None
    return LineMatch(method.start(), data[method.start():sp], data[sp + 1:v], None, None)


def _status(data: bytes, pos: int, stop: int, content: int, before: int, g: Grammar) -> LineMatch | None:
    # A CR inside the line ends any reason phrase, so a status line can only start after the last one.
    cr = data.rfind(b"\r", pos, stop)
    i = data.find(g.status_prefix, max(pos, cr + 1), stop)
    while 0 <= i < before:
        m = g.status.match(data, i, stop)
        if m:
            after = m.end()
            if after >= content:
                return LineMatch(i, None, None, int(m.group(1)), b"")
            if data[after] == 0x20:
                return LineMatch(i, None, None, int(m.group(1)), data[after + 1:content])
        i = data.find(g.status_prefix, i + 1, stop)
    return None


# --- sniffing -----------------------------------------------------------------------------------------
# Strict on purpose: this decides whether arbitrary bytes on an unknown port are SIP/HTTP at all, so random
# binary, RTP and TLS must never match. Anchored at the payload start and bounded by one line.

_EOL = rb"[ \t]*+\r?$"  # used with endpos = index of the LF, so '$' is the end of the line
_HTTP_SNIFF_METHODS = rb"(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT|TRACE)"
_SNIFF = (
    ("sip", re.compile(rb"[A-Z]{1,32} " + _URI + rb" SIP/2\.0" + _EOL)),
    ("http", re.compile(_HTTP_SNIFF_METHODS + rb" [!-~]{1,8192}+ HTTP/1\.[0-9]" + _EOL)),
)
_SNIFF_STATUS = (
    ("sip", re.compile(rb"SIP/2\.0 [1-6][0-9]{2}[ \r\n]")),
    ("http", re.compile(rb"HTTP/1\.[0-9] [1-5][0-9]{2}[ \r\n]")),
)
_MAX_START_LINE = 8300


def looks_like_start_line(data: bytes) -> str | None:
    """``'sip'`` or ``'http'`` when ``data`` begins with a SIP/HTTP start line, else None.

    Cheap enough for every first payload of every flow: the first byte must be an upper-case letter
    (rejects RTP 0x80.., TLS 0x16 0x03.., most binary at once). A request line must be complete (up to its
    LF); a status line needs only ``SIP/2.0 ddd`` / ``HTTP/1.x ddd`` and a space or line end.
    """
    if not data or not 0x41 <= data[0] <= 0x5A:
        return None
    for proto, pattern in _SNIFF_STATUS:
        if pattern.match(data):
            return proto
    nl = data.find(b"\n", 0, _MAX_START_LINE)
    if nl < 0:
        return None
    for proto, pattern in _SNIFF:
        if pattern.match(data, 0, nl):
            return proto
    return None
