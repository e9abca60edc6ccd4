"""Shared test drivers for the transport stage.

``feed_three_ways`` is STYLE.md item 10 (h11's ``tests/test_io.py`` ``tr``): a framer must give the same
messages and diagnostics whether its bytes come whole, one byte at a time, or followed by the next
message. Every framer (SIP/HTTP, WebSocket, TLS ClientHello) has ``receive_data(data, frame, time)``,
``next_message()`` and ``close()``, so one helper serves all of them.

``Wire`` drives a ``TcpConnection`` with numbered frames, keeping each side's sequence number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.buffer import NEED_DATA
from analyzer.transport.connection import TcpConnection
from analyzer.transport.tcp import ACK, FIN, SYN

FRAME, TIME = 7, 1.5


def drain(framer) -> list:
    out = []
    while (message := framer.next_message()) is not NEED_DATA:
        out.append(message)
    return out


def _run(make: Callable, pieces: Sequence[bytes]) -> tuple[list, Diagnostics]:
    diag = Diagnostics()
    framer = make(diag)
    got = []
    for piece in pieces:
        framer.receive_data(piece, FRAME, TIME)
        got += drain(framer)
    got += framer.close()
    return got, diag


def feed_three_ways(make: Callable, data: bytes, expected: Sequence, *, follow: bytes | None = None,
                    follow_expected: Sequence = ()) -> Diagnostics:
    """Check ``make(diagnostics)``'s framer yields ``expected`` from ``data`` fed whole, byte by byte, and
    (if ``follow`` is given) followed by ``follow``, which must add exactly ``follow_expected``.

    All bytes come in frame ``FRAME`` at time ``TIME``. Returns the diagnostics of the whole feed, after
    checking the other feeds produced the same diagnostic counts.
    """
    expected = list(expected)
    whole, diag = _run(make, [data])
    assert whole == expected, "fed whole"
    bytewise, diag_bytewise = _run(make, [data[i:i + 1] for i in range(len(data))])
    assert bytewise == expected, "fed one byte at a time"
    assert diag_bytewise.summary() == diag.summary(), "fed one byte at a time: diagnostics differ"
    if follow is not None:
        followed, diag_followed = _run(make, [data + follow])
        assert followed == expected + list(follow_expected), "followed by the next message"
        assert diag_followed.summary() == diag.summary(), "followed by the next message: diagnostics differ"
    return diag


class Wire:
    """Two endpoints talking over one ``TcpConnection``; every call is one captured frame.

    Frame numbers count from 1 and the capture time of frame ``n`` is ``n / 10``.
    """

    def __init__(self, a: str = "10.0.0.1:40000", b: str = "10.0.0.2:5060", *, handshake: bool = True,
                 isn: tuple[int, int] = (1000, 900000), **limits):
        self.a, self.b = a, b
        self.diag = Diagnostics()
        self.conn = TcpConnection(a, b, self.diag, **limits)
        self.frame = 0
        self.out: list = []
        self.seq = {a: isn[0], b: isn[1]}
        if handshake:
            self.send(a, flags=SYN)
            self.send(b, flags=SYN | ACK)
            self.send(a)

    def send(self, src: str, data: bytes = b"", *, flags: int = ACK, seq: int | None = None) -> list:
        """One segment from ``src``; without ``seq`` it continues ``src``'s stream. Returns its output."""
        self.frame += 1
        start = self.seq[src] if seq is None else seq
        got = self.conn.segment(src, start % (1 << 32), flags, data, self.frame, self.frame / 10)
        self.out += got
        if seq is None:
            self.seq[src] = (start + len(data) + (1 if flags & (SYN | FIN) else 0)) % (1 << 32)
        return got

    def send_pieces(self, src: str, pieces: Sequence[bytes], order: Sequence[int]) -> dict[int, int]:
        """Send consecutive ``pieces`` of ``src``'s stream in the given order; returns piece → frame."""
        starts, pos = [], self.seq[src]
        for piece in pieces:
            starts.append(pos)
            pos += len(piece)
        frames = {}
        for i in order:
            self.send(src, pieces[i], seq=starts[i])
            frames[i] = self.frame
        self.seq[src] = pos % (1 << 32)
        return frames

    def close(self) -> list:
        got = self.conn.close()
        self.out += got
        return got

    def codes(self) -> dict[str, int]:
        return self.diag.summary()
