"""Issue 13: every verdict, step status, wording and KPI is true and says the same in every format.

- a step's message names the system, group and peer *its own* pattern binds (the de-affiliation is wanted
  in the primary system), and says what was seen instead, and where;
- one status per step, coloured alike in JSON, text, HTML, JUnit and the ladder;
- KPIs only where they mean something.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from analyzer.meaning.analysis import MeaningOptions, analyse_capture
from analyzer.meaning.systems import SystemMap
from analyzer.report.document import capture_report, report, step_label, step_tone
from analyzer.report.html import render_html
from analyzer.report.junit import junit_tree
from analyzer.report.ladder import build_ladder, collect_messages
from analyzer.rules import load_rule, load_rules
from analyzer.rules.judge import judge
from analyzer.rules.wording import frames_text

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
MISSING = SAMPLES / "group-migration-missing-deaffiliation.pcapng"
REJECTED = SAMPLES / "group-migration-affiliation-rejected.pcapng"
COMPLIANT = SAMPLES / "group-migration-compliant.pcapng"


@cache
def _report(path: Path, systems: str | None = None):
    meaning = MeaningOptions(systems=SystemMap.from_file(systems) if systems else None)
    analysis = analyse_capture(str(path), meaning=meaning)
    return analysis, capture_report(analysis, judge(analysis, load_rules()))


def _migration(path: Path, systems: str | None = None) -> dict:
    [proc] = [p for p in _report(path, systems)[1]["procedures"] if p["kind"] == "migration"]
    return proc


def test_a_missing_deaffiliation_is_wanted_in_the_primary_system():
    [error] = _migration(MISSING)["deviations"]
    assert error["message"].startswith("deaffiliation: no deaffiliation in a.mcx.example for group "
                                       "sip:G1@a.mcx.example by 2026-05-01 10:00:40.300000 UTC, nor later in "
                                       "the capture")
    assert "b.mcx.example" not in error["message"]


def test_with_a_systems_file_the_step_names_the_primary_by_its_name(tmp_path):
    systems = tmp_path / "systems.yaml"
    systems.write_text("systems:\n  Home: {primary: true, domains: [a.mcx.example]}\n"
                       "  Partner: {domains: [b.mcx.example]}\n")
    proc = _migration(MISSING, str(systems))
    assert (proc["from_system"], proc["to_system"]) == ("Home", "Partner")
    [error] = proc["deviations"]
    assert "no deaffiliation in Home for group sip:G1@a.mcx.example" in error["message"]
    assert "Partner" not in error["message"]


def test_a_fitting_event_in_another_system_is_named_with_where_and_when(tmp_path):
    """A rule that wants the de-affiliation in the partner system: the one in the primary is named."""
    rule = tmp_path / "rule.yaml"
    rule.write_text((ROOT / "rules" / "group-call-migration.yaml").read_text().replace(
        "{kind: deaffiliation, system: $from_system, group: $group}",
        "{kind: deaffiliation, system: $to_system, group: $group}").replace(
        "system: $from_system, group: $group, detail: deaffiliat", "system: $to_system, group: $group, "
        "detail: deaffiliat"))
    analysis, _ = _report(COMPLIANT)
    [proc] = capture_report(analysis, judge(analysis, [load_rule(rule)]))["procedures"]
    [error] = [d for d in proc["deviations"] if d["step"] == "deaffiliation"]
    [seen] = [e for e in analysis.events if e.kind == "deaffiliation"]
    [notify] = [e for e in analysis.events if e.kind == "affiliation-status" and e.detail == "deaffiliating"]
    assert error["message"] == (
        "deaffiliation: no deaffiliation in b.mcx.example for group sip:G1@a.mcx.example by "
        "2026-05-01 10:00:40.300000 UTC, "
        "nor later in the capture; seen instead: deaffiliation (sip:G1@a.mcx.example) in a.mcx.example at "
        f"2026-05-01 10:00:10.000020 UTC, {frames_text(seen.frames)}; affiliation-status "
        f"(sip:G1@a.mcx.example) in a.mcx.example at 2026-05-01 10:00:10.073493 UTC, "
        f"{frames_text(notify.frames)}")
    # the frames of what was seen instead, to look at (the NOTIFY that said "deaffiliating" too; not the
    # partner's "affiliated" one, which fits no alternative of the step anywhere)
    assert error["frames"] == sorted({*seen.frames, *notify.frames})


def _step_tones_in_every_format(path: Path) -> list[tuple]:
    analysis, part = _report(path)
    doc = report([part], load_rules())
    page = lxml.html.fromstring(render_html(doc))
    junit = etree.tostring(junit_tree(doc), encoding="unicode")
    messages = collect_messages(analysis, "dpkt", None)
    rows = []
    for p in part["procedures"]:
        session = next(s for s in analysis.sessions if s.id == p["session"])
        ladder = build_ladder(analysis, session, messages, part["procedures"])
        for s in p["steps"]:
            tone, label = step_tone(s), step_label(s)
            row = f"//table[@class='steps']//tr[td/code='{s['id']}']"
            badges = page.xpath(f"{row}//span[@class='badge {tone}']")
            assert any(b.text == label for b in badges), (path.name, p["rule"], s["id"], label)
            assert f"{s['id']}: {label}" in junit
            marks = [m for row in ladder.rows if row.frame in s["frames"] for m in row.steps] \
                if s["frames"] else ladder.unplaced
            assert (p["rule"], s["id"], tone, label) in {(m.rule, m.step, m.tone, m.label) for m in marks}
            rows.append((p["rule"], s["id"], s["status"], tone))
    return rows


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.pcapng")), ids=lambda p: p.stem)
def test_one_status_per_step_in_json_html_junit_and_the_ladder(path):
    _step_tones_in_every_format(path)


def test_late_entry_after_a_rejected_affiliation_is_one_amber_cannot_be_judged_everywhere():
    rows = _step_tones_in_every_format(REJECTED)
    assert ("group-call-migration", "late-entry", "missing", "warn") in rows
    assert ("group-call-migration", "affiliation", "failed", "bad") in rows
    [step] = [s for s in _migration(REJECTED)["steps"] if s["id"] == "late-entry"]
    assert step_label(step) == "missing (capture ended before it was due)"


def test_no_migration_kpis_for_a_migration_that_failed():
    kpis = _migration(REJECTED)["kpis"]
    assert "migration_duration" not in kpis and "service_interruption" not in kpis
    assert set(kpis["step_seconds"]) == {"deaffiliation", "profile-retrieval", "affiliation"}


def test_kpis_of_a_completed_migration_follow_their_definitions():
    analysis, _ = _report(COMPLIANT)
    proc = _migration(COMPLIANT)
    events = {e.frames[0]: e for e in analysis.events}
    steps = {s["id"]: events[s["frames"][0]] for s in proc["steps"]}
    first, back = steps["deaffiliation"], steps["late-entry"]
    assert proc["kpis"]["migration_duration"] == pytest.approx(back.end - first.time, abs=1e-3)
    # no leave of the primary call in this capture: the interruption runs from the first step's request
    assert proc["kpis"]["service_interruption"] == pytest.approx(back.end - first.time, abs=1e-3)
    # a first step is timed from the migration point, the others from the step they follow
    seconds = proc["kpis"]["step_seconds"]
    assert seconds["affiliation"] == pytest.approx(steps["affiliation"].time
                                                   - steps["profile-retrieval"].time, abs=1e-3)


def test_a_capture_cut_after_a_401_cannot_judge_the_registration(tmp_path):
    """The authenticated retry may simply be after the cut: not a deviation (exit 3, not 1)."""
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.capture import open_capture
    from tests.captures import write_records

    with open_capture(str(COMPLIANT), Diagnostics()) as reader:
        first_two = [packet[3] for packet, _ in zip(reader, range(2), strict=False)]  # REGISTER, 401
    cut = tmp_path / "cut-after-401.pcap"
    write_records(cut, first_two)
    analysis = analyse_capture(str(cut))
    [event] = analysis.events[:1]
    assert (event.kind, event.status, event.outcome) == ("registration", 401, "no-answer")
    [proc] = capture_report(analysis, judge(analysis, load_rules()))["procedures"]
    assert proc["verdict"] == "incomplete"
    first = proc["steps"][0]
    assert (first["status"], first["why"]) == ("missing", "capture ended before it was due")
