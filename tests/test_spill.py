"""Packed runs past a budget wait on disk (``analyzer.base.spill``): a core capture's facts, events and
procedures cost disk, not memory, and nothing a user sees changes with where they waited."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from analyzer.base import spill
from analyzer.base.errors import McxaError
from analyzer.base.spill import Spill
from analyzer.cli import main
from analyzer.meaning.events import factstore

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"


@pytest.fixture
def spill_dir(tmp_path, monkeypatch) -> Path:
    """Every packed run goes to disk, into a temporary file under a directory of the test's own."""
    monkeypatch.setattr(spill, "SPILL_AFTER", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_runs_within_the_budget_stay_in_memory_and_the_rest_are_read_back_from_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kept = Spill(budget=10)
    small = kept.keep(b"0123456789")
    assert small == b"0123456789" and kept.file is None  # (within the budget: the bytes themselves)
    big, later = kept.keep(b"abc"), kept.keep(b"defgh")
    assert (big, later) == ((0, 3), (3, 5))
    assert [kept.read(h) for h in (later, small, big)] == [b"defgh", b"0123456789", b"abc"]
    assert os.listdir(tmp_path) == []  # (unnamed: nothing is left behind, even by a crash)
    kept.close()


def test_a_disk_that_is_full_is_one_error_naming_the_directory(spill_dir, monkeypatch):
    def full(fd, data, offset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(McxaError) as caught:
        Spill().keep(b"facts")
    assert str(caught.value) == (f"{spill_dir}: cannot keep what is read so far on disk: No space left on "
                                 "device (set TMPDIR to a directory with room)")


def test_analyze_says_in_one_line_that_it_cannot_write_its_temporary_file(spill_dir, monkeypatch, capsys):
    missing = spill_dir / "gone"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    monkeypatch.setattr(factstore, "HOLD", 0)  # (the facts packed: they go to disk)
    code = main(["analyze", str(SAMPLES / "group-migration-noisy.pcapng"), "--format", "json", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"mcxa: {missing}: cannot keep what is read so far on disk: No such file")
