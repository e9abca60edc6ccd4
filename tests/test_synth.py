"""The scenario synthesiser: what it writes is what it declared, decoders agree, faults change the wire.

Scenarios are written here as Python data and dumped to YAML, so each test shows the step it is about;
``analyzer/synth/examples/migration.yaml`` uses every procedure. tshark is the outside referee (skipped when
missing); ``analyzer.engines.dpkt_engine.decode`` must list exactly ``SynthResult.declared``.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from functools import cache
from pathlib import Path

import dpkt
import pytest
import yaml

from analyzer.base.errors import InputError
from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.multipart import body_parts
from analyzer.messages.records import Message
from analyzer.synth import load_scenario, parse_scenario, synthesize, write_pcapng
from analyzer.synth.faults import send_offsets
from analyzer.synth.procedures import PROCEDURES
from analyzer.synth.scenario import STEP_KINDS
from analyzer.transport.records import TlsHello

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "analyzer" / "synth" / "examples" / "migration.yaml"
HOSTILE = Path(__file__).resolve().parent / "hostile" / "scenarios"
START = 1777629600.0  # 2026-05-01T10:00:00Z

tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                            reason="tshark not installed: apt-get install tshark")

BASE = {
    "name": "test",
    "seed": 3,
    "start": "2026-05-01T10:00:00Z",
    "systems": {
        "A": {"domain": "a.mcx.example", "primary": True, "sip_server": "10.10.0.10",
              "mc_server": "10.10.0.11", "cms": "cms.a.mcx.example", "cms_address": "10.10.0.20",
              "idms": "idms.a.mcx.example", "idms_address": "10.10.0.21"},
        "B": {"domain": "b.mcx.example", "sip_server": "10.20.0.10"},
    },
    "ues": {"ue1": {
        "instance": "urn:gsma:imei:35209900-176148-1", "client_id": "ue1-mcptt-client",
        "identities": {
            "A": {"mc_id": "sip:alice@a.mcx.example", "impu": "sip:+491700000001@ims.a.mcx.example",
                  "address": "10.1.0.5"},
            "B": {"mc_id": "sip:alice.b@b.mcx.example", "impu": "sip:+491700000001@ims.b.mcx.example",
                  "address": "10.2.0.7", "port": 5062}}}},
    "timeline": [],
}
V6 = {"A": ("fd00:10::10", "fd00:10::11", "fd00:10::20", "fd00:10::21", "fd00:1::5"),
      "B": ("fd00:20::10", None, None, None, "fd00:2::7")}

G1, G2, BOB = "sip:G1@a.mcx.example", "sip:G2@a.mcx.example", "sip:bob@a.mcx.example"
#: A bit of everything over one transport: registration, affiliation, calls of each shape, HTTP.
FLOW = [
    {"at": 0.0, "ue": "ue1", "do": "register", "system": "A"},
    {"at": 0.4, "ue": "ue1", "do": "service-authorisation", "system": "A"},
    {"at": 0.8, "ue": "ue1", "do": "affiliate", "system": "A", "groups": [G1, G2]},
    {"at": 2.0, "ue": "ue1", "do": "group-call", "id": "c1", "system": "A", "group": G1, "role": "receive"},
    {"at": 3.0, "ue": "ue1", "do": "private-call", "id": "p1", "system": "A", "peer": BOB},
    {"at": 4.0, "ue": "ue1", "do": "profile-retrieval", "system": "A", "over": "http"},
    {"at": 4.2, "ue": "ue1", "do": "token", "system": "A"},
    {"at": 5.0, "ue": "ue1", "do": "release", "call": "p1", "reason": "migration"},
    {"at": 5.5, "ue": "ue1", "do": "deaffiliate", "system": "A", "groups": [G1]},
    {"at": 6.0, "ue": "ue1", "do": "register", "system": "B"},
    {"at": 6.5, "ue": "ue1", "do": "late-entry", "id": "c2", "system": "B", "group": "sip:G1@b.mcx.example"},
    {"at": 7.0, "ue": "ue1", "do": "leave", "call": "c1"},
    {"at": 7.5, "ue": "ue1", "do": "deregister", "system": "A"},
]


def scenario_text(timeline, *, transport="udp", ipv6=False, **top) -> str:
    data = copy.deepcopy(BASE)
    data["timeline"] = timeline
    data["ues"]["ue1"]["transport"] = transport
    if ipv6:
        for name, (sip, mc, cms, idms, ue) in V6.items():
            system = data["systems"][name]
            system["sip_server"] = sip
            for key, value in (("mc_server", mc), ("cms_address", cms), ("idms_address", idms)):
                if value:
                    system[key] = value
            data["ues"]["ue1"]["identities"][name]["address"] = ue
    data.update(top)
    return yaml.safe_dump(data, sort_keys=False)


def synth(timeline, **options):
    return synthesize(parse_scenario(scenario_text(timeline, **options), "test.yaml"))


def written(result, tmp_path, name="out.pcapng") -> Path:
    path = tmp_path / name
    write_pcapng(result, path)
    return path


def decoded(path: Path) -> tuple[list[Message], list[TlsHello], object]:
    result = decode(str(path))
    items = list(result.items)
    return ([m for m in items if isinstance(m, Message)], [h for h in items if isinstance(h, TlsHello)],
            result.diagnostics)


def row(m) -> tuple:
    return (m.frame, m.proto, m.method or m.status, m.call_id, str(m.src), str(m.dst))


@cache
def example():
    return synthesize(load_scenario(EXAMPLE))


# -- every procedure, determinism ---------------------------------------------------------------------------

def test_the_example_uses_every_procedure_and_is_byte_identical_when_written_twice(tmp_path):
    scenario = load_scenario(EXAMPLE)
    assert {s.do for s in scenario.timeline} == set(PROCEDURES) == set(STEP_KINDS)
    first = written(example(), tmp_path, "one.pcapng").read_bytes()
    again = written(synthesize(load_scenario(EXAMPLE)), tmp_path, "two.pcapng").read_bytes()
    assert first == again
    other = synthesize(parse_scenario(EXAMPLE.read_text().replace("seed: 1", "seed: 2"), "x.yaml"))
    assert written(other, tmp_path, "three.pcapng").read_bytes() != first
    assert example().declared[0].time == START  # timestamps come from `start`, not the clock


def test_cli_writes_the_capture_and_needs_an_output(tmp_path, capsys):
    out = tmp_path / "m.pcapng"
    assert main(["synth", str(EXAMPLE), "-o", str(out)]) == ExitCode.OK
    assert out.read_bytes() == written(example(), tmp_path).read_bytes()
    assert "1538 packets, 99 SIP/HTTP messages, 2 TLS ClientHello(s)" in capsys.readouterr().err
    assert main(["synth", str(EXAMPLE)]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "-o" in err and len(err.strip().splitlines()) == 1


def test_an_ipsec_ue_gets_its_sa_file_beside_the_capture_and_tcp_is_refused(tmp_path, capsys):
    data = yaml.safe_load(scenario_text([{"at": 0.0, "ue": "ue1", "do": "register", "system": "A"}]))
    data["ues"]["ue1"]["ipsec"] = "esp-null"
    scenario = tmp_path / "esp.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "esp.pcapng"
    assert main(["synth", str(scenario), "-o", str(out)]) == ExitCode.OK
    assert f"mcxa: {tmp_path / 'esp.esp-sa'}: its 4 IPsec SAs" in capsys.readouterr().err
    assert main(["messages", str(out), "--esp-sa", str(tmp_path / "esp.esp-sa"), "--format", "jsonl"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if '"REGISTER"' in line]
    data["ues"]["ue1"]["transport"] = "tcp"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["synth", str(scenario), "-o", str(out)]) == ExitCode.BAD_INPUT
    assert "key 'ues.ue1.ipsec': ESP is synthesised for SIP over UDP only" in capsys.readouterr().err


# -- decoders list exactly what was declared -----------------------------------------------------------------

CASES = {
    "udp-ipv4": {},
    "tcp-ipv4-split": {"transport": "tcp", "split": True},
    "udp-ipv6": {"ipv6": True},
}


@cache
def case(name: str):
    options = dict(CASES[name])
    timeline = copy.deepcopy(FLOW)
    if options.pop("split", False):
        for step in timeline[1:4]:
            step["fault"] = {"split": 3}
    return synth(timeline, **options)


@pytest.mark.parametrize("name", CASES)
def test_decode_lists_exactly_the_declared_messages(name, tmp_path):
    result = case(name)
    messages, hellos, diagnostics = decoded(written(result, tmp_path))
    assert [row(m) for m in messages] == [row(d) for d in result.declared]
    assert [(h.frame, h.sni) for h in hellos] == [(h.frame, h.sni) for h in result.hellos] != []
    assert diagnostics.total == 0, diagnostics.summary()  # exact Content-Length, whole multiparts
    assert {m.transport for m in messages} == {"tcp"} if "tcp" in name else {"udp", "tcp"}


def test_example_decodes_to_its_declared_messages(tmp_path):
    messages, _hellos, diagnostics = decoded(written(example(), tmp_path))
    assert [row(m) for m in messages] == [row(d) for d in example().declared]
    assert diagnostics.total == 0


@cache
def _tshark(path: str, *args: str) -> str:
    return subprocess.run(["tshark", "-r", path, *args], capture_output=True, text=True, check=True).stdout


@tshark
@pytest.mark.parametrize("name", CASES)
def test_tshark_shows_every_declared_message_at_its_frame_and_nothing_malformed(name, tmp_path):
    result = case(name)
    path = str(written(result, tmp_path))
    fields = _tshark(path, "-Y", "sip || http", "-T", "fields", "-e", "frame.number", "-e", "sip.Method",
                     "-e", "sip.Status-Code", "-e", "http.request.method", "-e", "http.response.code",
                     "-E", "occurrence=a", "-E", "aggregator=|")
    seen = {}
    for line in fields.splitlines():
        frame, *values = line.split("\t")
        seen[int(frame)] = "|".join(v for v in values if v)
    expected = {d.frame: str(d.method or d.status) for d in result.declared}
    assert seen == expected
    checks = ("-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
              "-o", "tcp.check_checksum:TRUE")
    assert _tshark(path, *checks, "-Y", "_ws.malformed || _ws.expert.severity >= error") == ""


@tshark
def test_tshark_sees_the_tls_server_names(tmp_path):
    path = str(written(example(), tmp_path))
    out = _tshark(path, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "frame.number",
                  "-e", "tls.handshake.extensions_server_name")
    assert [tuple(line.split("\t")) for line in out.splitlines()] == [
        (str(h.frame), h.sni) for h in example().hellos]


# -- message content ---------------------------------------------------------------------------------------

@cache
def example_messages() -> list[Message]:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return decoded(written(example(), Path(tmp)))[0]


def sip(method=None, status=None, cseq_method=None) -> list[Message]:
    return [m for m in example_messages() if m.proto == "sip" and (method is None or m.method == method)
            and (status is None or m.status == status)
            and (cseq_method is None or (m.cseq or "").endswith(cseq_method))]


def test_register_is_challenged_then_retried_on_the_same_call_id():
    first, retry = sip("REGISTER")[:2]
    challenge = sip(status=401)[0]
    assert first.call_id == retry.call_id == challenge.call_id
    assert (first.cseq, retry.cseq) == ("1 REGISTER", "2 REGISTER")
    assert "AKAv1-MD5" in challenge.headers.get("www-authenticate")
    assert 'response="' in retry.headers.get("authorization") and 'nonce=""' not in retry.headers.get(
        "authorization")
    contact = first.headers.get("contact")
    assert '+sip.instance="<urn:gsma:imei:35209900-176148-1>"' in contact
    assert 'icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt"' in contact and "+g.3gpp.mcptt" in contact
    dereg = [m for m in sip("REGISTER") if m.headers.get("expires") == "0"]
    assert dereg and dereg[0].call_id == first.call_id and dereg[0].cseq == "3 REGISTER"


def test_affiliation_publishes_full_sets_and_the_server_notifies():
    publishes = [m for m in sip("PUBLISH") if m.headers.get("event") == "presence"]
    groups = [[g for g in ("sip:G1@a.mcx.example", "sip:G2@a.mcx.example") if g.encode() in m.body]
              for m in publishes if m.uri.endswith("a.mcx.example")]
    assert groups == [["sip:G1@a.mcx.example", "sip:G2@a.mcx.example"], ["sip:G2@a.mcx.example"], []]
    clear = [m for m in publishes if m.headers.get("expires") == "0"]
    assert len(clear) == 1 and clear[0].body == b"" and clear[0].headers.get("sip-if-match")
    notify = sip("NOTIFY")
    assert all(m.headers.get("event") == "presence" for m in notify)
    assert b'status="deaffiliating"' in notify[2].body and b'status="affiliated"' in notify[1].body
    assert len({m.call_id for m in notify if "10.1.0.5" in m.dst}) == 1  # one subscription dialog in A


def test_late_entry_invite_comes_from_the_server_with_the_calling_group():
    late = next(m for m in sip("INVITE") if m.dst.startswith("10.2.0.7"))
    assert "isfocus" in late.headers.get("contact") and late.headers.get("answer-mode") == "Auto"
    assert late.headers.get("p-asserted-service") == "urn:urn-7:3gpp-service.ims.icsi.mcptt"
    parts = body_parts(late.headers.get("content-type"), late.body)
    assert not parts.problems and [p.content_type for p in parts] == [
        "application/sdp", "application/vnd.3gpp.mcptt-info+xml"]
    info = parts[1]
    assert b"<mcptt-calling-group-id" in info.body and b"sip:G1@b.mcx.example" in info.body
    answer = next(m for m in sip(status=200, cseq_method="INVITE") if m.call_id == late.call_id)
    assert answer.src.startswith("10.2.0.7") and ";tag=" in answer.headers.get("to")


def test_private_call_carries_the_recipient_list_and_is_released_with_the_reason_in_its_dialog():
    invite = next(m for m in sip("INVITE") if m.uri == "sip:mcptt-private-call@a.mcx.example")
    parts = body_parts(invite.headers.get("content-type"), invite.body)
    assert not parts.problems
    lists = next(p for p in parts if p.content_type == "application/resource-lists+xml")
    assert lists.disposition == "recipient-list" and b'uri="sip:bob@a.mcx.example"' in lists.body
    assert any(b"<session-type>private</session-type>" in p.body for p in parts)
    assert any(b"m=application" in p.body and b"udp MCPTT" in p.body for p in parts)
    ok = next(m for m in sip(status=200, cseq_method="INVITE") if m.call_id == invite.call_id)
    bye = next(m for m in sip("BYE") if m.call_id == invite.call_id)
    assert bye.headers.get("reason") == 'SIP;cause=200;text="MC migration"'
    assert bye.uri in ok.headers.get("contact")  # remote target
    assert bye.headers.get("route") == ok.headers.get("record-route") == "<sip:10.10.0.10:5060;lr>"
    assert bye.headers.get("to") == ok.headers.get("to")  # remote tag
    statuses = [m.status for m in example_messages() if m.call_id == invite.call_id and m.status]
    assert statuses == [100, 180, 200, 200]


def test_reason_text_overrides_the_migration_text():
    result = synth([*FLOW[:5], {"at": 5.0, "ue": "ue1", "do": "release", "call": "p1", "reason": "migration",
                                "reason_text": "moved to partner system"}])
    assert any(b'Reason: SIP;cause=200;text="moved to partner system"' in p for _, p in result.packets)


def test_user_profile_is_fetched_with_the_bearer_token_and_revalidated_with_its_etag(tmp_path):
    step = {"ue": "ue1", "do": "profile-retrieval", "system": "A", "over": "http"}
    result = synth([FLOW[0], {**step, "at": 1.0}, {**step, "at": 2.0}])
    http = [m for m in decoded(written(result, tmp_path))[0] if m.proto == "http"]
    get1, ok, get2, not_modified = http
    assert get1.uri == ("/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@a.mcx.example/"
                        "mcptt-user-profile.xml")
    assert get1.headers.get("authorization").startswith("Bearer ey")
    assert ok.status == 200
    assert ok.headers.get("content-type") == "application/vnd.3gpp.mcptt-user-profile+xml"
    assert b'<mcptt-user-profile xmlns="urn:3gpp:mcptt:user-profile:1.0"' in ok.body
    assert get2.headers.get("if-none-match") == ok.headers.get("etag")
    assert not_modified.status == 304


def test_large_udp_messages_leave_as_ip_fragments(tmp_path):
    result = case("udp-ipv4")
    fragments = 0
    for _, frame in result.packets:
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip, dpkt.ip.IP) and (ip.mf or ip.offset):
            fragments += 1
            assert len(ip) <= 1500
    assert fragments >= 2
    big = next(d for d in result.declared if d.method == "PUBLISH")
    assert dpkt.ethernet.Ethernet(result.packets[big.frame - 2][1]).data.mf


# -- faults -------------------------------------------------------------------------------------------------

def test_omit_removes_the_step(tmp_path):
    timeline = copy.deepcopy(FLOW[:3])
    timeline[1]["fault"] = "omit"
    result = synth(timeline)
    assert not [d for d in result.declared if d.method == "PUBLISH" and d.call_id
                and any(b"poc-settings" in p for _, p in result.packets if d.call_id.encode() in p)]
    assert len([d for d in result.declared if d.method == "PUBLISH"]) == 1  # the affiliation only


def test_error_answers_the_main_request_with_the_status_and_warning(tmp_path):
    timeline = copy.deepcopy(FLOW[:3])
    timeline[2]["fault"] = {"error": 403, "warning": "120 user not authorised to be affiliated to this group"}
    messages = decoded(written(synth(timeline), tmp_path))[0]
    publish = next(m for m in messages if m.method == "PUBLISH" and m.headers.get("event") == "presence")
    answer = next(m for m in messages if m.call_id == publish.call_id and m.status)
    assert answer.status == 403
    assert answer.headers.get("warning") == ('399 a.mcx.example "120 user not authorised to be affiliated to '
                                             'this group"')
    assert messages[-1] is answer  # no retry, no NOTIFY after it


def test_error_on_an_invite_is_acknowledged_and_no_dialog_follows(tmp_path):
    timeline = [*copy.deepcopy(FLOW[:5]), {"at": 5.0, "ue": "ue1", "do": "release", "call": "p1"}]
    timeline[4]["fault"] = {"error": 480}
    result = synth(timeline)
    messages = decoded(written(result, tmp_path))[0]
    call = next(m for m in messages if m.uri == "sip:mcptt-private-call@a.mcx.example").call_id
    flow = [(m.method or m.status) for m in messages if m.call_id == call]
    assert flow == ["INVITE", 100, 180, 480, "ACK"]
    final = next(m for m in messages if m.call_id == call and m.status == 480)
    assert final.headers.get("warning") == '399 a.mcx.example "110 user declined the call invitation"'
    assert any("never established" in note for note in result.notes)


def test_retransmit_sends_identical_datagrams_on_t1_doubling(tmp_path):
    timeline = copy.deepcopy(FLOW[:2])
    timeline[1]["fault"] = {"retransmit": 2}
    result = synth(timeline)
    sent = [d for d in result.declared if d.method == "PUBLISH"]
    assert len(sent) == 3 and len({d.call_id for d in sent}) == 1
    assert [round(d.time - sent[0].time, 3) for d in sent] == [0.0, 0.5, 1.5]
    copies = [m for m in decoded(written(result, tmp_path))[0] if m.method == "PUBLISH"]
    assert len({(m.headers, m.body) for m in copies}) == 1  # same branch, same bytes
    assert [d.status for d in result.declared if d.call_id == sent[0].call_id and d.status] == [200]


def test_no_answer_retransmits_until_timer_b():
    timeline = copy.deepcopy(FLOW[:4])
    timeline[3]["fault"] = {"no-answer": True}
    result = synth(timeline)
    invite = [d for d in result.declared if d.method == "INVITE"]
    assert [round(d.time - invite[0].time, 3) for d in invite] == send_offsets(True, unanswered=True) == [
        0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert not [d for d in result.declared if d.call_id == invite[0].call_id and d.status]


def test_split_spreads_every_message_of_the_step_over_n_segments(tmp_path):
    timeline = copy.deepcopy(FLOW[:4])
    timeline[2]["fault"] = {"split": 4}
    messages = decoded(written(synth(timeline, transport="tcp"), tmp_path))[0]
    affiliation = [m for m in messages if m.method in ("SUBSCRIBE", "PUBLISH", "NOTIFY")
                   and m.headers.get("event") == "presence"]
    step_calls = {m.call_id for m in affiliation}
    in_step = [m for m in messages if m.call_id in step_calls]
    assert len(in_step) == 8  # SUBSCRIBE, 200, NOTIFY, 200, PUBLISH, 200, NOTIFY, 200
    assert all(len(m.frames) == 4 for m in in_step)
    assert all(len(m.frames) <= 2 for m in messages if m.call_id not in step_calls)  # MSS only


def test_delay_shifts_the_step_and_reorder_swaps_it_with_the_previous_one():
    timeline = copy.deepcopy(FLOW[:3])
    timeline[1]["fault"] = {"delay": 45}
    result = synth(timeline)
    publishes = [d for d in result.declared if d.method == "PUBLISH"]
    assert publishes[-1].time == pytest.approx(START + 45.4)  # service authorisation, now last
    timeline = copy.deepcopy(FLOW[:3])
    timeline[2]["fault"] = {"reorder": "before-previous"}
    result = synth(timeline)
    first = next(d for d in result.declared if d.method in ("SUBSCRIBE", "PUBLISH"))
    assert first.method == "SUBSCRIBE" and first.time == pytest.approx(START + 0.4)


def test_truncate_at_ends_the_capture():
    result = synth(copy.deepcopy(FLOW), truncate_at=3.0)
    assert result.packets and max(t for t, _ in result.packets) <= START + 3.0
    assert max(d.time for d in result.declared) <= START + 3.0
    full = case("udp-ipv4")
    assert [d for d in full.declared if d.time <= START + 3.0] == list(result.declared)


def test_noise_adds_rtp_and_options_keepalives():
    result = synth(copy.deepcopy(FLOW), noise={"rtp_streams": 2, "options_interval": 2.0})
    rtp = [p for _, p in result.packets if (u := dpkt.ethernet.Ethernet(p).data.data) and
           isinstance(u, dpkt.udp.UDP) and u.data[:1] == b"\x80"]
    assert len(rtp) > 100
    sizes = {len(dpkt.ethernet.Ethernet(p).data.data.data) for p in rtp}
    assert sizes == {12 + 160}
    ports = {(u.sport, u.dport) for u in (dpkt.ethernet.Ethernet(p).data.data for p in rtp)}
    assert all(s % 2 == 0 and d % 2 == 0 for s, d in ports)
    assert len([d for d in result.declared if d.method == "OPTIONS"]) >= 3


def test_mcvideo_uses_its_own_names(tmp_path):
    text = scenario_text(copy.deepcopy(FLOW[:4])).replace("client_id: ue1-mcptt-client",
                                                         "client_id: ue1-mcptt-client\n    service: mcvideo")
    result = synthesize(parse_scenario(text, "v.yaml"))
    messages, _, diagnostics = decoded(written(result, tmp_path))
    assert diagnostics.total == 0
    invite = next(m for m in messages if m.method == "INVITE")
    assert b"application/vnd.3gpp.mcvideo-info+xml" in invite.body and b"udp MCVideo" in invite.body
    assert "+g.3gpp.mcvideo" in invite.headers.get("contact")


# -- bad scenarios ------------------------------------------------------------------------------------------

HOSTILE_CASES = {
    "duplicate-key.yaml": ":12: key 'seed': duplicate key",
    "unknown-key.yaml": ":13: unknown key 'grops'",
    "unknown-procedure.yaml": ":12: key 'timeline[0].do': unknown procedure 'regster'",
    "unknown-system.yaml": ":13: key 'timeline[1].system': unknown system 'B'",
    "syntax-error.yaml": ":12:79: ",
    "python-object.yaml": ":2: key 'name': tag",
    "billion-laughs.yaml": ":3:8: alias '*a' is not allowed",
    "tab-indent.yaml": ":3:1: tab character",
    "times-out-of-order.yaml": ":13: key 'timeline[1].at': 1.0 is before",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CASES))
def test_hostile_scenarios_end_in_one_line_naming_file_and_line(name, capsys, tmp_path):
    path = HOSTILE / name
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)) and HOSTILE_CASES[name] in message
    assert main(["synth", str(path), "-o", str(tmp_path / "x.pcapng")]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert err == f"mcxa: {message}\n"
    assert not (tmp_path / "x.pcapng").exists()


def step(**fields):
    return {"at": 1.0, "ue": "ue1", **fields}


INVALID = [
    ([step(do="register", system="C")], "unknown system 'C'"),
    ([step(do="affiliate", system="A", groups=[])], "needs at least one group"),
    ([step(do="affiliate", system="A", groups=["G1"])], "expected a sip:, sips: or tel: URI"),
    ([step(do="release", call="nope")], "unknown call 'nope'"),
    ([step(do="group-call", id="c", system="A", group=G1), step(do="release", call="c")],
     "'c' is a group-call; release ends a private-call"),
    ([step(do="group-call", id="c", system="A", group=G1),
      step(do="late-entry", id="c", system="A", group=G1)],
     "call id 'c' is already used"),
    ([step(do="register", system="A", fault={"split": 2})], "needs TCP"),
    ([step(do="register", system="A", fault={"warning": "120 x"})], "needs 'error'"),
    ([step(do="register", system="A", fault={"error": 403, "warning": "no code"})], "expected \"NNN text\""),
    ([step(do="register", system="A", fault={"reorder": "before-previous"})],
     "the first step has no previous"),
    ([step(do="register", system="A", fault="drop")], "unknown fault 'drop'"),
    ([step(do="register", system="A", fault={"eror": 403})], "unknown key 'eror'"),
    ([step(do="register", system="A", fault={"error": 200})], "final error status"),
    ([step(do="token", system="B")], "system 'B' has no idms"),
    ([step(do="group-call", id="c", system="A", group=G1, role="listen")], "unknown value 'listen'"),
    ([step(do="deaffiliate", system="A")], "either 'groups' or 'all: true'"),
    ([step(do="register", system="A", at="soon")], "expected a number, got a string"),
    ([step(do="private-call", id="x", system="A", peer="sip:bob@a.mcx.example"),
      step(do="release", call="x", reason_text='say "hi"')], "must be printable text"),
]


@pytest.mark.parametrize(("timeline", "expected"), INVALID, ids=[e for _, e in INVALID])
def test_invalid_steps_are_refused_with_file_line_and_key(timeline, expected):
    with pytest.raises(InputError) as caught:
        parse_scenario(scenario_text(timeline), "bad.yaml")
    message = str(caught.value)
    assert message.startswith("bad.yaml:") and expected in message and "\n" not in message


def test_invalid_setups_are_refused():
    text = scenario_text([]).replace("address: 10.1.0.5", "address: fd00::5")
    with pytest.raises(InputError, match="IPv6 address, but system 'A' sip_server is IPv4"):
        parse_scenario(text, "bad.yaml")
    text = scenario_text([]).replace("sip_server: 10.20.0.10", "sip_server: 10.20.0.10\n    primary: true")
    with pytest.raises(InputError, match="only one system may be primary"):
        parse_scenario(text, "bad.yaml")
    text = scenario_text([step(do="register", system="B")], transport="sctp")
    with pytest.raises(InputError, match="unknown value 'sctp'"):
        parse_scenario(text, "bad.yaml")


def test_the_readme_scenario_example_synthesises(tmp_path):
    """The README teaches the format with one example: it must stay a valid scenario."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "timeline:" in b]
    assert blocks, "README lost its scenario example"
    result = synthesize(parse_scenario(blocks[0], "README.md"))
    assert [d.status for d in result.declared if d.status][-1] == 403  # its affiliation fault shows
