"""``mcxa analyze --format html``: one self-contained page with the summary, per-UE ladders, step timelines,
KPIs, deviations and diagnostics; markup from a capture is shown as text; headless Chromium renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import lxml.html
import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from tests.test_ladder import REJECTED, SAMPLES, SCRIPT, hostile_capture


def analyze_html(tmp_path, *captures: str) -> tuple[int, str, Path]:
    out = tmp_path / "report.html"
    code = main(["analyze", *captures, "--format", "html", "-o", str(out)])
    return code, out.read_text(encoding="utf-8"), out


def test_report_has_summary_ladder_steps_kpis_deviations_and_diagnostics(tmp_path):
    code, text, _ = analyze_html(tmp_path, REJECTED, str(SAMPLES / "group-migration-compliant.pcapng"))
    assert code == ExitCode.DEVIATION
    page = lxml.html.fromstring(text)
    summary = page.xpath("//table[@class='summary']//tr")
    assert len(summary) > 2 and "group-call-migration" in summary[3].text_content()
    assert [b.text for b in page.xpath("//table[@class='summary']//span[contains(@class,'badge')]")].count(
        "deviation") == 2
    ladders = page.xpath("//section[@class='ue']//svg[@class='ladder']")
    assert len(ladders) == 2  # one UE per capture
    assert ladders[0].xpath(".//g[contains(@class,'deviating')]")
    steps = page.xpath("//table[@class='steps']//tr[td/code='affiliation']")
    assert "failed" in steps[0].text_content() and "63, 64" in steps[0].text_content()  # PUBLISH at 63
    assert "migration duration" in text and "seconds per step" in text
    deviations = page.xpath("//ul[@class='deviations']/li")
    assert any("403 Forbidden" in li.text_content() and "frames 63, 64" in li.text_content()
               for li in deviations)
    assert "No decode diagnostics." in text


def test_report_is_self_contained(tmp_path):
    _, text, _ = analyze_html(tmp_path, REJECTED)
    page = lxml.html.fromstring(text)
    assert not page.xpath("//script | //link | //img | //iframe | //object | //embed")
    loads = [v for el in page.iter() if isinstance(el.tag, str)
             for k, v in el.attrib.items() if k in ("src", "href", "xlink:href", "data")]
    assert all(v.startswith("#") for v in loads), loads
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", text) and "@import" not in text
    assert "http://" not in text and "https://" not in text


def test_every_capture_string_is_escaped(tmp_path):
    path = hostile_capture(tmp_path / "hostile.pcap")
    code, text, _ = analyze_html(tmp_path, path)
    assert code == ExitCode.DEVIATION
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = lxml.html.fromstring(text)
    assert not page.xpath("//script")
    assert SCRIPT in page.text_content()  # shown, as text


CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None,
                    reason="chromium is not installed (apt-get install chromium; .ci/run does)")
def test_headless_chromium_renders_the_report_with_its_ladder(tmp_path):
    _, text, report = analyze_html(tmp_path, REJECTED)
    assert "<svg class=\"ladder\"" in text
    png = tmp_path / "report.png"
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*base, f"--screenshot={png}", "--window-size=1280,2000", report.as_uri()],
                   capture_output=True, timeout=60, check=True)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 30_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    dom = subprocess.run([*base, "--dump-dom", report.as_uri()], capture_output=True, timeout=60, check=True,
                         text=True).stdout
    page = lxml.html.fromstring(dom)
    assert page.xpath("//h1")[0].text == "mcxa compliance report"
    ladder = page.xpath("//svg[@class='ladder']")
    assert ladder and ladder[0].xpath(".//g[contains(@class,'deviating')]")
