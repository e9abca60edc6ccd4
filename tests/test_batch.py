"""Batch: many captures in parallel, an unreadable one as an error row, resume by content and rule set,
the same tables whatever the executor and number of jobs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from analyzer.batch import CAPTURE_COLUMNS, DEVIATION_COLUMNS, PROCEDURE_COLUMNS
from analyzer.cli import main
from analyzer.exitcodes import ExitCode

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
    assert "0 analysed, 3 skipped (unchanged), 1 failed" in capsys.readouterr().out
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
