"""``mcxa replay``: the sample captures replay without drift against sample_captures/expected.yaml; every
drift from a changed expect file is one line naming capture, rule, UE and what differs; the feed is in
capture time order and paced proportionally; JUnit output fails the drifting capture; a damaged capture says
so first and is incomplete (or a drift); a bad expect file is one FILE:LINE line and exit 2."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from lxml import etree

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.rules import load_rules
from analyzer.run import replay as rp

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
EXPECT = SAMPLES / "expected.yaml"
CLOCK = re.compile(r"^\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d)\.(\d{6}) UTC  ")  # the default: date, time, zone


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["replay", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def seconds(line: str) -> float:
    h, m, s, us = map(int, CLOCK.match(line).groups())
    return h * 3600 + m * 60 + s + us / 1_000_000


def test_samples_replay_without_drift(capsys):
    code, out, _ = run(capsys, SAMPLES, "--expect", EXPECT)
    assert code == ExitCode.OK
    assert "DRIFT" not in out
    n = len(yaml.safe_load(EXPECT.read_text())["captures"])
    assert out.splitlines()[-1] == f"{n} captures, 0 drifts"


def test_feed_lists_events_and_verdicts_in_time_order(capsys):
    sample = SAMPLES / "group-migration-affiliation-rejected.pcapng"
    code, out, _ = run(capsys, sample)
    assert code == ExitCode.DEVIATION  # without --expect: analyze's exit codes
    lines = out.splitlines()
    assert lines[0] == f"== {sample}"
    times = [seconds(line) for line in lines[1:]]
    assert times == sorted(times) and len(times) > 10
    verdict = next(line for line in lines if "group-call-migration" in line)
    assert "VERDICT DEVIATION" in verdict and "sip:alice@a.mcx.example sip:G1@a.mcx.example" in verdict
    assert "affiliation: failed" in verdict
    # the verdict comes once its last step (the rejected affiliation) has been seen
    rejected = next(i for i, line in enumerate(lines) if "affiliation " in line and "failure 403" in line)
    assert lines.index(verdict) > rejected
    assert re.search(r"ue1\s+b\.mcx\.example\s+affiliation\s+failure 403 sip:G1@b\.mcx\.example", out)


def changed_expect(tmp_path: Path) -> Path:
    """Samples copied with an expect file where one verdict changed, one instance and one capture entry
    were removed."""
    samples = tmp_path / "samples"
    samples.mkdir()
    for name in ("group-migration-compliant.pcapng", "two-ues-group-migration.pcapng",
                 "private-migration-compliant.pcapng"):
        shutil.copy(SAMPLES / name, samples / name)
    data = yaml.safe_load(EXPECT.read_text())["captures"]
    keep = {k: data[k] for k in ("group-migration-compliant.pcapng", "two-ues-group-migration.pcapng")}
    keep["group-migration-compliant.pcapng"]["procedures"][0]["verdict"] = "deviation"
    assert len(keep["two-ues-group-migration.pcapng"]["procedures"]) == 2
    keep["two-ues-group-migration.pcapng"]["procedures"].pop()
    expect = samples / "expected.yaml"
    expect.write_text(yaml.safe_dump({"captures": keep}))
    return expect


def test_every_drift_is_one_line_and_exit_1(capsys, tmp_path):
    expect = changed_expect(tmp_path)
    captures = yaml.safe_load(EXPECT.read_text())["captures"]
    removed = captures["two-ues-group-migration.pcapng"]["procedures"][1]
    code, out, _ = run(capsys, expect.parent, "--expect", expect)
    assert code == ExitCode.DEVIATION
    drifts = [line for line in out.splitlines() if line.startswith("DRIFT")]
    assert drifts == [
        "DRIFT group-migration-compliant.pcapng: group-call-migration sip:alice@a.mcx.example "
        "sip:G1@a.mcx.example: verdict expected deviation, got compliant",
        "DRIFT private-migration-compliant.pcapng: not in the expect file (1 migration instance(s) found)",
        f"DRIFT two-ues-group-migration.pcapng: group-call-migration {removed['ue']} {removed['group']}: "
        f"unexpected instance (verdict {removed['verdict']})",
    ]
    assert out.splitlines()[-1] == "3 captures, 3 drifts"


def test_expected_capture_not_replayed_is_a_drift_only_under_a_given_directory(capsys, tmp_path):
    expect = changed_expect(tmp_path)
    (expect.parent / "two-ues-group-migration.pcapng").unlink()
    code, out, _ = run(capsys, expect.parent, "--expect", expect)
    assert code == ExitCode.DEVIATION
    assert "DRIFT two-ues-group-migration.pcapng: not replayed" in out
    # a single file given: the others are not expected to be replayed
    code, out, _ = run(capsys, expect.parent / "group-migration-compliant.pcapng", "--expect", expect)
    assert "not replayed" not in out and out.splitlines()[-1] == "1 captures, 1 drifts"


def test_drifts_name_missing_instances_and_differing_steps():
    want = [{"rule": "group-call-migration", "ue": "sip:a@x", "group": "sip:G@x", "from": "x", "to": "y",
             "verdict": "deviation", "steps": {"late-entry": "late"}},
            {"rule": "private-call-migration", "ue": "sip:a@x", "peer": "sip:b@x", "from": "x", "to": "y",
             "verdict": "compliant", "steps": {}}]
    got = [dict(want[0], steps={"late-entry": "missing"}, to="z")]
    assert rp.drifts(want, got) == [
        "group-call-migration sip:a@x sip:G@x: steps expected {late-entry: late}, got {late-entry: missing}",
        "group-call-migration sip:a@x sip:G@x: to expected y, got z",
        "private-call-migration sip:a@x sip:b@x: missing instance (expected verdict compliant)",
    ]


def test_expected_entry_matches_by_relative_path_or_file_name(tmp_path):
    expectations = rp.Expectations.load(str(EXPECT), load_rules())
    assert expectations.key_of(str(SAMPLES / "real" / "sipp-mcptt-udp.pcap")) == "real/sipp-mcptt-udp.pcap"
    assert expectations.key_of(str(tmp_path / "group-migration-chat.pcapng")) == "group-migration-chat.pcapng"
    assert expectations.key_of(str(tmp_path / "other.pcap")) is None
    assert expectations.rules == {"group-call-migration", "private-call-migration"}


def test_junit_has_a_failure_for_the_drifting_capture(capsys, tmp_path):
    expect = changed_expect(tmp_path)
    out_file = tmp_path / "replay.xml"
    code, out, err = run(capsys, expect.parent, "--expect", expect, "--format", "junit", "-o", out_file)
    assert code == ExitCode.DEVIATION
    assert out == ""  # the test report is the output: no feed beside it
    assert "mcxa: 3 captures, 3 drifts" in err.splitlines()
    root = etree.parse(str(out_file)).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"group-migration-compliant.pcapng", "two-ues-group-migration.pcapng",
                          "private-migration-compliant.pcapng"}
    failure = cases["group-migration-compliant.pcapng"].find("failure")
    assert "verdict expected deviation, got compliant" in failure.text
    assert root.get("tests") == "3" and root.get("failures") == "3"


def test_junit_of_the_samples_has_no_failure(capsys):
    code, out, _ = run(capsys, SAMPLES, "--expect", EXPECT, "--format", "junit")
    assert code == ExitCode.OK
    root = etree.fromstring(out.encode())
    assert root.find(".//failure") is None and int(root.get("tests")) > 20


def test_pacer_sleeps_in_proportion_to_capture_time():
    slept: list[float] = []
    pacer = rp.Pacer(10, sleep=slept.append)
    lines = [rp.Line(100.0, "a"), rp.Line(101.0, "b"), rp.Line(101.0, "c"), rp.Line(104.0, "d"),
             rp.Line(500.0, "e")]

    class Out:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    out = Out()
    pacer.play(lines, out)
    assert out.text == "a\nb\nc\nd\ne\n"
    assert slept == [0.1, 0.3, rp.MAX_SLEEP]  # 1 s and 3 s at 10×; an idle gap is capped


def test_speed_max_and_huge_speeds_do_not_sleep():
    slept: list[float] = []
    for speed in (None, 1e9):
        pacer = rp.Pacer(speed, sleep=slept.append)
        for t in (0.0, 1.0, 30.0):
            pacer.wait(t)
    assert slept == []
    assert rp.parse_speed("max") is None and rp.parse_speed("2.5") == 2.5


def test_bad_speed_and_missing_path_are_usage_errors(capsys, tmp_path):
    code, _, err = run(capsys, SAMPLES / "group-migration-compliant.pcapng", "--speed", "0")
    assert code == ExitCode.BAD_INPUT and "--speed" in err
    code, _, err = run(capsys, tmp_path / "nope")
    assert code == ExitCode.BAD_INPUT and "does not exist" in err


def test_paced_replay_runs_through_the_command(capsys):
    code, out, _ = run(capsys, SAMPLES / "group-migration-compliant.pcapng", "--speed", "1e6")
    assert code == ExitCode.OK and "VERDICT COMPLIANT  group-call-migration" in out


# --- damaged captures ------------------------------------------------------------------------------------

COMPLIANT = SAMPLES / "group-migration-compliant.pcapng"
STOPPED = r"reading stopped after frame \d+ at byte offset \d+: \S.*"


def cut_samples(tmp_path: Path, reading: str | None = None) -> tuple[Path, Path]:
    """The compliant sample and a copy cut mid-packet, with an expect file (``reading`` for the cut one)."""
    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(COMPLIANT, samples / COMPLIANT.name)
    (samples / "cut.pcapng").write_bytes(COMPLIANT.read_bytes()[:3000])
    entries = yaml.safe_load(EXPECT.read_text())["captures"]
    cut_entry = {"procedures": []} | ({"reading": reading} if reading else {})
    expect = samples / "expected.yaml"
    expect.write_text(yaml.safe_dump({"captures": {COMPLIANT.name: entries[COMPLIANT.name],
                                                   "cut.pcapng": cut_entry}}))
    return samples, expect


def test_a_cut_capture_says_so_first_and_is_incomplete(capsys, tmp_path):
    samples, _ = cut_samples(tmp_path)
    code, out, _ = run(capsys, samples / "cut.pcapng")
    assert code == ExitCode.INCOMPLETE
    lines = out.splitlines()
    assert lines[0] == f"== {samples / 'cut.pcapng'}"
    assert re.fullmatch(f"INCOMPLETE capture: {STOPPED}; events and verdicts up to there", lines[1])
    # a whole capture has no such line
    code, out, _ = run(capsys, COMPLIANT)
    assert code == ExitCode.OK and "INCOMPLETE" not in out


def test_a_cut_capture_is_a_drift_unless_expected(capsys, tmp_path):
    samples, expect = cut_samples(tmp_path)
    code, out, _ = run(capsys, samples, "--expect", expect)
    assert code == ExitCode.DEVIATION
    drifts = [line for line in out.splitlines() if line.startswith("DRIFT")]
    assert len(drifts) == 1
    assert re.fullmatch(f"DRIFT cut.pcapng: incomplete capture: {STOPPED}; if that is expected, say "
                        "'reading: incomplete' in its entry", drifts[0])
    assert out.splitlines()[-1] == "2 captures, 1 drifts"


def test_reading_incomplete_in_the_expect_file(capsys, tmp_path):
    samples, expect = cut_samples(tmp_path, reading="incomplete")
    code, out, _ = run(capsys, samples, "--expect", expect)
    assert code == ExitCode.OK, out
    assert "INCOMPLETE capture: reading stopped" in out and out.splitlines()[-1] == "2 captures, 0 drifts"
    # said of a capture read to its end, it is a drift too
    (samples / "cut.pcapng").write_bytes(COMPLIANT.read_bytes())
    code, out, _ = run(capsys, samples, "--expect", expect)
    assert code == ExitCode.DEVIATION
    assert "DRIFT cut.pcapng: reading expected incomplete, got complete (the whole file was read)" in out


def test_junit_fails_a_cut_capture(capsys, tmp_path):
    samples, expect = cut_samples(tmp_path)
    code, out, _ = run(capsys, samples, "--expect", expect, "--format", "junit")
    assert code == ExitCode.DEVIATION
    failure = etree.fromstring(out.encode()).find(".//testcase[@name='cut.pcapng']/failure")
    assert failure is not None and "incomplete capture: reading stopped after frame" in failure.get("message")


# --- expect files are checked like rule files -----------------------------------------------------------

HOSTILE = ROOT / "tests" / "hostile" / "expect"
#: hostile expect file → (line, what its one error line says after ``FILE:LINE: ``)
BAD_EXPECT = {
    "misspelled-key.yaml": (5, "unknown key 'verdcit' in procedure 1 of 'group-migration-compliant.pcapng' "
                               "(expected one of: rule, ue, group, peer, from, to, verdict, steps, info, "
                               "service); did you mean 'verdict'?"),
    "unknown-verdict.yaml": (9, "key 'captures.group-migration-compliant.pcapng.procedures[0].verdict': "
                                "unknown verdict 'complaint' (expected one of: compliant, deviation, "
                                "incomplete); did you mean 'compliant'?"),
    "unknown-status.yaml": (8, "unknown step status 'mising' (expected one of: missing, failed, "
                               "out-of-order, late, unverifiable); did you mean 'missing'?"),
    "unknown-step.yaml": (8, "unknown group-call-migration step 'de-affiliation' (expected one of: "
                             "deaffiliation, profile-retrieval, affiliation, late-entry); did you mean "
                             "'deaffiliation'?"),
    "unknown-info-step.yaml": (5, "unknown private-call-migration step 'relase'"),
    "unknown-rule.yaml": (4, "unknown rule 'group-call-migraton' (expected one of: "),
    "unknown-reading.yaml": (3, "unknown reading 'truncated' (expected one of: complete, incomplete)"),
    "wrong-type.yaml": (8, "key 'captures.group-migration-compliant.pcapng.procedures[0].steps': expected a "
                           "mapping, got a list"),
    "duplicate-key.yaml": (7, "key 'captures.group-migration-compliant.pcapng.procedures[0].verdict': "
                              "duplicate key (first given on line 6)"),
    "duplicate-capture.yaml": (4, "key 'captures.group-migration-compliant.pcapng': duplicate key (first "
                                  "given on line 2)"),
    "peer-for-group.yaml": (6, "a group-call-migration instance is named by 'group', not 'peer'"),
    "matched-step.yaml": (8, "'matched' is what a step left out has"),
    "missing-verdict.yaml": (4, "missing key 'verdict' in procedure 1 of 'group-migration-compliant.pcapng'"),
    "no-captures.yaml": (1, "unknown key 'capture' in the document (expected one of: captures); did you mean "
                            "'captures'?"),
    "python-tag.yaml": (2, "is not allowed"),
}


def test_every_hostile_expect_file_is_listed():
    assert sorted(p.name for p in HOSTILE.glob("*.yaml")) == sorted(BAD_EXPECT)


@pytest.mark.parametrize("name", sorted(BAD_EXPECT))
def test_a_bad_expect_file_is_one_line_and_exit_2_before_any_output(capsys, name):
    line, says = BAD_EXPECT[name]
    path = HOSTILE / name
    code, out, err = run(capsys, COMPLIANT, "--expect", path)
    assert code == ExitCode.BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"mcxa: {path}:{line}: ")
    assert says in err


def test_expect_file_rule_ids_are_those_of_the_loaded_rules(capsys, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "registration.yaml", rules)
    code, out, err = run(capsys, COMPLIANT, "--expect", EXPECT, "--rules", rules)
    assert code == ExitCode.BAD_INPUT and out == ""
    assert re.fullmatch(rf"mcxa: {re.escape(str(EXPECT))}:\d+: key '.*\.rule': unknown rule "
                        r"'group-call-migration' \(expected one of: registration\)\n", err)
