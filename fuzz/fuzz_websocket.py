"""Harness: WebSocket framing (RFC 6455, permessage-deflate) on one direction. Input: a flags byte (bit 0:
deflate negotiated), then records: tag 0 stream bytes (cut by the tag's high bits), tag 1 a gap."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.transport.buffer import NEED_DATA
    from analyzer.transport.websocket import WebSocketFramer

    def target(data: bytes) -> None:
        if not data:
            return
        framer = WebSocketFramer(Diagnostics(), "a → b", deflate=bool(data[0] & 1))
        for frame, (tag, body) in enumerate(harness.records(data[1:]), 1):
            if tag & 1:
                framer.gap(len(body) or 1)
                continue
            for piece in harness.pieces(body, tag >> 1):
                framer.receive_data(piece, frame, frame * 0.01)
                while framer.next_message() is not NEED_DATA:
                    pass
        framer.close()

    return target


if __name__ == "__main__":
    harness.main(load)
