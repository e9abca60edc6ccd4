"""Issue 13: a capture whose reading stopped before the end of the file is judged on what came before, and
every report format says so first; the capture is then at least incomplete (exit 3)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
COMPLIANT = SAMPLES / "group-migration-compliant.pcapng"
STOPPED = "reading stopped after frame "


@pytest.fixture(scope="module")
def half_gz(tmp_path_factory) -> str:
    """The first half of a gzip'd compliant capture: the gzip stream ends before its end-of-stream marker."""
    data = gzip.compress(COMPLIANT.read_bytes())
    path = tmp_path_factory.mktemp("damaged") / "half.pcapng.gz"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_report_says_where_reading_stopped_before_anything_else(half_gz, capsys):
    code, out, _ = run(capsys, "analyze", half_gz)
    assert code == ExitCode.INCOMPLETE  # it was compliant whole; the part that was read deviates in nothing
    lines = out.splitlines()
    assert lines[0].startswith(f"{half_gz}: ") and lines[0].endswith(("UE", "UEs"))
    assert lines[1].startswith(f"  INCOMPLETE: {STOPPED}") and "byte offset" in lines[1]
    words = " ".join(out.split())  # lines are wrapped at 80 columns
    assert "gzip stream is cut short" in words and "no migration found in what could be read" in out


def test_json_report_carries_reading_and_the_packet_accounting(half_gz, capsys):
    code, out, _ = run(capsys, "analyze", half_gz, "--format", "json")
    assert code == ExitCode.INCOMPLETE
    [cap] = json.loads(out)["captures"]
    assert list(cap)[:2] == ["file", "reading"]
    reading = cap["reading"]
    assert (reading["complete"], reading["code"]) == (False, "bad-compression") and reading["after_frame"] > 0
    fates = cap["accounting"]["fates"]
    assert sum(fates.values()) == cap["stats"]["packets"] == reading["after_frame"]


def test_html_says_it_in_a_banner_and_in_the_summary(half_gz, capsys, tmp_path):
    out = tmp_path / "r.html"
    assert run(capsys, "analyze", half_gz, COMPLIANT, "--format", "html", "-o", out)[0] == ExitCode.INCOMPLETE
    page = lxml.html.fromstring(out.read_text())
    [banner] = page.xpath("//p[@class='damage']")
    assert STOPPED in banner.text_content() and banner.xpath("span[@class='badge incomplete']")
    rows = page.xpath("//table[contains(@class,'migrations')]//tr[td]")  # the headline, first
    assert any(r.xpath("td")[0].get("title") == half_gz and STOPPED in r.text_content() for r in rows)
    # the capture read whole says nothing of the kind, and shows where its packets went
    assert len(page.xpath("//p[@class='damage']")) == 1
    assert "72 packets: 72 signalling" in page.xpath("//p[@class='accounting']")[1].text_content()


def test_junit_has_a_skipped_case_for_the_capture_read_only_partly(half_gz, capsys, tmp_path):
    out = tmp_path / "j.xml"
    code = run(capsys, "analyze", half_gz, COMPLIANT, "--format", "junit", "-o", out)[0]
    assert code == ExitCode.INCOMPLETE
    root = etree.parse(str(out)).getroot()
    [case] = root.xpath("//testcase[@name='capture read to its end']")
    assert case.getparent().get("name") == half_gz
    assert case.find("skipped").get("message").startswith(f"incomplete: {STOPPED}")
    assert case.getparent().get("skipped") == "1"


@pytest.mark.parametrize("command", ["events", "sessions", "flow"])
def test_listing_commands_say_it_on_stderr_and_exit_3(half_gz, capsys, command):
    code, out, err = run(capsys, command, half_gz)
    assert code == ExitCode.INCOMPLETE and out
    assert f"mcxa: {half_gz}: incomplete capture: {STOPPED}" in err
    if command == "flow":  # said before the drawing reaches the terminal
        assert err.index("incomplete capture") < err.index("packets:")


def test_a_capture_read_whole_exits_as_its_verdict(capsys):
    code, _, err = run(capsys, "events", COMPLIANT)
    assert code == ExitCode.OK and "incomplete" not in err
    assert "72 packets: 72 signalling (40 SIP, 2 HTTP messages; 1 TLS flow)" in err
