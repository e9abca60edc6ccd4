"""Events and UE sessions on the sample captures: what each scenario declared, one session per UE."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.meaning.analysis import CaptureAnalysis, MeaningOptions, analyse_capture
from analyzer.meaning.systems import SystemMap
from analyzer.synth import parse_scenario, synthesize, write_pcapng

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
SYNTHESISED = sorted(p.name for p in SAMPLES.glob("*.pcapng"))
INSTANCE = "urn:gsma:imei:35209900-176148-1"


@cache
def analysis(name: str) -> CaptureAnalysis:
    return analyse_capture(str(SAMPLES / name))


def kinds(a: CaptureAnalysis, *wanted: str) -> list[tuple]:
    return [(e.kind, e.system, e.outcome, e.group or e.peer) for e in a.events if e.kind in wanted]


MIGRATION_KINDS = ("deaffiliation", "profile-retrieval", "registration", "affiliation", "group-call-incoming",
                   "group-call-join", "private-call-setup", "private-call-release", "config-access-encrypted")


@pytest.mark.parametrize("name", SYNTHESISED)
def test_every_ue_of_a_sample_is_one_session_across_both_systems(name):
    a = analysis(name)
    ues = 2 if name.startswith("two-ues") else 1
    assert len(a.sessions) == ues
    for s in a.sessions:
        assert [system for system, *_ in s.systems] in (["a.mcx.example", "b.mcx.example"],
                                                        ["b.mcx.example", "a.mcx.example"])
    assert sum(len(s.events) for s in a.sessions) == len(a.events)
    assert a.diagnostics.total == 0


def test_group_migration_events_in_order_with_the_identity_change_linked_by_device():
    a = analysis("group-migration-compliant.pcapng")
    assert kinds(a, *MIGRATION_KINDS) == [
        ("registration", "a.mcx.example", "success", None),
        ("affiliation", "a.mcx.example", "success", "sip:G1@a.mcx.example"),
        ("group-call-incoming", "a.mcx.example", "success", "sip:G1@a.mcx.example"),
        ("deaffiliation", "a.mcx.example", "success", "sip:G1@a.mcx.example"),
        ("profile-retrieval", "b.mcx.example", "success", None),
        ("registration", "b.mcx.example", "success", None),
        ("affiliation", "b.mcx.example", "success", "sip:G1@b.mcx.example"),
        ("group-call-incoming", "b.mcx.example", "success", "sip:G1@b.mcx.example"),
    ]
    [s] = a.sessions
    assert s.mc_id("a.mcx.example") == "sip:alice@a.mcx.example"
    assert s.mc_id("b.mcx.example") == "sip:alice.b@b.mcx.example"
    evidence = {(link.a, link.b): link.evidence for link in s.links}
    assert evidence[(INSTANCE, "sip:+491700000001@ims.b.mcx.example")] == "instance"
    assert evidence[("ue1-mcptt-client", "sip:alice.b@b.mcx.example")] == "client"
    registration = next(e for e in a.events if e.kind == "registration")
    assert registration.frames[:4] == (1, 2, 3, 4)  # the 401 challenge and the retry are one event
    assert registration.detail == "after a 401/407 challenge"


def test_failed_affiliation_carries_status_and_warning():
    a = analysis("group-migration-affiliation-rejected.pcapng")
    [failed] = [e for e in a.events if e.kind == "affiliation" and e.system == "b.mcx.example"]
    assert (failed.outcome, failed.status, failed.group) == ("failure", 403, "sip:G1@b.mcx.example")
    assert "120 user not authorised" in failed.detail
    assert not [e for e in a.events if e.kind == "group-call-incoming" and e.system == "b.mcx.example"]


def test_retransmissions_make_no_duplicate_events_and_sets_give_one_event_per_group():
    a = analysis("group-migration-noisy.pcapng")
    assert kinds(a, "deaffiliation") == [
        ("deaffiliation", "a.mcx.example", "success", "sip:G1@a.mcx.example"),
        ("deaffiliation", "a.mcx.example", "success", "sip:G2@a.mcx.example")]
    assert len(kinds(a, "registration")) == 2


@pytest.mark.parametrize("name,migration", [("private-migration-compliant.pcapng", True),
                                            ("private-migration-no-reason.pcapng", None)])
def test_private_call_release_says_whether_it_indicated_migration(name, migration):
    a = analysis(name)
    release = next(e for e in a.events if e.kind == "private-call-release")
    assert (release.peer, release.migration, release.direction) == ("sip:bob@a.mcx.example", migration,
                                                                     "from-ue")
    setups = kinds(a, "private-call-setup")
    assert [s[1] for s in setups] == ["a.mcx.example", "b.mcx.example"]


def test_encrypted_profile_retrieval_is_an_encrypted_configuration_access():
    a = analysis("group-migration-https-profile.pcapng")
    [tls] = [e for e in a.events if e.kind == "config-access-encrypted"]
    assert (tls.outcome, tls.system, tls.detail) == ("encrypted", "b.mcx.example", "TLS to cms.b.mcx.example")
    assert not [e for e in a.events if e.kind == "profile-retrieval"]
    assert tls in a.sessions[0].events  # no identity on the wire: joined by address


def test_chat_join_mcvideo_and_back_to_primary():
    assert [k[0] for k in kinds(analysis("group-migration-chat.pcapng"), "group-call-join")] == [
        "group-call-join", "group-call-join"]
    assert {e.service for e in analysis("mcvideo-group-migration.pcapng").events
            if e.kind in ("affiliation", "group-call-incoming")} == {"mcvideo"}
    back = analysis("private-migration-back-to-primary.pcapng")
    assert [s for s, *_ in back.sessions[0].systems] == ["b.mcx.example", "a.mcx.example"]
    assert back.sessions[0].mc_id("b.mcx.example") == "sip:alice.b@b.mcx.example"


def test_two_ues_sharing_an_address_at_different_times_stay_two_sessions(tmp_path):
    scenario = parse_scenario("""
name: one address, two UEs
systems:
  A: {domain: a.mcx.example, primary: true, sip_server: 10.10.0.10}
ues:
  u1: {instance: "urn:gsma:imei:1", client_id: c1, identities: {A: {mc_id: sip:u1@a.mcx.example,
       impu: sip:+1@ims.a.mcx.example, address: 10.1.0.5}}}
  u2: {instance: "urn:gsma:imei:2", client_id: c2, identities: {A: {mc_id: sip:u2@a.mcx.example,
       impu: sip:+2@ims.a.mcx.example, address: 10.1.0.5}}}
timeline:
  - {at: 0, ue: u1, do: register, system: A}
  - {at: 1, ue: u1, do: service-authorisation, system: A}
  - {at: 5, ue: u1, do: deregister, system: A}
  - {at: 20, ue: u2, do: register, system: A}
  - {at: 21, ue: u2, do: service-authorisation, system: A}
""", "shared-address.yaml")
    path = tmp_path / "shared.pcapng"
    write_pcapng(synthesize(scenario), path)
    a = analyse_capture(str(path))
    assert [s.mc_id() for s in a.sessions] == ["sip:u1@a.mcx.example", "sip:u2@a.mcx.example"]


def test_systems_file_and_identity_map_change_names_and_links(tmp_path):
    systems = tmp_path / "systems.yaml"
    systems.write_text("systems:\n  Home: {primary: true, domains: [a.mcx.example]}\n"
                       "  Partner: {domains: [b.mcx.example]}\n")
    a = analyse_capture(str(SAMPLES / "group-migration-compliant.pcapng"),
                        meaning=MeaningOptions(systems=SystemMap.from_file(systems)))
    assert [s for s, *_ in a.sessions[0].systems] == ["Home", "Partner"]
    assert a.systems.primary() == "Home"


def test_cli_events_and_sessions(tmp_path, capsys):
    capture = str(SAMPLES / "two-ues-group-migration.pcapng")
    args = ["events", capture, "--format", "jsonl", "--ue", "ue2", "--kind", "affiliation"]
    assert main(args) == ExitCode.OK
    rows = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(rows) == 2 and all('"ue":"ue2"' in r and '"kind":"affiliation"' in r for r in rows)
    out = tmp_path / "events.parquet"
    assert main(["events", capture, "--format", "parquet", "-o", str(out)]) == ExitCode.OK
    import polars as pl

    table = pl.read_parquet(out)
    assert table.height == len(analysis("two-ues-group-migration.pcapng").events)
    assert {"frame", "ue", "kind", "outcome", "system", "group", "frames"} <= set(table.columns)
    assert main(["sessions", capture]) == ExitCode.OK
    text = capsys.readouterr().out
    assert "ue1  sip:alice@a.mcx.example" in text and "ue2  sip:bob@a.mcx.example" in text
    assert "same +sip.instance" in text
    assert main(["sessions", capture, "--format", "json"]) == ExitCode.OK
    assert '"links"' in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["--systems", "missing.yaml"], "missing.yaml"),
    (["--migration-reason", "("], "not a regular expression"),
])
def test_cli_bad_meaning_options_are_one_line_exit_2(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["events", str(SAMPLES / "group-migration-compliant.pcapng"), *args])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT and needle in err and len(err.strip().splitlines()) == 1


# --- frame numbers: the frame that completed each message, as tshark and `mcxa messages` number them -----

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def tshark_messages(path: Path) -> dict[int, str]:
    """Frame → Call-ID (SIP) or "http", for every frame tshark shows a SIP or HTTP message in."""
    cmd = ["tshark", "-r", str(path), "-Y", "sip || http.request || http.response", "-T", "fields",
           "-e", "frame.number", "-e", "sip.Call-ID"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = (line.split("\t") for line in out.splitlines())
    return {int(frame): call_id or "http" for frame, call_id in rows}


@needs_tshark
@pytest.mark.parametrize("path", [SAMPLES / "group-migration-tcp-ipv6.pcapng",
                                  SAMPLES / "real" / "sipp-mcptt-tcp-ipv6.pcap"], ids=["synth", "sipp"])
def test_event_and_report_frames_over_tcp_are_the_frames_tshark_shows_the_messages_in(path, capsys):
    shown = tshark_messages(path)
    assert main(["events", str(path), "--format", "jsonl"]) == ExitCode.OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(events) >= 5
    for e in events:
        assert e["frame"] == e["frames"][0] and e["frames"] == sorted(e["frames"])
        assert all(shown.get(f) == (e["call_id"] or "http") for f in e["frames"]), e
    main(["analyze", str(path), "--format", "json"])  # the SIPp flow has no migration: some steps are missing
    report = json.loads(capsys.readouterr().out)
    cited = {f for c in report["captures"] for p in c["procedures"]
             for f in (*p["anchor"]["frames"], *(f for s in p["steps"] for f in s["frames"]))}
    assert cited and cited <= set(shown)


def test_every_frame_of_a_tcp_message_stays_available_in_all_frames():
    a = analysis("group-migration-tcp-ipv6.pcapng")
    registration = a.events[0]
    assert registration.kind == "registration"
    assert registration.frames == (6, 10, 13, 17)  # REGISTER, 401, REGISTER, 200 as Wireshark shows them
    assert registration.frame == 6  # not 4, the REGISTER's first segment
    assert {4, 5} <= set(registration.all_frames) and set(registration.frames) <= set(registration.all_frames)
    link = next(link for link in a.sessions[0].links if link.evidence == "instance")
    assert link.reason.endswith("in registration (frame 6)") and link.frames == registration.frames
