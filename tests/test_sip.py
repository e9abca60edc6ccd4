"""SIP parsing, start-line sniffing and Payload -> Message (analyzer/messages/sip.py, parse.py)."""

from __future__ import annotations

import random

import pytest

from analyzer.messages.decode import to_message
from analyzer.messages.multipart import body_parts, find_part
from analyzer.messages.parse import MalformedMessage
from analyzer.messages.sip import parse_sip
from analyzer.messages.xml import parse_xml
from analyzer.transport.records import Payload
from analyzer.transport.startline import looks_like_start_line

CRLF = b"\r\n"


def sip(*lines: str, body: bytes = b"", eol: bytes = CRLF) -> bytes:
    return eol.join(line.encode() for line in lines) + eol + eol + body


DIALOG = ("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", "From: <sip:alice@mcx.example>;tag=1",
          "To: <sip:psi@mcx.example>", "Call-ID: abc@10.0.0.1", "CSeq: 1 INVITE")

GROUP_INVITE_BODY = (
    b"--invite\r\nContent-Type: application/sdp\r\n\r\n"
    b"v=0\r\nm=audio 37514 RTP/AVP 0\r\nm=application 44396 udp MCPTT\r\n"
    b"a=fmtp:MCPTT mc_priority=7;mc_granted;mc_implicit_request\r\n"
    b"\r\n--invite\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n"
    b'<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><session-type>prearranged</session-type>'
    b'<mcptt-request-uri type="Normal"><mcpttURI>sip:DEMO_group@mcx.example</mcpttURI></mcptt-request-uri>'
    b"</mcptt-Params></mcpttinfo>\r\n--invite--\r\n"
)


def group_invite() -> bytes:
    return sip(
        "INVITE sip:mcptt-psi@mcx.example SIP/2.0",
        *DIALOG,
        'Contact: <sip:ue@10.0.0.1:5060>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt";'
        "+g.3gpp.mcptt",
        "Accept-Contact: *;+g.3gpp.mcptt;require;explicit",
        'Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt";require;explicit',
        "Answer-Mode: Auto",
        "P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.mcptt",
        "Content-Type: multipart/mixed;boundary=invite",
        f"Content-Length: {len(GROUP_INVITE_BODY)}",
        body=GROUP_INVITE_BODY,
    )


def test_group_invite_end_to_end():
    msg = parse_sip(group_invite())
    assert (msg.proto, msg.kind, msg.method) == ("sip", "request", "INVITE")
    assert msg.uri == "sip:mcptt-psi@mcx.example"
    assert msg.status is None and msg.reason is None
    assert msg.junk == 0 and msg.problems == ()
    assert msg.headers.get("call-id") == "abc@10.0.0.1"
    assert len(msg.headers.getall("accept-contact")) == 2
    assert msg.body == GROUP_INVITE_BODY
    parts = body_parts(msg.headers.get("content-type"), msg.body)
    info = parse_xml(find_part(parts, "mcptt-info+xml").body)
    assert info.text("mcptt-request-uri") == "sip:DEMO_group@mcx.example"
    assert find_part(parts, "sdp").body.startswith(b"v=0\r\n")


def test_compact_forms_expand_to_long_names():
    data = sip("MESSAGE sip:b@x SIP/2.0", "v: SIP/2.0/UDP h;branch=z9hG4bK2", "f: <sip:a@x>;tag=1",
               "t: <sip:b@x>", "i: cid", "CSeq: 1 MESSAGE", "m: <sip:a@h>", "c: text/plain", "l: 2",
               "e: gzip", "s: hi", "k: path", "a: *;+g.3gpp.mcptt", "o: presence", "u: presence",
               "r: <sip:c@x>", "b: <sip:a@x>", "x: 1800", "y: sig", "j: *;audio", "d: proxy",
               "n: <https://id>", body=b"ok")
    headers = dict(parse_sip(data).headers)
    assert headers == {
        "via": "SIP/2.0/UDP h;branch=z9hG4bK2", "from": "<sip:a@x>;tag=1", "to": "<sip:b@x>",
        "call-id": "cid", "cseq": "1 MESSAGE", "contact": "<sip:a@h>", "content-type": "text/plain",
        "content-length": "2", "content-encoding": "gzip", "subject": "hi", "supported": "path",
        "accept-contact": "*;+g.3gpp.mcptt", "event": "presence", "allow-events": "presence",
        "refer-to": "<sip:c@x>", "referred-by": "<sip:a@x>", "session-expires": "1800", "identity": "sig",
        "reject-contact": "*;audio", "request-disposition": "proxy", "identity-info": "<https://id>",
    }


def test_header_names_any_case_and_space_before_colon():
    data = sip("OPTIONS sip:x SIP/2.0", "CALL-ID: one", "cseq: 2 OPTIONS", "FrOm: <sip:a@x>",
               "To : <sip:x>", "V: SIP/2.0/TCP h", "I : ignored-second-call-id")
    msg = parse_sip(data)
    assert msg.headers.getall("call-id") == ["one", "ignored-second-call-id"]
    assert msg.headers.get("CSeq") == "2 OPTIONS"
    assert msg.headers.get("to") == "<sip:x>"
    assert msg.headers.get("via") == "SIP/2.0/TCP h"
    assert msg.problems == ()


def test_repeated_and_comma_folded_headers():
    data = sip("INVITE sip:x SIP/2.0", "Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa, "
               "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb", "Via: SIP/2.0/TCP [2001:db8::3]:5061;branch=z9hG4bKc",
               'Contact: "Doe, John" <sip:john@[2001:db8::9]:5060>;expires=60, <sip:j2@h>',
               *DIALOG[1:])
    headers = parse_sip(data).headers
    assert headers.getall("via") == [
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb",
        "SIP/2.0/TCP [2001:db8::3]:5061;branch=z9hG4bKc"]
    assert headers.getall("via", split=True) == [
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb",
        "SIP/2.0/TCP [2001:db8::3]:5061;branch=z9hG4bKc"]
    assert headers.getall("contact", split=True) == ['"Doe, John" <sip:john@[2001:db8::9]:5060>;expires=60',
                                                     "<sip:j2@h>"]


def test_folded_lines_are_joined_with_one_space():
    data = sip("NOTIFY sip:x SIP/2.0", *DIALOG, "Subject: first", "   second  ", "\tthird",
               "Allow: INVITE,", " ACK")
    headers = parse_sip(data).headers
    assert headers.get("subject") == "first second third"
    assert headers.getall("allow", split=True) == ["INVITE", "ACK"]
    assert headers.get("call-id") == "abc@10.0.0.1"


def test_folding_keeps_the_text_of_blank_and_crlf_continuation_lines():
    # one space per fold, as re.sub(r"[ \t]*\r?\n[ \t]+", " ") gives: a blank continuation line adds one
    data = sip("NOTIFY sip:x SIP/2.0", *DIALOG, "Subject: a \t", "   ", "\t b", "Warning: 399 h", ' "t"')
    headers = parse_sip(data).headers
    assert headers.get("subject") == "a  b"
    assert headers.get("warning") == '399 h "t"'


def test_folded_header_with_a_long_run_of_blanks():
    data = sip("NOTIFY sip:x SIP/2.0", *DIALOG, "Subject: a" + " " * 60_000 + "y", " z")
    assert parse_sip(data).headers.get("subject") == "a" + " " * 60_000 + "y z"


def test_lf_only_line_ends():
    data = sip("REGISTER sip:mcx.example SIP/2.0", *DIALOG, "Content-Length: 4", "Subject: a", " b",
               body=b"body", eol=b"\n")
    msg = parse_sip(data)
    assert msg.method == "REGISTER"
    assert msg.headers.get("subject") == "a b"
    assert msg.headers.get("content-length") == "4"
    assert msg.body == b"body"
    assert msg.problems == ()


def test_mixed_line_ends():
    data = b"SIP/2.0 200 OK\r\nCall-ID: x\nCSeq: 1 BYE\r\n\nbody"
    msg = parse_sip(data)
    assert msg.headers.get("call-id") == "x"
    assert msg.headers.get("cseq") == "1 BYE"
    assert msg.body == b"body"


def test_junk_glued_to_the_method():
    # Two stray bytes in front of the method, as a broken middlebox leaves them.
    msg = parse_sip(b"DBREGISTER sip:1.1.1.1:5060 SIP/2.0\r\nExpires: 3600\r\n\r\n")
    assert (msg.method, msg.uri, msg.junk) == ("REGISTER", "sip:1.1.1.1:5060", 2)
    assert msg.headers.get("expires") == "3600"


def test_junk_longest_known_method_wins():
    msg = parse_sip(b"XPRACK sip:a@b SIP/2.0\r\n\r\n")
    assert (msg.method, msg.junk) == ("PRACK", 1)


def test_unknown_extension_method_is_kept():
    msg = parse_sip(b"FOO sip:a@b SIP/2.0\r\n\r\n")
    assert (msg.method, msg.junk) == ("FOO", 0)


def test_junk_lines_and_binary_before_the_start_line():
    junk = b"\x00\x01garbage\xff\r\nmore junk\r\n"
    msg = parse_sip(junk + b"\x00\x00" + sip("INVITE sip:x SIP/2.0", *DIALOG))
    assert msg.junk == len(junk) + 2
    assert msg.method == "INVITE"


def test_leading_crlf_keepalives_are_not_junk():
    msg = parse_sip(b"\r\n\r\n" + sip("SIP/2.0 200 OK", *DIALOG))
    assert msg.junk == 0
    assert msg.status == 200


def test_content_length_shorter_cuts_the_body():
    msg = parse_sip(sip("MESSAGE sip:x SIP/2.0", *DIALOG, "Content-Length: 5", body=b"hello\r\nextra"))
    assert msg.body == b"hello"
    assert msg.problems == ("7 bytes after Content-Length 5 ignored",)


def test_content_length_longer_is_a_problem_not_an_error():
    msg = parse_sip(sip("MESSAGE sip:x SIP/2.0", *DIALOG, "l: 50", body=b"short"))
    assert msg.body == b"short"
    assert msg.problems == ("Content-Length 50 but only 5 body bytes",)


def test_bad_content_length_is_a_problem():
    msg = parse_sip(sip("MESSAGE sip:x SIP/2.0", *DIALOG, "Content-Length: ten", body=b"abc"))
    assert msg.body == b"abc"
    assert msg.problems == ("bad Content-Length 'ten'",)


def test_no_content_length_keeps_all_bytes():
    msg = parse_sip(sip("MESSAGE sip:x SIP/2.0", *DIALOG, body=b"\r\nall\r\n"))
    assert msg.body == b"\r\nall\r\n"


@pytest.mark.parametrize("line, status, reason", [
    ("SIP/2.0 200 OK", 200, "OK"),
    ("SIP/2.0 180 Ringing", 180, "Ringing"),
    ("SIP/2.0 487 Request Terminated", 487, "Request Terminated"),
    ("SIP/2.0 100", 100, ""),
    ("SIP/2.0 603 Décliné", 603, "Décliné"),
    ("SIP/2.0 200 OK  \t ", 200, "OK"),
    ("SIP/2.0 200 " + " " * 60_000 + "OK", 200, "OK"),
    ("xx SIP/2.0 200 SIP/2.0 404 Not Found", 200, "SIP/2.0 404 Not Found"),
])
def test_responses(line, status, reason):
    msg = parse_sip(sip(line, *DIALOG))
    assert (msg.kind, msg.status, msg.reason, msg.method, msg.uri) == ("response", status, reason, None, None)


def test_ipv6_literals_are_kept_intact():
    msg = parse_sip(sip("SUBSCRIBE sip:cms1.example.net SIP/2.0",
                        "Via: SIP/2.0/UDP [5555::aaa:bbb:ccc:ddd]:1357;comp=sigcomp;branch=z9hG4bKnashds7",
                        "Contact: <sip:[5555::aaa:bbb:ccc:ddd]:1357;comp=sigcomp>", *DIALOG[1:]))
    assert msg.headers.get("via") == ("SIP/2.0/UDP [5555::aaa:bbb:ccc:ddd]:1357;comp=sigcomp;"
                                      "branch=z9hG4bKnashds7")
    assert msg.headers.get("contact") == "<sip:[5555::aaa:bbb:ccc:ddd]:1357;comp=sigcomp>"


def test_request_uri_may_be_ipv6_or_tel():
    assert parse_sip(b"INVITE sip:[2001:db8::1]:5060 SIP/2.0\r\n\r\n").uri == "sip:[2001:db8::1]:5060"
    assert parse_sip(b"INVITE tel:+8212345 SIP/2.0\r\n\r\n").uri == "tel:+8212345"
    assert parse_sip("INVITE sip:zoë@x SIP/2.0\r\n\r\n".encode()).uri == "sip:zoë@x"


def test_start_line_with_a_long_run_of_blanks_before_its_end():
    assert parse_sip(sip("INVITE sip:x SIP/2.0" + " \t" * 30_000, *DIALOG)).method == "INVITE"
    with pytest.raises(MalformedMessage, match="no SIP start line"):
        parse_sip(sip("INVITE sip:x SIP/2.0" + " " * 60_000 + "x"))


def test_status_line_cannot_hide_behind_a_cr_inside_its_line():
    # a reason phrase holds no CR: the line is junk, and the request after it is the message
    msg = parse_sip(b"SIP/2.0 200 OK\rjunk\r\n" + sip("BYE sip:x SIP/2.0", *DIALOG))
    assert (msg.kind, msg.method, msg.junk) == ("request", "BYE", 21)


def test_header_line_without_colon_is_reported_and_skipped():
    msg = parse_sip(sip("BYE sip:x SIP/2.0", *DIALOG, "this is not a header", "Reason: SIP;cause=200"))
    assert msg.headers.get("reason") == "SIP;cause=200"
    assert msg.problems == ("header line without a name ignored: 'this is not a header'",)


def test_many_header_lines_without_colon_are_counted_after_the_first_ten():
    msg = parse_sip(sip("BYE sip:x SIP/2.0", *DIALOG, *(f"junk {i}" for i in range(1000))))
    assert len(msg.problems) == 11
    assert msg.problems[9] == "header line without a name ignored: 'junk 9'"
    assert msg.problems[10] == "990 more header lines without a name ignored"


def test_missing_mandatory_headers_are_reported():
    msg = parse_sip(sip("OPTIONS sip:x SIP/2.0", "Call-ID: a"))
    assert msg.problems == ("missing mandatory header(s): cseq, from, to, via",)


def test_missing_blank_line_is_reported():
    msg = parse_sip(b"OPTIONS sip:x SIP/2.0\r\n" + CRLF.join(d.encode() for d in DIALOG) + CRLF)
    assert msg.headers.get("cseq") == "1 INVITE"
    assert msg.body == b""
    assert msg.problems == ("no blank line after the headers",)


def test_non_utf8_header_bytes_fall_back_to_latin1():
    msg = parse_sip(sip("MESSAGE sip:x SIP/2.0", *DIALOG).replace(b"To: <sip:", b"To: \xe9t\xe9 <sip:"))
    assert msg.headers.get("to") == "été <sip:psi@mcx.example>"
    assert msg.problems == ("header bytes are not UTF-8; decoded as latin-1",)


def test_utf8_display_name():
    data = sip("MESSAGE sip:x SIP/2.0", *DIALOG, 'P-Asserted-Identity: "Zoë" <sip:z@x>')
    assert parse_sip(data).headers.get("p-asserted-identity") == '"Zoë" <sip:z@x>'


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\x00\x00\x00",  # frame 1 of zeek's sip-junk-before-request.pcap
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"INVITE sip:x SIP/3.0\r\n\r\n",
    b"invite sip:x SIP/2.0\r\n\r\n",
    b"INVITE nouri SIP/2.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"SIP/2.0 OK\r\n\r\n",
    b"SIP/2.0 999 Nope\r\n\r\n",
], ids=["empty", "zeek-frame1", "tls", "bad-version", "lower-method", "no-scheme", "http", "no-code",
        "bad-code"])
def test_not_sip_raises_malformed(data):
    with pytest.raises(MalformedMessage) as caught:
        parse_sip(data)
    assert caught.value.code == "malformed-sip"
    assert "\n" not in str(caught.value)


def test_random_bytes_raise_only_malformed():
    rng = random.Random(3261)
    for _ in range(300):
        data = rng.randbytes(300)
        with pytest.raises(MalformedMessage):
            parse_sip(data)


# --- start-line sniffing -----------------------------------------------------------------------------

@pytest.mark.parametrize("data, proto", [
    (b"INVITE sip:psi@mcx.example SIP/2.0\r\nVia: x\r\n", "sip"),
    (b"REGISTER sip:[2001:db8::1] SIP/2.0\n", "sip"),
    (b"SIP/2.0 200 OK\r\n", "sip"),
    (b"SIP/2.0 100 Trying", "sip"),
    (b"SIP/2.0 180\r\n", "sip"),
    (b"GET /xcap-root/x HTTP/1.1\r\nHost: h\r\n", "http"),
    (b"POST /oidc/token HTTP/1.0\r\n", "http"),
    (b"PUT * HTTP/1.1\r\n", "http"),
    (b"HTTP/1.1 200 OK\r\n", "http"),
    (b"HTTP/1.0 304 Not Modified\r\n", "http"),
])
def test_looks_like_start_line_true(data, proto):
    assert looks_like_start_line(data) == proto


@pytest.mark.parametrize("data", [
    b"",
    b"\x80\x00\x12\x34\x00\x00\x00\x01\xde\xad\xbe\xef" + b"\x00" * 160,  # RTP, PCMU
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)),  # TLS ClientHello
    b"GET",
    b"GET / HTTP/1.1",  # incomplete request line: no line end yet
    b"invite sip:x SIP/2.0\r\n",
    b"get / HTTP/1.1\r\n",
    b"INVITE sip:x SIP/2.0 trailing\r\n",
    b"INVITE x SIP/2.0\r\n",
    b"PROPFIND / HTTP/1.1\r\n",  # sniffing knows only the common HTTP methods
    b"SIP/2.0 2000 OK\r\n",
    b"HTTP/1.1 OK\r\n",
    b"HTTP/2 200\r\n",
    b"\r\nINVITE sip:x SIP/2.0\r\n",
    b"AAAA" + b"\xff" * 50,
])
def test_looks_like_start_line_false(data):
    assert looks_like_start_line(data) is None


def test_looks_like_start_line_rejects_random_bytes():
    rng = random.Random(7118)
    hits = [d for d in (rng.randbytes(64) for _ in range(5000)) if looks_like_start_line(d)]
    assert hits == []


# --- Payload -> Message ------------------------------------------------------------------------------

def payload(data: bytes, **extra) -> Payload:
    fields = {"frames": (3, 4), "time": 12.5, "src": "[2001:db8::1]:5060", "dst": "10.0.0.2:5060",
              "transport": "tcp"}
    return Payload(data=data, **(fields | extra))


def test_to_message_copies_payload_fields():
    message, parsed = to_message(payload(group_invite(), framing="websocket"))
    assert (message.proto, message.kind, message.method) == ("sip", "request", "INVITE")
    assert message.frames == (3, 4) and message.frame == 4
    assert (message.time, message.src, message.dst, message.transport, message.framing) == (
        12.5, "[2001:db8::1]:5060", "10.0.0.2:5060", "tcp", "websocket")
    assert message.call_id == "abc@10.0.0.1"
    assert message.cseq == "1 INVITE"
    assert message.body == parsed.body == GROUP_INVITE_BODY
    assert message.headers is parsed.headers


def test_to_message_http_with_reply_to():
    message, _ = to_message(payload(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", reply_to=2))
    assert (message.proto, message.kind, message.status, message.reply_to) == ("http", "response", 200, 2)
    assert message.call_id is None


def test_to_message_detects_protocol_after_junk():
    message, parsed = to_message(payload(b"\x00junk\r\nxxHTTP/1.1 404 Not Found\r\n\r\n"))
    assert (message.proto, message.status, parsed.junk) == ("http", 404, 9)
    message, parsed = to_message(payload(b"DBREGISTER sip:1.1.1.1:5060 SIP/2.0\r\nExpires: 3600\r\n\r\n"))
    assert (message.proto, message.method, parsed.junk) == ("sip", "REGISTER", 2)


def test_to_message_malformed_names_the_frame():
    with pytest.raises(MalformedMessage) as caught:
        to_message(payload(b"\x00\x00\x00\x00"))
    assert str(caught.value) == "frame 4: no SIP or HTTP start line in 4 bytes"
