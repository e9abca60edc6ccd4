"""HTTP/1.x message parsing (analyzer/messages/http.py)."""

from __future__ import annotations

import pytest

from analyzer.messages.http import parse_http
from analyzer.messages.parse import MalformedMessage

PROFILE = b'<?xml version="1.0"?><mcptt-user-profile xmlns="urn:3gpp:mcptt:user-profile:1.0"/>'


def test_cms_get_request():
    data = (b"GET /xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@mcx.example/mcptt-user-profile.xml "
            b"HTTP/1.1\r\nHost: cms.mcx.example\r\nAuthorization: Bearer eyJhbGciOi.x.y\r\n"
            b'If-None-Match: "etag-1"\r\nContact-Type: application/xml\r\n\r\n')
    msg = parse_http(data)
    assert (msg.proto, msg.kind, msg.method) == ("http", "request", "GET")
    assert msg.uri == ("/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@mcx.example/"
                       "mcptt-user-profile.xml")
    assert msg.status is None and msg.reason is None
    assert msg.headers.get("authorization") == "Bearer eyJhbGciOi.x.y"
    assert msg.headers.get("if-none-match") == '"etag-1"'
    # A non-conformant client's misspelt header is kept as sent, not mistaken for Content-Type.
    assert msg.headers.get("contact-type") == "application/xml"
    assert "content-type" not in msg.headers
    assert msg.body == b"" and msg.problems == () and msg.junk == 0


def test_response_with_body():
    data = (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.3gpp.mcptt-user-profile+xml\r\n"
            b'ETag: "etag-2"\r\nContent-Length: ' + str(len(PROFILE)).encode() + b"\r\n\r\n" + PROFILE)
    msg = parse_http(data)
    assert (msg.kind, msg.status, msg.reason) == ("response", 200, "OK")
    assert msg.headers.get("content-type") == "application/vnd.3gpp.mcptt-user-profile+xml"
    assert msg.body == PROFILE
    assert msg.problems == ()


def test_names_lower_cased_without_compact_forms():
    msg = parse_http(b"HTTP/1.1 204 No Content\r\nX-Request-ID: 7\r\nc: not-content-type\r\n\r\n")
    assert dict(msg.headers) == {"x-request-id": "7", "c": "not-content-type"}


def test_repeated_headers_and_comma_split():
    msg = parse_http(b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVary: Accept, Origin\r\n"
                     b"Content-Length: 0\r\n\r\n")
    assert msg.headers.getall("set-cookie") == ["a=1", "b=2"]
    assert msg.headers.getall("vary", split=True) == ["Accept", "Origin"]


def test_not_modified_has_no_body_even_with_content_length():
    msg = parse_http(b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 120\r\n\r\n')
    assert (msg.status, msg.body, msg.problems) == (304, b"", ())


def test_bytes_after_a_bodiless_status_are_reported():
    msg = parse_http(b"HTTP/1.1 204 No Content\r\n\r\nstray")
    assert msg.body == b""
    assert msg.problems == ("5 bytes after a 204 response ignored",)


def test_empty_response_body_with_content_length_is_not_a_problem():
    # Likely the answer to a HEAD request: the headers describe a body that is not sent.
    msg = parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n")
    assert (msg.body, msg.problems) == (b"", ())


def test_short_request_body_is_a_problem():
    msg = parse_http(b"PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert msg.body == b"abc"
    assert msg.problems == ("Content-Length 10 but only 3 body bytes",)


def test_long_body_is_cut_to_content_length():
    msg = parse_http(b"POST /token HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcdef")
    assert msg.body == b"abc"
    assert msg.problems == ("3 bytes after Content-Length 3 ignored",)


def test_dechunked_body_without_content_length_is_kept_whole():
    msg = parse_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + PROFILE)
    assert msg.body == PROFILE
    assert msg.headers.get("transfer-encoding") == "chunked"


def test_lf_only_and_obsolete_folding():
    msg = parse_http(b"GET / HTTP/1.0\nHost: a\nX-Long: one\n two\n\n")
    assert msg.headers.get("host") == "a"
    assert msg.headers.get("x-long") == "one two"


def test_websocket_upgrade_response():
    msg = parse_http(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Protocol: sip\r\n\r\n")
    assert (msg.status, msg.reason) == (101, "Switching Protocols")
    assert msg.headers.get("sec-websocket-protocol") == "sip"


def test_extension_method_is_parsed():
    assert parse_http(b"PROPFIND /dav HTTP/1.1\r\n\r\n").method == "PROPFIND"


def test_junk_before_start_line():
    msg = parse_http(b"\x00\x00GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (msg.method, msg.junk) == ("GET", 2)


def test_start_line_after_junk_on_its_line_and_blanks_before_its_end():
    msg = parse_http(b"x HTTP/1.1 200 HTTP/1.1 204 No Content" + b" " * 50_000 + b"\r\n\r\n")
    assert (msg.status, msg.reason, msg.junk) == (200, "HTTP/1.1 204 No Content", 2)
    msg = parse_http(b"--\tGET_X /a HTTP/1.1 \t\r\n\r\n")
    assert (msg.method, msg.uri, msg.junk) == ("GET_X", "/a", 3)


@pytest.mark.parametrize("data", [
    b"",
    b"\x16\x03\x01\x00\x05hello",
    b"GET /\r\n\r\n",  # HTTP/0.9
    b"HTTP/2 200\r\n\r\n",
    b"INVITE sip:x SIP/2.0\r\n\r\n",
    b"get / HTTP/1.1\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",  # a target longer than 8 KB
    b"GET / HTTP/1.1" + b" " * 60_000 + b"x\r\n\r\n",
])
def test_not_http_raises_malformed(data):
    with pytest.raises(MalformedMessage) as caught:
        parse_http(data)
    assert caught.value.code == "malformed-http"
    assert "\n" not in str(caught.value)
