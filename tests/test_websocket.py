"""RFC 6455 frames and RFC 7118 SIP over WebSocket, framer alone and behind an HTTP upgrade."""

from __future__ import annotations

import os
import zlib

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.buffer import NEED_DATA
from analyzer.transport.records import Payload
from analyzer.transport.websocket import WebSocketFramer, WsMessage, unmask
from tests.feeding import FRAME, TIME, Wire, feed_three_ways
from tests.test_framing import BYE, INVITE, OK

C, S = "10.0.0.1:40000", "10.0.0.2:8080"
REGISTER = (b"REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK1\r\n"
            b"From: <sip:alice@example.org>;tag=1\r\nTo: <sip:alice@example.org>\r\nCall-ID: r1\r\n"
            b"CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
K1, K2, K3 = b"\x37\xfa\x21\x3d", b"\x00\xff\x10\x01", b"\xa5\x5a\xc3\x3c"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def ws_frame(payload: bytes, opcode: int = TEXT, *, fin: bool = True, mask: bytes | None = None,
             rsv: int = 0) -> bytes:
    """Encode one frame with the shortest length form (the test's own per-byte masking, on purpose)."""
    n = len(payload)
    flag = 0x80 if mask else 0
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([flag | n])
    elif n < 1 << 16:
        head += bytes([flag | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([flag | 127]) + n.to_bytes(8, "big")
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def msg(data: bytes, text: bool = True) -> WsMessage:
    return WsMessage(data, (FRAME,), TIME, text)


def make(diag):
    return WebSocketFramer(diag, "c → s")


def test_unmask_matches_the_definition():
    for n in (0, 1, 3, 4, 5, 1000, 70001):
        data = os.urandom(n)
        assert unmask(data, K1) == bytes(b ^ K1[i % 4] for i, b in enumerate(data))


@pytest.mark.parametrize("payload", [REGISTER[:100], REGISTER, REGISTER + b"x" * 70000])
def test_masked_message_with_7_16_and_64_bit_lengths(payload):
    frame = ws_frame(payload, mask=K1)
    assert frame[1] & 0x7F == (100 if len(payload) == 100 else 126 if len(payload) < 65536 else 127)
    diag = feed_three_ways(make, frame, [msg(payload)], follow=ws_frame(BYE), follow_expected=[msg(BYE)])
    assert diag.total == 0


def test_fragmented_message_with_a_ping_in_between():
    data = (ws_frame(INVITE[:50], fin=False, mask=K1) + ws_frame(b"hi", PING, mask=K2)
            + ws_frame(INVITE[50:300], CONT, fin=False, mask=K3) + ws_frame(INVITE[300:], CONT, mask=K1)
            + ws_frame(b"", PONG))
    diag = feed_three_ways(make, data, [msg(INVITE)], follow=ws_frame(OK, BINARY),
                           follow_expected=[msg(OK, False)])
    assert diag.total == 0


def test_close_frame_ends_the_direction():
    data = ws_frame(REGISTER) + ws_frame(b"\x03\xe8", CLOSE) + ws_frame(BYE)
    diag = feed_three_ways(make, data, [msg(REGISTER)])
    assert diag.summary() == {"malformed-websocket": 1}
    assert "bytes after a Close frame" in diag.records[0].message


@pytest.mark.parametrize("bad, why", [
    (b"\x83\x00", "reserved opcode 0x3"),
    (b"\x09\x00", "fragmented or over-long control frame"),
    (b"\x89\x7e\x00\x80" + b"p" * 128, "fragmented or over-long control frame"),
    (b"\xc1\x02hi", "reserved bits"),
    (b"\x81\x7f\x80\x00\x00\x00\x00\x00\x00\x01", "top bit"),
])
def test_broken_frame_skips_the_rest(bad, why):
    diag = feed_three_ways(make, ws_frame(REGISTER) + bad, [msg(REGISTER)], follow=ws_frame(BYE))
    assert diag.summary() == {"malformed-websocket": 1}
    assert why in diag.records[0].message


def test_continuation_without_start_is_dropped_but_framing_holds():
    diag = feed_three_ways(make, ws_frame(b"orphan", CONT) + ws_frame(REGISTER), [msg(REGISTER)],
                           follow=ws_frame(BYE), follow_expected=[msg(BYE)])
    assert diag.summary() == {"malformed-websocket": 1}


def test_permessage_deflate_with_context_takeover():
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)

    def compressed(data: bytes) -> bytes:
        out = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    first, second = compressed(REGISTER), compressed(REGISTER)  # the second refers back to the first
    assert len(second) < len(first) // 2
    data = ws_frame(first, rsv=0x40, mask=K1) + ws_frame(second[:5], rsv=0x40, fin=False) \
        + ws_frame(second[5:], CONT)
    diag = feed_three_ways(lambda d: WebSocketFramer(d, deflate=True), data, [msg(REGISTER), msg(REGISTER)])
    assert diag.total == 0


def test_new_message_cutting_one_short_then_failing_to_inflate_is_two_diagnostics():
    """Found by fuzzing: the first drop moved the buffer start and the second used the old end (an
    IndexError, the capture lost)."""
    data = ws_frame(b"partial", fin=False) + ws_frame(b"\xff\xff\xff\xff", rsv=0x40) + ws_frame(REGISTER)
    diag = Diagnostics()
    framer = WebSocketFramer(diag, "c → s", deflate=True)
    framer.receive_data(data, 7, 0.5)
    assert framer.next_message() == WsMessage(REGISTER, (7,), 0.5, True)
    assert [d.message for d in diag.records] == [
        "c → s: new message started before the previous one ended; message discarded",
        "c → s: permessage-deflate payload does not inflate (Error -3 while decompressing data: invalid "
        "block type); message discarded"]
    assert framer.close() == [] and diag.total == 2


def test_gap_loses_the_framing():
    diag = Diagnostics()
    f = WebSocketFramer(diag)
    f.receive_data(ws_frame(REGISTER)[:50], 1, 0.1)
    lost = f.gap(10)
    assert lost.size == 50 and lost.frames == (1,)
    f.receive_data(ws_frame(BYE), 2, 0.2)
    assert f.next_message() is NEED_DATA  # nothing after a gap: frame boundaries are unknown
    assert f.close() == [] and diag.total == 0  # the connection reports the gap, not the framer


# -- behind an HTTP upgrade --------------------------------------------------------------------------------

UPGRADE = (b"GET / HTTP/1.1\r\nHost: proxy.example.org\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n")


def test_upgrade_then_sip_over_websocket():
    w = Wire(C, S)
    w.send(C, UPGRADE)  # frame 4
    w.send(S, SWITCH + ws_frame(OK))  # frame 5: the first server message rides with the 101
    w.send(C, ws_frame(REGISTER, mask=K1))  # frame 6
    first, second = ws_frame(INVITE[:200], fin=False, mask=K2), ws_frame(INVITE[200:], CONT, mask=K3)
    w.send(C, first + second[:5])  # frame 7
    w.send(C, second[5:])  # frame 8
    w.close()
    assert w.out == [
        Payload(UPGRADE, (4,), 0.4, C, S, "tcp"),
        Payload(SWITCH, (5,), 0.5, S, C, "tcp", reply_to=4),
        Payload(OK, (5,), 0.5, S, C, "tcp", "websocket"),
        Payload(REGISTER, (6,), 0.6, C, S, "tcp", "websocket"),
        Payload(INVITE, (7, 8), 0.8, C, S, "tcp", "websocket"),
    ]
    assert w.codes() == {}


def test_upgrade_with_deflate_negotiated():
    w = Wire(C, S)
    w.send(C, UPGRADE)
    w.send(S, SWITCH.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = (deflater.compress(REGISTER) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
    w.send(C, ws_frame(body, rsv=0x40, mask=K1))
    assert w.out[-1] == Payload(REGISTER, (6,), 0.6, C, S, "tcp", "websocket")


def test_refused_upgrade_goes_on_as_http():
    w = Wire(C, S)
    w.send(C, UPGRADE + b"GET /next HTTP/1.1\r\n\r\n")
    refused = b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n"
    w.send(S, refused)
    assert [p.data[:14] for p in w.out] == [UPGRADE[:14], refused[:14], b"GET /next HTTP"]


def test_websocket_message_that_is_not_sip():
    w = Wire(C, S)
    w.send(C, UPGRADE)
    w.send(S, SWITCH)
    w.send(C, ws_frame(b'{"jsonrpc": "2.0"}', mask=K1))
    assert len(w.out) == 2 and w.codes() == {"unsupported-protocol": 1}


def test_switch_to_another_protocol_is_skipped():
    w = Wire(C, S)
    w.send(C, b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n")
    w.send(S, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
    w.send(C, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert len(w.out) == 2 and w.codes() == {"unsupported-protocol": 1}
