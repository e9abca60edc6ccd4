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
    assert [h.text for h in page.xpath("//h2")][:2] == ["Migrations", "Building blocks"]  # the headline first
    headline = page.xpath("//table[contains(@class,'migrations')]//tr")
    assert len(headline) == 3 and "group-call-migration" in headline[1].text_content()
    badges = page.xpath("//table[contains(@class,'migrations')]//span[contains(@class,'badge')]")
    assert [b.text for b in badges] == ["deviation", "compliant"]
    blocks = page.xpath("//table[contains(@class,'blocks')]//tr[td/code='affiliation']")
    assert [[td.text_content() for td in tr.xpath("td")][2:] for tr in blocks] == [["1", "1", "0"],
                                                                                   ["2", "0", "0"]]
    ladders = page.xpath("//section[@class='ue']//svg[@class='ladder']")
    assert len(ladders) == 2  # one UE per capture
    assert ladders[0].xpath(".//g[contains(@class,'deviating')]")
    steps = page.xpath("//table[@class='steps']//tr[td/code='affiliation']")
    assert "failed" in steps[0].text_content() and "63, 64" in steps[0].text_content()  # PUBLISH at 63
    assert "migration duration" in text and "seconds per step" in text
    deviations = page.xpath("//ul[@class='deviations']/li")
    assert any("403 Forbidden" in li.text_content() and "frames 63, 64" in li.text_content()
               and li.xpath("code[@class='filter']")[0].text == "frame.number in {63, 64}"
               for li in deviations)
    assert len(page.xpath("//div[@class='legend']")) == 1 and not page.xpath("//svg//g[@class='legend']")
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


FLEET = """
name: a fleet without a migration, four UEs refused alike
seed: 3
start: 2026-05-01T10:00:00Z
systems:
  A: {domain: a.mcx.example, primary: true, sip_server: 10.10.0.10}
ues:
"""


def fleet_yaml() -> str:
    """Six UEs: ue1 and ue2 register and are authorised; ue3 to ue6 are refused (403) the same way."""
    ues, timeline = [], ["timeline:"]
    for n in range(1, 7):
        ues.append(f"  ue{n}:\n    instance: urn:gsma:imei:35209900-176148-{n}\n    client_id: c{n}\n"
                   f"    identities:\n      A: {{mc_id: sip:u{n}@a.mcx.example, impu: "
                   f"sip:+49170000000{n}@ims.a.mcx.example, address: 10.1.0.{n}}}")
        fault = ", fault: {error: 403}" if n > 2 else ""
        timeline.append(f"  - {{at: {n}.0, ue: ue{n}, do: register, system: A{fault}}}")
        if n <= 2:
            timeline.append(f"  - {{at: {n}.5, ue: ue{n}, do: service-authorisation, system: A}}")
    return FLEET + "\n".join(ues) + "\n" + "\n".join(timeline) + "\n"


def fleet(tmp_path) -> str:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(fleet_yaml(), encoding="utf-8")
    assert main(["synth", str(scenario), "-o", str(tmp_path / "fleet.pcapng")]) == ExitCode.OK
    return str(tmp_path / "fleet.pcapng")


def test_alike_deviations_are_one_row_and_a_few_examples_are_drawn_unless_all_are_asked_for(tmp_path):
    capture = fleet(tmp_path)
    code, text, _ = analyze_html(tmp_path, capture)
    assert code == ExitCode.DEVIATION
    page = lxml.html.fromstring(text)
    assert "no migration found" in page.xpath("//table[contains(@class,'migrations')]")[0].text_content()
    blocks = page.xpath("//table[contains(@class,'blocks')]//tr[td/code='registration']")
    assert [td.text_content() for td in blocks[0].xpath("td")][2:] == ["2", "4", "0"]
    flagged = page.xpath("//table[contains(@class,'flagged')]//tr")[1:]
    assert len(flagged) == 1  # four UEs refused alike: one row
    assert "registered: failed" in flagged[0].text_content()
    assert flagged[0].xpath(".//summary")[0].text == "4 UEs"
    assert len(flagged[0].xpath(".//a")) == 3  # the examples detailed below are linked
    sections = page.xpath("//section[@class='ue']")
    assert [s.get("id") for s in sections] == ["c0-ue3", "c0-ue4", "c0-ue5"]
    assert len(page.xpath("//svg[@class='ladder']")) == 3 and len(page.xpath("//div[@class='legend']")) == 1
    assert "3 other UE session(s) not detailed" in page.xpath("//p[contains(@class,'not-drawn')]")[0].text
    out = tmp_path / "all.html"
    assert main(["analyze", capture, "--format", "html", "--ladders", "all", "-o", str(out)]) == 1
    page = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    assert len(page.xpath("//svg[@class='ladder']")) == 6 and len(page.xpath("//div[@class='legend']")) == 1
    assert main(["analyze", capture, "--format", "html", "--ladders", "none", "-o", str(out)]) == 1
    page = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    assert not page.xpath("//svg") and not page.xpath("//div[@class='legend']")
    assert len(page.xpath("//section[@class='ue']")) == 3  # their procedures shown, not drawn


def test_ladders_of_many_sessions_at_once_are_those_of_each_alone():
    """``ladder_batch`` hands each session its candidate messages in one pass; each ladder is the same as
    drawn from every message of the capture."""
    from analyzer.report.ladder import build_ladder
    from analyzer.report.ladder_batch import capture_ladders
    from tests.test_ladder import judged

    for name in ("two-ues-group-migration.pcapng", "group-migration-https-profile.pcapng"):
        analysis, procedures, messages = judged(str(SAMPLES / name))
        together = capture_ladders(analysis, procedures)
        assert len(together) == len(analysis.sessions) and all(x.rows for x in together)
        for ladder, session in zip(together, analysis.sessions, strict=True):
            assert ladder == build_ladder(analysis, session, messages, procedures)


@pytest.mark.skipif(CHROMIUM is None,
                    reason="chromium is not installed (apt-get install chromium; .ci/run does)")
def test_headless_chromium_shows_the_headline_first_and_one_legend(tmp_path):
    capture = fleet(tmp_path)
    _, _, report = analyze_html(tmp_path, capture, str(SAMPLES / "group-migration-compliant.pcapng"))
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", report.as_uri()], capture_output=True, timeout=60, check=True,
                         text=True).stdout
    page = lxml.html.fromstring(dom)
    assert [h.text for h in page.xpath("//h2")][:2] == ["Migrations", "Building blocks"]
    rows = page.xpath("//table[contains(@class,'migrations')]//tr")[1:]
    assert "no migration found" in rows[0].text_content() and "compliant" in rows[1].text_content()
    assert len(page.xpath("//div[@class='legend']")) == 1 and len(page.xpath("//svg[@class='ladder']")) == 4


def test_a_big_capture_is_decoded_again_for_its_ladders_and_draws_the_same_page(tmp_path, monkeypatch):
    """Over ``KEEP_MESSAGES_BELOW`` the analysis keeps no messages (memory) and the ladders' messages come
    from a second decode: the page must not change."""
    from analyzer.cli import judging
    from analyzer.report import ladder_batch

    kept_by_analysis = []
    collect = ladder_batch.collect_messages

    def watched(analysis, *args):
        kept_by_analysis.append(analysis.messages is not None)
        return collect(analysis, *args)

    monkeypatch.setattr(ladder_batch, "collect_messages", watched)
    _, kept, _ = analyze_html(tmp_path, REJECTED)
    monkeypatch.setattr(judging, "KEEP_MESSAGES_BELOW", 0)
    _, again, _ = analyze_html(tmp_path, REJECTED)
    assert kept_by_analysis == [True, False]
    assert again == kept
