"""TCP reassembly (TcpStream) and whole connections (TcpConnection) on SIP and HTTP."""

from __future__ import annotations

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.records import Payload
from analyzer.transport.tcp import ACK, FIN, RST, SYN, Chunk, Gap, TcpLimits, TcpStream
from tests.feeding import Wire
from tests.test_framing import BYE, INVITE, OK

C, S = "10.0.0.1:40000", "10.0.0.2:5060"


def joined(events) -> bytes:
    return b"".join(e.data for e in events if type(e) is Chunk)


# -- TcpStream ---------------------------------------------------------------------------------------------

def test_syn_sets_the_start_and_in_order_bytes_flow():
    d = Diagnostics()
    s = TcpStream(d)
    assert s.segment(99, SYN, b"", 1, 0.1) == []
    assert s.segment(100, ACK, b"abc", 2, 0.2) == [Chunk(b"abc", 2, 0.2)]
    assert s.segment(103, ACK, b"de", 3, 0.3) == [Chunk(b"de", 3, 0.3)]
    assert d.total == 0


def test_capture_started_mid_connection():
    s = TcpStream(Diagnostics())
    assert s.segment(123456, ACK, b"xyz", 1, 0.1) == [Chunk(b"xyz", 1, 0.1)]
    assert s.segment(123450, ACK, b"older!", 2, 0.2) == []  # bytes from before the capture started
    assert s.segment(123459, ACK, b"!", 3, 0.3) == [Chunk(b"!", 3, 0.3)]


def test_out_of_order_is_held_until_the_hole_fills():
    s = TcpStream(Diagnostics())
    s.segment(0, SYN, b"", 1, 0.1)
    assert s.segment(7, ACK, b"ghi", 2, 0.2) == []
    assert s.segment(4, ACK, b"def", 3, 0.3) == []
    assert s.segment(1, ACK, b"abc", 4, 0.4) == [Chunk(b"abc", 4, 0.4), Chunk(b"def", 3, 0.3),
                                                 Chunk(b"ghi", 2, 0.2)]


def test_retransmission_and_keepalive_probe_are_dropped_silently():
    d = Diagnostics()
    s = TcpStream(d)
    s.segment(0, SYN, b"", 1, 0.1)
    s.segment(1, ACK, b"hello", 2, 0.2)
    assert s.segment(1, ACK, b"hello", 3, 0.3) == []
    assert s.segment(5, ACK, b"\x00", 4, 0.4) == []  # keep-alive probe: one garbage byte at seq - 1
    assert s.segment(3, ACK, b"llo world", 5, 0.5) == [Chunk(b" world", 5, 0.5)]
    assert d.total == 0


def test_overlap_with_different_bytes_keeps_the_first_copy():
    d = Diagnostics()
    s = TcpStream(d, "c → s")
    s.segment(0, SYN, b"", 1, 0.1)
    s.segment(1, ACK, b"hello", 2, 0.2)
    assert s.segment(4, ACK, b"XY!", 3, 0.3) == [Chunk(b"!", 3, 0.3)]
    assert d.summary() == {"tcp-overlap-conflict": 1}
    assert d.records[0].frames == (3,)


def test_overlap_between_held_segments():
    d = Diagnostics()
    s = TcpStream(d)
    s.segment(0, SYN, b"", 1, 0.1)
    s.segment(4, ACK, b"defg", 2, 0.2)
    s.segment(6, ACK, b"FGhi", 3, 0.3)  # overlaps the held one with different bytes
    assert joined(s.segment(1, ACK, b"abc", 4, 0.4)) == b"abcdefghi"
    assert d.summary() == {"tcp-overlap-conflict": 1}


@pytest.mark.parametrize("isn", [(1 << 32) - 3, (1 << 32) - 1, (1 << 32) - 2])
def test_sequence_wraparound(isn):
    s = TcpStream(Diagnostics())
    s.segment(isn, SYN, b"", 1, 0.1)
    first = (isn + 1) % (1 << 32)
    assert s.segment((first + 4) % (1 << 32), ACK, b"efgh", 2, 0.2) == []
    assert joined(s.segment(first, ACK, b"abcd", 3, 0.3)) == b"abcdefgh"
    assert joined(s.segment((first + 8) % (1 << 32), ACK, b"ij", 4, 0.4)) == b"ij"
    assert s.segment(first, ACK, b"abcd", 5, 0.5) == []  # old bytes from before the wrap


def test_hole_becomes_a_gap_when_too_much_is_held():
    s = TcpStream(Diagnostics(), limits=TcpLimits(max_pending_bytes=10, max_pending_segments=3))
    s.segment(0, SYN, b"", 1, 0.1)
    s.segment(1, ACK, b"ab", 2, 0.2)
    assert s.segment(13, ACK, b"four", 3, 0.3) == []
    assert s.segment(17, ACK, b"five", 4, 0.4) == []
    assert s.segment(21, ACK, b"six", 5, 0.5) == [Gap(10, 2, 3, "tcp_pending_bytes=10"),
                                                  Chunk(b"four", 3, 0.3), Chunk(b"five", 4, 0.4),
                                                  Chunk(b"six", 5, 0.5)]
    s2 = TcpStream(Diagnostics(), limits=TcpLimits(max_pending_segments=2))
    s2.segment(0, ACK, b"a", 1, 0.1)
    s2.segment(10, ACK, b"b", 2, 0.2)
    s2.segment(20, ACK, b"c", 3, 0.3)
    assert s2.segment(30, ACK, b"d", 4, 0.4)[0] == Gap(9, 1, 2, "tcp_pending_segments=2")


def test_fin_and_close_declare_the_remaining_holes():
    s = TcpStream(Diagnostics())
    s.segment(0, SYN, b"", 1, 0.1)
    s.segment(1, ACK, b"ab", 2, 0.2)
    s.segment(5, ACK, b"ef", 3, 0.3)
    assert s.segment(7, FIN | ACK, b"", 4, 0.4) == [Gap(2, 2, 3), Chunk(b"ef", 3, 0.3)]
    s2 = TcpStream(Diagnostics())
    s2.segment(10, ACK, b"ab", 1, 0.1)
    s2.segment(20, ACK, b"zz", 2, 0.2)
    assert s2.close() == [Gap(8, 1, 2), Chunk(b"zz", 2, 0.2)]
    assert s2.close() == []


def test_pending_memory_is_bounded():
    s = TcpStream(Diagnostics())
    s.segment(0, SYN, b"", 1, 0.1)
    most = (0, 0)
    for i in range(2000):  # a hole at the start, then every other segment missing
        s.segment(1 + 1000 + i * 2000, ACK, b"x" * 1000, 2 + i, 0.2)
        segments, held = s.held
        assert segments <= TcpLimits().max_pending_segments and held <= TcpLimits().max_pending_bytes
        most = max(most, s.held)
    assert most[0] == TcpLimits().max_pending_segments  # it did hold up to the limit


# -- TcpConnection: SIP ------------------------------------------------------------------------------------

def test_two_sip_messages_in_one_segment():
    w = Wire()
    got = w.send(C, INVITE + OK)
    assert got == [Payload(INVITE, (4,), 0.4, C, S, "tcp"), Payload(OK, (4,), 0.4, C, S, "tcp")]
    assert w.conn.client == C and w.conn.interesting
    w.close()
    assert w.codes() == {}


def test_one_message_over_three_segments_out_of_order():
    w = Wire()
    pieces = [INVITE[:100], INVITE[100:200], INVITE[200:]]
    frames = w.send_pieces(C, pieces, order=[2, 0, 1])  # frames 4, 5, 6 carry pieces 3, 1, 2
    assert frames == {2: 4, 0: 5, 1: 6}
    # capture order; numbered (and timed) by frame 6, which completed it, as Wireshark does
    assert w.out == [Payload(INVITE, (4, 5, 6), 0.6, C, S, "tcp")]
    w.close()
    assert w.codes() == {}


def test_retransmitted_segment_gives_no_duplicate():
    w = Wire()
    w.send(C, INVITE[:150])
    start = w.seq[C] - 150
    w.send(C, INVITE[:150], seq=start)
    w.send(C, INVITE[150:])
    w.send(C, INVITE[150:], seq=start + 150)
    w.send(S, OK)
    assert w.out == [Payload(INVITE, (4, 6), 0.6, C, S, "tcp"), Payload(OK, (8,), 0.8, S, C, "tcp")]
    assert w.close() == [] and w.codes() == {}


def test_overlapping_segment_with_different_bytes():
    w = Wire()
    start = w.seq[C]
    w.send(C, INVITE[:100])
    forged = b"Z" * 20 + INVITE[100:]
    w.send(C, forged, seq=start + 80)
    assert w.out == [Payload(INVITE, (4, 5), 0.5, C, S, "tcp")]
    assert w.codes() == {"tcp-overlap-conflict": 1}


def test_wraparound_inside_a_message():
    w = Wire(isn=((1 << 32) - 50, 7))
    w.send_pieces(C, [INVITE[:120], INVITE[120:]], order=[1, 0])
    assert w.seq[C] < 1000  # the stream really wrapped
    w.send(C, BYE)
    assert [p.data for p in w.out] == [INVITE, BYE]
    assert w.out[0].frames == (4, 5)


def test_gap_then_resync_on_next_start_line():
    w = Wire()
    w.send(C, INVITE[:100])
    w.seq[C] += 60  # 60 bytes never captured
    w.send(C, INVITE[160:] + BYE[:30])
    w.send(C, BYE[30:])
    assert w.out == []  # held behind the hole
    w.send(C, flags=FIN | ACK)  # the FIN declares the hole a gap
    w.close()
    assert [p.data for p in w.out] == [BYE]
    assert w.out[0].frames == (5, 6)
    codes = w.codes()
    assert codes["tcp-gap"] == 1 and codes["junk-before-message"] == 1
    gap = next(r for r in w.diag.records if r.code == "tcp-gap")
    assert gap.frames == (4, 5)
    assert "60 bytes not captured between frames 4 and 5" in gap.message
    assert "100 bytes of an unfinished message discarded" in gap.message


def test_gap_declared_when_too_much_is_held():
    w = Wire(tcp_limits=TcpLimits(max_pending_segments=2))
    w.send(C, INVITE[:100])
    w.seq[C] += len(INVITE) - 100  # the rest of the INVITE is lost
    w.send(C, BYE)
    w.send(C, OK.replace(b"SIP/2.0 200", b"SIP/2.0 202"))
    assert w.out == []
    w.send(C, BYE)
    assert [p.data[:7] for p in w.out] == [b"BYE sip", b"SIP/2.0", b"BYE sip"]
    assert w.codes()["tcp-gap"] == 1
    gap = next(d for d in w.diag.records if d.code == "tcp-gap")
    assert "held out of order than the cap (--limit tcp_pending_segments=2 raises it)" in gap.message


def test_keepalives_and_sip_no_content_length_over_a_connection():
    w = Wire()
    ack = b"ACK sip:bob@example.org SIP/2.0\r\nCSeq: 1 ACK\r\n\r\n"
    w.send(C, b"\r\n\r\n")
    w.send(S, b"\r\n")
    w.send(C, ack + b"\r\n\r\n" + BYE)
    w.close()
    assert [p.data for p in w.out] == [ack, BYE]
    assert w.codes() == {"sip-no-content-length": 1}


def test_first_bytes_split_before_the_decision():
    w = Wire()
    w.send(C, INVITE[:2])
    w.send(S, b"\r\n")
    w.send(C, INVITE[2:20])
    assert not w.conn.finished and not w.conn.interesting  # no whole first line yet
    w.send(C, INVITE[20:])
    assert w.out == [Payload(INVITE, (4, 6, 7), 0.7, C, S, "tcp")] and w.conn.interesting
    w.close()
    assert w.codes() == {}


def test_not_sip_http_or_tls_is_ignored_at_once():
    w = Wire(b="10.0.0.2:25")
    w.send(w.b, b"220 mail.example.org ESMTP\r\n")
    assert w.conn.finished and not w.conn.interesting
    assert w.out == [] and w.codes() == {}
    w2 = Wire()
    w2.send(C, b"SSH-2.0-OpenSSH_9.6\r\n")
    assert w2.conn.finished and not w2.conn.interesting


def test_fin_from_both_sides_finishes_and_flushes():
    w = Wire()
    w.send(C, INVITE[:-5])
    w.send(C, INVITE[-5:], flags=FIN | ACK)
    assert not w.conn.finished
    w.send(S, b"", flags=FIN | ACK)
    assert w.conn.finished
    assert [p.data for p in w.out] == [INVITE]
    assert w.close() == []


def test_rst_finishes_and_reports_unfinished_message():
    w = Wire()
    w.send(C, INVITE[:-5])
    w.send(S, b"", flags=RST)
    assert w.conn.finished
    assert w.codes() == {"tcp-unfinished": 1}


def test_port_reuse_starts_a_new_connection():
    w = Wire()
    w.send(C, INVITE[:-5])
    w.send(C, b"", flags=SYN, seq=77777)  # a new SYN with another ISN on the same address pair
    w.seq[C] = 77778
    w.send(C, BYE)
    assert [p.data for p in w.out] == [BYE]
    assert w.codes() == {"tcp-unfinished": 1}


def test_client_is_the_request_sender_without_syn():
    w = Wire(handshake=False)
    w.send(S, OK)
    w.send(C, BYE)
    assert w.conn.client == C


def test_data_after_fin_is_reported():
    w = Wire()
    w.send(C, BYE, flags=FIN | ACK)
    w.send(C, b"more")
    w.send(S, b"", flags=FIN | ACK)
    assert [p.data for p in w.out] == [BYE]
    assert w.codes() == {"tcp-unfinished": 1}


# -- TcpConnection: HTTP -----------------------------------------------------------------------------------

GET1 = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
GET2 = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
HEAD = b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
R1 = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
R2 = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo"
R3 = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"


def test_http_pipelining_pairs_responses_in_order():
    w = Wire(b="10.0.0.2:80")
    w.send(C, GET1 + GET2)
    w.send(C, HEAD)
    w.send(w.b, R1 + R2[:10])
    w.send(w.b, R2[10:] + R3)
    w.close()
    b = w.b
    assert w.out == [Payload(GET1, (4,), 0.4, C, b, "tcp"), Payload(GET2, (4,), 0.4, C, b, "tcp"),
                     Payload(HEAD, (5,), 0.5, C, b, "tcp"),
                     Payload(R1, (6,), 0.6, b, C, "tcp", reply_to=4),
                     Payload(R2, (6, 7), 0.7, b, C, "tcp", reply_to=4),
                     Payload(R3, (7,), 0.7, b, C, "tcp", reply_to=5)]
    assert w.codes() == {}


def test_http_body_until_close_completes_at_fin():
    w = Wire(b="10.0.0.2:80")
    w.send(C, GET1)
    body = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"z" * 3000
    w.send(w.b, body[:1400])
    w.send(w.b, body[1400:2800])
    w.send(w.b, body[2800:], flags=FIN | ACK)
    assert w.out[-1] == Payload(body, (5, 6, 7), 0.7, w.b, C, "tcp", reply_to=4)
