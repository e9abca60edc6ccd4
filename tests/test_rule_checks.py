"""Rule values are closed vocabularies: a misspelt value or a pattern no event can fit is refused on load
(issue 13: `outcome: sucess` used to pass lint and turn into "no migration found", exit 0)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.meaning.analysis import analyse_capture
from analyzer.meaning.events import KINDS, SHAPES, SUBJECT_FIELDS
from analyzer.report.document import capture_report
from analyzer.rules import load_rule
from analyzer.rules.judge import judge

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile" / "rules"
SAMPLES = ROOT / "sample_captures"

REFUSALS = {
    "misspelled-outcome": "unknown outcome 'sucess' (one of: success, failure, no-answer, encrypted); "
                          "did you mean 'success'?",
    "bad-direction": "unknown direction 'from_ue' (one of: from-ue, to-ue); did you mean 'from-ue'?",
    "never-matches": "this pattern can never match: a registration event never has a group",
    "impossible-outcome": "this pattern can never match: an affiliation event's outcome is success, "
                          "failure or no-answer, never encrypted",
    "bad-status": "expected a status code (100-699) or a class such as 4xx, got 'OK'",
    "misspelled-operator": "an operator is {not: value} or {same_user: $variable}; did you mean 'not'?",
    "unknown-kind": "unknown kind 'group-call-teleport'",
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_lint_refuses_a_value_outside_its_vocabulary_with_file_line_and_a_hint(name, capsys):
    path = HOSTILE / f"{name}.yaml"
    assert main(["rules", "lint", str(path)]) == ExitCode.BAD_INPUT
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"mcxa: {path}:") and REFUSALS[name] in line


def _rule(tmp_path: Path, step: str) -> Path:
    path = tmp_path / "rule.yaml"
    path.write_text("id: custom\ntitle: t\nspec: s\ninstance:\n  anchor: {kind: affiliation}\n"
                    "  bind: {group: group}\nsteps:\n  - id: s\n    match:\n      - " + step + "\n")
    return path


def test_a_status_class_matches_every_status_of_its_hundred(tmp_path):
    rule = load_rule(_rule(tmp_path, "{kind: affiliation, group: $group, status: 4xx}"))
    analysis = analyse_capture(str(SAMPLES / "group-migration-affiliation-rejected.pcapng"))
    procedures = capture_report(analysis, judge(analysis, [rule]))["procedures"]
    statuses = {p["group"]: p["steps"][0]["status"] for p in procedures}
    # the 403 in the partner system is found (a failed step); the accepted one in the primary is not
    assert statuses == {"sip:G1@b.mcx.example": "failed", "sip:G1@a.mcx.example": "missing"}


def test_not_with_a_variable_and_lists_of_valid_values_load(tmp_path):
    load_rule(_rule(tmp_path, "{kind: [affiliation, deaffiliation], outcome: [success, failure], "
                              "group: {not: $group}}"))


@cache
def _sample_events() -> list:
    return [e for path in sorted(SAMPLES.glob("*.pcapng")) for e in analyse_capture(str(path)).events]


def test_every_kind_has_a_shape():
    assert set(SHAPES) == set(KINDS)


def test_the_shapes_are_true_of_every_event_the_samples_give():
    """The load-time check refuses patterns by these shapes, so a shape must never be narrower than the
    events the extractor really makes."""
    events = _sample_events()
    assert len({e.kind for e in events}) >= 12
    for e in events:
        shape = SHAPES[e.kind]
        assert e.direction in shape.directions and e.outcome in shape.outcomes, e
        for name in SUBJECT_FIELDS - shape.carries:
            assert getattr(e, name) is None, (e.kind, name)
