"""Times as Wireshark shows them: every ``--time-format`` gives tshark's ``-t`` text for the same frames (plus
the zone of an absolute time), ``TZ`` is honoured, data files keep the epoch and add ISO 8601; and formatting
a time never fails, whatever the capture held (issue 14: timestamps beyond what time.gmtime handles ended in
an internal error)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.base.times import UTC_DATE, TimeFormat, clock, iso_utc, use
from analyzer.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMPLIANT = ROOT / "sample_captures" / "group-migration-compliant.pcapng"
T = 1_777_629_612.1234  # 2026-05-01 10:00:12.1234 UTC


@pytest.fixture
def tz(monkeypatch):
    """Set the local zone for one test (and back)."""
    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_without_a_command_line_times_read_as_utc_dates():
    assert clock(T) == "2026-05-01 10:00:12.123400 UTC" and UTC_DATE.kind == "ud"


@pytest.mark.parametrize("kind, text", [
    ("ad", "2026-05-01 12:00:12.123400 CEST"), ("a", "12:00:12.123400 CEST"),
    ("adoy", "2026/121 12:00:12.123400 CEST"), ("u", "10:00:12.123400 UTC"),
    ("ud", "2026-05-01 10:00:12.123400 UTC"), ("udoy", "2026/121 10:00:12.123400 UTC"),
    ("e", "1777629612.123400"), ("r", "12.123400"),
])
def test_each_format_in_a_sentence(tz, kind, text):
    tz("Europe/Paris")
    with use(TimeFormat(kind, origin=T - 12.1234)):
        assert clock(T) == text


def test_a_zone_without_an_abbreviation_shows_its_offset(tz):
    tz("Asia/Dubai")  # tzdata names it "+04"
    assert TimeFormat("a").stamp(T) == "14:00:12.123400 +0400"


def test_deltas_count_from_the_previous_frame_or_row():
    frames = {1: T - 2.0, 2: T - 0.5}
    d = TimeFormat("d", origin=T - 2.0, frame_time=frames.get)
    assert d.stamp(T, frame=3) == "0.500000" and d.stamp(T - 2.0, frame=1) == "0.000000"
    assert d.stamp(T, frame=9) == "?"  # frame 8 unknown: never a made-up delta
    assert d.stamp(T) == "2.000000"  # in a sentence: since the first frame
    stamp = TimeFormat("dd").rows()
    assert [stamp(T, 5), stamp(T + 0.25, 9), stamp(T + 1.0, 12)] == ["0.000000", "0.250000", "0.750000"]


def test_iso_8601_in_utc_for_data_files():
    assert iso_utc(T) == "2026-05-01T10:00:12.123400Z"
    assert iso_utc(None) is None and iso_utc(math.inf) is None


@pytest.mark.parametrize("t", [-1.0, 1e300, math.inf, -math.inf, math.nan, 2.6e11])
@pytest.mark.parametrize("kind", ["ad", "u", "e", "r"])
def test_a_time_that_is_no_date_is_shown_as_the_number_not_an_error(t, kind):
    with use(TimeFormat(kind, origin=0.0)):
        assert clock(t) == repr(t)


def test_no_time_is_a_question_mark():
    assert clock(None) == "?"


def _table_times(capsys, *args) -> dict[int, str]:
    """frame → its time as ``mcxa messages`` shows it (the table's time column)."""
    assert main(["messages", str(COMPLIANT), "-q", *args]) == ExitCode.OK
    header, *rows = capsys.readouterr().out.splitlines()
    start = header.index("time")
    end = header.index("src") - 1
    return {int(row.split()[0]): row[start:end].strip() for row in rows}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("kind", ["ad", "a", "adoy", "r", "d", "dd", "u", "ud", "udoy", "e"])
def test_every_format_shows_what_tshark_shows_for_the_same_frames(capsys, tz, kind):
    tz("America/New_York")  # a zone that is not UTC, so local and UTC formats differ
    shown = _table_times(capsys, "--time-format", kind)
    tshark = subprocess.run(["tshark", "-r", str(COMPLIANT), "-Y", "sip || http", "-t", kind, "-T", "fields",
                             "-e", "frame.number", "-e", "_ws.col.Time"], capture_output=True, text=True,
                            timeout=120, check=True)
    theirs = dict(line.split("\t") for line in tshark.stdout.splitlines())
    assert len(shown) == len(theirs) == 42
    zone = {"a": "EDT", "ad": "EDT", "adoy": "EDT", "u": "UTC", "ud": "UTC", "udoy": "UTC"}.get(kind)
    for frame, text in shown.items():
        expected = theirs[str(frame)]
        assert text == (f"{expected} {zone}" if zone else expected), frame


def test_default_is_local_date_and_time_with_zone(capsys, tz):
    tz("Europe/Paris")
    assert _table_times(capsys)[1] == "2026-05-01 12:00:00.000000 CEST"
    assert main(["events", str(COMPLIANT), "-q"]) == ExitCode.OK
    assert capsys.readouterr().out.splitlines()[1].split()[1:4] == ["2026-05-01", "12:00:00.000000", "CEST"]


def test_relative_formats_need_a_file_not_standard_input(capsys, monkeypatch):
    code = main(["messages", "-", "--time-format", "r"])
    _, err = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT and "--time-format" in err and "standard input" in err


def test_data_files_keep_the_epoch_and_add_iso_8601(capsys, tmp_path):
    assert main(["messages", str(COMPLIANT), "-q", "--format", "jsonl", "--time-format", "r"]) == ExitCode.OK
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["time"] == 1777629600.0 and first["time_iso"] == "2026-05-01T10:00:00.000000Z"
    assert main(["events", str(COMPLIANT), "-q", "--format", "csv"]) == ExitCode.OK
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split(",")[-1] == "time_iso" and row.endswith(",2026-05-01T10:00:00.000000Z")
