"""HTTP/1.x parser for one complete message: the transport already framed it and undid chunked coding."""

from __future__ import annotations

from analyzer.messages.parse import (
    HeaderNames,
    MalformedMessage,
    ParsedMessage,
    cut_body,
    find_start_line,
    parse_fields,
    split_head,
)
from analyzer.messages.records import Headers
from analyzer.transport.startline import HTTP

#: Methods of RFC 9110 and PATCH (RFC 5789); only used to peel junk glued in front of a method name.
METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})

_NAMES = HeaderNames({})  # HTTP has no compact forms: "c" is just an unknown field


def _no_body(status: int | None) -> bool:
    # RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content, whatever Content-Length says.
    return status is not None and (status < 200 or status in (204, 304))


def parse_http(data: bytes) -> ParsedMessage:
    """Parse one HTTP/1.x request or response (names lower-cased, body as handed over).

    Content-Length, when present, cuts a longer body. A shorter body is a problem except where none is
    expected (1xx/204/304) or a response body is empty (likely the answer to a HEAD, which the parser
    cannot see). Raises ``MalformedMessage`` when there is no HTTP start line.
    """
    start = find_start_line(data, HTTP, METHODS)
    raw_head, body_start = split_head(data, start.end)
    items, problems = parse_fields(raw_head, _NAMES)
    headers = Headers(items, lowered=True)
    if body_start < 0:
        problems.append("no blank line after the headers")
    if _no_body(start.status):
        body = b""
        if body_start >= 0 and len(data) > body_start:
            problems.append(f"{len(data) - body_start} bytes after a {start.status} response ignored")
    else:
        short_ok = start.kind == "response" and not 0 <= body_start < len(data)
        body = cut_body(headers, data, body_start, problems, check=not short_ok)
    return ParsedMessage("http", start.kind, start.method, start.uri, start.status, start.reason, headers,
                         body, start.junk, tuple(problems))


__all__ = ["METHODS", "MalformedMessage", "parse_http"]
