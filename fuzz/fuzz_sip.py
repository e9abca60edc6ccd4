"""Harness: the SIP message parser (``parse_sip``) and ``to_message``, then the message's own views
(Call-ID, CSeq, Content-Type, the JSONL row). ``MalformedMessage`` is the documented error."""

from __future__ import annotations

from contextlib import suppress

from fuzz import harness


def load():
    return message_target("sip")


def message_target(proto: str):
    """A target for ``proto``'s parser followed by ``to_message`` (shared with the HTTP harness)."""
    from analyzer.messages.decode import to_message
    from analyzer.messages.http import parse_http
    from analyzer.messages.parse import MalformedMessage
    from analyzer.messages.sip import parse_sip
    from analyzer.report.messages import message_row
    from analyzer.report.tables import to_json
    from analyzer.transport.records import Payload

    parser = parse_sip if proto == "sip" else parse_http

    def target(data: bytes) -> None:
        with suppress(MalformedMessage):
            parser(data)
        try:
            message, _ = to_message(Payload(data, (1,), 0.0, "10.0.0.1:5060", "[2001:db8::2]:5060", "udp"))
        except MalformedMessage:
            return
        message.call_id, message.cseq, message.content_type, message.headers.getall("via", split=True)
        to_json(message_row(message))

    return target


if __name__ == "__main__":
    harness.main(load)
