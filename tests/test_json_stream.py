"""``mcxa analyze --format json`` writes its document a capture at a time, each procedure made into a dict as
it is written: the bytes and the exit code must be those of the document built whole."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.meaning.analysis import analyse_capture
from analyzer.report import document
from analyzer.rules import load_rules
from analyzer.rules.judge import judge

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
RULES = load_rules(None)


def _whole(paths: list[Path]) -> tuple[str, int]:
    parts = []
    for path in paths:
        analysis = analyse_capture(str(path))
        parts.append(document.capture_report(analysis, judge(analysis, RULES)))
    doc = document.report(parts, RULES)
    out = io.StringIO()
    document.write_json(doc, out)
    return out.getvalue(), document.exit_code(doc)


@pytest.mark.parametrize("names", [
    ["group-migration-compliant.pcapng"],
    ["group-migration-compliant.pcapng", "private-migration-missing-registration.pcapng",
     "group-migration-noisy.pcapng"],
    ["real/nginx-profile-http.pcap"],  # (no procedure at all)
    ["group-migration-truncated.pcapng", "group-migration-compliant.pcapng"],  # (one not read to its end)
], ids=["one", "three", "no-procedure", "truncated"])
def test_the_document_written_a_capture_at_a_time_is_the_document_built_whole(names, capsys):
    paths = [SAMPLES / name for name in names]
    assert all(p.exists() for p in paths), paths
    code = main(["analyze", *map(str, paths), "--format", "json", "-q"])
    assert (capsys.readouterr().out, code) == _whole(paths)


def test_a_report_of_no_capture_is_the_empty_document():
    out = io.StringIO()
    assert document.JsonReport(out, RULES).close() == document.exit_code(document.report([], RULES)) == 0
    whole = io.StringIO()
    document.write_json(document.report([], RULES), whole)
    assert out.getvalue() == whole.getvalue()


def test_a_capture_that_is_none_fails_before_any_of_the_document_is_written(tmp_path, capsys):
    """Second of two: exit 2 naming it; no half document on stdout, nor in (or beside) the output file."""
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x75\xf9\xc1\xdd" + bytes(60))
    good = str(SAMPLES / "group-migration-compliant.pcapng")
    assert main(["analyze", good, str(bad), "--format", "json", "-q"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "bad.pcap: not a pcap or pcapng file" in captured.err
    report = tmp_path / "report.json"
    assert main(["analyze", good, str(tmp_path / "missing.pcap"), "--format", "json", "-o", str(report)]) == 2
    assert "missing.pcap: cannot open" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [bad]


def test_a_device_given_as_output_is_written_to_not_replaced(capsys):
    """-o /dev/null (or /dev/stdout): written to as it is, never swapped for a regular file."""
    import os
    import stat

    good = str(SAMPLES / "group-migration-compliant.pcapng")
    for fmt in ("json", "text"):
        assert main(["analyze", good, "--format", fmt, "-q", "-o", os.devnull]) == 0
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert not os.path.exists(os.devnull + ".partial")
