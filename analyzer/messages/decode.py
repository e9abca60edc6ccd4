"""A transport payload to a ``Message``: which protocol its start line says, then that protocol's parser.

The one place that knows both parsers; ``parse`` holds what they share, ``sip`` and ``http`` the rest.
"""

from __future__ import annotations

from analyzer.messages.http import parse_http
from analyzer.messages.parse import MalformedMessage, ParsedMessage
from analyzer.messages.records import Message
from analyzer.messages.sip import parse_sip
from analyzer.transport.records import Payload
from analyzer.transport.startline import HTTP, SIP, looks_like_start_line, search_line

PARSERS = {"sip": parse_sip, "http": parse_http}


def _detect(data: bytes) -> str:
    proto = looks_like_start_line(data)
    if proto:
        return proto
    # Junk in front: the first line holding either protocol's start line decides.
    pos, n = 0, len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl
        hits = [(m.start, grammar.proto) for grammar in (SIP, HTTP)
                if (m := search_line(data, pos, end, grammar))]
        if hits:
            return min(hits)[1]
        if nl < 0:
            break
        pos = nl + 1
    raise MalformedMessage(f"no SIP or HTTP start line in {n} bytes")


def to_message(payload: Payload) -> tuple[Message, ParsedMessage]:
    """Parse a transport payload (protocol told by its start line) into a ``Message`` and the parse detail.

    Raises ``MalformedMessage`` (with ``where`` = the frame) when the bytes hold no SIP/HTTP message.
    """
    where = f"frame {payload.frames[-1]}"
    try:
        proto = _detect(payload.data)
        parsed = PARSERS[proto](payload.data)
    except MalformedMessage as exc:
        raise MalformedMessage(exc.reason, where, exc.proto) from None
    message = Message(
        proto=parsed.proto, kind=parsed.kind, method=parsed.method, uri=parsed.uri, status=parsed.status,
        reason=parsed.reason, headers=parsed.headers, body=parsed.body, frames=payload.frames,
        time=payload.time, src=payload.src, dst=payload.dst, transport=payload.transport,
        framing=payload.framing, reply_to=payload.reply_to,
    )
    return message, parsed
