"""Issue 16's measuring side: the core-capture generator, the analysis benchmark (run end to end on tiny
inputs, as CI does, with no figure asserted), the ``--jobs`` option it compares, and the JSON report it
measures, now written as it is encoded.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from analyzer.cli import main
from analyzer.report.document import write_json

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
SAMPLES = REPO / "sample_captures"
SCHEMA = REPO.parent / "shared" / "contract" / "report.schema.json"
SHARED_GENERATOR = REPO.parent / "shared" / "bench" / "make_bench_pcap.py"


def make_core(path: Path, ues: int = 3, seed: int = 1) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / "make_core_capture.py"), "--ues", str(ues), "--seed",
                           str(seed), "-o", str(path)], capture_output=True, text=True, check=True)
    return proc.stdout


@cache
def generator():
    """``bench/make_core_capture.py`` as a module (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location("make_core_capture", BENCH / "make_core_capture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def analyze_json(capsys, *args) -> tuple[int, dict, str]:
    code = main(["analyze", *map(str, args), "--format", "json", "-q"])
    out = capsys.readouterr().out
    return code, json.loads(out), out


def migrations(doc: dict) -> set[tuple]:
    """(rule, ue, group, peer, verdict, steps not matched) of every migration procedure instance."""
    return {(p["rule"], p["ue"], p["group"], p["peer"], p["verdict"],
             tuple(sorted((s["id"], s["status"]) for s in p["steps"] if s["status"] != "matched")))
            for c in doc["captures"] for p in c["procedures"] if p["kind"] == "migration"}


def expected(i: int) -> set[tuple]:
    """What the example timeline, seen by a SIP node only (no profile retrieval: it is HTTP), gives UE i."""
    ue, group = f"sip:ue{i:05d}@a.mcx.example", f"sip:t{i // 10:04d}g"
    unseen = ("profile-retrieval", "missing")
    return {
        ("group-call-migration", ue, f"{group}1@a.mcx.example", None, "deviation", (unseen,)),
        ("group-call-migration", ue, f"{group}2@a.mcx.example", None, "deviation", (unseen,)),
        ("private-call-migration", ue, None, f"sip:carol-{i:05d}@a.mcx.example", "deviation",
         (unseen, ("re-establishment", "missing"))),
        ("private-call-migration", ue, None, f"sip:bob-{i:05d}@a.mcx.example", "incomplete",
         (unseen, ("re-establishment", "missing"), ("registration", "missing"))),
        # back from B for the private call: B's group is left behind, and the capture ends before it is due
        ("group-call-migration", f"sip:ue{i:05d}.b@b.mcx.example", f"{group}1@b.mcx.example", None,
         "incomplete", (("affiliation", "missing"), ("deaffiliation", "missing"), ("late-entry", "missing"),
                        unseen)),
    }


# -- make_core_capture.py -----------------------------------------------------------------------------

def test_core_capture_is_deterministic_and_says_what_it_holds(tmp_path):
    summary = make_core(tmp_path / "a.pcapng")
    make_core(tmp_path / "b.pcapng")
    make_core(tmp_path / "c.pcapng", seed=2)
    assert (tmp_path / "a.pcapng").read_bytes() == (tmp_path / "b.pcapng").read_bytes()
    assert (tmp_path / "a.pcapng").read_bytes() != (tmp_path / "c.pcapng").read_bytes()
    assert "3 UEs, 327 packets, 291 SIP messages" in summary
    meta = json.loads((tmp_path / "a.pcapng.meta.json").read_text())
    assert (meta["ues"], meta["packets"], meta["sip_messages"], meta["max_active_ues"]) == (3, 327, 291, 3)


def test_core_capture_judges_every_ue_as_the_example_alone(tmp_path, capsys):
    """Three UEs interleaved on one SIP node: each gets the example's verdicts under its own identities,
    the same as when its own capture is analysed alone."""
    make_core(tmp_path / "core.pcapng")
    code, doc, _ = analyze_json(capsys, tmp_path / "core.pcapng")
    assert code == 1  # deviations
    assert doc["captures"][0]["stats"]["ue_sessions"] == 3
    assert migrations(doc) == expected(0) | expected(1) | expected(2)

    gen = generator()
    base = gen.template()
    start = gen.arrivals(3, 1, 20.0, base.start)[1]
    from analyzer.synth import synthesize, write_pcapng

    write_pcapng(synthesize(gen.ue_scenario(base, 1, 1, start)), tmp_path / "alone.pcapng")
    _, alone, _ = analyze_json(capsys, tmp_path / "alone.pcapng")
    assert migrations(alone) == expected(1)


def test_core_capture_keeps_identities_apart_and_tshark_agrees(tmp_path):
    make_core(tmp_path / "core.pcapng", ues=12)
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    out = subprocess.run(["tshark", "-r", str(tmp_path / "core.pcapng"), "-Y", "sip.Method == \"REGISTER\"",
                          "-T", "fields", "-e", "ip.src", "-e", "sip.from.user"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    pairs = {tuple(line.split("\t")) for line in out if line}
    assert len({ip for ip, _ in pairs}) == 24  # 12 UEs × 2 systems
    assert len({user for _, user in pairs}) == 12  # one IMPU user per UE, in A and B alike
    assert ("10.128.0.12", "+491700000011") in pairs


# -- bench_analyze.py -----------------------------------------------------------------------------------

def test_bench_analyze_runs_end_to_end_on_tiny_inputs(tmp_path):
    bench = ["--bench-mb", "0.2"] if SHARED_GENERATOR.exists() else ["--bench-mb"]
    proc = subprocess.run([sys.executable, str(BENCH / "bench_analyze.py"), *bench, "--core-ues", "3", "5",
                           "--repeat", "1", "--out", str(tmp_path), "--save", str(tmp_path / "r.json")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "max RSS MiB" in out and "tree PSS MiB" in out
    for name in ("core-3-1.pcapng: ", "core-5-1.pcapng: ", "mcxa analyze on the core captures"):
        assert name in out
    assert "mcxa analyze: --jobs 2 is ×" in out
    rows = json.loads((tmp_path / "r.json").read_text())
    tools = {(r["capture"].rsplit("/", 1)[-1], r["tool"], r["jobs"]) for r in rows}
    with_tshark = shutil.which("tshark") is not None
    for capture in ("core-3-1.pcapng", "core-5-1.pcapng"):
        assert {(capture, t, j) for t in ("messages", "analyze") for j in (1, 2)} <= tools
        assert ((capture, "tshark", None) in tools) == with_tshark
    if with_tshark:
        assert "× faster" in out or "× slower" in out
    assert all(r["wall"] > 0 and r["max_rss"] > 0 for r in rows)
    assert {r["ues"] for r in rows if "core" in r["capture"]} == {3, 5}


# -- --jobs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["messages", "analyze", "events", "sessions", "flow"])
def test_jobs_must_be_a_positive_count(command, capsys):
    code = main([command, str(SAMPLES / "group-migration-compliant.pcapng"), "--jobs", "0"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "--jobs" in err


def test_jobs_reaches_the_decoder_and_changes_no_output(tmp_path, capsys, monkeypatch):
    """--jobs 1 and 2 decode with that many processes (forced on a small capture) and say the same."""
    from analyzer.cli import listing
    from analyzer.engines import dpkt_engine
    from analyzer.meaning import analysis

    seen = []

    def spy(real):
        def engine(name):
            decode = real(name)
            return lambda path, options: seen.append(options.workers) or decode(path, options)
        return engine

    monkeypatch.setattr(dpkt_engine, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(analysis, "get_engine", spy(analysis.get_engine))
    monkeypatch.setattr(listing, "get_engine", spy(listing.get_engine))
    capture = SAMPLES / "group-migration-compliant.pcapng"
    outputs = {}
    for jobs in ("1", "2"):
        for command, fmt in (("analyze", "json"), ("messages", "jsonl")):
            code = main([command, str(capture), "--format", fmt, "--jobs", jobs, "-q"])
            assert code == 0
            outputs[command, jobs] = capsys.readouterr().out
    assert seen == [1, 1, 2, 2]
    assert outputs["analyze", "1"] == outputs["analyze", "2"]
    assert outputs["messages", "1"] == outputs["messages", "2"]


# -- the JSON report, streamed --------------------------------------------------------------------------

def test_analyze_json_is_the_bytes_json_dumps_gave_on_every_sample(capsys):
    captures = sorted(SAMPLES.glob("*.pcapng")) + sorted((SAMPLES / "real").glob("*.pcap"))
    assert len(captures) > 20
    _, doc, out = analyze_json(capsys, *captures)
    assert json.loads(out) == doc and out == _as_json_dumps_writes(doc)
    assert len(doc["captures"]) == len(captures)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))


class _Writes:
    def __init__(self):
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)


def _as_json_dumps_writes(doc) -> str:
    """What ``json.dumps(indent=2, ensure_ascii=False)`` writes, numbers under 1e-4 aside (orjson writes
    them in positional notation)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def test_write_json_writes_piece_by_piece_the_same_bytes():
    doc = {"schema": "x", "captures": [{"file": "ünïcode ☎ \"q\"\n", "n": i, "t": i / 7, "none": None,
                                         "ok": True, "steps": [{"frames": list(range(i % 5))}], "e": {},
                                         "lone": "\ud800" * (i == 7)}
                                        for i in range(3000)]}
    out = _Writes()
    write_json(doc, out)
    assert "".join(out.parts) == _as_json_dumps_writes(doc)
    assert len(out.parts) > 5  # written as it was encoded, not in one piece
