"""Harness: the SIP/HTTP stream framer (``MessageFramer``) on one direction of a stream, each message
it frames parsed. Input: records, by the tag's two low bits: 0 stream bytes (cut into pieces by the
tag's high bits), 1 a gap of the body's length, 2 an HTTP request sent the other way (its method is the
body), 3 resume after an upgrade."""

from __future__ import annotations

from contextlib import suppress

from fuzz import harness


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.messages.decode import to_message
    from analyzer.messages.parse import MalformedMessage
    from analyzer.transport.buffer import NEED_DATA
    from analyzer.transport.framing import MessageFramer
    from analyzer.transport.records import Payload

    def parse(m) -> None:
        with suppress(MalformedMessage):
            to_message(Payload(m.data, m.frames, m.time, "10.0.0.1:5060", "10.0.0.2:5060", "tcp"))

    def target(data: bytes) -> None:
        framer = MessageFramer(Diagnostics(), "a → b")
        for frame, (tag, body) in enumerate(harness.records(data), 1):
            kind = tag & 3
            if kind == 0:
                for piece in harness.pieces(body, tag >> 2):
                    framer.receive_data(piece, frame, frame * 0.01)
                    while (m := framer.next_message()) is not NEED_DATA:
                        parse(m)
            elif kind == 1:
                framer.gap(len(body) or 1)
            elif kind == 2:
                framer.expect_response(body.decode("latin-1")[:32] or "GET", frame)
            else:
                framer.resume()
        for m in framer.close():
            parse(m)

    return target


if __name__ == "__main__":
    harness.main(load)
