"""Batch: many captures in parallel, an unreadable one as an error row, resume by content and rule set,
the same tables whatever the executor and number of jobs; damaged captures are named and gate the exit
code (unreadable: never 0; nothing judged: 2; read only partly: at least 3)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.run.batch import batch_exit_code
from analyzer.run.batch_tables import CAPTURE_COLUMNS, DEVIATION_COLUMNS, PROCEDURE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
NAMES = ("group-migration-compliant.pcapng", "group-migration-missing-deaffiliation.pcapng",
         "private-migration-no-reason.pcapng")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("captures")
    for name in NAMES:
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "corrupt.pcap").write_bytes(os.urandom(4096))
    return folder


def batch(*args) -> int:
    return main(["batch", *map(str, args)])


@pytest.fixture(scope="module")
def first(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("batch1")
    assert batch(inputs, "--out", out, "--jobs", "1") == ExitCode.DEVIATION  # missing-deaffiliation
    return out


def test_corrupt_capture_is_an_error_row_and_the_batch_goes_on(first, capsys):
    captures = pl.read_parquet(first / "captures.parquet")
    assert captures.columns == list(CAPTURE_COLUMNS)
    status = dict(zip(captures["capture"].map_elements(lambda p: Path(p).name, return_dtype=pl.Utf8),
                      captures["status"], strict=True))
    assert status == {"corrupt.pcap": "error", **{n: "ok" for n in NAMES}}
    error = captures.filter(pl.col("status") == "error")["error"][0]
    assert "corrupt.pcap" in error and "pcap" in error


def test_procedures_equal_single_file_analyze(first, inputs, capsys):
    procedures = pl.read_parquet(first / "procedures.parquet")
    assert procedures.columns == list(PROCEDURE_COLUMNS)
    for name in NAMES:
        capsys.readouterr()
        main(["analyze", str(inputs / name), "--format", "json"])
        single = json.loads(capsys.readouterr().out)["captures"][0]
        reports = list((first / "reports").glob(name.removesuffix(".pcapng") + "-*.json"))
        assert len(reports) == 1
        stored = json.loads(reports[0].read_text())
        assert stored["schema"] == "mcxa-report/1"
        assert stored["captures"][0]["procedures"] == single["procedures"]
        rows = procedures.filter(pl.col("capture") == str(inputs / name))
        assert rows["rule"].to_list() == [p["rule"] for p in single["procedures"]]
        assert rows["verdict"].to_list() == [p["verdict"] for p in single["procedures"]]
        start = single["procedures"][0]["start"]  # epoch seconds, and the same instant in ISO 8601 (UTC)
        assert rows["start"][0] == start and rows["start_iso"][0] == datetime.fromtimestamp(
            start, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_tables_have_the_documented_columns(first):
    deviations = pl.read_parquet(first / "deviations.parquet")
    assert deviations.columns == list(DEVIATION_COLUMNS)
    assert deviations.schema["frames"] == pl.List(pl.Int64)
    assert {"step-missing"} <= set(deviations["code"])
    for name in ("procedures", "deviations", "captures"):
        parquet = pl.read_parquet(first / f"{name}.parquet")
        assert pl.read_csv(first / f"{name}.csv").columns == parquet.columns


def test_rerun_skips_unchanged_captures_and_force_redoes_them(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    batch(inputs, "--out", out, "--jobs", "1")
    capsys.readouterr()
    batch(inputs, "--out", out, "--jobs", "1")
    assert "0 analysed, 3 skipped (unchanged), 1 unreadable, 0 read only partly" in capsys.readouterr().out
    assert pl.read_parquet(out / "captures.parquet")["cached"].to_list().count(True) == 3
    batch(inputs, "--out", out, "--jobs", "1", "--window", "20")  # another rule set: analysed again
    assert "3 analysed, 0 skipped" in capsys.readouterr().out
    batch(inputs, "--out", out, "--jobs", "1", "--window", "20", "--force")
    assert "3 analysed, 0 skipped" in capsys.readouterr().out


def comparable(folder: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(folder / f"{name}.parquet")


def test_two_jobs_give_the_same_tables(first, inputs, tmp_path):
    batch(inputs, "--out", tmp_path, "--jobs", "2")
    for name in ("procedures", "deviations"):
        assert comparable(tmp_path, name).equals(comparable(first, name))
    drop = ["seconds"]
    assert comparable(tmp_path, "captures").drop(drop).equals(comparable(first, "captures").drop(drop))


def test_dask_executor_gives_the_same_procedures(first, inputs, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        batch(inputs, "--out", tmp_path, "--executor", "dask", "--scheduler", cluster.scheduler_address)
    assert comparable(tmp_path, "procedures").equals(comparable(first, "procedures"))


def test_no_capture_found_is_bad_usage(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert batch(tmp_path / "empty", "--out", tmp_path / "out") == ExitCode.BAD_INPUT
    assert "no capture found" in capsys.readouterr().err
    assert batch(tmp_path / "nothing-here", "--out", tmp_path / "out") == ExitCode.BAD_INPUT


def test_bad_rules_are_bad_usage(inputs, tmp_path):
    assert batch(inputs, "--out", tmp_path, "--rules", tmp_path / "none") == ExitCode.BAD_INPUT


# --- damaged captures and the exit code --------------------------------------------------------------

COMPLIANT = SAMPLES / "group-migration-compliant.pcapng"
STOPPED = re.compile(r"reading stopped after frame \d+ at byte offset \d+: \S")


def run(capsys, *args) -> tuple[int, str, str]:
    code = batch(*args)
    out, err = capsys.readouterr()
    return code, out, err


def cut(path: Path, size: int = 3000) -> Path:
    """A copy of the compliant sample cut mid-packet, as a capture copied off a device that was unplugged."""
    path.write_bytes(COMPLIANT.read_bytes()[:size])
    return path


def test_nothing_readable_is_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    for name in ("a.pcap", "b.pcapng"):
        (tmp_path / "in" / name).write_bytes(b"this is not a capture, just text\n" * 40)
    code, out, err = run(capsys, tmp_path / "in", "--out", tmp_path / "out", "--jobs", "1")
    assert code == ExitCode.BAD_INPUT
    assert err.splitlines() == [
        "mcxa: batch: nothing judged: none of the 2 captures could be read (the first: "
        f"{tmp_path / 'in' / 'a.pcap'}: not a pcap or pcapng file (starts with 74 68 69 73))"]
    assert out.splitlines()[0] == \
        "captures: 0 analysed, 0 skipped (unchanged), 2 unreadable, 0 read only partly"
    assert f"  UNREADABLE {tmp_path / 'in' / 'b.pcapng'}: not a pcap or pcapng file" in out
    assert "nothing judged: no capture could be read" in out and "no procedure found" not in out
    # a single one: the line names it
    code, _, err = run(capsys, tmp_path / "in" / "a.pcap", "--out", tmp_path / "out")
    assert code == ExitCode.BAD_INPUT
    assert err == f"mcxa: batch: nothing judged: {tmp_path / 'in' / 'a.pcap'}: not a pcap or pcapng file " \
                  "(starts with 74 68 69 73)\n"


def test_some_unreadable_is_exit_2_and_named_in_the_summary(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    shutil.copy(COMPLIANT, tmp_path / "in" / COMPLIANT.name)
    (tmp_path / "in" / "empty.pcap").write_bytes(b"")
    code, out, err = run(capsys, tmp_path / "in", "--out", tmp_path / "out", "--jobs", "1")
    assert code == ExitCode.BAD_INPUT  # all it read is compliant, but it could not read everything
    assert out.splitlines()[:2] == [
        "captures: 1 analysed, 0 skipped (unchanged), 1 unreadable, 0 read only partly",
        f"  UNREADABLE {tmp_path / 'in' / 'empty.pcap'}: empty file"]
    assert "group-call-migration         compliant 1" in out
    assert err == f"mcxa: batch: unreadable capture: {tmp_path / 'in' / 'empty.pcap'}: empty file\n"
    # the unreadable capture is tried again on a re-run: it may have been fixed
    (tmp_path / "in" / "empty.pcap").unlink()
    code, out, _ = run(capsys, tmp_path / "in", "--out", tmp_path / "out", "--jobs", "1")
    assert code == ExitCode.OK and "0 analysed, 1 skipped (unchanged), 0 unreadable" in out


def test_a_cut_capture_is_named_incomplete_and_in_the_tables(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    shutil.copy(COMPLIANT, tmp_path / "in" / COMPLIANT.name)
    damaged = cut(tmp_path / "in" / "cut.pcapng")
    code, out, _ = run(capsys, tmp_path / "in", "--out", tmp_path / "out", "--jobs", "1")
    assert code == ExitCode.INCOMPLETE
    lines = out.splitlines()
    assert lines[0] == "captures: 2 analysed, 0 skipped (unchanged), 0 unreadable, 1 read only partly"
    assert lines[1].startswith(f"  INCOMPLETE {damaged}: reading stopped after frame ")
    assert STOPPED.search(lines[1]) and lines[1].endswith("; judged up to there")
    for table in (pl.read_parquet(tmp_path / "out" / "captures.parquet"),
                  pl.read_csv(tmp_path / "out" / "captures.csv")):
        rows = {Path(r["capture"]).name: r for r in table.iter_rows(named=True)}
        assert rows["cut.pcapng"]["status"] == "ok" and rows["cut.pcapng"]["read_complete"] is False
        assert rows["cut.pcapng"]["stopped_after_frame"] >= 0 and rows["cut.pcapng"]["stopped_at_offset"] > 0
        assert rows["cut.pcapng"]["stop_reason"]
        assert rows[COMPLIANT.name]["read_complete"] is True and rows[COMPLIANT.name]["stop_reason"] is None
    # the re-run takes the stored report, and still says so
    code, out, _ = run(capsys, tmp_path / "in", "--out", tmp_path / "out", "--jobs", "1")
    assert code == ExitCode.INCOMPLETE
    assert out.splitlines()[:2] == [
        "captures: 0 analysed, 2 skipped (unchanged), 0 unreadable, 1 read only partly", lines[1]]


def test_a_cut_gzip_capture_is_incomplete(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.pcapng.gz").write_bytes(gzip.compress(COMPLIANT.read_bytes())[:5000])
    code, out, _ = run(capsys, tmp_path / "in", "--out", tmp_path / "out")
    assert code == ExitCode.INCOMPLETE
    assert f"  INCOMPLETE {tmp_path / 'in' / 'cut.pcapng.gz'}: reading stopped after frame " in out


def test_a_stored_report_that_cannot_say_how_it_was_read_is_not_reused(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    cut(tmp_path / "in" / "cut.pcapng")
    run(capsys, tmp_path / "in", "--out", tmp_path / "out")
    (stored,) = (tmp_path / "out" / "reports").glob("cut-*.json")
    doc = json.loads(stored.read_text())
    del doc["captures"][0]["reading"]  # as written before reports carried it
    stored.write_text(json.dumps(doc))
    code, out, _ = run(capsys, tmp_path / "in", "--out", tmp_path / "out")
    assert code == ExitCode.INCOMPLETE and out.startswith("captures: 1 analysed, 0 skipped (unchanged)")


def result(verdict: str | None, complete: bool = True) -> dict:
    """A worker result: judged with one procedure of ``verdict``, or (None) not read at all."""
    if verdict is None:
        return {"status": "error", "part": None}
    reading = {"complete": True} if complete else {"complete": False, "code": "truncated-packet",
                                                   "after_frame": 3, "offset": 2968, "reason": "cut"}
    return {"status": "ok", "part": {"reading": reading, "procedures": [{"verdict": verdict}]}}


@pytest.mark.parametrize(("results", "code"), [
    ([result("compliant"), result("compliant")], ExitCode.OK),
    ([result("compliant"), result("incomplete")], ExitCode.INCOMPLETE),
    ([result("compliant"), result("compliant", complete=False)], ExitCode.INCOMPLETE),
    ([result("compliant"), result(None)], ExitCode.BAD_INPUT),
    ([result("incomplete"), result(None)], ExitCode.BAD_INPUT),
    ([result("deviation"), result(None)], ExitCode.DEVIATION),
    ([result("deviation", complete=False), result("compliant")], ExitCode.DEVIATION),
    ([result(None), result(None)], ExitCode.BAD_INPUT),
])
def test_exit_code_rule(results, code):
    assert batch_exit_code(results) == code
