"""MC facts out of single messages (analyzer/mcfacts): the sample captures against their scenarios, the
real-world variants of REFERENCE.md §5, and hostile input that must never raise."""

from __future__ import annotations

import base64
import json
import random
import time
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from analyzer.base.diagnostics import CODES
from analyzer.engines.dpkt_engine import decode
from analyzer.meaning import mcfacts as F
from analyzer.meaning.mcfacts import common
from analyzer.meaning.mcfacts.records import PROBLEM_CODES
from analyzer.messages.floor import FloorMessage
from analyzer.messages.http import parse_http
from analyzer.messages.records import Headers, Message
from analyzer.messages.sip import parse_sip
from analyzer.synth import http as H
from analyzer.synth import load_scenario
from analyzer.synth.faults import step_times

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
REAL = SAMPLES / "real"
HOSTILE = Path(__file__).parent / "hostile"
SCENARIOS = sorted(p for p in SAMPLES.glob("*.yaml") if p.name != "expected.yaml")

ICSI = "urn:urn-7:3gpp-service.ims.icsi.mcptt"
ICSI_ENC = "urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt"


# --- helpers ------------------------------------------------------------------------------------------

def _message(parsed) -> Message:
    return Message(parsed.proto, parsed.kind, parsed.method, parsed.uri, parsed.status, parsed.reason,
                   parsed.headers, parsed.body, (1,), 0.0, "10.0.0.1:5060", "10.0.0.2:5060", "udp")


def _head(text: str) -> bytes:
    """Header lines, stripped; a line starting with ';' or after a line ending in ',' is folded (RFC 3261
    §7.3.1 continuation)."""
    lines: list[str] = []
    for line in (raw.strip() for raw in text.strip().splitlines()):
        if line:
            folded = lines and (line.startswith(";") or lines[-1].endswith(","))
            lines.append(" " + line if folded else line)
    return "\r\n".join(lines).encode() + b"\r\n\r\n"


def _body(body: bytes | str) -> bytes:
    if isinstance(body, str):
        body = "\r\n".join(line.strip() for line in body.strip().splitlines()).encode() + b"\r\n"
    return body


def sip(head: str, body: bytes | str = b"") -> Message:
    """A SIP message from header lines (indentation and blank lines ignored) and a body (lines stripped,
    CRLF); no Content-Length, so the parser takes the whole body."""
    return _message(parse_sip(_head(head) + _body(body)))


def http(head: str, body: bytes = b"") -> Message:
    return _message(parse_http(_head(head) + body))


def mixed(boundary: str, *parts: tuple[str, str | bytes]) -> str:
    """A multipart body: ``(part header lines, part body)`` each."""
    out = []
    for headers, body in parts:
        body = body.decode() if isinstance(body, bytes) else body
        out.append(f"--{boundary}\n{headers.strip()}\n\n{body.strip()}\n")
    return "".join(out) + f"--{boundary}--\n"


@cache
def messages(path: Path) -> tuple[Message, ...]:
    return tuple(m for m in decode(str(path)).items if isinstance(m, Message))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims: dict, header: dict | None = None) -> str:
    header = header or {"alg": "RS256", "typ": "JWT"}
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), "c2ln"])


MCPTT_INFO_WRAPPED = """<?xml version="1.0" encoding="UTF-8"?>
<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>
<session-type>Prearranged</session-type>
<mcptt-request-uri type="Normal"><mcpttURI>sip:G1@a.mcx.example</mcpttURI></mcptt-request-uri>
<mcptt-client-id type="Normal"><mcpttString>client-1</mcpttString></mcptt-client-id>
</mcptt-Params></mcpttinfo>"""

PIDF = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:mcpttPI10="urn:3gpp:ns:mcpttPresInfo:1.0"
 entity="sip:alice@a.mcx.example">
<tuple id="client-1"><status>
<mcpttPI10:affiliation group="sip:G1@a.mcx.example"/>
<mcpttPI10:affiliation group="sip:G2@a.mcx.example"/>
</status></tuple>
<mcpttPI10:p-id>alice-1</mcpttPI10:p-id>
</presence>"""

PUBLISH_HEAD = f"""PUBLISH sip:mcptt-participating@a.mcx.example SIP/2.0
Via: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK1
From: <sip:+491700000001@ims.a.mcx.example>;tag=1
To: <sip:mcptt-participating@a.mcx.example>
Call-ID: c1@10.1.0.5
CSeq: 1 PUBLISH
P-Preferred-Service: {ICSI}
Event: presence
Expires: 4294967295"""


# === the sample captures against their scenarios ===================================================

def _expected_sets(path: Path) -> dict[str, list[frozenset[str]]]:
    """Per MC service ID: the full group set of each affiliation PUBLISH the scenario sends, in order."""
    scenario = load_scenario(path)
    current: dict[tuple[str, str], tuple[str, ...]] = defaultdict(tuple)
    out: dict[str, list[frozenset[str]]] = defaultdict(list)
    for step, t in sorted(step_times(scenario.timeline), key=lambda st: st[1]):
        if scenario.truncate_at is not None and t >= scenario.truncate_at:
            continue
        key = (step.ue, step.system)
        if step.do == "affiliate":
            wanted = current[key] + tuple(g for g in step.groups if g not in current[key])
        elif step.do == "deaffiliate":
            wanted = () if step.all else tuple(g for g in current[key] if g not in step.groups)
        else:
            continue
        out[scenario.ues[step.ue].identities[step.system].mc_id].append(frozenset(wanted))
        if step.fault.error is None and not step.fault.no_answer:
            current[key] = wanted
    return out


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _capture(yaml_path: Path) -> Path:
    return yaml_path.with_suffix(".pcapng")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_affiliation_sets_follow_the_scenario(path):
    seen: set[str] = set()
    observed: dict[str, list[frozenset[str]]] = defaultdict(list)
    for m in messages(_capture(path)):
        if m.method == "PUBLISH" and m.call_id not in seen:  # retransmissions share the Call-ID
            seen.add(m.call_id)
            found = F.affiliation_set(m)
            if found is not None:
                assert found.kind == "publish"
                observed[found.entity].append(found.groups)
    assert dict(observed) == dict(_expected_sets(path))


def test_noisy_capture_affiliates_two_groups_then_clears_them():
    path = SAMPLES / "group-migration-noisy.pcapng"
    sets = [a for m in messages(path) if (a := F.affiliation_set(m)) is not None and a.kind == "publish"]
    first_copies = list(dict.fromkeys((a.entity, a.groups, a.p_id) for a in sets))
    assert [(e, g) for e, g, _ in first_copies] == [
        ("sip:dave@a.mcx.example", frozenset({"sip:G1@a.mcx.example", "sip:G2@a.mcx.example"})),
        ("sip:dave@a.mcx.example", frozenset()),
        ("sip:dave.b@b.mcx.example", frozenset({"sip:G1@b.mcx.example", "sip:G2@b.mcx.example"})),
    ]
    assert all(a.client == "ue1-mcptt-client" and a.service == "mcptt" and not a.clears for a in sets)
    notifies = [a for m in messages(path) if (a := F.affiliation_set(m)) is not None and a.kind == "notify"]
    statuses = [{(e.group, e.status) for e in a.entries} for a in notifies]
    assert {("sip:G1@a.mcx.example", "deaffiliating"), ("sip:G2@a.mcx.example", "deaffiliating")} in statuses
    assert {("sip:G1@b.mcx.example", "affiliated"), ("sip:G2@b.mcx.example", "affiliated")} in statuses
    assert all(e.client == "ue1-mcptt-client" and e.expires for a in notifies for e in a.entries)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_calls_registrations_and_retrievals_follow_the_scenario(path):
    scenario = load_scenario(path)
    msgs = messages(_capture(path))
    infos = [(m, i) for m in msgs if m.method == "INVITE" and (i := F.mc_info(m)) is not None]
    # calls over a pre-established session: the MC info and recipients ride in the REFER's Refer-To
    referred = [(m, *F.referred(m, F.refer_to(m))) for m in msgs if m.method == "REFER"]
    infos += [(m, i) for m, i, _ in referred if i is not None]
    listed = {id(m): F.recipients(m) for m, _ in infos} | {id(m): r for m, _, r in referred}
    sent = {s.index for s, t in step_times(scenario.timeline)
            if scenario.truncate_at is None or t < scenario.truncate_at}
    for step in scenario.timeline:
        if step.index not in sent:
            continue
        ue = scenario.ues[step.ue]
        ident = ue.identities.get(step.system)
        if step.do == "late-entry" and step.over == "pre-established":  # on the media plane
            assert any(c.message == "connect" and c.get("group_id") == step.group
                       for c in decode(str(_capture(path))).items if isinstance(c, FloorMessage)), step
        elif step.do == "late-entry" or (step.do == "group-call" and step.role == "receive"):
            assert any(i.calling_group_id == step.group and i.request_uri == ident.mc_id
                       and i.session_type == "prearranged" and F.contact_facts(m).isfocus
                       for m, i in infos), step
        elif step.do == "group-call":
            assert any(i.request_uri == step.group and i.session_type == step.type
                       and i.client_id == ue.client_id for _, i in infos), step
        elif step.do == "private-call" and step.role == "originate":
            assert any(listed[id(m)] == (step.peer,) and i.session_type == "private"
                       for m, i in infos), step
        elif step.do == "private-call":
            assert any(i.calling_user_id == step.peer and i.called_party_id == ident.mc_id
                       for _, i in infos), step
        elif step.do == "register":
            regs = [c for m in msgs if m.method == "REGISTER" and (c := F.contact_facts(m)) is not None
                    and c.address == _hostport(ident.address, ident.port)]
            assert regs and all(c.instance == ue.instance and c.expires == 600000 for c in regs), step
        elif step.do == "service-authorisation":
            pocs = [(F.poc_settings(m), F.mc_info(m)) for m in msgs if F.poc_settings(m) is not None]
            assert any(p.answer_mode == "automatic" and p.entity == ue.client_id and i.has_access_token
                       and i.request_uri == ident.mc_id and i.token_claims.mc_id == ident.mc_id
                       for p, i in pocs), step
        elif step.do == "profile-retrieval" and step.over == "http":
            targets = [(x, F.bearer_token_claims(m)) for m in msgs if (x := F.xcap_target(m)) is not None]
            assert any(x.is_user_profile and x.xui == ident.mc_id and x.service == ue.service
                       and x.host == scenario.systems[step.system].cms and c.mc_id == ident.mc_id
                       for x, c in targets), step
        elif step.do == "release" and step.reason == "migration":
            assert any(F.reason(m) == F.Reason("SIP", 200, "MC migration") for m in msgs
                       if m.method in ("BYE", "REFER"))
        if step.fault.warning:
            code = int(step.fault.warning.split()[0])
            assert any(w.code == 399 and w.mc_code == code for m in msgs for w in F.warnings(m)), step


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_mc_request_names_the_scenario_service(path):
    scenario = load_scenario(path)
    services = {ue.service for ue in scenario.ues.values()}
    methods = ("REGISTER", "PUBLISH", "SUBSCRIBE", "INVITE")
    mc = [m for m in messages(_capture(path)) if m.kind == "request" and m.method in methods]
    assert mc and {F.mc_service(m) for m in mc} == services
    assert all(F.mc_service(m) == F.mc_services(m)[0] for m in mc)


def test_mcvideo_capture_is_mcvideo_throughout():
    msgs = messages(SAMPLES / "mcvideo-group-migration.pcapng")
    methods = ("PUBLISH", "INVITE", "REGISTER", "GET")
    assert {F.mc_service(m) for m in msgs if m.method in methods} == {"mcvideo"}
    assert {i.service for m in msgs if (i := F.mc_info(m)) is not None} == {"mcvideo"}
    assert {a.service for m in msgs if (a := F.affiliation_set(m)) is not None} == {"mcvideo"}
    assert any(c.mcvideo_id == "sip:cam1.b@b.mcx.example" and c.mcptt_id is None
               for m in msgs if (c := F.bearer_token_claims(m)) is not None)


def test_real_stack_captures():
    udp = messages(REAL / "sipp-mcptt-udp.pcap")
    register = next(m for m in udp if m.method == "REGISTER")
    contact = F.contact_facts(register)
    assert (contact.instance, contact.expires, contact.address) == (
        "urn:gsma:imei:35209900-176148-1", 600000, "10.99.0.2:5060")
    assert {"g.3gpp.mcptt", "g.3gpp.icsi-ref", "sip.instance"} <= contact.feature_tags
    assert contact.icsi == (ICSI,) and contact.services == ("mcptt",)
    affil = [a for m in udp if (a := F.affiliation_set(m)) is not None]
    assert [(a.kind, a.entity, a.groups) for a in affil] == [
        ("publish", "sip:alice@mcx.example", frozenset({"sip:group-A@mcx.example"}))]
    invite = next(m for m in udp if m.method == "INVITE")
    info = F.mc_info(invite)
    assert (info.session_type, info.request_uri, info.client_id) == (
        "prearranged", "sip:group-A@mcx.example", "urn:uuid:4c1f2a0e-6b7d-4f3e-9a55-0d2c8e1b7a10")

    v6 = messages(REAL / "sipp-mcptt-tcp-ipv6.pcap")
    assert F.contact_facts(next(m for m in v6 if m.method == "REGISTER")).address == "[fd00:99::2]:5060"
    focus = F.contact_facts(next(m for m in v6 if m.status == 200 and "INVITE" in m.cseq))
    assert focus.isfocus and focus.uri.user == "gc-session-7f3a91" and focus.uri.host == "fd00:99::1"

    calls = messages(REAL / "sipp-mcptt-private-lateentry-udp.pcap")
    private, late = [m for m in calls if m.method == "INVITE"]
    assert F.recipients(private) == ("sip:bob@mcx.example",)
    assert F.mc_info(private).session_type == "private"
    late_info = F.mc_info(late)
    assert (late_info.calling_group_id, late_info.calling_user_id) == (
        "sip:group-A@mcx.example", "sip:carol@mcx.example")
    assert F.contact_facts(late).isfocus and F.mc_service(late) == "mcptt"

    gets = [m for m in messages(REAL / "nginx-profile-http.pcap") if m.method == "GET"]
    assert len(gets) == 2
    for get in gets:
        target = F.xcap_target(get)
        assert target == F.XcapTarget("GET", "cms.mcx.example", "/xcap-root", "org.3gpp.mcptt.user-profile",
                                      "users", "sip:alice@mcx.example", "mcptt-user-profile.xml", None,
                                      "mcptt")
        assert F.bearer_token_claims(get) == F.TokenClaims(
            "https://idms.mcx.example", "alice", "mcptt_client", "sip:alice@mcx.example")


def test_access_token_never_kept():
    pset = next(m for m in messages(REAL / "sipp-mcptt-udp.pcap")
                if m.method == "PUBLISH" and F.poc_settings(m) is not None)
    secret = pset.body.split(b"<mcpttString>")[1].split(b"</mcpttString>")[0].decode()
    info = F.mc_info(pset)
    assert info.has_access_token and info.token_claims.mcptt_id == "sip:alice@mcx.example"
    assert secret not in repr(info) and secret.split(".")[2] not in repr(info)


def test_all_facts_on_all_sample_messages_never_raise_and_report_no_problem():
    paths = [*(_capture(p) for p in SCENARIOS), *sorted(REAL.glob("*.pcap"))]
    for path in paths:
        for m in messages(path):
            problems: list = []
            for fn in (F.mc_info, F.affiliation_set, F.poc_settings, F.recipients):
                fn(m, problems)
            for fn in (F.mc_service, F.contacts, F.reasons, F.warnings, F.xcap_target, F.token_request,
                       F.bearer_token_claims):
                fn(m)
            assert problems == [], (path.name, m.frame)


# === URIs and name-addr =============================================================================

@pytest.mark.parametrize("text, scheme, user, host, port, params", [
    ("sip:alice@a.mcx.example", "sip", "alice", "a.mcx.example", None, ()),
    ("SIP:Alice@A.MCX.Example:5070;Transport=TCP;lr", "sip", "Alice", "a.mcx.example", 5070,
     (("transport", "TCP"), ("lr", ""))),
    ("<sip:gc-1@[fd00:99::1]:5060;transport=TCP>", "sip", "gc-1", "fd00:99::1", 5060,
     (("transport", "TCP"),)),
    ("sips:bob:secret@b.example?Subject=x", "sips", "bob", "b.example", None, ()),
    ("sip:%2B4917@ims.example;user=phone", "sip", "+4917", "ims.example", None, (("user", "phone"),)),
    ("sip:10.10.0.10:5060", "sip", None, "10.10.0.10", 5060, ()),
    ("tel:+49-170-0000;phone-context=ims.example", "tel", "+49-170-0000", None, None,
     (("phone-context", "ims.example"),)),
    ("tel:g001", "tel", "g001", None, None, ()),
    ("http://cms.example:8080/xcap-root", "http", None, "cms.example", 8080, ()),
])
def test_uri_parts(text, scheme, user, host, port, params):
    uri = F.uri_parts(text)
    assert (uri.scheme, uri.user, uri.host, uri.port, uri.params) == (scheme, user, host, port, params)


def test_uri_keys_and_garbage():
    assert F.uri_parts("sip:Alice@A.example:5060;transport=udp").aor == "sip:Alice@a.example"
    assert F.uri_parts("tel:+49-(170)-1.2").aor == "tel:+4917012"
    assert F.uri_parts("sip:x@[fd00::1]:5060").hostport == "[fd00::1]:5060"
    assert F.uri_parts("urn:uuid:1234").scheme == "urn"
    assert "secret" not in repr(F.uri_parts("sips:bob:secret@b.example;x=1?h=v"))
    assert F.uri_parts("sips:bob:secret@b.example;x=1?h=v").text == "sips:bob@b.example;x=1?h=v"
    for garbage in (None, "", "   ", "no scheme here", "<>", "::::", "\x00\xff"):
        assert F.uri_parts(garbage) is None


@pytest.mark.parametrize("value, display, uri, params", [
    ('"Alice \\"A\\" <x>" <sip:alice@a.example;transport=tcp>;tag=12;+sip.instance="<urn:x>"',
     'Alice "A" <x>', "sip:alice@a.example", (("tag", "12"), ("+sip.instance", "<urn:x>"))),
    ("Alice Smith <sip:alice@a.example>", "Alice Smith", "sip:alice@a.example", ()),
    ("<sip:alice@a.example>", None, "sip:alice@a.example", ()),
    ("sip:alice@a.example;tag=99", None, "sip:alice@a.example", (("tag", "99"),)),
    ("tel:+4917;phone-context=ims.example;tag=7", None, "tel:+4917", (("tag", "7"),)),
    ("<tel:+4917>", None, "tel:+4917", ()),
])
def test_name_addr(value, display, uri, params):
    parsed = F.name_addr(value)
    assert (parsed.display, parsed.uri.aor, parsed.params) == (display, uri, params)


def test_long_values_are_read_whole():
    # no silent cut at 8 KB: the host after a long user part is still the host
    user = "u" * 20_000
    assert F.uri_parts(f"sip:{user}@b.example;transport=tcp").host == "b.example"
    assert F.domain_of(f'"{user}" <sip:x@c.example>') == "c.example"
    parsed = F.name_addr("tel:+4917" + ";p=1" * 5000 + ";tag=t1;phone-context=ims.example")
    assert parsed.params == (("tag", "t1"),)
    assert len(parsed.uri.params) == 5001 and parsed.uri.param("phone-context") == "ims.example"


def test_name_addr_uri_params_stay_with_the_uri():
    parsed = F.name_addr("<sip:alice@a.example;transport=tcp>;expires=60")
    assert parsed.uri.param("transport") == "tcp" and parsed.param("transport") is None
    assert parsed.param("expires") == "60" and parsed.tag is None
    bare = F.name_addr("sip:alice@a.example;tag=1")
    assert bare.tag == "1" and bare.uri.params == ()
    assert F.name_addr("tel:+4917;phone-context=ims.example").uri.param("phone-context") == "ims.example"
    assert F.name_addr("") is None and F.name_addr("*").uri is None
    assert F.name_addr('"unterminated <sip:x@y>').uri is None  # the quote swallows everything


@pytest.mark.parametrize("value, domain", [
    ("sip:alice@A.MCX.example:5060", "a.mcx.example"),
    ('"A" <sip:alice@b.mcx.example>;tag=1', "b.mcx.example"),
    ("tel:+4917;phone-context=IMS.example", "ims.example"),
    ("tel:+4917", None),
    ("tel:1234;phone-context=+49", None),
    ("", None),
    ("garbage", None),
])
def test_domain_of(value, domain):
    assert F.domain_of(value) == domain


def test_domain_of_records():
    assert F.domain_of(F.uri_parts("sip:x@y.example")) == "y.example"
    assert F.domain_of(F.name_addr("<sip:x@z.example>")) == "z.example"
    assert F.domain_of(None) is None


# === MC service =====================================================================================

BASE = """INVITE sip:mcptt-participating@a.mcx.example SIP/2.0
Via: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK1
From: <sip:+4917@ims.a.mcx.example>;tag=1
To: <sip:mcptt-participating@a.mcx.example>
Call-ID: x@10.1.0.5
CSeq: 1 INVITE
"""


@pytest.mark.parametrize("lines, service", [
    (f"P-Preferred-Service: {ICSI}", "mcptt"),
    ("p-asserted-service: urn:urn-7:3gpp-service.ims.icsi.mcvideo", "mcvideo"),
    ("P-ASSERTED-SERVICE: URN:URN-7:3GPP-SERVICE.IMS.ICSI.MCDATA.SDS", "mcdata"),
    # Accept-Contact split in two headers, combined in one, compact "a:", encoded or raw ICSI
    ("Accept-Contact: *;+g.3gpp.mcptt;require;explicit\n"
     f'Accept-Contact: *;+g.3gpp.icsi-ref="{ICSI_ENC}";require;explicit', "mcptt"),
    (f'a: *;+g.3gpp.icsi-ref="{ICSI_ENC}";+g.3gpp.mcptt;require;explicit', "mcptt"),
    ('a: *;+g.3gpp.icsi-ref="urn:urn-7:3gpp-service.ims.icsi.mcvideo";require', "mcvideo"),
    # MCOP message.c: "explicit" glued to the next parameter without ';'
    (f'Accept-Contact: *;+g.3gpp.mcptt;require;explicit+g.3gpp.icsi-ref="{ICSI}"', "mcptt"),
    # a Java client's feature tag without '+'
    ("Accept-Contact: *;g.3gpp.mcdata.sds;require;explicit", "mcdata"),
    ("m: <sip:ue@10.1.0.5:5060>;+G.3GPP.MCVIDEO", "mcvideo"),
    (f'Contact: <sip:ue@10.1.0.5>;+g.3gpp.icsi-ref="{ICSI_ENC.upper()}"', "mcptt"),
    ("Content-Type: application/vnd.3gpp.mcvideo-info+xml", "mcvideo"),
    ("Accept: application/vnd.3gpp.mcptt-affiliation-info+xml", "mcptt"),
    # look-alikes are not services
    ("Accept-Contact: *;+g.3gpp.mcpttx;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"", None),
    ("Contact: <sip:mcptt@10.1.0.5>;+g.3gpp.smsip", None),
    ("User-Agent: mcptt-client +g.3gpp.mcptt", None),
    ("", None),
])
def test_mc_service_from_headers(lines, service):
    assert F.mc_service(sip(BASE + lines)) == service


def test_mc_service_from_body_parts_only():
    body = mixed("b1", ("Content-Type: application/sdp", "v=0"),
                 ("Content-Type: application/vnd.3gpp.mcdata-info+xml", "<mcdatainfo/>"))
    assert F.mc_service(sip(BASE + "Content-Type: multipart/mixed;boundary=b1", body)) == "mcdata"
    assert F.mc_service(sip(BASE + "Content-Type: application/sdp", "v=0")) is None


def test_mc_service_prefers_headers_and_splits_no_body_then(monkeypatch):
    def refuse(*args):
        raise AssertionError("body split although the headers named the service")
    monkeypatch.setattr(common, "body_parts", refuse)
    msg = sip(BASE + f"P-Preferred-Service: {ICSI}\nContent-Type: multipart/mixed;boundary=b1", "--b1\n")
    assert F.mc_service(msg) == "mcptt"


def test_mc_services_of_a_register_for_two_services():
    msg = sip(BASE.replace("INVITE", "REGISTER") +
              "Contact: <sip:ue@10.1.0.5>;+g.3gpp.mcptt, <sip:ue@10.1.0.5>;+g.3gpp.mcvideo")
    assert F.mc_services(msg) == ("mcptt", "mcvideo")
    assert [c.services for c in F.contacts(msg)] == [("mcptt",), ("mcvideo",)]


@pytest.mark.parametrize("target, extra, service", [
    ("/xcap-root/org.3gpp.mcdata.user-profile/users/sip:a@x/mcdata-user-profile-0.xml", "", "mcdata"),
    ("/xcap-root/org.3gpp.mcvideo.user-profile/users/sip:a@x/p.xml", "", "mcvideo"),
    ("/xcap-root/org.openmobilealliance.groups/users/sip:a@x/index", "", None),
    ("/profile", "Accept: application/vnd.3gpp.mcptt-user-profile+xml", "mcptt"),
])
def test_mc_service_of_http(target, extra, service):
    assert F.mc_service(http(f"GET {target} HTTP/1.1\nHost: cms.example\n{extra}")) == service


# === mc*-info =======================================================================================

def _info_message(body: str | bytes, ctype: str = "application/vnd.3gpp.mcptt-info+xml") -> Message:
    return sip(BASE + f"Content-Type: {ctype}", body)


@pytest.mark.parametrize("body", [
    MCPTT_INFO_WRAPPED,
    # no namespace, plain text (MCOP mcptt_namespace off, *_old variants)
    """<mcpttinfo><mcptt-Params><session-type>PREARRANGED</session-type>
       <mcptt-request-uri>sip:G1@a.mcx.example</mcptt-request-uri>
       <mcptt-client-id>client-1</mcptt-client-id></mcptt-Params></mcpttinfo>""",
    # a prefix, unknown elements, whitespace inside the wrapper
    """<m:mcpttinfo xmlns:m="urn:3gpp:ns:mcpttInfo:1.0"><m:mcptt-Params>
       <m:future-thing a="b"><m:x/></m:future-thing>
       <m:session-type>prearranged</m:session-type>
       <m:mcptt-request-uri type="Normal"><m:mcpttURI>
         sip:G1@a.mcx.example </m:mcpttURI></m:mcptt-request-uri>
       <m:mcptt-client-id type="Normal"><m:mcpttString>client-1</m:mcpttString></m:mcptt-client-id>
       </m:mcptt-Params></m:mcpttinfo>""",
])
def test_mc_info_variants(body):
    info = F.mc_info(_info_message(body))
    assert (info.service, info.session_type, info.request_uri, info.client_id) == (
        "mcptt", "prearranged", "sip:G1@a.mcx.example", "client-1")
    assert info.has_access_token is False and info.emergency is None


def test_mc_info_all_fields_and_indications():
    body = """<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>
      <mcptt-access-token type="Normal"><mcpttString>opaque-not-a-jwt</mcpttString></mcptt-access-token>
      <session-type>private</session-type>
      <mcptt-request-uri type="Normal"><mcpttURI>sip:bob@a.example</mcpttURI></mcptt-request-uri>
      <mcptt-calling-user-id type="Normal"><mcpttURI>sip:carol@a.example</mcpttURI></mcptt-calling-user-id>
      <mcptt-called-party-id type="Normal"><mcpttURI>sip:bob@a.example</mcpttURI></mcptt-called-party-id>
      <mcptt-calling-group-id type="Normal"><mcpttURI>tel:g001</mcpttURI></mcptt-calling-group-id>
      <associated-group-id type="Normal"><mcpttURI>sip:G9@a.example</mcpttURI></associated-group-id>
      <emergency-ind type="Normal"><mcpttBoolean>true</mcpttBoolean></emergency-ind>
      <alert-ind><mcpttBoolean>0</mcpttBoolean></alert-ind>
      <imminentperil-ind>TRUE</imminentperil-ind>
      <broadcast-ind type="Normal"><mcpttBoolean>maybe</mcpttBoolean></broadcast-ind>
      <originated-by type="Normal"><mcpttURI>sip:dispatcher@a.example</mcpttURI></originated-by>
      <mcptt-request-uri type="Normal"><mcpttURI>sip:second@ignored</mcpttURI></mcptt-request-uri>
    </mcptt-Params></mcpttinfo>"""
    info = F.mc_info(_info_message(body))
    assert info == F.McInfo("mcptt", session_type="private", request_uri="sip:bob@a.example",
                            calling_user_id="sip:carol@a.example", called_party_id="sip:bob@a.example",
                            calling_group_id="tel:g001", associated_group_id="sip:G9@a.example",
                            originated_by="sip:dispatcher@a.example", has_access_token=True,
                            emergency=True, alert=False, imminent_peril=True, broadcast=None)


def test_mc_info_protected_fields():
    body = """<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>
      <mcptt-request-uri type="Protected"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
      <xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>
      </mcptt-request-uri>
      <mcptt-access-token type="Protected"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/>
      </mcptt-access-token>
    </mcptt-Params></mcpttinfo>"""
    info = F.mc_info(_info_message(body))
    assert info.request_uri is None and info.has_access_token and info.token_claims is None
    assert set(info.protected) == {"request_uri", "has_access_token"}


def test_mcvideo_and_mcdata_info():
    video = """<mcvideoinfo xmlns="urn:3gpp:ns:mcvideoInfo:1.0"><mcvideo-Params>
      <session-type>prearranged</session-type>
      <mcvideo-calling-group-id type="Normal"><mcvideoURI>sip:V1@a.example</mcvideoURI>
      </mcvideo-calling-group-id>
      </mcvideo-Params></mcvideoinfo>"""
    info = F.mc_info(_info_message(video, "application/vnd.3gpp.mcvideo-info+xml"))
    assert (info.service, info.calling_group_id) == ("mcvideo", "sip:V1@a.example")
    data = """<mcdatainfo xmlns="urn:3gpp:ns:mcdataInfo:1.0"><mcdata-Params>
      <request-type>One-To-One-SDS</request-type>
      <mcdata-request-uri type="Normal"><mcdataURI>sip:bob@a.example</mcdataURI></mcdata-request-uri>
      <mcdata-calling-user-id type="Normal"><mcdataURI>sip:alice@a.example</mcdataURI>
      </mcdata-calling-user-id>
      </mcdata-Params></mcdatainfo>"""
    info = F.mc_info(_info_message(data, "application/vnd.3gpp.mcdata-info+xml"))
    assert (info.service, info.request_type, info.request_uri, info.calling_user_id) == (
        "mcdata", "one-to-one-sds", "sip:bob@a.example", "sip:alice@a.example")


@pytest.mark.parametrize("order", ["info-first", "info-last"])
@pytest.mark.parametrize("boundary_param", ["boundary=b-1", 'boundary="b-1"', 'Boundary = "b-1" ; x=y'])
def test_mc_info_in_any_part_order_and_boundary_spelling(order, boundary_param):
    parts = [("Content-Type: application/sdp", "v=0\nm=application 4000 udp MCPTT"),
             ("Content-Type: application/resource-lists+xml\nContent-Disposition: recipient-list",
              '<resource-lists><list><entry uri="sip:bob@a.example"/></list></resource-lists>'),
             ("content-type: Application/Vnd.3gpp.MCPTT-Info+XML", MCPTT_INFO_WRAPPED)]
    if order == "info-first":
        parts.reverse()
    body = "preamble\n" + mixed("b-1", *parts) + "epilogue"
    msg = sip(BASE + f"c: multipart/mixed; {boundary_param}", body)
    assert F.mc_info(msg).request_uri == "sip:G1@a.mcx.example"
    assert F.recipients(msg) == ("sip:bob@a.example",)


def test_mc_info_service_choice_and_third_party_register():
    two = mixed("b", ("Content-Type: application/vnd.3gpp.mcvideo-info+xml",
                      "<mcvideoinfo><mcvideo-Params><session-type>chat</session-type></mcvideo-Params>"
                      "</mcvideoinfo>"),
                ("Content-Type: application/vnd.3gpp.mcptt-info+xml", MCPTT_INFO_WRAPPED))
    msg = sip(BASE + "Content-Type: multipart/mixed;boundary=b", two)
    assert F.mc_info(msg).service == "mcvideo"
    assert F.mc_info(msg, service="mcptt").client_id == "client-1"
    assert F.mc_info(msg, service="mcdata") is None
    inner = ("REGISTER sip:ims.example SIP/2.0\r\nCall-ID: u\r\nCSeq: 1 REGISTER\r\n"
             "Content-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n" + MCPTT_INFO_WRAPPED)
    third_party = sip(BASE.replace("INVITE", "REGISTER") + "Content-Type: message/sip", inner.encode())
    assert F.mc_info(third_party).request_uri == "sip:G1@a.mcx.example"


def test_mc_info_absent():
    assert F.mc_info(sip(BASE)) is None
    assert F.mc_info(sip(BASE + "Content-Type: application/sdp", "v=0")) is None
    assert F.mc_info(http("GET /x HTTP/1.1\nHost: h")) is None


# === affiliation ====================================================================================

def _publish(body: str | bytes = "", ctype: str = "application/pidf+xml", extra: str = "") -> Message:
    head = PUBLISH_HEAD + ("\n" + extra if extra else "")
    return sip(head + (f"\nContent-Type: {ctype}" if body else ""), body)


PIDF_VARIANTS = {
    "prefixed": PIDF,
    "default-ns": """<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@a.mcx.example">
        <tuple id="client-1"><status>
        <affiliation xmlns="urn:3gpp:ns:mcpttPresInfo:1.0" group="sip:G1@a.mcx.example"/>
        <affiliation xmlns="urn:3gpp:ns:mcpttPresInfo:1.0" group="sip:G2@a.mcx.example"/>
        </status></tuple></presence>""",
    "no-ns": """<presence entity="sip:alice@a.mcx.example"><tuple id="client-1"><status>
        <affiliation group="sip:G1@a.mcx.example"/><affiliation group="sip:G2@a.mcx.example"/>
        <affiliation group="sip:G1@a.mcx.example"/></status></tuple></presence>""",
    "other-prefix": """<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf"
        xmlns:x="urn:3gpp:ns:mcpttPresInfo:1.0" entity="sip:alice@a.mcx.example">
        <p:tuple id="client-1"><p:status>
        <x:affiliation group="sip:G1@a.mcx.example"/><x:affiliation group="sip:G2@a.mcx.example"/>
        </p:status></p:tuple></p:presence>""",
}


@pytest.mark.parametrize("name", PIDF_VARIANTS)
def test_affiliation_publish_variants(name):
    found = F.affiliation_set(_publish(PIDF_VARIANTS[name]))
    assert (found.kind, found.service, found.entity, found.client, found.groups, found.expires) == (
        "publish", "mcptt", "sip:alice@a.mcx.example", "client-1",
        frozenset({"sip:G1@a.mcx.example", "sip:G2@a.mcx.example"}), 4294967295)


def test_affiliation_publish_multipart_compact_event_and_mcvideo():
    pidf = PIDF.replace("mcpttPresInfo", "mcvideoPresInfo")
    body = mixed("x", ("Content-Type: application/vnd.3gpp.mcvideo-info+xml", "<mcvideoinfo/>"),
                 ("Content-Type: application/pidf+xml", pidf))
    head = PUBLISH_HEAD.replace("Event: presence", "o: Presence;id=7").replace(ICSI, ICSI + "x")
    found = F.affiliation_set(sip(head + "\nContent-Type: multipart/mixed;boundary=x", body))
    assert found.service == "mcvideo" and found.p_id == "alice-1" and len(found.groups) == 2


def test_affiliation_publish_clear_refresh_and_empty():
    clear = F.affiliation_set(sip(PUBLISH_HEAD.replace("Expires: 4294967295", "Expires: 0")))
    assert clear.groups == frozenset() and clear.clears and clear.expires == 0
    refresh = F.affiliation_set(_publish(extra="SIP-If-Match: abc"))
    assert refresh.groups is None and not refresh.clears
    nothing = PIDF.split("<tuple")[0] + "<tuple id='c'><status/></tuple></presence>"
    empty = F.affiliation_set(_publish(nothing))
    assert empty.groups == frozenset() and not empty.clears and empty.client == "c"
    info_only = F.affiliation_set(_publish(MCPTT_INFO_WRAPPED, "application/vnd.3gpp.mcptt-info+xml"))
    assert info_only.groups is None


def test_presence_that_is_not_mc_is_ignored():
    plain = """<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:x@y"><tuple id="t">
      <status><basic>open</basic></status></tuple></presence>"""
    head = PUBLISH_HEAD.replace(f"P-Preferred-Service: {ICSI}", "User-Agent: softphone")
    assert F.affiliation_set(sip(head + "\nContent-Type: application/pidf+xml", plain)) is None
    assert F.affiliation_set(sip(head)) is None
    assert F.affiliation_set(sip(head.replace("Event: presence", "Event: dialog") +
                                 "\nContent-Type: application/pidf+xml", PIDF)) is None


def test_affiliation_notify_entries_per_group_and_client():
    body = """<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:a="urn:3gpp:ns:mcpttPresInfo:1.0"
      entity="sip:alice@a.mcx.example">
      <tuple id="client-1"><status>
        <a:affiliation group="sip:G1@a.mcx.example" client="client-1" status="Affiliated"
                       expires="2026-05-01T11:00:00Z"/>
        <a:affiliation group="sip:G2@a.mcx.example" status="deaffiliating" expires="2026-05-01T10:00:00Z"/>
      </status></tuple>
      <tuple id="client-2"><status>
        <a:affiliation group="sip:G1@a.mcx.example" status="affiliating"/>
      </status></tuple></presence>"""
    head = PUBLISH_HEAD.replace("PUBLISH sip:mcptt-participating@a.mcx.example", "NOTIFY sip:ue@10.1.0.5")
    head = head.replace("CSeq: 1 PUBLISH", "CSeq: 2 NOTIFY").replace(f"P-Preferred-Service: {ICSI}", "")
    found = F.affiliation_set(sip(head + "\nContent-Type: application/pidf+xml", body))
    assert found.kind == "notify" and found.service == "mcptt" and found.entity == "sip:alice@a.mcx.example"
    assert found.entries == (
        F.AffiliationStatus("sip:G1@a.mcx.example", "client-1", "affiliated", "2026-05-01T11:00:00Z"),
        F.AffiliationStatus("sip:G2@a.mcx.example", "client-1", "deaffiliating", "2026-05-01T10:00:00Z"),
        F.AffiliationStatus("sip:G1@a.mcx.example", "client-2", "affiliating", None))
    assert found.groups == frozenset({"sip:G1@a.mcx.example", "sip:G2@a.mcx.example"})


@pytest.mark.parametrize("body, entries", [
    ("""<command-list xmlns="urn:3gpp:ns:affiliationCommand:1.0">
        <affiliate><group>sip:G1@a.example</group><group>sip:G2@a.example</group></affiliate>
        <de-affiliate><group>sip:G3@a.example</group></de-affiliate></command-list>""",
     [("sip:G1@a.example", "affiliate"), ("sip:G2@a.example", "affiliate"),
      ("sip:G3@a.example", "deaffiliate")]),
    ("""<mcptt-affiliation-command xmlns="urn:3gpp:ns:mcpttAffiliationCommand:1.0">
        <mcptt-group-aff-control><mcptt-group-id>sip:G1@a.example</mcptt-group-id><affiliate/>
        </mcptt-group-aff-control></mcptt-affiliation-command>""",
     [("sip:G1@a.example", "affiliate")]),
])
def test_affiliation_command_is_not_the_ues_own_set(body, entries):
    ctype = "application/vnd.3gpp.mcptt-affiliation-command+xml"
    message = sip(BASE.replace("INVITE", "MESSAGE") + "Content-Type: multipart/mixed;boundary=q",
                  mixed("q", ("Content-Type: application/vnd.3gpp.mcptt-info+xml", MCPTT_INFO_WRAPPED),
                        (f"Content-Type: {ctype}", body)))
    found = F.affiliation_set(message)
    assert found.kind == "command" and found.groups is None and found.service == "mcptt"
    assert [(e.group, e.status) for e in found.entries] == entries
    legacy = sip(PUBLISH_HEAD.replace("Event: presence", "Event: mcptt") + f"\nContent-Type: {ctype}", body)
    assert F.affiliation_set(legacy).kind == "command"


def test_affiliation_command_verbs_beside_their_groups_give_each_entry_once():
    ctype = "application/vnd.3gpp.mcptt-affiliation-command+xml"
    body = "<c>" + "<affiliate/>" * 3 + "<group>sip:G1@a.example</group><group>sip:G2@a.example</group>" \
           + "<de-affiliate/></c>"
    found = F.affiliation_set(sip(BASE.replace("INVITE", "MESSAGE") + f"Content-Type: {ctype}", body))
    assert [(e.group, e.status) for e in found.entries] == [
        ("sip:G1@a.example", "affiliate"), ("sip:G2@a.example", "affiliate"),
        ("sip:G1@a.example", "deaffiliate"), ("sip:G2@a.example", "deaffiliate")]


def test_billion_laughs_in_the_pidf_part_is_refused_with_a_problem():
    bomb = (HOSTILE / "billion-laughs.xml").read_text()
    body = mixed("b", ("Content-Type: application/vnd.3gpp.mcptt-info+xml", MCPTT_INFO_WRAPPED),
                 ("Content-Type: application/pidf+xml", bomb))
    message = sip(PUBLISH_HEAD + "\nContent-Type: multipart/mixed;boundary=b", body)
    problems: list = []
    started = time.process_time()
    assert F.affiliation_set(message, problems) is None
    assert time.process_time() - started < 1.0  # CPU seconds: the bomb is refused, not expanded
    assert [p.code for p in problems] == ["xml-rejected"] and "pidf+xml" in problems[0].message
    assert F.affiliation_set(message) is None  # without a sink: None all the same
    assert F.mc_info(message).client_id == "client-1"  # the other part is still readable


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("*.xml")), ids=lambda p: p.name)
def test_hostile_xml_in_every_body_reader(path):
    bomb = path.read_bytes()
    readers = [
        (F.affiliation_set, _publish(bomb, "application/pidf+xml")),
        (F.mc_info, _info_message(bomb)),
        (F.poc_settings, sip(PUBLISH_HEAD.replace("presence", "poc-settings") +
                             "\nContent-Type: application/poc-settings+xml", bomb)),
        (F.recipients, sip(BASE + "Content-Type: application/resource-lists+xml\n"
                           "Content-Disposition: recipient-list", bomb)),
        (F.affiliation_set, sip(BASE.replace("INVITE", "MESSAGE") +
                                "Content-Type: application/vnd.3gpp.mcptt-affiliation-command+xml", bomb)),
    ]
    for fn, message in readers:
        problems: list = []
        result = fn(message, problems)
        assert not result or isinstance(result, F.PocSettings)
        assert problems and problems[0].code in ("xml-rejected", "malformed-body")
        assert all("\n" not in p.message for p in problems)


def test_malformed_bodies_give_problems_not_exceptions():
    problems: list = []
    broken = sip(PUBLISH_HEAD + "\nContent-Type: multipart/mixed;boundary=nope", "no delimiter at all")
    assert F.affiliation_set(broken, problems) is None  # a body was sent but cannot be read
    assert any(p.code == "malformed-body" for p in problems)
    problems.clear()
    assert F.mc_info(_info_message("<mcpttinfo><unclosed>"), problems) is None
    assert [p.code for p in problems] == ["malformed-body"]
    problems.clear()
    assert F.mc_info(_info_message(b"\xff\xfe\x00garbage"), problems) is None and problems


# === poc-settings, recipients =======================================================================

def test_poc_settings():
    body = """<poc-settings xmlns="urn:oma:params:xml:ns:poc:poc-settings" xmlns:s="urn:3gpp:mcsSettings:1.0">
      <entity id="client-1"><am-settings><answer-mode>Manual</answer-mode></am-settings>
      <s:selected-user-profile-index><s:user-profile-index>3</s:user-profile-index>
      </s:selected-user-profile-index></entity></poc-settings>"""
    head = PUBLISH_HEAD.replace("Event: presence", "o: poc-settings")
    found = F.poc_settings(sip(head + "\nContent-Type: multipart/mixed;boundary=z", mixed(
        "z", ("Content-Type: application/poc-settings+xml", body),
        ("Content-Type: application/vnd.3gpp.mcptt-info+xml", MCPTT_INFO_WRAPPED))))
    assert found == F.PocSettings("manual", "client-1", 3, 4294967295)
    logoff = sip(head.replace("Expires: 4294967295", "Expires: 0"))
    assert F.poc_settings(logoff) == F.PocSettings(expires=0)
    assert F.poc_settings(_publish(PIDF)) is None
    assert F.poc_settings(sip(BASE + "Event: poc-settings")) is None


RESOURCE_LISTS = """<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
  xmlns:cc="urn:ietf:params:xml:ns:copycontrol"><rl:list>
  <rl:entry uri="sip:bob@a.example" cc:copyControl="to"/>
  <rl:list><rl:entry uri=" tel:+4917 "/><rl:entry uri="sip:bob@a.example"/></rl:list>
  <rl:entry/></rl:list></rl:resource-lists>"""


def test_recipients():
    part = ("Content-Type: application/resource-lists+xml\n"
            "Content-Disposition: recipient-list;handling=required", RESOURCE_LISTS)
    msg = sip(BASE + "Content-Type: multipart/mixed;boundary=r",
              mixed("r", ("Content-Type: application/sdp", "v=0"), part))
    assert F.recipients(msg) == ("sip:bob@a.example", "tel:+4917")
    single = sip(BASE + "Content-Type: application/resource-lists+xml\nContent-Disposition: recipient-list",
                 RESOURCE_LISTS)
    assert F.recipients(single) == ("sip:bob@a.example", "tel:+4917")
    # an xcap-diff SUBSCRIBE lists document URIs, not recipients: no recipient-list disposition
    plain = sip(BASE + "Content-Type: multipart/mixed;boundary=r",
                mixed("r", ("Content-Type: application/resource-lists+xml", RESOURCE_LISTS)))
    assert F.recipients(plain) == ()
    assert F.recipients(sip(BASE)) == ()


# === Contact, Reason, Warning =======================================================================

def test_contact_facts_variants():
    msg = sip(BASE.replace("INVITE", "REGISTER").replace("1 REGISTER", "1 REGISTER") + """Expires: 3600
      m: "UE" <sip:+4917@[fd00::5]:5062;transport=tcp>;+sip.instance="<urn:gsma:imei:35209900-176148-1>"
       ;g.3gpp.mcptt;audio;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt,
       urn%3Aurn-7%3A3gpp-service.ims.icsi.mcvideo"
      Contact: <sip:+4917@10.0.0.5>;expires=60;+G.3GPP.MCDATA""")
    first, second = F.contacts(msg)
    assert first.instance == "urn:gsma:imei:35209900-176148-1" and first.display == "UE"
    assert first.address == "[fd00::5]:5062" and first.expires == 3600  # REGISTER: the Expires header
    assert first.feature_tags == {"sip.instance", "g.3gpp.mcptt", "g.3gpp.icsi-ref"}
    assert first.icsi == (ICSI, "urn:urn-7:3gpp-service.ims.icsi.mcvideo")
    assert set(first.services) == {"mcptt", "mcvideo"} and not first.isfocus
    assert second.expires == 60 and second.services == ("mcdata",) and second.address == "10.0.0.5"
    assert F.contact_facts(msg) == first


def test_compact_names_in_headers_built_elsewhere():
    # our parser expands compact forms; a Headers built by another engine or a test may not have
    headers = Headers([("Call-ID", "c"), ("CSeq", "1 PUBLISH"), ("o", "presence"), ("Expires", "0"),
                       ("m", "<sip:ue@10.0.0.5:5062>;+g.3gpp.mcptt;expires=²")])
    msg = Message("sip", "request", "PUBLISH", "sip:psi@a", None, None, headers, b"", (1,), 0.0, "a", "b",
                  "udp")
    assert F.mc_service(msg) == "mcptt"
    assert F.contact_facts(msg).address == "10.0.0.5:5062" and F.contact_facts(msg).expires is None
    assert F.affiliation_set(msg).clears


def test_contact_expires_falls_back_only_for_register():
    invite = sip(BASE + "Expires: 120\nContact: <sip:gc@10.0.0.1>;isfocus")
    facts = F.contact_facts(invite)
    assert facts.isfocus and facts.expires is None
    ok = sip("SIP/2.0 200 OK\nCall-ID: a\nCSeq: 2 REGISTER\nExpires: 600000\nContact: <sip:u@10.0.0.5>")
    assert F.contact_facts(ok).expires == 600000
    star = sip(BASE.replace("INVITE", "REGISTER") + "Expires: 0\nContact: *")
    assert F.contact_facts(star).wildcard and F.contact_facts(star).expires == 0
    assert F.contact_facts(sip(BASE)) is None


def test_reasons():
    msg = sip(BASE.replace("INVITE", "BYE") + 'Reason: SIP ;cause=200 ;text="MC migration; to B, now"\n'
              "Reason: Q.850;cause=16, sip;cause=abc\nReason: ;cause=1")
    assert F.reasons(msg) == (F.Reason("SIP", 200, "MC migration; to B, now"), F.Reason("Q.850", 16, None),
                              F.Reason("SIP", None, None))
    assert F.reason(msg).cause == 200 and F.reason(sip(BASE)) is None


def test_warnings():
    msg = sip("SIP/2.0 480 Temporarily Unavailable\nCall-ID: a\nCSeq: 1 INVITE\n"
              'Warning: 399 10.1.0.5 "110 user declined the call invitation", '
              '301 proxy.example "Incompatible"\n'
              'Warning: 399 b.example "not an mc code"\nWarning: garbage without quotes')
    assert F.warnings(msg) == (
        F.SipWarning(399, "10.1.0.5", "110 user declined the call invitation", 110,
                     "user declined the call invitation"),
        F.SipWarning(301, "proxy.example", "Incompatible"),
        F.SipWarning(399, "b.example", "not an mc code"),
        F.SipWarning(None, None, "garbage without quotes"))
    assert F.warnings(sip(BASE)) == ()


def test_warnings_with_long_runs_of_blanks():
    blanks = " " * 60_000
    msg = sip(f'SIP/2.0 480 X\nCall-ID: a\nCSeq: 1 INVITE\nWarning: 399 h "110 {blanks}declined{blanks}"\n'
              f'Warning: 399 h "{blanks}" trailing words')
    assert F.warnings(msg) == (
        F.SipWarning(399, "h", f"110 {blanks}declined{blanks}", 110, "declined"),
        F.SipWarning(None, None, f'399 h "{blanks}" trailing words'))


def test_warning_mc_code_needs_a_blank_or_the_end_after_it():
    head = 'SIP/2.0 480 X\nCall-ID: a\nCSeq: 1 INVITE\nWarning: 399 h "{}"'
    assert [(w.mc_code, w.mc_text) for w in F.warnings(sip(head.format("110")))] == [(110, None)]
    assert [(w.mc_code, w.mc_text) for w in F.warnings(sip(head.format("1100 x")))] == [(None, None)]
    assert [(w.mc_code, w.mc_text) for w in F.warnings(sip(head.format(" 110\t x \t")))] == [(110, "x")]


# === XCAP, tokens ===================================================================================

@pytest.mark.parametrize("target, host, expected", [
    ("/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@a.mcx.example/mcptt-user-profile-0.xml",
     "cms.a.example",
     ("/xcap-root", "org.3gpp.mcptt.user-profile", "users", "sip:alice@a.mcx.example",
      "mcptt-user-profile-0.xml", None, "mcptt", "cms.a.example")),
    ("/xcap-root/org.3gpp.mcptt.user-profile/users/sip%3Aalice%40a.mcx.example/user-profile-0.xml?x=1#f",
     "CMS.A.example:8443",
     ("/xcap-root", "org.3gpp.mcptt.user-profile", "users", "sip:alice@a.mcx.example", "user-profile-0.xml",
      None, "mcptt", "cms.a.example")),
    ("http://cms.b.example:8080/services/xcap/org.3gpp.mcdata.user-profile/users/sip:bob@b/doc.xml"
     "/~~/mcdata-user-profile/Common",
     "ignored.example",
     ("/services/xcap", "org.3gpp.mcdata.user-profile", "users", "sip:bob@b", "doc.xml",
      "mcdata-user-profile/Common", "mcdata", "cms.b.example")),
    ("/org.3gpp.mcptt.service-config/global/default", "[fd00::20]:80",
     ("/", "org.3gpp.mcptt.service-config", "global", None, "default", None, "mcptt", "fd00::20")),
    ("/xcap/org.openmobilealliance.groups/users/sip:alice@a/index", "gms",
     ("/xcap", "org.openmobilealliance.groups", "users", "sip:alice@a", "index", None, None, "gms")),
    ("/xcap-root/resource-lists/users/sip:alice@a/index", None,
     ("/xcap-root", "resource-lists", "users", "sip:alice@a", "index", None, None, None)),
    ("/xcap-root/org.3gpp.mcptt.ue-config", None,
     ("/xcap-root", "org.3gpp.mcptt.ue-config", None, None, None, None, "mcptt", None)),
])
def test_xcap_target(target, host, expected):
    msg = http(f"GET {target} HTTP/1.1" + (f"\nHost: {host}" if host else ""))
    found = F.xcap_target(msg)
    assert (found.root, found.auid, found.scope, found.xui, found.document, found.node, found.service,
            found.host) == expected
    assert found.method == "GET"


def test_xcap_user_profile_flag_and_non_xcap_paths():
    profile = http("GET /xcap-root/org.3gpp.mcvideo.user-profile/users/sip:v@x/p.xml HTTP/1.1\nHost: c")
    assert F.xcap_target(profile).is_user_profile
    assert not F.xcap_target(http("PUT /x/org.3gpp.mcptt.ue-config/global/d HTTP/1.1")).is_user_profile
    for target in ("/", "/index.html", "/api/users/alice", "/token", "*", "/%zz/%%/users"):
        assert F.xcap_target(http(f"GET {target} HTTP/1.1\nHost: h")) is None, target
    assert F.xcap_target(http("HTTP/1.1 200 OK\nContent-Length: 0")) is None
    assert F.xcap_target(sip(BASE)) is None


def test_token_request_keeps_no_secret():
    rng = random.Random(1)
    body = H.token_request_body(rng, "mcptt_client")
    msg = http("POST /realms/mc/protocol/openid-connect/token HTTP/1.1\nHost: IdMS.b.example\n"
               "Content-Type: application/x-www-form-urlencoded", body)
    found = F.token_request(msg)
    assert found == F.TokenRequest("idms.b.example", "/realms/mc/protocol/openid-connect/token",
                                   "authorization_code", "mcptt_client")
    for name, value in (p.split("=") for p in body.decode().split("&")):
        if name in ("code", "code_verifier"):
            assert value not in repr(found)
    refresh = http("POST /oauth HTTP/1.1\nHost: i", b"grant_type=refresh_token&refresh_token=SECRET"
                   b"&scope=openid+3gpp%3Amc%3Aptt_service&client_secret=S2")
    found = F.token_request(refresh)
    assert found.grant_type == "refresh_token" and found.scope == ("openid", "3gpp:mc:ptt_service")
    assert "SECRET" not in repr(found) and "S2" not in repr(found)
    assert F.token_request(http("GET /token HTTP/1.1\nHost: i")).grant_type is None
    assert F.token_request(http("POST /upload HTTP/1.1\nContent-Type: application/json", b'{"a":1}')) is None
    assert F.token_request(http("POST /upload HTTP/1.1\nContent-Type: application/json",
                                b"grant_type=password")) is None
    assert F.token_request(http("POST /x HTTP/1.1", b"&".join([b"a=b"] * 100000) + b"&grant_type=x")) is None


def test_bearer_token_claims():
    claims = {"iss": "https://idms.a", "sub": "alice", "azp": "cli", "mcptt_id": "sip:alice@a",
              "mcdata_id": 7, "scope": "openid"}
    good = token(claims)
    found = F.bearer_token_claims(http(f"GET /p HTTP/1.1\nAuthorization: bearer {good}"))
    assert found == F.TokenClaims("https://idms.a", "alice", "cli", "sip:alice@a")
    assert good not in repr(found)
    rng = random.Random(2)
    synth = H.jwt(rng, "https://idms.b", "sub-b", {"client_id": "c", "mcvideo_id": "sip:v@b"}, 1_700_000_000)
    assert F.bearer_token_claims(sip(BASE + f"Authorization: Bearer {synth}")).mc_id == "sip:v@b"
    both = http(f"GET /p HTTP/1.1\nAuthorization: Digest x=1\nAuthorization: Bearer {synth}")
    assert F.bearer_token_claims(both).sub == "sub-b"


@pytest.mark.parametrize("credentials", [
    "", "abc", "a.b.c", "a.b", "....", "e30.e30.sig.more.parts",  # JWE has five parts
    b64url(b"not json") + "." + b64url(b"{}") + ".s",
    token({"sub": "x"}, header={"typ": "JWT"}),  # no alg
    b64url(b'{"alg":"none"}') + "." + b64url(b"[1,2]") + ".s",
    b64url(b'{"alg":"none"}') + "." + b64url(b"[" * 100000 + b"]" * 100000) + ".s",
    b64url(b'{"alg":"none"}') + ".!!!." + "s",
    b64url(b'{"alg":"none"}') + "." + b64url(b"\xff\xfe") + ".s",
    "x" * 100000 + ".y.z",
    "é.ü.ß",
])
def test_broken_jwt_gives_none(credentials):
    msg = http(f"GET /p HTTP/1.1\nAuthorization: Bearer {credentials}")
    assert F.bearer_token_claims(msg) is None
    assert F.jwt_claims(credentials) is None


# === never raise ====================================================================================

NAMES = ("Contact", "m", "Reason", "Warning", "Authorization", "a", "o", "Expires", "Accept-Contact", "Host")


def test_random_garbage_never_raises():
    rng = random.Random(5)
    alphabet = '<>"\\;,:=@%[]*+ \t/abcz09\x00é²١'
    fns = (F.mc_service, F.mc_services, F.contacts, F.contact_facts, F.reasons, F.warnings, F.xcap_target,
           F.token_request, F.bearer_token_claims)
    body_fns = (F.mc_info, F.affiliation_set, F.poc_settings, F.recipients)
    for _ in range(300):
        def junk(n=40):
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))
        ctype = rng.choice(["multipart/mixed;boundary=" + junk(5), "application/pidf+xml",
                            "application/vnd.3gpp.mcptt-info+xml", "message/sip", junk(10)])
        body = junk(200).encode("utf-8", "surrogateescape")
        header_lines = "\n".join(f"{rng.choice(NAMES)}: x{junk()}" for _ in range(5))
        for msg in (sip(PUBLISH_HEAD + "\n" + header_lines + f"\nContent-Type: {ctype}", body),
                    http(f"POST /{''.join(c for c in junk(30) if '!' <= c <= '~')} HTTP/1.1\n{header_lines}",
                         body)):
            for fn in fns:
                fn(msg)
            for fn in body_fns:
                fn(msg, [])
    for text in ("<", '"', "<<<>>>", '"\\', ";;;", "sip:", "sip:@", "sip:[", "tel:", "\x00"):
        F.name_addr(text), F.uri_parts(text), F.domain_of(text)


def test_problem_codes_are_diagnostic_codes():
    assert set(PROBLEM_CODES) <= set(CODES)
    with pytest.raises(ValueError):
        F.Problem("made-up", "x")
