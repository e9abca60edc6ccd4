"""Issue 17 §2 end to end: floor events tied to the call whose SDP negotiated their ports, the ladder's thin
arrows, the media-plane KPIs of a migration (TS 22.179 KPI 1 and 4 with their configurable thresholds,
the interruption as heard) and the synth ``floor`` step, on the sample capture made with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analyzer.base.errors import InputError
from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.synth import parse_scenario

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_captures" / "group-migration-floor-control.pcapng"
SCENARIO = REPO / "sample_captures" / "group-migration-floor-control.yaml"


def mcxa(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def migration(capsys, path, *extra) -> dict:
    code, out, _ = mcxa(capsys, "analyze", path, "--format", "json", "-q", *extra)
    assert code == ExitCode.OK
    procedures = json.loads(out)["captures"][0]["procedures"]
    return next(p for p in procedures if p["rule"] == "group-call-migration")


def variant(tmp_path, old: str, new: str) -> Path:
    """The sample's scenario with one line changed, synthesised."""
    text = SCENARIO.read_text()
    assert old in text
    scenario = tmp_path / "variant.yaml"
    scenario.write_text(text.replace(old, new))
    out = tmp_path / "variant.pcapng"
    assert main(["synth", str(scenario), "-o", str(out), "-q"]) == ExitCode.OK
    return out


def test_floor_events_belong_to_the_calls_ue_session(capsys):
    code, out, _ = mcxa(capsys, "events", SAMPLE, "--format", "jsonl", "-q")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    floor = [r for r in rows if r["kind"].startswith("floor-")]
    assert [(r["kind"], r["direction"], r["system"]) for r in floor] == [
        ("floor-request", "from-ue", "a.mcx.example"), ("floor-granted", "to-ue", "a.mcx.example"),
        ("floor-release", "from-ue", "a.mcx.example"), ("floor-idle", "to-ue", "a.mcx.example"),
        ("floor-taken", "to-ue", "a.mcx.example"), ("floor-idle", "to-ue", "a.mcx.example"),
        ("floor-taken", "to-ue", "b.mcx.example"), ("floor-idle", "to-ue", "b.mcx.example"),
        ("floor-request", "from-ue", "b.mcx.example"), ("floor-granted", "to-ue", "b.mcx.example"),
        ("floor-release", "from-ue", "b.mcx.example"), ("floor-idle", "to-ue", "b.mcx.example")]
    assert {r["ue"] for r in floor} == {"ue1"} and {r["group"] for r in floor} == {"sip:G1@a.mcx.example",
                                                                                   "sip:G1@b.mcx.example"}
    calls = {r["call_id"] for r in rows if r["kind"] == "group-call-incoming"}
    assert {r["call_id"] for r in floor} == calls
    taken = next(r for r in floor if r["kind"] == "floor-taken")
    assert taken["detail"] == "granted party sip:bob@a.mcx.example"
    _, out, _ = mcxa(capsys, "events", SAMPLE, "--kind", "floor-granted", "-q")
    assert out.count("floor-granted") == 2


def test_floor_messages_no_call_negotiated_make_no_event(tmp_path, capsys):
    """The same floor messages, but the calls' SDP names other ports: listed, not given to anyone."""
    from tests.packets import udp_frame, write_pcap
    from tests.test_floor_control import NEW

    path = tmp_path / "stray.pcap"
    write_pcap(path, [udp_frame("10.1.0.5", "10.10.0.10", 41000, 41002, p) for p in NEW[:2]])
    _, out, _ = mcxa(capsys, "messages", path, "-q")
    assert "Floor Request" in out
    _, out, _ = mcxa(capsys, "events", path, "--format", "jsonl", "-q")
    assert out == ""


def test_the_ladder_draws_floor_control_with_thin_arrows(capsys):
    code, out, _ = mcxa(capsys, "flow", SAMPLE, "-q", "--color", "never")
    assert code == 0
    request = next(line for line in out.splitlines() if "Floor Request" in line)
    granted = next(line for line in out.splitlines() if "Floor Granted" in line)
    assert "┈Floor Request┈" in request and "▷│" in request and "─" not in request
    assert "◁┈" in granted and "─" not in granted
    invite = next(line for line in out.splitlines() if "INVITE" in line)
    assert "◀─" in invite  # signalling keeps its heavy arrow
    code, out, _ = mcxa(capsys, "flow", SAMPLE, "-q", "--format", "svg")
    assert out.count('stroke-dasharray="3 2"') == 12


def test_the_html_report_draws_floor_control_in_its_ladders(tmp_path, capsys):
    out = tmp_path / "report.html"
    code, _, err = mcxa(capsys, "analyze", SAMPLE, "--format", "html", "-o", out, "-q")
    assert code == ExitCode.OK and "error" not in err
    html = out.read_text()
    assert html.count('stroke-dasharray="3 2"') == 12 and "Floor Granted" in html


def test_migration_kpis_from_floor_control(capsys):
    p = migration(capsys, SAMPLE)
    assert p["verdict"] == "compliant" and p["deviations"] == []
    kpis = p["kpis"]
    assert [a["system"] for a in kpis["access_times"]] == ["a.mcx.example", "b.mcx.example"]
    assert all(0 < a["seconds"] < 0.3 for a in kpis["access_times"])
    assert kpis["late_entry_time"] == pytest.approx(0.1, abs=0.001)
    assert kpis["media_interruption"] == pytest.approx(3.6, abs=0.001)
    assert kpis["service_interruption"] < kpis["media_interruption"]  # contract fields stay
    _, out, _ = mcxa(capsys, "analyze", SAMPLE, "-q")
    assert "interruption 2.5 s (as heard: 3.6 s)" in out


def test_a_kpi_over_its_threshold_is_a_warning_and_the_verdict_stands(tmp_path, capsys):
    late = variant(tmp_path, "at: 12.6, ue: ue1, do: floor", "at: 13.0, ue: ue1, do: floor")
    p = migration(capsys, late)
    assert p["verdict"] == "compliant"
    [d] = p["deviations"]
    assert (d["code"], d["severity"], d["step"]) == ("kpi-late-entry-time", "warning", None)
    assert "0.500 s, above the 0.150 s" in d["message"] and len(d["frames"]) == 2
    code, out, _ = mcxa(capsys, "analyze", late, "-q")
    assert code == ExitCode.OK and "[warning] TS 22.179 KPI 4 late call entry time" in out


def test_kpi_thresholds_are_rule_data(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    shipped = yaml.safe_load((REPO / "rules" / "group-call-migration.yaml").read_text())
    shipped["kpis"] = {"access_time": {"max": 0.01, "severity": "info"}}
    (rules / "group-call-migration.yaml").write_text(yaml.safe_dump(shipped))
    p = migration(capsys, SAMPLE, "--rules", rules)
    assert [(d["code"], d["severity"]) for d in p["deviations"]] == [("kpi-access-time", "info")] * 2
    assert p["verdict"] == "compliant"


@pytest.mark.parametrize("name, reason", [("kpi-unknown", "unknown KPI 'mouth_to_ear'"),
                                          ("kpi-error-severity", "never makes a procedure deviate")])
def test_bad_kpi_thresholds_name_file_and_line(name, reason):
    from analyzer.rules import load_rule

    with pytest.raises(InputError) as err:
        load_rule(REPO / "tests" / "hostile" / "rules" / f"{name}.yaml")
    assert reason in str(err.value) and f"{name}.yaml:" in str(err.value)


@pytest.mark.parametrize("step, reason", [
    ("{at: 3.0, ue: ue1, do: floor, call: nosuch, by: ue}", "unknown call 'nosuch'"),
    ("{at: 3.0, ue: ue1, do: floor, call: call-a, by: ue, fault: {error: 403}}",
     "floor control takes only the faults omit, delay and reorder"),
    ("{at: 3.0, ue: ue1, do: floor, call: call-a, by: nobody}", "unknown value 'nobody'"),
])
def test_the_floor_step_is_checked(step, reason):
    text = SCENARIO.read_text().replace("{at: 3.0, ue: ue1, do: floor, call: call-a, by: ue}", step)
    with pytest.raises(InputError) as err:
        parse_scenario(text, "floor.yaml")
    assert reason in str(err.value)


def test_the_downlink_rtp_carries_the_talkers_ssrc(capsys):
    """Floor Taken names the talker's SSRC; the call's downlink RTP is sent with it."""
    import dpkt

    _, out, _ = mcxa(capsys, "messages", SAMPLE, "--format", "jsonl", "--method", "floor-taken", "-q")
    talkers = {json.loads(line)["fields"]["ssrc"] for line in out.splitlines()}
    ssrcs = set()
    with open(SAMPLE, "rb") as fh:
        for _, frame in dpkt.pcapng.Reader(fh):
            udp = dpkt.ethernet.Ethernet(frame).data.data
            if isinstance(udp, dpkt.udp.UDP) and udp.data[:1] == b"\x80" and udp.data[1] < 128:
                ssrcs.add(int.from_bytes(udp.data[8:12], "big"))
    assert len(talkers) == 2 and talkers <= ssrcs
