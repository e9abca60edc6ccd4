"""Pre-established sessions (TS 24.379 cl. 6.3.3) and affiliation as deployed (cl. 9): the REFER parser,
the events they make, and how the migration rules judge them (what a user sees in the reports)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.meaning import mcfacts
from analyzer.meaning.events.extract import extract_events
from analyzer.messages.decode import to_message
from analyzer.messages.floor import FloorMessage
from analyzer.transport.records import Payload

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
UE, SERVER = "10.1.0.5:5060", "10.10.0.10:5060"
INFO = ('<?xml version="1.0"?><mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>'
        "<session-type>{type}</session-type><mcptt-request-uri>{uri}</mcptt-request-uri>{more}"
        "</mcptt-Params></mcpttinfo>")
INFO_TYPE = "application/vnd.3gpp.mcptt-info+xml"


def info(kind: str, uri: str, more: str = "") -> str:
    return INFO.format(type=kind, uri=uri, more=more)


def message(text: str, src: str = UE, dst: str = SERVER, t: float = 0.0, frame: int = 1):
    head, _, body = text.partition("\n\n")
    data = head.replace("\n", "\r\n").encode() + b"\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
    return to_message(Payload(data + body.encode(), (frame,), t, src, dst, "udp"))[0]


def request(method: str, call_id: str, *, uri: str = "sip:mcptt-participating@a.example", cseq: int = 1,
            headers: str = "", body: str = "", ctype: str = INFO_TYPE, **where):
    lines = [f"{method} {uri} SIP/2.0", f"Via: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK{call_id}{cseq}",
             "From: <sip:+4917@ims.a.example>;tag=u", f"To: <{uri}>", f"Call-ID: {call_id}",
             f"CSeq: {cseq} {method}", "P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.mcptt"]
    lines += [h for h in headers.split("\n") if h]
    if body:
        lines.append(f"Content-Type: {ctype}")
    return message("\n".join(lines) + "\n\n" + body, **where)


def ok(req, status: int = 200, **where):
    lines = [f"SIP/2.0 {status} OK", f"Via: {req.headers.get('via')}", f"From: {req.headers.get('from')}",
             f"To: {req.headers.get('to')};tag=s", f"Call-ID: {req.call_id}",
             f"CSeq: {req.headers.get('cseq')}"]
    return message("\n".join(lines) + "\n\n", src=req.dst, dst=req.src, **where)


def exchange(req, status: int = 200):
    return [req, ok(req, status, t=req.time + 0.01, frame=req.frame + 1)]


def events_of(items):
    events, _ = extract_events(items)
    return [(e.kind, e.direction, e.group or e.peer, e.via, e.evidence, e.call_id) for e in events]


def refer_to(target: str, body: str = "", ctype: str = INFO_TYPE, method: str | None = None) -> str:
    param = f";method={method}" if method else ""
    query = f"?Content-Type={quote(ctype, safe='')}&body={quote(body, safe='')}" if body else ""
    return f"<{target}{param}{query}>"


SDP = "v=0\no=- 1 1 IN IP4 10.1.0.5\ns=-\nc=IN IP4 10.1.0.5\nt=0 0\nm=audio 4000 RTP/AVP 0\n"


def session_setup(call_id: str = "pre1", t: float = 0.0):
    return exchange(request("INVITE", call_id, body=SDP, ctype="application/sdp", t=t, frame=1))


# -- the parser ------------------------------------------------------------------------------------------

def test_refer_to_with_an_embedded_body_compact_header_and_target_dialog():
    body = info("chat", "sip:G1@a.example")
    req = request("REFER", "r1", headers=f"r: {refer_to('sip:G1@a.example', body)}\n"
                                         "Target-Dialog: pre1;local-tag=u;remote-tag=s")
    refer = mcfacts.refer_to(req)
    assert (refer.uri.aor, refer.method, refer.content_type) == ("sip:G1@a.example", None, INFO_TYPE)
    assert refer.body.decode() == body
    assert mcfacts.target_dialog(req) == mcfacts.TargetDialog("pre1", "u", "s")
    found, listed = mcfacts.referred(req, refer)
    assert (found.session_type, found.request_uri, listed) == ("chat", "sip:G1@a.example", ())


@pytest.mark.parametrize("value,aor,method", [
    ("<sip:G1@a.example;method=bye>", "sip:G1@a.example", "BYE"),
    ("sip:bob@a.example;method=BYE", "sip:bob@a.example", None),  # addr-spec: ;… are header parameters
    ("<sip:G1@a.example?body=%3Cunclosed", "sip:G1@a.example", None),  # no closing bracket
    ("<>", None, None),
    ("<sip:x@y?" + "&".join(f"h{i}=v" for i in range(5000)) + ">", "sip:x@y", None),
])
def test_refer_to_variants_and_hostile_values_never_raise(value, aor, method):
    refer = mcfacts.refer_to(request("REFER", "r1", headers=f"Refer-To: {value}"))
    assert (refer.uri.aor if refer.uri else None, refer.method) == (aor, method)
    assert len(refer.headers) <= 32


def test_a_private_call_refer_gives_the_called_user_from_a_multipart_body_in_the_refer_to():
    boundary = "b1"
    lists = ('<?xml version="1.0"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>'
             '<entry uri="sip:bob@a.example"/></list></resource-lists>')
    body = (f"--{boundary}\r\nContent-Type: {INFO_TYPE}\r\n\r\n{info('private', 'sip:bob@a.example')}\r\n"
            f"--{boundary}\r\nContent-Type: application/resource-lists+xml\r\n"
            f"Content-Disposition: recipient-list\r\n\r\n{lists}\r\n--{boundary}--\r\n")
    req = request("REFER", "r1", headers="Refer-To: " + refer_to("sip:bob@a.example", body,
                                                                  f"multipart/mixed;boundary={boundary}"))
    found, listed = mcfacts.referred(req, mcfacts.refer_to(req))
    assert found.session_type == "private" and listed == ("sip:bob@a.example",)


# -- events ----------------------------------------------------------------------------------------------

def test_session_set_up_refer_calls_in_it_and_its_release_end_the_call():
    target = "\nTarget-Dialog: pre1;local-tag=u;remote-tag=s"
    join = request("REFER", "r1", t=1.0, frame=3, headers="Refer-To: " + refer_to(
        "sip:C1@a.example", info("chat", "sip:C1@a.example")) + target)
    reinvite = request("INVITE", "pre1", cseq=2, body=SDP, ctype="application/sdp", t=2.0, frame=5)
    bye = request("BYE", "pre1", cseq=3, t=3.0, frame=7)
    got = events_of([*session_setup(), *exchange(join), *exchange(reinvite), *exchange(bye)])
    assert got == [
        ("pre-established-session", "from-ue", None, None, None, "pre1"),
        ("group-call-join", "from-ue", "sip:C1@a.example", "pre-established", None, "pre1"),
        ("affiliation", "from-ue", "sip:C1@a.example", None, "implicit-chat", "pre1"),
        ("group-call-leave", "from-ue", "sip:C1@a.example", "pre-established", None, "pre1"),
        ("pre-established-session-release", "from-ue", None, None, None, "pre1"),
    ]


def test_a_refer_inside_the_session_dialog_ties_by_call_id_and_refer_bye_releases_the_call():
    call = request("REFER", "pre1", cseq=2, t=1.0, frame=3, headers="Refer-To: " + refer_to(
        "sip:G1@a.example", info("prearranged", "sip:G1@a.example",
                                 "<emergency-ind>true</emergency-ind>")))
    release = request("REFER", "pre1", cseq=3, t=2.0, frame=5,
                      headers="Refer-To: <sip:G1@a.example;method=BYE>\nReason: SIP;cause=200;text=\"done\"")
    stray = request("REFER", "other", t=3.0, frame=7, headers="Refer-To: <sip:G9@a.example;method=BYE>")
    got = events_of([*session_setup(), *exchange(call), *exchange(release), *exchange(stray)])
    assert got == [
        ("pre-established-session", "from-ue", None, None, None, "pre1"),
        ("group-call-originate", "from-ue", "sip:G1@a.example", "pre-established", None, "pre1"),
        ("affiliation", "from-ue", "sip:G1@a.example", None, "implicit-emergency", "pre1"),
        ("group-call-leave", "from-ue", "sip:G1@a.example", "pre-established", None, "pre1"),
    ]  # a REFER method=BYE for no call known makes no event


def test_a_rejected_join_affiliates_nobody_and_a_plain_invite_is_no_session():
    join = request("REFER", "r1", t=1.0, frame=3, headers="Refer-To: " + refer_to(
        "sip:C1@a.example", info("chat", "sip:C1@a.example")) + "\nTarget-Dialog: pre1")
    plain = exchange(message("INVITE sip:x@a.example SIP/2.0\nVia: SIP/2.0/UDP 10.1.0.5;branch=z9hG4bKp\n"
                             "From: <sip:a@a.example>;tag=1\nTo: <sip:x@a.example>\nCall-ID: plain\n"
                             "CSeq: 1 INVITE\nContent-Type: application/sdp\n\n" + SDP, t=2.0, frame=5))
    got = events_of([*session_setup(), *exchange(join, 403), *plain])
    assert [g[0] for g in got] == ["pre-established-session", "group-call-join"]


# -- the media plane: MCPC Connect / Disconnect (24.380 §8.3) ----------------------------------------------

UE_CONTROL, SERVER_CONTROL = "10.1.0.5:4001", "10.10.0.10:6001"


def mcpc(message: str, t: float, frame: int, *, from_ue: bool = False, ack: bool = True, **fields):
    src, dst = (UE_CONTROL, SERVER_CONTROL) if from_ue else (SERVER_CONTROL, UE_CONTROL)
    subtype = {"connect": 0, "disconnect": 1, "acknowledgement": 2}[message] | (0x10 if ack else 0)
    return FloorMessage("mcpc", "MCPC", message, subtype, 7, tuple(fields.items()), (frame,), t, src, dst)


def details(items):
    events, _ = extract_events(items)
    return [(e.kind, e.direction, e.group or e.peer, e.outcome, e.via, e.call_id, e.frames, e.detail)
            for e in events if not e.kind.startswith("pre-established")]


def test_an_mcpc_connect_on_the_sessions_media_joins_it_to_the_group_call_as_the_ue_acknowledges():
    """Late entry over a pre-established session has no INVITE: the Connect (on the session's SDP ports)
    is the evidence, decided by the UE's Acknowledgement; a Disconnect ends the call."""
    connect = mcpc("connect", 1.0, 3, session_identity="prearranged sip:gc-1@a.example",
                   group_id="sip:G1@a.example", answer_state=0)
    accepted = mcpc("acknowledgement", 1.02, 4, from_ue=True, ack=False, reason_code=0)
    items = [*session_setup(), connect, accepted,
             mcpc("disconnect", 5.0, 5, from_ue=True, session_identity="prearranged sip:gc-1@a.example")]
    assert details(items) == [
        ("group-call-incoming", "to-ue", "sip:G1@a.example", "success", "pre-established", "pre1", (3, 4),
         "MCPC Connect, answer state unconfirmed, acknowledged: accepted"),
        ("group-call-leave", "from-ue", "sip:G1@a.example", "success", "pre-established", "pre1", (5,),
         "MCPC Disconnect")]


@pytest.mark.parametrize("answer,outcome,detail", [
    ([mcpc("acknowledgement", 1.02, 4, from_ue=True, ack=False, reason_code=1)], "failure",
     "MCPC Connect, acknowledged: busy"),
    ([mcpc("acknowledgement", 1.02, 4, from_ue=True, ack=False, reason_code=2)], "failure",
     "MCPC Connect, acknowledged: not accepted"),
    ([], "no-answer", "MCPC Connect, no Acknowledgement"),
    ([mcpc("acknowledgement", 1.02, 4, ack=False, reason_code=0)], "no-answer",  # the server's: not the UE's
     "MCPC Connect, no Acknowledgement"),
])
def test_a_connect_the_ue_refuses_or_never_acknowledges_is_no_successful_late_entry(answer, outcome, detail):
    connect = mcpc("connect", 1.0, 3, group_id="sip:G1@a.example")
    got = details([*session_setup(), connect, *answer])
    assert [(g[0], g[3], g[7]) for g in got] == [("group-call-incoming", outcome, detail)]


def test_a_private_connect_names_the_inviting_user_and_mcpc_elsewhere_makes_no_event():
    """Elsewhere: ports no session negotiated, even on a UE's host when its session's SDP is known (another
    UE behind the same NAT may own them)."""
    connect = mcpc("connect", 1.0, 3, ack=False, session_identity="private sip:pc-1@a.example",
                   inviting_user_id="sip:bob@a.example")
    stray = FloorMessage("mcpc", "MCPC", "connect", 0, 7, (("group_id", "sip:G9@a.example"),), (9,), 2.0,
                         "192.0.2.1:6001", "192.0.2.2:4001")  # no session negotiated these ports
    behind_a_nat = FloorMessage("mcpc", "MCPC", "connect", 0, 7, (("group_id", "sip:G8@a.example"),), (10,),
                                3.0, SERVER_CONTROL, "10.1.0.5:9999")  # the UE's host, not its SDP's ports
    got = details([*session_setup(), connect, stray, behind_a_nat])
    assert [(g[0], g[1], g[2], g[3]) for g in got] == [
        ("private-call-setup", "to-ue", "sip:bob@a.example", "success")]


def test_any_sequence_of_media_plane_control_makes_well_formed_events_or_none():
    """Connects, Disconnects and Acknowledgements in any order, from either side, with any field values
    (the decoder keeps a short field as hex), around a session's set-up and release: never an exception,
    at most one call event per Connect, each with a known outcome."""
    rng = random.Random(7)
    values = [None, 0, 1, 2, 7, "0x05", "", "sip:G1@a.example", "private sip:pc@a", "prearranged sip:g@a",
              "chat ", "x" * 300]
    for _ in range(300):
        items = [*session_setup()]
        connects = 0
        for k in range(rng.randrange(1, 12)):
            kind = rng.choice(["connect", "disconnect", "acknowledgement"])
            connects += kind == "connect"
            fields = {name: rng.choice(values) for name in ("session_identity", "group_id", "reason_code",
                                                             "answer_state", "inviting_user_id")
                      if rng.random() < 0.5}
            items.append(mcpc(kind, 1.0 + k, 3 + k, from_ue=rng.random() < 0.5, ack=rng.random() < 0.5,
                              **{n: v for n, v in fields.items() if v is not None}))
        if rng.random() < 0.3:
            items += exchange(request("BYE", "pre1", cseq=9, t=50.0, frame=90))
        events, _ = extract_events(items)
        joins = [e for e in events if e.detail and e.detail.startswith("MCPC Connect")]
        assert len(joins) <= connects
        assert all(e.outcome in ("success", "failure", "no-answer") and e.call_id == "pre1" for e in joins)


def test_floor_control_on_a_sessions_ports_belongs_to_the_call_it_carries_at_the_time():
    """Calls made one after another in one session share its Call-ID and its ports: a floor message goes
    to the call the session carried when it was sent, and to none between calls."""
    target = "\nTarget-Dialog: pre1;local-tag=u;remote-tag=s"
    first = request("REFER", "r1", t=1.0, frame=3, headers="Refer-To: " + refer_to(
        "sip:C1@a.example", info("chat", "sip:C1@a.example")) + target)
    end = request("REFER", "r2", t=2.0, frame=5, headers="Refer-To: <sip:C1@a.example;method=BYE>" + target)
    second = request("REFER", "r3", t=4.0, frame=7, headers="Refer-To: " + refer_to(
        "sip:C2@a.example", info("chat", "sip:C2@a.example")) + target)

    def taken(t: float, frame: int) -> FloorMessage:
        return FloorMessage("mcptt-fc", "MCPT", "floor-taken", 2, 9, (), (frame,), t, SERVER_CONTROL,
                            UE_CONTROL)

    items = [*session_setup(), *exchange(first), taken(1.5, 4), *exchange(end), taken(3.0, 6),
             *exchange(second), taken(5.0, 9)]
    assert [(e.frame, e.group, e.call_id) for e in extract_events(items)[0] if e.kind == "floor-taken"] == [
        (4, "sip:C1@a.example", "pre1"), (9, "sip:C2@a.example", "pre1")]


def test_a_late_entry_by_mcpc_connect_is_measured_from_the_connect(capsys):
    """KPI 4 and the interruption as heard, over pre-established sessions: the talk burst heard last in A
    (Floor Idle, frame 26) → the first Floor Taken in B (frame 65), 0.1 s after the Connect (frame 63)."""
    capture = str(SAMPLES / "group-migration-pre-established-late-entry.pcapng")
    assert main(["analyze", capture, "--format", "json"]) == ExitCode.OK
    proc = next(p for p in json.loads(capsys.readouterr().out)["captures"][0]["procedures"]
                if p["rule"] == "group-call-migration")
    kpis = proc["kpis"]
    assert (kpis["late_entry_time"], kpis["late_entry_frames"]) == (0.1, [63, 65])
    assert (kpis["media_interruption"], kpis["media_interruption_frames"]) == (2.6, [26, 65])


def late_entry_scenario(tmp_path, fault: str) -> Path:
    """The late-entry sample's scenario with ``fault`` on its MCPC Connect step."""
    text = (SAMPLES / "group-migration-pre-established-late-entry.yaml").read_text()
    step = "over: pre-established}\n  - {at: 12.6"
    assert text.count(step) == 1
    scenario = tmp_path / "late-entry.yaml"
    scenario.write_text(text.replace(step, f"over: pre-established, fault: {fault}}}\n  - {{at: 12.6"))
    return scenario


def test_a_late_entry_the_ue_refuses_on_the_media_plane_is_a_failed_step(tmp_path, capsys):
    capture = tmp_path / "busy.pcapng"
    assert main(["synth", str(late_entry_scenario(tmp_path, "{error: 486}")), "-o", str(capture),
                 "-q"]) == ExitCode.OK
    assert main(["analyze", str(capture), "--format", "json"]) == ExitCode.DEVIATION
    doc = json.loads(capsys.readouterr().out)
    proc = next(p for p in doc["captures"][0]["procedures"] if p["rule"] == "group-call-migration")
    assert [(d["code"], d["step"], d["frames"]) for d in proc["deviations"]] == [
        ("step-failed", "late-entry", [63, 64])]
    assert proc["deviations"][0]["message"].endswith("was rejected: MCPC Connect, answer state unconfirmed, "
                                                     "acknowledged: busy")


def test_a_media_plane_late_entry_takes_only_the_faults_it_can_have(tmp_path, capsys):
    scenario = late_entry_scenario(tmp_path, "{split: 3}")
    assert main(["synth", str(scenario), "-o", str(tmp_path / "x.pcapng")]) == ExitCode.BAD_INPUT
    assert "it takes only the faults omit, delay, reorder, error and no-answer" in capsys.readouterr().err


def test_an_affiliation_command_from_the_server_is_a_remote_affiliation_of_the_ue():
    command = ('<?xml version="1.0"?><command-list xmlns="urn:3gpp:ns:affiliationCommand:1.0">'
               "<affiliate><group>sip:G2@a.example</group></affiliate>"
               "<de-affiliate><group>sip:G3@a.example</group></de-affiliate></command-list>")
    sent = request("MESSAGE", "m1", uri="sip:+4917@ims.a.example", body=command, src=SERVER, dst=UE,
                   ctype="application/vnd.3gpp.mcptt-affiliation-command+xml", t=1.0, frame=3)
    got = events_of([*session_setup(), *exchange(sent)])
    assert got[1:] == [("affiliation", "to-ue", "sip:G2@a.example", None, "remote", "m1"),
                       ("deaffiliation", "to-ue", "sip:G3@a.example", None, "remote", "m1")]


# -- what the reports show -------------------------------------------------------------------------------

def steps(capsys, capture: str, rule: str) -> dict:
    assert main(["analyze", str(SAMPLES / capture), "--format", "json"]) == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    proc = next(p for p in doc["captures"][0]["procedures"] if p["rule"] == rule)
    assert proc["verdict"] == "compliant"
    return {s["id"]: (s["event"], s["detail"]) for s in proc["steps"]}


def test_reports_say_which_evidence_each_step_matched(capsys):
    assert steps(capsys, "group-migration-implicit-affiliation.pcapng", "group-call-migration") == {
        "deaffiliation": ("deaffiliation", None), "profile-retrieval": ("profile-retrieval", None),
        "affiliation": ("affiliation", "evidence implicit-chat"),
        "late-entry": ("group-call-join", "via pre-established")}
    assert steps(capsys, "group-migration-pre-established.pcapng", "group-call-migration")["late-entry"] == \
        ("group-call-originate", "via pre-established")
    assert steps(capsys, "group-migration-pre-established-late-entry.pcapng",
                 "group-call-migration")["late-entry"] == ("group-call-incoming", "via pre-established")
    # an emergency call in B affiliates implicitly and rejoins the ongoing call (tel: MC and group IDs)
    got = steps(capsys, "group-migration-emergency.pcapng", "group-call-migration")
    assert (got["affiliation"], got["late-entry"]) == (("affiliation", "evidence implicit-emergency"),
                                                       ("group-call-originate", None))
    got = steps(capsys, "private-migration-pre-established.pcapng", "private-call-migration")
    assert got["release"] == ("private-call-release", "via pre-established")
    assert got["re-establishment"] == ("private-call-setup", "via pre-established")
    assert main(["analyze", str(SAMPLES / "group-migration-implicit-affiliation.pcapng"), "--format",
                 "html"]) == ExitCode.OK
    assert "(evidence implicit-chat)" in capsys.readouterr().out


def test_events_list_via_and_evidence(capsys):
    capture = str(SAMPLES / "group-migration-implicit-affiliation.pcapng")
    assert main(["events", capture, "--format", "jsonl", "--kind", "group-call-join"]) == ExitCode.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [(r["system"], r["via"]) for r in rows] == [("a.mcx.example", "on-demand"),
                                                       ("b.mcx.example", "pre-established")]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_an_affiliation_shown_only_by_the_servers_notify_is_accepted_and_named(tmp_path, capsys):
    """Implicit affiliation from the profile at registration leaves no PUBLISH: the NOTIFY is the evidence."""
    out = tmp_path / "notify-only.pcapng"
    subprocess.run(["tshark", "-r", str(SAMPLES / "group-migration-compliant.pcapng"), "-w", str(out), "-Y",
                    '!(sip.Method == "PUBLISH" && sip.Event contains "presence" && ip.dst == 10.20.0.10)'],
                   check=True, capture_output=True)
    got = steps(capsys, str(out), "group-call-migration")
    assert got["affiliation"] == ("affiliation-status", "evidence notify")
    assert got["late-entry"] == ("group-call-incoming", None)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_a_deaffiliation_shown_only_by_the_servers_notify_is_accepted_and_named(tmp_path, capsys):
    """The de-affiliation's PUBLISH is not in the capture, the server's NOTIFY saying "deaffiliating" is."""
    out = tmp_path / "deaffiliation-notify-only.pcapng"
    subprocess.run(["tshark", "-r", str(SAMPLES / "group-migration-compliant.pcapng"), "-w", str(out), "-Y",
                    '!(sip.Method == "PUBLISH" && sip.Event contains "presence" && ip.dst == 10.10.0.10 '
                    "&& frame.time_relative > 5)"], check=True, capture_output=True)
    got = steps(capsys, str(out), "group-call-migration")
    assert got["deaffiliation"] == ("affiliation-status", "evidence notify")


def test_a_real_stack_pre_established_session_gives_its_events(capsys):
    """SIPp plays the UE and the participating server on loopback namespaces (real/make_real_captures.sh):
    the REFERs are sent inside the session's dialog, so they are tied by Call-ID."""
    capture = str(SAMPLES / "real" / "sipp-mcptt-preestablished-udp.pcap")
    assert main(["events", capture, "--format", "jsonl"]) == ExitCode.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [(r["frame"], r["kind"], r["group"], r["via"], r["detail"]) for r in rows] == [
        (2, "pre-established-session", None, None, None),
        (6, "group-call-originate", "sip:group-A@mcx.example", "pre-established", None),
        (8, "group-call-leave", "sip:group-A@mcx.example", "pre-established", "MC migration"),
        (10, "pre-established-session-release", None, None, None)]
    assert len({r["call_id"] for r in rows}) == 1


def test_a_broken_body_read_by_several_readers_is_one_diagnostic():
    """The MC info, the recipient list and the SDP of an INVITE are read from one multipart: its defect
    is said once, at the request's frame."""
    broken = request("INVITE", "c9", body="--yy\r\nbroken\r\n", ctype="multipart/mixed;boundary=zz")
    problems: list = []
    extract_events(exchange(broken), problems=problems)
    assert [(p.code, p.frames) for p in problems] == [("malformed-body", (1,))]
