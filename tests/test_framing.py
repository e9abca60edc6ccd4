"""SIP/HTTP message framing: every case fed whole, byte by byte and followed by the next message."""

from __future__ import annotations

import os

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.transport.buffer import NEED_DATA, FramingLimits, Lost
from analyzer.transport.framing import MessageFramer
from analyzer.transport.records import FramedMessage
from analyzer.transport.resync import find_start_line, start_line_protocol
from tests.feeding import FRAME, TIME, drain, feed_three_ways

SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
INVITE = (b"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\n"
          b"Call-ID: a1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
          b"Content-Length: %d\r\n\r\n" % len(SDP) + SDP)
OK = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\n" \
     b"Content-Length: 0\r\n\r\n"
BYE = b"BYE sip:bob@example.org SIP/2.0\r\nCall-ID: a1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
GET = b"GET /profile HTTP/1.1\r\nHost: cms.example.org\r\n\r\n"


def sip(data: bytes, method: str | None = None, status: int | None = None) -> FramedMessage:
    return FramedMessage(data, (FRAME,), TIME, "sip", method, status)


def http(data: bytes, method: str | None = None, status: int | None = None, **kw) -> FramedMessage:
    return FramedMessage(data, (FRAME,), TIME, "http", method, status, **kw)


def framer(limits: FramingLimits | None = None, requests=()):
    def make(diag):
        f = MessageFramer(diag, "c → s", limits or FramingLimits())
        for method, frame in requests:
            f.expect_response(method, frame)
        return f
    return make


# -- SIP --------------------------------------------------------------------------------------------------

SIP_CASES = {
    "one message with a body": (INVITE, [sip(INVITE, "INVITE")]),
    "two messages in one segment": (INVITE + OK, [sip(INVITE, "INVITE"), sip(OK, status=200)]),
    "sipfrag body holding a status line": (
        b"NOTIFY sip:a@b SIP/2.0\r\nContent-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\n"
        b"SIP/2.0 200 OK\r\n",
        [sip(b"NOTIFY sip:a@b SIP/2.0\r\nContent-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\n"
             b"SIP/2.0 200 OK\r\n", "NOTIFY")]),
    "compact l header, any case": (
        b"MESSAGE sip:a@b SIP/2.0\r\nL :  5\r\n\r\nhello",
        [sip(b"MESSAGE sip:a@b SIP/2.0\r\nL :  5\r\n\r\nhello", "MESSAGE")]),
    "lower-case content-length": (
        b"MESSAGE sip:a@b SIP/2.0\r\ncontent-LENGTH:3\r\n\r\nabc",
        [sip(b"MESSAGE sip:a@b SIP/2.0\r\ncontent-LENGTH:3\r\n\r\nabc", "MESSAGE")]),
    "bare LF line ends": (
        b"OPTIONS sip:a@b SIP/2.0\nContent-Length: 2\n\nhi",
        [sip(b"OPTIONS sip:a@b SIP/2.0\nContent-Length: 2\n\nhi", "OPTIONS")]),
    "status line without reason phrase": (
        b"SIP/2.0 100\r\nContent-Length: 0\r\n\r\n", [sip(b"SIP/2.0 100\r\nContent-Length: 0\r\n\r\n",
                                                         status=100)]),
}


@pytest.mark.parametrize("data, expected", SIP_CASES.values(), ids=SIP_CASES.keys())
def test_sip_framing(data, expected):
    diag = feed_three_ways(framer(), data, expected, follow=BYE, follow_expected=[sip(BYE, "BYE")])
    assert diag.total == 0


def test_crlf_keepalives_between_messages_are_skipped():
    data = b"\r\n\r\n" + INVITE + b"\r\n" + OK + b"\r\n\r\n"
    diag = feed_three_ways(framer(), data, [sip(INVITE, "INVITE"), sip(OK, status=200)],
                           follow=BYE, follow_expected=[sip(BYE, "BYE")])
    assert diag.total == 0


def test_missing_content_length_means_empty_body_with_diagnostic():
    head = b"ACK sip:bob@example.org SIP/2.0\r\nCall-ID: a1\r\nCSeq: 1 ACK\r\n\r\n"
    diag = feed_three_ways(framer(), head, [sip(head, "ACK")], follow=BYE, follow_expected=[sip(BYE, "BYE")])
    assert diag.summary() == {"sip-no-content-length": 1}
    assert diag.records[0].frames == (FRAME,)


def test_junk_before_start_line_is_skipped_and_reported():
    data = b"\x00\x01garbage\r\nmore junk\r\n" + INVITE
    diag = feed_three_ways(framer(), data, [sip(INVITE, "INVITE")], follow=BYE,
                           follow_expected=[sip(BYE, "BYE")])
    assert diag.summary() == {"junk-before-message": 1}
    assert "22 bytes skipped" in diag.records[0].message


def test_junk_glued_to_the_request_line():
    """Zeek's sip-junk-before-request: no line break between the junk and the method."""
    data = b"\x16\xfe\xffjunkREGISTER sip:example.org SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    message = data[7:]
    diag = feed_three_ways(framer(), data, [sip(message, "REGISTER")], follow=BYE,
                           follow_expected=[sip(BYE, "BYE")])
    assert diag.summary() == {"junk-before-message": 1}


@pytest.mark.parametrize("value", [b"-5", b"abc", b"12, 13", b"99999999999999999999"])
def test_bad_content_length_discards_message_and_resyncs(value):
    bad = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: " + value + b"\r\n\r\nbody"
    diag = feed_three_ways(framer(), bad + b"\r\n" + INVITE, [sip(INVITE, "INVITE")],
                           follow=BYE, follow_expected=[sip(BYE, "BYE")])
    assert diag.counts["malformed-sip"] == 1
    assert diag.counts["junk-before-message"] == 1  # the rest of the bad message, up to the INVITE


def test_duplicate_equal_content_lengths_are_fine():
    data = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 2\r\nl: 2\r\n\r\nhi"
    diag = feed_three_ways(framer(), data, [sip(data, "MESSAGE")], follow=BYE,
                           follow_expected=[sip(BYE, "BYE")])
    assert diag.total == 0


def test_unfinished_message_at_close_is_reported():
    diag = feed_three_ways(framer(), INVITE[:-10], [])
    assert diag.summary() == {"tcp-unfinished": 1}


def test_header_section_cap():
    limits = FramingLimits(max_line=256, max_head=300, max_body=1000)
    huge = b"MESSAGE sip:a@b SIP/2.0\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n" + b"X-Pad: b\r\n" * 20
    diag = feed_three_ways(framer(limits), huge + b"\r\n" + BYE, [sip(BYE, "BYE")], follow=OK,
                           follow_expected=[sip(OK, status=200)])
    assert diag.counts["malformed-sip"] == 1
    assert "header section longer than 300 bytes" in diag.records[0].message


def test_body_over_cap_is_skipped_by_length():
    limits = FramingLimits(max_line=256, max_head=1024, max_body=100)
    big = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 500\r\n\r\n" + b"SIP/2.0 200 OK\r\n" * 31 + b"xxxx"
    diag = feed_three_ways(framer(limits), big + BYE, [sip(BYE, "BYE")], follow=OK,
                           follow_expected=[sip(OK, status=200)])
    assert diag.summary() == {"malformed-sip": 1}  # the skip is exact: no junk after it


@pytest.mark.parametrize("junk", [
    os.urandom(1 << 20),
    b"SIP/2.0" * 150000,  # version tokens with no line end
    b"HTTP/1.1 2xx " * 80000,
    (b"X" * 9000 + b" SIP/2.0\r\n") * 100,  # request-like lines longer than a start line may be
], ids=["random", "markers", "bad-status", "long-lines"])
def test_garbage_never_grows_the_buffer(junk):
    f = MessageFramer(diag := Diagnostics())
    for i in range(0, len(junk), 1400):
        f.receive_data(junk[i:i + 1400], i, 0.0)
        assert f.next_message() is NEED_DATA
        assert f.buffered <= FramingLimits().max_line + 1400
    f.receive_data(b"\r\n" + INVITE, 1, 0.0)
    assert drain(f) == [FramedMessage(INVITE, (1,), 0.0, "sip", "INVITE")]
    assert diag.counts["junk-before-message"] == 1


def test_gap_discards_partial_message_then_resyncs():
    diag = Diagnostics()
    f = MessageFramer(diag)
    f.receive_data(INVITE[:100], 1, 0.1)
    assert f.next_message() is NEED_DATA
    assert f.gap(50) == Lost(100, (1,))
    f.receive_data(INVITE[150:] + BYE, 2, 0.2)
    assert drain(f) == [FramedMessage(BYE, (2,), 0.2, "sip", "BYE")]
    assert diag.summary() == {"junk-before-message": 1}
    assert "after a TCP gap" in diag.records[0].message


def test_gap_inside_a_skipped_body_keeps_sync():
    diag = Diagnostics()
    f = MessageFramer(diag, limits=FramingLimits(max_body=10))
    f.receive_data(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 100\r\n\r\n" + b"x" * 20, 1, 0.1)
    assert f.next_message() is NEED_DATA
    assert f.gap(50) is None
    f.receive_data(b"y" * 30 + BYE, 2, 0.2)
    assert drain(f) == [FramedMessage(BYE, (2,), 0.2, "sip", "BYE")]
    assert diag.summary() == {"malformed-sip": 1}


def test_frames_and_time_follow_the_bytes():
    diag = Diagnostics()
    f = MessageFramer(diag)
    f.receive_data(INVITE[:40], 1, 0.1)
    f.receive_data(INVITE[40:80], 2, 0.2)
    assert f.next_message() is NEED_DATA
    f.receive_data(INVITE[80:] + OK[:10], 3, 0.3)
    f.receive_data(OK[10:], 4, 0.4)
    assert drain(f) == [FramedMessage(INVITE, (1, 2, 3), 0.3, "sip", "INVITE"),
                        FramedMessage(OK, (3, 4), 0.4, "sip", None, 200)]


# -- HTTP -------------------------------------------------------------------------------------------------

XML = b"<?xml version='1.0'?><profile/>"
POST = b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(XML) + XML
RESP = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n" % len(XML) + XML
NEXT = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def test_http_requests():
    diag = feed_three_ways(framer(), GET + POST, [http(GET, "GET"), http(POST, "POST")],
                           follow=GET, follow_expected=[http(GET, "GET")])
    assert diag.total == 0


def test_http_responses_pair_with_requests_in_order():
    diag = feed_three_ways(framer(requests=[("GET", 3), ("GET", 4), ("GET", 9)]), RESP + NEXT,
                           [http(RESP, status=200, reply_to=3), http(NEXT, status=404, reply_to=4)],
                           follow=RESP, follow_expected=[http(RESP, status=200, reply_to=9)])
    assert diag.total == 0


def test_chunked_response_is_dechunked_with_extensions_and_trailer():
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\n<?xml\r\n"
               b"19 ; ext\r\n version='1.0'?><profile/\r\n"
               b"1\r\n>\r\n"
               b"0;last\r\nX-Checksum: 42\r\n\r\n")
    rewritten = (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nX-Checksum: 42\r\n"
                 b"Content-Length: 31\r\n\r\n" + XML)
    diag = feed_three_ways(framer(requests=[("GET", 3), ("GET", 4)]), chunked,
                           [http(rewritten, status=200, reply_to=3)],
                           follow=NEXT, follow_expected=[http(NEXT, status=404, reply_to=4)])
    assert diag.total == 0


def test_chunked_request_without_trailer():
    chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    rewritten = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    feed_three_ways(framer(), chunked, [http(rewritten, "POST")], follow=GET,
                    follow_expected=[http(GET, "GET")])


def test_bad_chunk_size_is_reported_and_resynced():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    diag = feed_three_ways(framer(), chunked + NEXT, [http(NEXT, status=404)])
    assert diag.counts["malformed-http"] == 1


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 304), ("GET", 204), ("GET", 101)])
def test_responses_without_body(method, status):
    head = b"HTTP/1.1 %d X\r\nContent-Length: 1234\r\n\r\n" % status
    if status == 101:
        head = b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 1234\r\n\r\n"
    diag = feed_three_ways(framer(requests=[(method, 5), ("GET", 6)]), head,
                           [http(head, status=status, reply_to=5)],
                           follow=NEXT, follow_expected=[http(NEXT, status=404, reply_to=6)])
    assert diag.total == 0


def test_interim_100_does_not_consume_the_request():
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    feed_three_ways(framer(requests=[("POST", 5), ("GET", 6)]), cont + RESP,
                    [http(cont, status=100, reply_to=5), http(RESP, status=200, reply_to=5)],
                    follow=NEXT, follow_expected=[http(NEXT, status=404, reply_to=6)])


def test_body_until_close():
    data = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this\r\nGET / HTTP/1.1\r\n\r\n"
    diag = feed_three_ways(framer(requests=[("GET", 5)]), data, [http(data, status=200, reply_to=5)])
    assert diag.total == 0


def test_connection_close_ends_the_stream():
    resp = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok"
    diag = feed_three_ways(framer(), resp + b"trailing", [http(resp, status=200, close=True)])
    assert diag.summary() == {"malformed-http": 1}
    assert "8 bytes after a message with 'Connection: close'" in diag.records[0].message


def test_upgrade_request_pauses_until_told():
    diag = Diagnostics()
    f = MessageFramer(diag)
    upgrade = b"GET / HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
    f.receive_data(upgrade + b"\x81\x85abcd", 1, 0.1)
    assert drain(f) == [FramedMessage(upgrade, (1,), 0.1, "http", "GET", upgrade="websocket")]
    assert f.paused
    assert f.pieces() == [(b"\x81\x85abcd", 1, 0.1)]


def test_upgrade_refused_resumes_http():
    diag = Diagnostics()
    f = MessageFramer(diag)
    upgrade = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"
    f.receive_data(upgrade + GET, 1, 0.1)
    assert len(drain(f)) == 1 and f.paused
    f.resume()
    assert drain(f) == [FramedMessage(GET, (1,), 0.1, "http", "GET")]


# -- start-line helpers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, protocol", [
    (INVITE, "sip"), (OK, "sip"), (GET, "http"), (NEXT, "http"), (b"SIP/2.0 200 OK", None),
    (b"GET / HTTP/2.0\r\n", None), (b"\x81\x85", None), (b"invite sip:a SIP/2.0\r\n", "sip"),
])
def test_start_line_protocol(data, protocol):
    assert start_line_protocol(data) == protocol


def test_find_start_line_waits_for_a_line_it_cannot_judge_yet():
    assert find_start_line(b"junk\r\nINVITE sip:a SIP/2.0", 0) == (-1, 19)
    assert find_start_line(b"junk\r\nINVITE sip:a SIP/2.0\r\n", 0) == (6, -1)
    assert find_start_line(b"xx SIP/2.0 hello\r\nSIP/2.0 180 Ringing\r\n", 0) == (18, -1)
    assert find_start_line(b"no marker in here", 0) == (-1, 9)


def test_a_diagnostic_over_the_kept_records_is_counted_without_its_message():
    """``Diagnostics.wants``: hot paths skip formatting what would not be kept, and the counts stay exact."""
    diag = Diagnostics(keep=2)
    for n in range(5):
        framer = MessageFramer(diag, f"a → b #{n}")
        framer.receive_data(b"INVITE sip:b SIP/2.0\r\nContent-Length: 99\r\n\r\n", n + 1, 0.0)
        assert framer.next_message() is NEED_DATA
        framer.close()
        assert framer.unfinished_frames == 1
    assert diag.counts["tcp-unfinished"] == 5
    assert [d.message.split(":")[0] for d in diag.records] == ["a → b #0", "a → b #1"]
