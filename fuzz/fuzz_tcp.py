"""Harness: TCP reassembly and one connection's decoding (TcpStream, TcpConnection: framers, TLS,
WebSocket upgrade), then message parsing. Input: records; a tag's top bit is the direction, its bits
0x17 the flags (FIN, SYN, RST, ACK); a body is the 4-byte sequence number and the segment's bytes."""

from __future__ import annotations

from contextlib import suppress

from fuzz import harness

CLIENT, SERVER = "10.0.0.1:40000", "10.0.0.2:5060"
FLAGS = 0x17


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.messages.decode import to_message
    from analyzer.messages.parse import MalformedMessage
    from analyzer.transport.connection import TcpConnection
    from analyzer.transport.records import Payload

    def parse(items) -> None:
        for item in items:
            if isinstance(item, Payload):
                with suppress(MalformedMessage):
                    to_message(item)

    def target(data: bytes) -> None:
        conn = TcpConnection(CLIENT, SERVER, Diagnostics())
        for frame, (tag, body) in enumerate(harness.records(data), 1):
            seq = int.from_bytes(body[:4].ljust(4, b"\0"), "big")
            src = SERVER if tag & 0x80 else CLIENT
            parse(conn.segment(src, seq, tag & FLAGS, body[4:], frame, frame * 0.01))
        parse(conn.close())

    return target


def tag(from_server: bool, flags: int) -> int:
    """The record tag for a segment (for seeds)."""
    return (0x80 if from_server else 0) | (flags & FLAGS)


if __name__ == "__main__":
    harness.main(load)
