"""SIP message parser (RFC 3261 §7): start line, header fields, body. Bytes in, ``ParsedMessage`` out.

Runs on every SIP message of big captures, so the work is a handful of C-level ``find``/``split``
calls, one regex for the start line and one pass over the header lines.
"""

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
from analyzer.transport.startline import SIP

#: Compact header forms (RFC 3261 §7.3.3 and the RFCs that defined later ones) to their long names.
COMPACT: dict[str, str] = {
    "a": "accept-contact",  # RFC 3841
    "b": "referred-by",  # RFC 3892
    "c": "content-type",
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",  # RFC 3841
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",  # RFC 4474
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "s": "subject",
    "t": "to",
    "u": "allow-events",  # RFC 6665
    "v": "via",
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
}

#: Methods of RFC 3261 and its extensions; only used to peel junk glued in front of a method name.
METHODS = frozenset({
    "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK", "PUBLISH",
    "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
})

#: Without these a message cannot be placed in a dialog or transaction (RFC 3261 §8.1.1).
MANDATORY = ("call-id", "cseq", "from", "to", "via")

_NAMES = HeaderNames(COMPACT)


def parse_sip(data: bytes) -> ParsedMessage:
    """Parse one complete SIP message.

    Tolerates junk before the start line (counted in ``junk``), LF-only line ends, folded lines, header
    names in any case or compact form. A body longer than Content-Length is cut to it; a shorter one, a
    missing blank line or missing mandatory headers are ``problems``. Raises ``MalformedMessage`` when
    there is no SIP start line.
    """
    start = find_start_line(data, SIP, METHODS)
    raw_head, body_start = split_head(data, start.end)
    items, problems = parse_fields(raw_head, _NAMES)
    headers = Headers(items, lowered=True)
    if body_start < 0:
        problems.append("no blank line after the headers")
    missing = [name for name in MANDATORY if name not in headers]
    if missing:
        problems.append(f"missing mandatory header(s): {', '.join(missing)}")
    body = cut_body(headers, data, body_start, problems)
    return ParsedMessage("sip", start.kind, start.method, start.uri, start.status, start.reason, headers,
                         body, start.junk, tuple(problems))


__all__ = ["COMPACT", "METHODS", "MalformedMessage", "parse_sip"]
