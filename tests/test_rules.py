"""Rules: the shipped rules judge every sample capture as sample_captures/expected.yaml says; the JSON
report keeps the contract; broken rule files end in one line naming file and line."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from analyzer.base.errors import InputError
from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.meaning.analysis import analyse_capture
from analyzer.report.document import capture_report, report, step_dict
from analyzer.rules import load_rule, load_rules
from analyzer.rules.judge import judge
from analyzer.rules.wording import describe
from analyzer.run.replay import summary  # the expect-file shape, shared with `mcxa replay --expect`

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
EXPECTED = yaml.safe_load((SAMPLES / "expected.yaml").read_text())["captures"]
SCHEMA = ROOT.parent / "shared" / "contract" / "report.schema.json"
HOSTILE = sorted((ROOT / "tests" / "hostile" / "rules").glob("*.yaml"))


@cache
def judged(name: str) -> dict:
    analysis = analyse_capture(str(SAMPLES / name))
    return capture_report(analysis, judge(analysis, load_rules()))


MIGRATION_RULES = ("group-call-migration", "private-call-migration")


def migrations(name: str) -> list[dict]:
    return [p for p in judged(name)["procedures"] if p["rule"] in MIGRATION_RULES]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_gives_exactly_the_expected_procedures(name):
    assert [summary(p) for p in migrations(name)] == EXPECTED[name]["procedures"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_building_blocks_fail_only_where_the_scenario_injected_a_fault(name):
    scenario = SAMPLES / EXPECTED[name].get("scenario", "none")
    faulty = scenario.exists() and "error:" in scenario.read_text()
    blocks = [p for p in judged(name)["procedures"] if p["kind"] == "building-block"]
    if not faulty:
        assert {p["verdict"] for p in blocks} <= {"compliant", "incomplete"}, name
    assert all(p["from_system"] for p in blocks if "real/" not in name)


def test_every_shipped_rule_passes_somewhere_and_fails_in_every_deviation_class():
    seen: dict[str, set[str]] = {}
    for name in EXPECTED:
        for proc in judged(name)["procedures"]:
            seen.setdefault(proc["rule"], set()).add(proc["verdict"])
            seen[proc["rule"]] |= {s["status"] for s in proc["steps"]}
    every_class = {"compliant", "deviation", "incomplete", "missing", "failed", "out-of-order", "late",
                   "unverifiable"}
    assert seen["group-call-migration"] >= every_class
    assert seen["private-call-migration"] >= every_class
    for block in ("registration", "affiliation", "private-call"):
        assert seen[block] >= {"compliant", "deviation", "failed"}, block
    assert {r.id for r in load_rules()} == set(seen)


def test_deviation_messages_say_what_when_and_where():
    [proc] = migrations("group-migration-affiliation-rejected.pcapng")
    [error] = [d for d in proc["deviations"] if d["severity"] == "error"]
    assert error["step"] == "affiliation" and error["code"] == "step-failed"
    assert "sip:G1@b.mcx.example" in error["message"] and "403 Forbidden" in error["message"]
    assert "10:00:12.123" in error["message"] and error["frames"] and "frames" in error["message"]
    assert error["spec"].startswith("TS 23.280")


def test_kpis_of_a_compliant_migration():
    [proc] = migrations("group-migration-compliant.pcapng")
    kpis = proc["kpis"]
    assert list(kpis["step_seconds"]) == ["deaffiliation", "profile-retrieval", "affiliation", "late-entry"]
    assert 2.0 < kpis["migration_duration"] < 3.0
    assert kpis["service_interruption"] >= kpis["migration_duration"]


@pytest.mark.skipif(not SCHEMA.exists(), reason="../shared/contract is not beside the repository")
def test_json_report_validates_against_the_contract_and_exit_codes_follow_verdicts(tmp_path, capsys):
    out = tmp_path / "report.json"
    captures = [str(SAMPLES / n) for n in sorted(EXPECTED)]
    assert main(["analyze", *captures, "--format", "json", "-o", str(out), "-q"]) == ExitCode.DEVIATION
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert [c["file"] for c in doc["captures"]] == captures
    assert main(["analyze", str(SAMPLES / "group-migration-compliant.pcapng"), "-q"]) == ExitCode.OK
    capsys.readouterr()
    https = str(SAMPLES / "group-migration-https-profile.pcapng")
    assert main(["analyze", https, "-q"]) == ExitCode.INCOMPLETE
    text = capsys.readouterr().out
    assert "incomplete" in text and "only encrypted traffic" in text and "TLS key log" in text


def test_report_without_migrations_is_valid_and_exit_0():
    analysis = analyse_capture(str(SAMPLES / "real" / "sipp-mcptt-udp.pcap"))
    doc = report([capture_report(analysis, judge(analysis, load_rules()))], load_rules())
    procedures = doc["captures"][0]["procedures"]
    assert doc["schema"] == "mcxa-report/1"
    assert [p["rule"] for p in procedures if p["kind"] == "migration"] == []
    # its registration passes; SIPp's server sends no affiliation NOTIFY, so that block stays open
    assert {(p["rule"], p["verdict"]) for p in procedures} == {("registration", "compliant"),
                                                              ("affiliation", "incomplete")}


def test_window_option_turns_a_late_step_into_a_matched_one(capsys):
    sample = str(SAMPLES / "group-migration-late-entry-late.pcapng")
    assert main(["analyze", sample, "-q"]) == ExitCode.DEVIATION
    assert main(["analyze", sample, "-q", "--window", "60"]) == ExitCode.OK


def test_rules_lint_and_explain(capsys):
    assert main(["rules", "lint"]) == ExitCode.OK
    assert capsys.readouterr().out.count("ok  ") == len(load_rules())
    assert main(["rules", "explain", "private-call-migration"]) == ExitCode.OK
    text = capsys.readouterr().out
    assert "1. release" in text and "4. re-establishment" in text and "note (info only)" in text


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_broken_rule_files_end_in_one_line_naming_file_and_line(path, capsys):
    with pytest.raises(InputError) as err:
        load_rule(path)
    message = str(err.value)
    assert path.name in message and "\n" not in message and ":" in message.split(path.name)[1][:2]
    assert main(["rules", "lint", str(path)]) == ExitCode.BAD_INPUT
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0]
    assert main(["analyze", str(SAMPLES / "group-migration-compliant.pcapng"), "--rules", str(path)]) == \
        ExitCode.BAD_INPUT


def _crossings(copies: int, broken: int | None = None):
    """The compliant sample's UE crossing the boundary ``copies`` times (its whole sequence again every
    ``span`` seconds: same group, same systems, same Call-IDs); crossing ``broken`` without its
    de-affiliation."""
    from dataclasses import replace

    analysis = analyse_capture(str(SAMPLES / "group-migration-compliant.pcapng"))
    [session] = analysis.sessions
    times = [e.time for e in session.events]
    span = max(times) - min(times) + 100
    events = tuple(replace(e, time=e.time + k * span, end=e.end + k * span if e.end else None)
                   for k in range(copies) for e in session.events
                   if not (k == broken and e.kind == "deaffiliation"))
    return replace(analysis, events=list(events), sessions=[replace(session, events=events)])


def test_each_crossing_of_the_boundary_is_an_instance_of_its_own():
    """Driving back and forth: the same group, systems and Call-IDs each time. The second crossing, which
    left out the de-affiliation, deviates; it was folded into the first (and the deviation lost) when
    instances were told apart by what they bind alone."""
    judged_ = judge(_crossings(3, broken=1), load_rules())
    crossings = [i for i in judged_ if i.rule.id == "group-call-migration"]
    assert [i.verdict for i in crossings] == ["compliant", "deviation", "compliant"]
    assert "deaffiliation" in {d.step for d in crossings[1].deviations}
    assert len([i for i in judged_ if i.rule.id == "registration"]) == 6  # (two per crossing)


def test_judging_a_long_session_is_linear_in_its_events():
    """Each anchor, end, migration and step is looked for from its own time on, by kind and call: a drive
    test of a thousand crossings (15 000 events of one UE) is judged in ~linear time, and ``mcxa watch``
    judges again every second."""
    from tests.linear import assert_linear

    rules = load_rules()
    assert_linear(lambda analysis: judge(analysis, rules, count_rtp=False), _crossings, 10, 1000)


def test_a_rejected_request_and_its_accepted_retry_are_one_building_block():
    """SIPp, real traffic: the affiliation to group-D is refused (412, stale entity-tag) and asked again
    at once with a new publication: one procedure, its step the accepted retry."""
    procedures = judged("real/sipp-publication-lifecycle-udp.pcap")["procedures"]
    group_d = [p for p in procedures if p["rule"] == "affiliation" and p["group"].startswith("sip:group-D")]
    assert len(group_d) == 1
    [affiliate] = [s for s in group_d[0]["steps"] if s["id"] == "affiliate"]
    assert affiliate["status"] == "matched" and affiliate["frames"] == [13, 14]  # (the PUBLISH, its 200)


def test_a_refused_registration_stays_failed_when_the_next_period_succeeds():
    """A UE whose registrations are refused, then accepted at its next attempt minutes later (same
    Call-ID, same system): the refused registration is a failed step, not a late one that found the next
    period's success (and, through it, an out-of-order service authorisation)."""
    from dataclasses import replace

    analysis = _crossings(2)
    [session] = analysis.sessions
    half = session.events[len(session.events) // 2].time
    events = tuple(replace(e, outcome="failure", status=403) if e.kind == "registration" and e.time < half
                   else e for e in session.events)
    analysis = replace(analysis, events=list(events), sessions=[replace(session, events=events)])
    registrations = [i for i in judge(analysis, load_rules()) if i.rule.id == "registration"]
    steps = [{s.step.id: s.status for s in i.steps} for i in registrations]
    assert steps == [{"registered": "failed", "service-authorisation": "matched"}] * 2 + \
        [{"registered": "matched", "service-authorisation": "matched"}] * 2
    assert all(i.steps[0].event is i.anchor for i in registrations)


def test_a_step_refused_then_accepted_too_late_is_failed_and_says_when_it_was_accepted():
    """A registration refused (403), asked again 45 s later and accepted, after its 30 s window: the
    step failed, and its message and frames tell of the late acceptance as well."""
    from dataclasses import replace

    analysis = _crossings(1)
    [session] = analysis.sessions
    first = next(e for e in session.events if e.kind == "registration")
    refused = replace(first, time=first.time - 45, end=first.time - 44.9, outcome="failure", status=403,
                      frames=(1_000_001,), all_frames=(1_000_001,), detail="403 Forbidden")
    events = tuple(sorted((refused, *session.events), key=lambda e: e.time))
    analysis = replace(analysis, events=list(events), sessions=[replace(session, events=events)])
    [inst] = [i for i in judge(analysis, load_rules()) if i.rule.id == "registration" and i.anchor is refused]
    registered = inst.steps[0]
    assert (registered.status, registered.event, registered.retry) == ("failed", refused, first)
    [deviation] = [d for d in inst.deviations if d.step == "registered"]
    assert deviation.code == "step-failed" and "was rejected: 403 Forbidden" in deviation.message
    assert "asked again and accepted at" in deviation.message
    assert "15.0 s after it was due" in deviation.message
    assert deviation.frames == tuple(sorted({1_000_001, *first.frames}))
    authorised = inst.steps[1]  # (timed from the accepted retry, not from the refusal 45 s before it)
    assert (authorised.status, authorised.reference, authorised.after_retry) == ("matched", first.time, True)
    late = describe(replace(authorised, status="late", due=first.time + 0.1), "step-late", inst.bindings,
                    inst.migration, first.time + 60, [])
    assert "s after the step 'registered' (its request accepted when asked again)" in late
    assert step_dict(registered)["retry"] == {"time": first.time, "frames": list(first.frames)}
    assert "retry" not in step_dict(authorised)


def test_a_request_whose_answer_could_still_come_gives_way_to_a_later_success():
    """A REGISTER unanswered when the capture ends 31.5 s later (its answer could still come), asked
    again and accepted 31 s after it, after its window: the step is that late success — not "missing, nor
    later in the capture", which the capture contradicts."""
    from dataclasses import replace

    analysis = _crossings(1)
    [session] = analysis.sessions
    first = next(e for e in session.events if e.kind == "registration")
    waiting = replace(first, outcome="no-answer", status=None, end=None, frames=(1_000_001,),
                      all_frames=(1_000_001,), detail=None)
    accepted = replace(first, time=first.time + 31, end=first.time + 31.1)
    events = (waiting, accepted)
    analysis = replace(analysis, events=list(events), sessions=[replace(session, events=events)],
                       stats=replace(analysis.stats, last_time=first.time + 31.5))
    [inst] = [i for i in judge(analysis, load_rules()) if i.rule.id == "registration"]  # (with its retry)
    assert inst.anchor is waiting
    assert (inst.steps[0].status, inst.steps[0].event) == ("late", accepted)
