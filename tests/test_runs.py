"""Records kept in sorted, packed runs (``analyzer.base.runs``): the report's procedures of a capture are
held so while its sessions are judged, and the fact store merges its chunks the same way. Nothing a user
sees may change with how they were kept."""

from __future__ import annotations

import io
import json
import random
from functools import partial
from pathlib import Path

import pytest

from analyzer.base import runs, spill
from analyzer.base.runs import SortedRuns
from analyzer.cli import main
from analyzer.meaning.analysis import MeaningOptions, analyse_capture
from analyzer.report import document
from analyzer.rules import load_rules
from analyzer.rules.judge import judge

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
RULES = load_rules(None)


@pytest.fixture
def packed(monkeypatch) -> list[int]:
    """The size of each run packed (``runs.pack``) while the test runs; every run waits on disk."""
    monkeypatch.setattr(spill, "SPILL_AFTER", 0)
    sizes: list[int] = []
    real = runs.pack
    monkeypatch.setattr(runs, "pack", lambda entries: sizes.append(len(entries)) or real(entries))
    return sizes


def test_records_added_in_any_order_come_back_in_key_order_every_time_they_are_read():
    rng = random.Random(7)
    keys = [(rng.random(), rng.choice("abc"), i) for i in range(1000)]
    kept = SortedRuns(size=16)
    for key in keys:
        kept.add(key, {"key": key})
    assert len(kept) == 1000 and len(kept.runs) == 62 and len(kept.newest) == 8
    expected = [{"key": key} for key in sorted(keys)]
    assert list(kept) == expected
    assert list(kept) == expected  # (read again: the runs stay)


def test_fewer_records_than_a_run_are_never_packed(packed):
    kept = SortedRuns(size=4)
    for i in (3, 1, 2):
        kept.add((i,), i)
    assert list(kept) == [1, 2, 3] and packed == []


def test_records_up_to_hold_stay_one_list_and_beyond_are_packed_in_runs(packed):
    """A drive test's events are sorted once when read; a core capture's are packed once it passes
    ``hold``, those held until then included."""
    kept = SortedRuns(size=4, hold=10)
    for i in range(10, 0, -1):
        kept.add((i,), i)
    assert packed == [] and list(kept) == list(range(1, 11))
    kept.add((0,), 0)
    assert packed == [4, 4, 3] and kept.newest == [] and list(kept) == list(range(11))


def test_a_run_is_unpacked_only_when_its_first_key_is_due(monkeypatch):
    """What keeps reading small: records added in about key order open about one run at a time."""
    opened = []
    real = runs.unpack
    monkeypatch.setattr(runs, "unpack", lambda packed: opened.append(1) or real(packed))
    kept = SortedRuns(size=10)
    for i in range(100):
        kept.add((i + (i % 10) * 0.01,), i)  # (nearly in order)
    read = iter(kept)
    assert next(read) == 0 and len(opened) == 1
    assert sum(1 for _ in read) == 99 and len(opened) == 10


@pytest.mark.parametrize("names", [
    ["group-migration-compliant.pcapng", "private-migration-missing-registration.pcapng",
     "group-migration-noisy.pcapng", "group-migration-affiliation-retried-late.pcapng"],
])
def test_the_json_report_is_the_same_whatever_the_runs_its_procedures_were_packed_in(names, monkeypatch,
                                                                                      capsys, packed):
    """Runs of two procedures: every one packed, merged back in report order (anchor time, rule, then
    session by session) — the bytes of the document built whole from judged instances."""
    paths = [str(SAMPLES / name) for name in names]
    whole = _listed_report(paths)
    monkeypatch.setattr(document, "SortedRuns", partial(SortedRuns, size=2))
    monkeypatch.setattr(document, "PROCEDURES_HELD", 0)
    code = main(["analyze", *paths, "--format", "json", "-q"])
    assert (capsys.readouterr().out, code) == whole
    assert packed.count(2) >= 10  # (the procedures were packed)


def _listed_report(paths: list[str]) -> tuple[str, int]:
    """The JSON document and exit code of ``paths`` analysed with their events and sessions listed, and
    their procedures judged whole."""
    parts = []
    for path in paths:
        analysis = analyse_capture(path)
        parts.append(document.capture_report(analysis, judge(analysis, RULES)))
    whole = io.StringIO()
    doc = document.report(parts, RULES)
    document.write_json(doc, whole)
    return whole.getvalue(), document.exit_code(doc)


def test_a_streamed_analysis_lists_no_event_nor_session_and_keeps_their_counts():
    path = str(SAMPLES / "group-migration-compliant.pcapng")
    analysis = analyse_capture(path)
    counts = (len(analysis.events), len(analysis.sessions))
    expected = [document.procedure_dict(inst) for inst in judge(analysis, RULES)]
    analysis = analyse_capture(path, meaning=MeaningOptions(streamed=True))
    procedures = document.Procedures(analysis, RULES)
    assert list(procedures) == expected and procedures.verdicts == {p["verdict"] for p in expected}
    assert analysis.events == [] and analysis.sessions == [] and analysis.counts() == counts
    stats = document.capture_report(analysis, procedures)["stats"]
    assert (stats["events"], stats["ue_sessions"]) == counts


def test_an_event_carried_by_its_own_frames_holds_one_frame_list():
    """``all_frames`` equal to ``frames`` (one UDP datagram a message) is the very same tuple: half the
    frame lists an event holds, and it stays so across the fact store's packing."""
    events = analyse_capture(str(SAMPLES / "group-migration-compliant.pcapng")).events
    same = [e for e in events if e.all_frames == e.frames]
    assert same and all(e.all_frames is e.frames for e in same)


def test_the_json_report_is_the_same_whatever_the_runs_the_events_were_packed_in(monkeypatch, capsys,
                                                                                   packed):
    """analyze --format json keeps a capture's events packed and judges each session once its last event
    is read: runs of three events, every one packed, give the bytes of the listed analysis."""
    from analyzer.meaning.events import extract

    paths = [str(SAMPLES / name) for name in ("group-migration-noisy.pcapng",
                                              "group-migration-floor-control.pcapng",
                                              "private-migration-compliant.pcapng",
                                              "group-migration-affiliation-retried-late.pcapng")]
    whole = _listed_report(paths)
    monkeypatch.setattr(extract, "EVENT_RUN", 3)
    monkeypatch.setattr(extract, "EVENT_HOLD", 0)
    code = main(["analyze", *paths, "--format", "json", "-q"])
    assert (capsys.readouterr().out, code) == whole
    assert packed.count(3) > 10  # (the events were packed)


def test_procedures_measured_after_the_rtp_walk_are_those_judged_whole(tmp_path):
    """A migration's media figures and KPI deviations come once the capture's RTP is counted: held with
    its probe meanwhile, its report is the one made from the measured instance (figures in their place
    among the KPIs, KPI deviations last)."""
    import yaml

    shipped = yaml.safe_load((ROOT / "rules" / "group-call-migration.yaml").read_text())
    shipped["kpis"] = {"access_time": {"max": 0.01, "severity": "info"}}
    (tmp_path / "group-call-migration.yaml").write_text(yaml.safe_dump(shipped))
    rules = [*load_rules(tmp_path), *(r for r in RULES if r.id != "group-call-migration")]
    path = str(SAMPLES / "group-migration-floor-control.pcapng")
    whole = [document.procedure_dict(inst) for inst in judge(analyse_capture(path), rules)]
    measured = [p for p in whole if p["kpis"].get("rtp_received") and p["deviations"]]
    assert measured and [d["code"] for d in measured[0]["deviations"]] == ["kpi-access-time"] * 2
    streamed = list(document.Procedures(analyse_capture(path), rules))
    assert json.dumps(streamed) == json.dumps(whole)  # (the keys in their order too)


def test_a_record_rebuilt_from_its_values_is_the_record():
    """Packed events and facts come back without their ``__init__`` (three times faster): equal, with the
    same hash, still frozen."""
    import dataclasses

    from analyzer.meaning.events import event_of, event_values

    events = analyse_capture(str(SAMPLES / "group-migration-floor-control.pcapng")).events
    rebuilt = [event_of(event_values(e)) for e in events]
    assert rebuilt == events and list(map(hash, rebuilt)) == list(map(hash, events))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rebuilt[0].kind = "registration"
