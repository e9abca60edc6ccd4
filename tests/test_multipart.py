"""Multipart body splitting (analyzer/messages/multipart.py)."""

from __future__ import annotations

import pytest

from analyzer.messages.multipart import (
    BodyParts,
    MalformedBody,
    body_parts,
    find_part,
    parse_content_type,
)
from analyzer.messages.xml import parse_xml

SDP = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
       b"m=audio 37514 RTP/AVP 0\r\nm=application 44396 udp MCPTT\r\n"
       b"a=fmtp:MCPTT mc_priority=7;mc_granted;mc_implicit_request\r\n")
INFO = (b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
        b'<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>'
        b"<session-type>private</session-type></mcptt-Params></mcpttinfo>")
LISTS = (b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>'
         b'<entry uri="sip:bob@mcx.example"/></list></resource-lists>')

PART_SDP = (b"application/sdp", b"", SDP)
PART_LISTS = (b"application/resource-lists+xml", b"Content-Disposition: recipient-list\r\n", LISTS)
PART_INFO = (b"application/vnd.3gpp.mcptt-info+xml", b"", INFO)


def multipart(boundary: bytes, parts, preamble=b"", epilogue=b"", eol=b"\r\n") -> bytes:
    out = preamble
    for ctype, extra, body in parts:
        out += b"--" + boundary + eol + b"Content-Type: " + ctype + eol + extra.replace(b"\r\n", eol)
        out += eol + body + eol
    return out + b"--" + boundary + b"--" + eol + epilogue


@pytest.mark.parametrize("order", [
    (PART_SDP, PART_LISTS, PART_INFO), (PART_INFO, PART_SDP, PART_LISTS), (PART_LISTS, PART_INFO, PART_SDP),
], ids=["mcop", "info-first", "lists-first"])
def test_private_call_parts_in_any_order(order):
    body = multipart(b"boundary1", order)
    parts = body_parts("multipart/mixed;boundary=boundary1", body)
    assert [p.content_type for p in parts] == [o[0].decode() for o in order]
    assert parts.problems == ()
    assert find_part(parts, "application/sdp").body == SDP
    info = find_part(parts, "mcptt-info+xml")
    assert info.body == INFO
    assert parse_xml(info.body).text("session-type") == "private"
    lists = find_part(parts, "resource-lists+xml")
    assert lists.disposition == "recipient-list"
    assert lists.body == LISTS


def test_quoted_boundary_with_special_characters_and_uppercase_param_name():
    boundary = b"----=_Part_0 1:2"
    body = multipart(boundary, [PART_SDP, PART_INFO])
    parts = body_parts('Multipart/Related; type="application/sdp"; BOUNDARY="----=_Part_0 1:2"', body)
    assert [p.content_type for p in parts] == ["application/sdp", "application/vnd.3gpp.mcptt-info+xml"]
    assert parts[0].body == SDP


def test_lf_only_line_ends():
    body = multipart(b"b1", [PART_SDP, PART_LISTS], eol=b"\n")
    parts = body_parts("multipart/mixed; boundary=b1", body)
    assert [p.content_type for p in parts] == ["application/sdp", "application/resource-lists+xml"]
    assert parts[1].disposition == "recipient-list"
    assert parts[1].body == LISTS


def test_preamble_and_epilogue_are_ignored():
    body = multipart(b"b1", [PART_INFO], preamble=b"This is a preamble.\r\n\r\n", epilogue=b"\r\nbye\r\n")
    parts = body_parts("multipart/mixed;boundary=b1", body)
    assert len(parts) == 1
    assert parts[0].body == INFO


def test_line_starting_with_the_boundary_is_not_a_delimiter():
    inner = b"--b10 is not our boundary\r\nsecond line"
    body = b"--b1\r\nContent-Type: text/plain\r\n\r\n" + inner + b"\r\n--b1--\r\n"
    parts = body_parts("multipart/mixed;boundary=b1", body)
    assert len(parts) == 1
    assert parts[0].body == inner


def test_transport_padding_after_delimiter_is_allowed():
    body = b"--b1  \t\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--  \r\n"
    parts = body_parts("multipart/mixed;boundary=b1", body)
    assert parts[0].body == b"hello"
    assert parts.problems == ()


def test_nested_multipart_is_flattened():
    inner = multipart(b"inner", [PART_SDP, PART_LISTS])
    body = multipart(b"outer", [PART_INFO, (b"multipart/related;boundary=inner", b"", inner)])
    parts = body_parts("multipart/mixed;boundary=outer", body)
    assert [p.content_type for p in parts] == ["application/vnd.3gpp.mcptt-info+xml", "application/sdp",
                                               "application/resource-lists+xml"]
    assert parts[2].body == LISTS


def test_missing_closing_delimiter_keeps_parts_and_reports():
    body = multipart(b"b1", [PART_SDP, PART_INFO]).rsplit(b"--b1--", 1)[0]
    parts = body_parts("multipart/mixed;boundary=b1", body)
    assert [p.content_type for p in parts] == ["application/sdp", "application/vnd.3gpp.mcptt-info+xml"]
    assert parts[1].body.rstrip(b"\r\n") == INFO
    assert any("closing delimiter" in p for p in parts.problems)


def test_missing_boundary_parameter_is_guessed_from_the_body():
    body = b"\r\n" + multipart(b"guess", [PART_INFO])
    parts = body_parts("multipart/mixed", body)
    assert parts[0].body == INFO
    assert any("without boundary parameter" in p for p in parts.problems)


def test_nothing_usable_raises_malformed_body():
    with pytest.raises(MalformedBody, match="without a boundary"):
        body_parts("multipart/mixed", b"just some text")
    with pytest.raises(MalformedBody, match="not found"):
        body_parts("multipart/mixed;boundary=zz", b"--other\r\n\r\nx\r\n--other--")


def test_a_long_boundary_is_quoted_short_in_problems():
    boundary = "b" * 100_000
    with pytest.raises(MalformedBody) as caught:
        body_parts(f"multipart/mixed;boundary={boundary}", b"no delimiter")
    assert caught.value.reason == f"multipart/mixed boundary '{'b' * 70}…' not found in the body"
    parts = body_parts(f'multipart/mixed;boundary="{boundary}"', f"--{boundary}\r\n\r\nx".encode())
    assert parts[0].body == b"x" and len(parts.problems[0]) < 130


def test_part_headers_without_blank_line_best_effort():
    # REFERENCE E1 shape: the XML follows the part's Content-Type line directly.
    body = (b"--b1\r\nContent-Type: application/pidf+xml\r\n<presence xmlns:m=\"urn:x\"><m:p/></presence>\r\n"
            b"--b1--\r\n")
    parts = body_parts("multipart/mixed;boundary=b1", body)
    assert parts[0].content_type == "application/pidf+xml"
    assert parts[0].body == b'<presence xmlns:m="urn:x"><m:p/></presence>'
    assert parts.problems == ("part 1: no blank line after its headers",)


def test_part_without_headers_defaults_to_text_plain():
    body = b"--b1\r\n\r\nplain words\r\n--b1--"
    parts = body_parts("multipart/mixed;boundary=b1", body)
    assert parts[0].content_type == "text/plain"
    assert len(parts[0].headers) == 0
    assert parts[0].body == b"plain words"


def test_part_headers_params_and_content_id():
    body = (b"--b1\r\ncontent-type: Application/SDP; charset=\"utf-8\"\r\nContent-ID: <sdp@x>\r\n\r\n"
            + SDP + b"\r\n--b1--")
    part = body_parts("multipart/mixed;boundary=b1", body)[0]
    assert part.content_type == "application/sdp"
    assert part.param("CHARSET") == "utf-8"
    assert part.param("missing") is None
    assert part.content_id == "<sdp@x>"


def test_non_multipart_body_is_one_part():
    parts = body_parts("application/vnd.3gpp.mcptt-info+xml; charset=UTF-8", INFO)
    assert isinstance(parts, BodyParts)
    assert len(parts) == 1
    assert parts[0].content_type == "application/vnd.3gpp.mcptt-info+xml"
    assert parts[0].param("charset") == "UTF-8"
    assert parts[0].body == INFO
    assert parts[0].headers.get("content-type").startswith("application/vnd.3gpp")


def test_body_without_content_type_is_one_untyped_part():
    parts = body_parts(None, b"x")
    assert [(p.content_type, p.body) for p in parts] == [("", b"x")]


def test_empty_body_has_no_parts():
    assert body_parts("multipart/mixed;boundary=b1", b"") == []
    assert body_parts(None, b"") == []


def test_find_part_returns_none_when_absent():
    parts = body_parts("application/sdp", SDP)
    assert find_part(parts, "mcptt-info+xml") is None


@pytest.mark.parametrize("value, expected", [
    ("multipart/mixed;boundary=b1", ("multipart/mixed", (("boundary", "b1"),))),
    ('multipart/mixed ; Boundary = "a;b=c" ; x', ("multipart/mixed", (("boundary", "a;b=c"), ("x", "")))),
    ('text/plain; q="say \\"hi\\""', ("text/plain", (("q", 'say "hi"'),))),
    ('a/b;x="unterminated \\" ;y=1', ("a/b", (("x", 'unterminated " ;y=1'),))),  # the quote runs to the end
    ("a/b;  ;=;p  =  v ; q", ("a/b", (("p", "v"), ("q", "")))),
    ("APPLICATION/SDP", ("application/sdp", ())),
    ("", ("", ())),
    (None, ("", ())),
])
def test_parse_content_type(value, expected):
    assert parse_content_type(value) == expected
