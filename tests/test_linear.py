"""Every path that reads attacker-controlled text is linear: each case times its worst input shape at
~10 KB and ~1 MB and asserts the ratio (tests/linear.py). A few cases use smaller sizes, still 100x apart:
YAML (PyYAML reads ~100 KB/s), and paths with a cap below 1 MB (a header section, a JWT, a form).

The shapes are the ones that made regexes or loops super-linear here or in parsers like these: runs of
blanks where a pattern allows them on both sides of something optional, a line full of the token a search
anchors on, a header folded thousands of times, long parameter lists and quoted strings, many parts or
elements that a lookup rescans. A case calls the public entry point a capture reaches, never a helper.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.errors import InputError
from analyzer.base.yamlfile import parse_yaml
from analyzer.meaning.mcfacts import (
    affiliation_set,
    bearer_token_claims,
    contacts,
    mc_info,
    mc_service,
    name_addr,
    reasons,
    recipients,
    refer_to,
    referred,
    target_dialog,
    token_request,
    uri_parts,
    warnings,
    xcap_target,
)
from analyzer.meaning.systems import SystemMap
from analyzer.meaning.transactions import TransactionTracker
from analyzer.messages.decode import to_message
from analyzer.messages.multipart import body_parts
from analyzer.messages.parse import MalformedBody, MalformedMessage
from analyzer.messages.records import Headers, Message
from analyzer.messages.select import MessageFilter
from analyzer.messages.xml import XmlRejected, parse_xml
from analyzer.rules import load_rule
from analyzer.synth.scenario import parse_scenario
from analyzer.transport.buffer import NEED_DATA
from analyzer.transport.framing import MessageFramer
from analyzer.transport.records import Payload
from analyzer.transport.resync import find_start_line, start_line_protocol
from analyzer.transport.tls import parse_client_hello
from analyzer.transport.websocket import WebSocketFramer
from tests.linear import assert_linear

FIELDS = {b"Via": b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", b"From": b"<sip:a@x>;tag=1",
          b"To": b"<sip:b@x>", b"Call-ID": b"c@x", b"CSeq": b"1 INVITE"}
HEAD = b"".join(b"%s: %s\r\n" % item for item in FIELDS.items())
INVITE = b"INVITE sip:psi@x SIP/2.0\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    func: Callable
    make: Callable[[int], object]
    small: int = 10_000
    large: int = 1_000_000


def payload(data: bytes) -> Payload:
    return Payload(data, (1,), 0.0, "10.0.0.1:5060", "10.0.0.2:5060", "tcp")


def decode(data: bytes):
    """A payload as the pipeline decodes it; a message with no start line is an answer too."""
    try:
        return to_message(payload(data))[0]
    except MalformedMessage as exc:
        return exc


def message(*lines: bytes, body: bytes = b"", start: bytes = INVITE) -> Message:
    return to_message(payload(start + HEAD + b"".join(lines) + b"\r\n" + body))[0]


def sip_with(name: bytes, value: Callable[[int], bytes]) -> Callable[[int], Message]:
    """Inputs for a case: a SIP request whose ``name`` header (added, or replacing the usual one) has a
    value of about ``n`` bytes."""
    def make(n: int) -> Message:
        fields = FIELDS | {name: value(n)}
        return to_message(payload(INVITE + b"".join(b"%s: %s\r\n" % item for item in fields.items())
                                  + b"\r\n"))[0]
    return make


def multipart(body: bytes, ctype: bytes = b"multipart/mixed;boundary=b") -> tuple[str, bytes]:
    return ctype.decode(), body


def parts(args):
    try:
        return body_parts(*args)
    except MalformedBody as exc:
        return exc


def xml(data: bytes):
    try:
        return parse_xml(data)
    except (XmlRejected, MalformedBody) as exc:
        return exc


def xml_message(ctype: bytes, doc: bytes, start: bytes = INVITE, *lines: bytes) -> Message:
    return message(*lines, b"Content-Type: " + ctype + b"\r\n", body=doc, start=start)


def frame_all(data: bytes) -> list:
    framer = MessageFramer(Diagnostics(), "x")
    framer.receive_data(data, 1, 0.0)
    out = []
    while (m := framer.next_message()) is not NEED_DATA:
        out.append(m)
    return out + framer.close()


def ws(data: bytes) -> list:
    framer = WebSocketFramer(Diagnostics(), "x")
    framer.receive_data(data, 1, 0.0)
    out = []
    while (m := framer.next_message()) is not NEED_DATA:
        out.append(m)
    return out


def ws_frame(payload: bytes, opcode: int, fin: bool) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    head += bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    return head + payload


def client_hello(extensions: bytes) -> bytes:
    body = b"\x03\x03" + b"r" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(extensions)) + extensions
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"".join(b"\x16\x03\x01" + struct.pack("!H", len(hs[i:i + 16384])) + hs[i:i + 16384]
                    for i in range(0, len(hs), 16384))


def yaml_text(text: str):
    try:
        return parse_yaml(text)
    except InputError as exc:
        return exc


def jwt(n: int) -> str:
    def piece(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{piece({'alg': 'none'})}.{piece({'sub': 'x' * n, 'iss': 'i'})}.sig"


def rule_file(tmp_dir):
    def make(n: int) -> str:
        steps = "".join(f"  - id: s{i}\n    match:\n      - {{kind: affiliation, group: $group}}\n"
                        for i in range(n // 60))
        path = tmp_dir / f"rule-{n}.yaml"
        path.write_text("id: r\ntitle: t\nspec: s\ninstance:\n  anchor: {kind: affiliation}\n"
                        "  bind: {group: group}\nsteps:\n" + steps)
        return str(path)
    return make


def scenario(n: int) -> str:
    ues = "".join(f"  u{i}:\n    instance: urn:uuid:{i}\n    client_id: c{i}\n    identities:\n"
                  f"      A: {{mc_id: sip:u{i}@a.example, impu: sip:u{i}@a.example, address: 10.0.{i // 250}"
                  f".{i % 250 + 1}}}\n" for i in range(n // 160))
    return ("name: s\nsystems:\n  A: {domain: a.example, sip_server: 10.10.0.10, primary: true}\nues:\n" + ues
            + "timeline:\n  - {at: 1, do: register, ue: u0, system: A}\n")


def systems_file(tmp_dir):
    def make(n: int) -> str:
        path = tmp_dir / f"systems-{n}.yaml"
        path.write_text("systems:\n  A:\n    domains:\n" + "".join(f"      - d{i}.a.example\n"
                                                                     for i in range(n // 22)))
        return str(path)
    return make


def http_get(target: str) -> Message:
    return Message("http", "request", "GET", target, None, None, Headers([("host", "x")]), b"", (1,), 0.0,
                   "10.0.0.1:1", "10.0.0.2:80", "tcp")


def tracker_feed(msg: Message):
    return TransactionTracker().feed(msg)


def junk_search(junk: bytes) -> tuple[int, int]:
    return find_start_line(junk, 0, len(junk))


def _start() -> list[Case]:
    """Start lines: the shapes that took 9-22 s per 60 KB, and the search for a start line after junk."""
    return [
        Case("status-line-blanks", decode, lambda n: b"SIP/2.0 200 " + b" " * n + b"x\r\n" + HEAD + b"\r\n"),
        Case("status-line-blanks-before-cr", decode,
             lambda n: b"SIP/2.0 200 OK" + b" \t" * (n // 2) + b"\rx\r\n" + HEAD + b"\r\n"),
        Case("request-line-blanks", decode,
             lambda n: b"INVITE sip:a@x SIP/2.0" + b"\t " * (n // 2) + b"\r\n" + HEAD + b"\r\n"),
        Case("request-line-blanks-then-junk", decode,
             lambda n: b"INVITE sip:a@x SIP/2.0" + b" " * n + b"x\r\n"),
        Case("status-markers-before-cr", decode,
             lambda n: b"SIP/2.0 200 " * (n // 12) + b"\rX\r\n" + INVITE + HEAD + b"\r\n"),
        Case("http-status-markers", decode, lambda n: b"HTTP/1.1 200 " * (n // 13) + b"\rX\r\n\r\n"),
        Case("junk-lines-before-start", decode,
             lambda n: b"junk SIP/2.0 x\r\n" * (n // 16) + INVITE + HEAD + b"\r\n"),
        Case("capitals-glued-to-method", decode,
             lambda n: b"A" * n + b" sip:a@x SIP/2.0\r\n" + HEAD + b"\r\n"),
        Case("long-request-uri", decode,
             lambda n: b"INVITE sip:" + b"a" * n + b" SIP/2.0\r\n" + HEAD + b"\r\n"),
        Case("http-long-target", decode,
             lambda n: b"GET /" + b"a/" * (n // 2) + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        # one line as long as the input (max_line follows it): linear in the line, not just in lines
        Case("framer-junk-status-markers", junk_search, lambda n: b"SIP/2.0 200 " * (n // 12) + b"\rX\n"),
        Case("framer-junk-glued-versions", junk_search, lambda n: b"SIP/2.0" * (n // 7) + b"\n"),
        Case("framer-junk-request-words", junk_search, lambda n: b"a " * (n // 2) + b"HTTP/1.1 SIP/2.0\n"),
        Case("framer-junk-then-message", frame_all,
             lambda n: b"x SIP/2.0 y\r\n" * (n // 13) + INVITE + HEAD + b"Content-Length: 0\r\n\r\n"),
        Case("start-line-protocol-blanks", start_line_protocol,
             lambda n: b"SIP/2.0 200 " + b" " * n + b"\r\n"),
    ]


def _heads() -> list[Case]:
    """Header sections, and the header values the MC extractors and the transaction tracker read."""
    def head(lines: Callable[[int], bytes]) -> Callable[[int], bytes]:
        return lambda n: INVITE + HEAD + lines(n) + b"\r\n"

    return [
        Case("folded-header-many-times", decode, head(lambda n: b"Subject: a\r\n" + b" b\r\n" * (n // 5))),
        Case("folded-header-long-blanks", decode,
             head(lambda n: b"Subject: a" + b" " * n + b"y\r\n \t z\r\n")),
        Case("header-lines-without-colon", decode, head(lambda n: b"no colon\r\n" * (n // 10))),
        Case("many-headers", decode, head(lambda n: b"X-A: b\r\n" * (n // 8))),
        Case("long-header-name", decode, head(lambda n: b"X" * n + b": v\r\n")),
        Case("content-length-list", decode, lambda n: INVITE + HEAD + b"Content-Length: " + b"1," * (n // 2)
             + b"1\r\n\r\nx"),
        Case("framer-many-headers", frame_all, head(lambda n: b"l: 0\r\n" + b"X: y\r\n" * (n // 6)),
             500, 50_000),  # under the 64 KB head cap
        Case("warning-text-blanks", warnings, sip_with(b"Warning", lambda n: b'399 h "' + b" " * n + b'" x')),
        Case("warning-mc-code-blanks", warnings,
             sip_with(b"Warning", lambda n: b'399 h "1234 a' + b" " * n + b'b"')),
        Case("warning-escapes", warnings, sip_with(b"Warning", lambda n: b'399 h "' + b'\\"' * (n // 2))),
        Case("reason-parameters", reasons,
             sip_with(b"Reason", lambda n: b'SIP;text="' + b"a;b " * (n // 8) + b'"' + b";p=1" * (n // 8))),
        Case("contact-parameters", contacts,
             sip_with(b"Contact", lambda n: b'"A \\" b" <sip:a@x>' + b";p=1" * (n // 4))),
        Case("contact-list", contacts, sip_with(b"Contact", lambda n: b"<sip:a@x>;q=1, " * (n // 15)),
             5_000, 500_000),
        Case("tel-uri-parameters", name_addr, lambda n: "tel:+1" + ";p=1;tag=2" * (n // 10)),
        Case("quoted-display-name", name_addr, lambda n: '"' + '\\"' * (n // 2) + '" <sip:a@x>'),
        Case("sip-uri-parameters", uri_parts, lambda n: "sip:a:pw@[::1]:5060" + ";p=1" * (n // 4) + "?s=x"),
        Case("feature-tags", mc_service,
             sip_with(b"Accept-Contact", lambda n: b"*" + b";+g.3gpp.mcptt" * (n // 14))),
        Case("via-parameters", tracker_feed,
             sip_with(b"Via", lambda n: b"SIP/2.0/UDP h" + b" " * n + b";branch=z" + b";p=1" * (n // 4))),
        Case("from-tag-blanks", tracker_feed,
             sip_with(b"From", lambda n: b"<sip:a@x>;" + b"; " * (n // 2) + b"tag" + b" " * (n // 2) + b"x")),
        Case("user-filter", MessageFilter(user="zz"),
             sip_with(b"P-Asserted-Identity", lambda n: b"<sip:a@x>, " * (n // 11))),
        Case("xcap-path", xcap_target, lambda n: http_get(  # longer than a start line allows: built directly
            "/xcap-root/" + "seg%41/" * (n // 14) + "org.3gpp.mcptt.user-profile/users/sip:a@x/"
            + "~~/" * (n // 6))),
        Case("jwt-bearer-token", bearer_token_claims, lambda n: to_message(payload(
            b"GET / HTTP/1.1\r\nAuthorization: Bearer " + jwt(n).encode() + b"\r\n\r\n"))[0],
             100, 10_000),  # under the 16 KB token cap
    ]


def _bodies() -> list[Case]:
    """Multipart and XML bodies, forms; and the bytes the framer and WebSocket/TLS readers go through."""
    return [
        Case("refer-to-uri-headers", refer_to,
             sip_with(b"Refer-To", lambda n: b"<sip:G1@x;method=BYE?" + b"a=%41&" * (n // 6) + b">")),
        Case("refer-to-embedded-body", lambda m: referred(m, refer_to(m)), sip_with(
            b"Refer-To", lambda n: b"<sip:G1@x?Content-Type=application%2Fvnd.3gpp.mcptt-info%2Bxml&body="
            b"%3Cmcpttinfo%3E" + b"%3Cx%3Ey%3C%2Fx%3E" * (n // 18) + b"%3C%2Fmcpttinfo%3E>")),
        Case("target-dialog-parameters", target_dialog,
             sip_with(b"Target-Dialog", lambda n: b"c@h" + b';p="1;2"' * (n // 8))),
        Case("multipart-many-parts", parts, lambda n: multipart(
            b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n" * (n // 45) + b"--b--\r\n")),
        Case("multipart-preamble", parts,
             lambda n: multipart(b"--bX\n--b x\n" * (n // 12) + b"\r\n--b\r\n\r\nx")),
        Case("multipart-long-boundary", parts, lambda n: multipart(
            b"--" + b"b" * n + b"\r\n\r\nx\r\n--" + b"b" * n + b"--",
            b'multipart/mixed;boundary="' + b"b" * n + b'"')),
        Case("multipart-parts-without-blank-line", parts, lambda n: multipart(
            b"--b\r\n" + b"X-A: b\r\n" * (n // 8) + b"data\r\n--b--")),
        Case("multipart-content-type-params", parts, lambda n: multipart(
            b"--b\r\n\r\nx\r\n--b--", b"multipart/mixed;boundary=b" + b';a="\\" ;"' * (n // 9))),
        Case("sdp-body", decode, lambda n: INVITE + HEAD + b"Content-Type: application/sdp\r\n\r\n"
             + b"a=fmtp:MCPTT mc_priority=7\r\n" * (n // 28)),
        Case("xml-many-elements", xml, lambda n: b"<a>" + b"<b c='d'>e</b>" * (n // 14) + b"</a>"),
        Case("xml-declaration-blanks", xml, lambda n: b"<?xml version='1.0'" + b" " * n + b"?><a/>"),
        Case("mcptt-info-many-params", mc_info, lambda n: xml_message(
            b"application/vnd.3gpp.mcptt-info+xml",
            b"<mcpttinfo><mcptt-Params>" + b"<mcptt-client-id>c</mcptt-client-id>" * (n // 37)
            + b"</mcptt-Params></mcpttinfo>")),
        Case("affiliation-command-many-verbs", affiliation_set, lambda n: xml_message(
            b"application/vnd.3gpp.mcptt-affiliation-command+xml",
            b"<c>" + b"<affiliate/><group>g</group>" * (n // 28) + b"</c>", b"MESSAGE sip:a@x SIP/2.0\r\n")),
        Case("recipient-list-many-entries", recipients, lambda n: xml_message(
            b"application/resource-lists+xml",
            b"<resource-lists><list>" + b"".join(b'<entry uri="sip:u%d@x"/>' % i for i in range(n // 24))
            + b"</list></resource-lists>", INVITE, b"Content-Disposition: recipient-list\r\n")),
        Case("token-request-form", token_request, lambda n: to_message(payload(
            b"POST /token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
            + b"scope=a+b&" * (n // 10)))[0], 600, 60_000),  # under the 64 KB form cap
        Case("framer-chunked-many-chunks", frame_all, lambda n: b"POST / HTTP/1.1\r\nTransfer-Encoding: "
             b"chunked\r\n\r\n" + b"1;e=xxxxxxxxxx\r\na\r\n" * (n // 19) + b"0\r\n\r\n"),
        Case("websocket-fragments", ws, lambda n: ws_frame(b"INVITE ", 1, False)
             + ws_frame(b"x" * 100, 0, False) * (n // 102) + ws_frame(b"\r\n", 0, True)),
        Case("websocket-many-messages", ws, lambda n: ws_frame(b"x" * 30, 1, True) * (n // 32)),
        Case("tls-client-hello-extensions", parse_client_hello, lambda n: client_hello(
            b"\x00\x17\x00\x00" * (n // 4) + b"\x00\x00\x00\x08\x00\x06\x00\x00\x03a.b"),
             600, 60_000),  # under the 64 KB hello cap
    ]


def _yaml() -> list[Case]:
    """Rule, scenario, systems and expect files all go through ``parse_yaml`` (PyYAML: ~100 KB/s)."""
    def small(case_id: str, func: Callable, make: Callable[[int], object]) -> Case:
        return Case(case_id, func, make, 500, 50_000)

    return [
        small("yaml-many-keys", yaml_text, lambda n: "".join(f"k{i}: v\n" for i in range(n // 8))),
        small("yaml-long-flow-list", yaml_text, lambda n: "a: [" + "1, " * (n // 3) + "]\n"),
        small("yaml-blank-runs", yaml_text,
              lambda n: "a: b" + " " * n + "\n# " + " " * n + "\nc: " + " " * n + "d\n"),
        small("yaml-quoted-escapes", yaml_text, lambda n: 'a: "' + "\\\\ \\t" * (n // 5) + '"\n'),
        small("yaml-folded-scalar", yaml_text, lambda n: "a: x" + "\n  y" * (n // 4) + "\n"),
        small("yaml-nested-flow", yaml_text, lambda n: "[" * 70 + "x" * n + "]" * 70),
        small("scenario-many-ues", parse_scenario, scenario),
    ]


CASES = _start() + _heads() + _bodies() + _yaml()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_text_path_is_linear(case):
    assert_linear(case.func, case.make, case.small, case.large)


def test_rule_and_systems_files_are_linear(tmp_path):
    assert_linear(load_rule, rule_file(tmp_path), 500, 50_000)
    assert_linear(SystemMap.from_file, systems_file(tmp_path), 500, 50_000)


def test_assert_linear_catches_a_quadratic_function():
    def quadratic(text: str) -> int:
        return sum(text.count(c, i) for i, c in enumerate(text[::50]))  # ~n/50 scans of the text

    with pytest.raises(AssertionError, match="super-linear"):
        assert_linear(quadratic, lambda n: "ab" * (n // 2), 2_000, 200_000)
