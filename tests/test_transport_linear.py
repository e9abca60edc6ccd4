"""Issue 14: the transport stage's loops over attacker-controlled packets are linear.

Each test times the worst shape found by fuzzing at two sizes 100x apart (``tests/linear.py``); the caps
that would cut the input short are lifted, so the loop itself is what is measured.
"""

from __future__ import annotations

import struct

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.limits import DEFAULT
from analyzer.transport.buffer import FramingLimits
from analyzer.transport.connection import TcpConnection
from analyzer.transport.ip import FragmentReassembler, parse_ip
from analyzer.transport.sctp import SctpAssembler
from analyzer.transport.tcp import ACK, SYN, TcpLimits, TcpStream
from analyzer.transport.tls import HelloParser
from tests.linear import assert_linear
from tests.packets import ip
from tests.test_tls import built_hello, sni_extension

UNCAPPED = 1 << 40


def test_fragments_arriving_last_first_are_joined_in_linear_time():
    """8-byte fragments, the last first, so the total is known from the start (the old code re-sorted and
    re-joined every piece on every fragment)."""
    def make(n):
        pkts = [parse_ip(4, ip("10.0.0.1", "10.0.0.2", 17, b"z" * 8, 7, n - 1), 0)]
        pkts += [parse_ip(4, ip("10.0.0.1", "10.0.0.2", 17, b"z" * 8, 7, 0x2000 | k), 0)
                 for k in range(n - 2, -1, -1)]
        return pkts

    def join(pkts):
        reasm = FragmentReassembler(Diagnostics(), max_pieces=UNCAPPED)
        for frame, pkt in enumerate(pkts):
            done = reasm.add(pkt, frame, 0.0)
        assert done is not None and len(done[0].payload) == 8 * len(pkts)

    assert_linear(join, make, small=80, large=8000)


def test_one_byte_segments_retransmitted_far_back_are_checked_in_linear_time():
    """Every byte sent again n/10 segments later with other content: the check finds what it overlaps by
    bisection, not by walking the history back."""
    def make(n):
        lag = n // 10
        segments = [(1 + i, b"a") for i in range(n)]
        segments += [(1 + i - lag, b"#") for i in range(lag, n)]
        segments.sort(key=lambda s: s[0] + (lag + 0.5 if s[1] == b"#" else 0))
        return segments

    def feed(segments):
        diag = Diagnostics()
        stream = TcpStream(diag, limits=TcpLimits(history_bytes=UNCAPPED, history_segments=UNCAPPED))
        stream.segment(0, SYN, b"", 0, 0.0)
        for frame, (seq, data) in enumerate(segments, 1):
            stream.segment(seq, ACK, data, frame, 0.0)
        assert diag.counts["tcp-overlap-conflict"] == sum(data == b"#" for _, data in segments)

    assert_linear(feed, make, small=1000, large=100_000)


def test_sctp_packets_of_tiny_chunks_are_walked_in_linear_time():
    """Empty 4-byte chunks then 17-byte DATA fragments of one message (dpkt sliced off the rest of the
    packet per chunk: memory and time in the square of the packet)."""
    header = struct.pack(">HHII", 5060, 5060, 1, 0)

    def make(n):
        begin = struct.pack(">BBHIHHI", 0, 2, 17, 0, 0, 0, 3) + b"x\0\0\0"
        middle = struct.pack(">BBHIHHI", 0, 0, 17, 1, 0, 0, 3) + b"x\0\0\0"
        return header + b"\xc0\x00\x00\x04" * (n // 8) + begin + middle * (n // 40)

    limits = DEFAULT.with_overrides([f"{name}={UNCAPPED}" for name in
                                     ("sctp_chunks", "sctp_partial_chunks", "sctp_partial_bytes")])

    def walk(packet):
        found, problem = SctpAssembler(Diagnostics(), limits).messages(("a", "b"), packet, 1)
        assert found == [] and problem is None

    assert_linear(walk, make)


def test_a_client_hello_in_one_byte_records_one_byte_per_segment_is_read_in_linear_time():
    def make(n):
        hello = built_hello(sni_extension(b"s" * n))
        return b"".join(b"\x16\x03\x01\x00\x01" + hello[i:i + 1] for i in range(len(hello)))

    def feed(stream):
        parser, buf = HelloParser(), bytearray()
        for byte in stream:
            buf.append(byte)
            hello = parser.feed(buf)
        assert hello.sni is not None

    assert_linear(feed, make, small=100, large=10_000)


def test_a_sip_message_in_one_byte_segments_is_framed_in_linear_time():
    """One byte per segment from the first byte on: the first-line sniffing, the reassembly and the framing
    each keep their place instead of re-reading what they have."""
    def make(n):
        head = (f"MESSAGE sip:{'b' * n}@mcx.example SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-1"
                f"{'x' * n}\r\nContent-Length: 0\r\n\r\n").encode()
        return [head[i:i + 1] for i in range(len(head))]

    limits = FramingLimits(max_line=UNCAPPED, max_head=UNCAPPED)

    def feed(pieces):
        conn = TcpConnection("10.0.0.1:1", "10.0.0.2:5060", Diagnostics(), framing_limits=limits)
        out = conn.segment("10.0.0.1:1", 0, SYN, b"", 0, 0.0)
        for frame, piece in enumerate(pieces, 1):
            out += conn.segment("10.0.0.1:1", frame, ACK, piece, frame, 0.0)
        assert len(out) == 1

    assert_linear(feed, make, small=500, large=50_000)
