"""Ladder diagrams (``mcxa flow``): columns merged by host, steps on their frames, deviations marked,
terminal and SVG output that fit and escape."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace
from functools import cache
from pathlib import Path

from lxml import etree

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.meaning.analysis import analyse_capture
from analyzer.messages.records import Message
from analyzer.report.document import capture_report
from analyzer.report.ladder import build_ladder, collect_messages, pick_session, svg
from analyzer.report.ladder_text import write_text
from analyzer.rules import load_rules
from analyzer.rules.judge import judge
from tests.packets import udp_frame, write_pcap

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
REJECTED = str(SAMPLES / "group-migration-affiliation-rejected.pcapng")
SCRIPT = "<script>alert(1)</script>"


@cache
def judged(path: str):
    analysis = analyse_capture(path)
    return analysis, capture_report(analysis, judge(analysis, load_rules()))["procedures"], \
        collect_messages(analysis)


def ladder_of(path: str = REJECTED, **kw):
    analysis, procedures, messages = judged(path)
    return build_ladder(analysis, analysis.sessions[0], messages, procedures, **kw)


def hostile_capture(path) -> str:
    """A REGISTER rejected twice, with markup in the identity, Call-ID, reason phrase and Warning."""
    def register(cseq: int) -> bytes:
        return (f"REGISTER sip:ims.a.mcx.example SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK-{cseq}\r\n"
                f"From: \"{SCRIPT}\" <sip:alice{SCRIPT}@a.mcx.example>;tag=1\r\n"
                f"To: <sip:alice{SCRIPT}@a.mcx.example>\r\nCall-ID: {SCRIPT}@10.1.0.5\r\n"
                f"CSeq: {cseq} REGISTER\r\nUser-Agent: {SCRIPT}\r\n"
                f"Contact: <sip:alice@10.1.0.5:5060>;+sip.instance=\"<urn:gsma:imei:{SCRIPT}>\""
                ";+g.3gpp.mcptt\r\n"
                "Expires: 600\r\nContent-Length: 0\r\n\r\n").encode()

    def rejected(cseq: int) -> bytes:
        return (f"SIP/2.0 403 {SCRIPT}\r\nVia: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK-{cseq}\r\n"
                f"From: <sip:alice{SCRIPT}@a.mcx.example>;tag=1\r\n"
                f"To: <sip:alice{SCRIPT}@a.mcx.example>;tag=2\r\n"
                f"Call-ID: {SCRIPT}@10.1.0.5\r\nCSeq: {cseq} REGISTER\r\n"
                f"Warning: 399 ims.a.mcx.example \"{SCRIPT}\"\r\nContent-Length: 0\r\n\r\n").encode()

    ue, server = "10.1.0.5", "10.10.0.10"
    frames = []
    for cseq in (1, 2):
        frames += [udp_frame(ue, server, 5060, 5060, register(cseq)),
                   udp_frame(server, ue, 5060, 5060, rejected(cseq))]
    write_pcap(path, frames, step=1.0)
    return str(path)


def test_columns_are_the_ue_then_servers_merged_by_host_and_labelled_with_their_system():
    ladder = ladder_of()
    assert [c.key for c in ladder.columns] == ["ue", "10.10.0.10", "10.20.0.21", "10.20.0.20", "10.20.0.10"]
    assert [c.system for c in ladder.columns[1:]] == ["a.mcx.example"] + ["b.mcx.example"] * 3
    assert ladder.columns[0].address == "10.1.0.5, 10.2.0.7"  # both UE addresses: one column
    assert all(":" not in c.key for c in ladder.columns)
    # messages from the UE's two addresses all start or end in column 0
    assert {r.src for r in ladder.rows if r.label in ("REGISTER", "PUBLISH")} == {0}


def test_one_server_on_two_ports_is_one_column():
    analysis, procedures, messages = judged(REJECTED)
    moved = [replace(m, dst=m.dst.replace(":5060", ":5070"))
             if isinstance(m, Message) and m.method == "PUBLISH" else m for m in messages]
    ladder = build_ladder(analysis, analysis.sessions[0], moved, procedures)
    assert [c.key for c in ladder.columns].count("10.20.0.10") == 1
    assert len(ladder.columns) == 5


def test_rows_are_the_session_messages_in_time_order_with_labels_frames_and_times():
    ladder = ladder_of()
    assert [r.time for r in ladder.rows] == sorted(r.time for r in ladder.rows)
    by_frame = {r.frame: r for r in ladder.rows}
    assert by_frame[63].label == "PUBLISH" and by_frame[64].label == "403 Forbidden"
    assert by_frame[44].label == "GET" and by_frame[44].proto == "http"
    assert by_frame[29].proto == "tls"  # the encrypted token request
    # dialog messages sharing an event's Call-ID come along (the SUBSCRIBE dialog of the NOTIFYs)
    assert by_frame[20].label == "ACK"


def test_steps_are_labelled_on_their_frames_and_deviating_steps_marked():
    ladder = ladder_of()
    by_frame = {r.frame: r for r in ladder.rows}
    assert [(s.step, s.status) for s in by_frame[22].steps] == [("deaffiliation", "matched")]
    first = by_frame[63].steps[0]
    assert (first.rule, first.step, first.status, first.deviating) == ("group-call-migration", "affiliation",
                                                                        "failed", True)
    assert by_frame[63].deviating and by_frame[64].deviating and not by_frame[22].deviating
    assert [r.frame for r in ladder.rows if r.deviating] == [63, 64]
    missing = {(m.step, m.status, m.deviating) for m in ladder.unplaced}
    assert ("late-entry", "missing", False) in missing  # capture ended: a warning, not a deviation


def test_a_refused_step_accepted_too_late_marks_its_retry_as_part_of_the_deviation():
    """The affiliation refused (403) and accepted 38 s later: the accepted PUBLISH and its 200 are the
    failed step's messages too (its deviation cites them), labelled so."""
    ladder = ladder_of(str(SAMPLES / "group-migration-affiliation-retried-late.pcapng"))
    by_frame = {r.frame: r for r in ladder.rows}
    assert [r.frame for r in ladder.rows if r.deviating] == [63, 64, 66, 67]
    [late] = [m for m in by_frame[66].steps if m.rule == "group-call-migration"]
    assert (late.step, late.status, late.label, late.deviating) == ("affiliation", "failed",
                                                                    "accepted too late", True)
    assert [(m.step, m.status) for m in by_frame[68].steps] == [("status", "matched")]


def test_terminal_ladder_fits_80_columns_and_colours_deviations_only_when_asked():
    ladder = ladder_of()
    plain = io.StringIO()
    write_text(ladder, plain, width=80, color=False)
    lines = plain.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b[" not in plain.getvalue()
    # at 80 columns the step notes go under their rows, so the five lanes stay readable
    assert any("PUBLISH" in line and "affiliation: failed" in after
               for line, after in itertools.pairwise(lines))
    coloured = io.StringIO()
    write_text(ladder, coloured, width=120, color=True)
    assert any("PUBLISH" in line and "affiliation: failed" in line
               for line in coloured.getvalue().splitlines())
    red = [line for line in coloured.getvalue().splitlines() if re.search(r"\x1b\[[0-9;]*31m", line)]
    assert any("403 Forbidden" in line for line in red)


def test_svg_is_well_formed_self_contained_with_a_legend_and_red_deviations():
    text = svg(ladder_of())
    root = etree.fromstring(text.encode())
    ns = {"s": "http://www.w3.org/2000/svg"}
    deviating = root.xpath("//s:g[contains(@class, 'deviating')]", namespaces=ns)
    assert sorted(int(g.get("data-frame")) for g in deviating) == [63, 64]
    assert "#cf222e" in etree.tostring(deviating[0]).decode()
    assert root.xpath("//s:g[@class='legend']", namespaces=ns)
    assert re.findall(r"https?://[^\"]*", text) == ["http://www.w3.org/2000/svg"]  # the namespace only
    assert "<image" not in text and "<script" not in text and "@import" not in text


def test_svg_and_text_escape_markup_from_the_capture(tmp_path):
    path = hostile_capture(tmp_path / "hostile.pcap")
    ladder = ladder_of(path)
    assert any(SCRIPT in (r.call_id or "") for r in ladder.rows)
    text = svg(ladder)
    etree.fromstring(text.encode())
    assert "<script" not in text and "&lt;script&gt;" in text


def test_default_session_is_the_first_with_a_procedure_and_ue_matches_id_or_identity():
    analysis, procedures, _ = judged(str(SAMPLES / "two-ues-group-migration.pcapng"))
    assert pick_session(analysis, procedures).id == "ue1"
    assert pick_session(analysis, procedures, "ue2").id == "ue2"
    bob = next(i.value for i in analysis.sessions[1].identities if i.kind == "mc-id")
    assert pick_session(analysis, procedures, bob.upper()[4:]).id == "ue2"
    assert pick_session(analysis, procedures, "nobody") is None


def test_flow_command_text_svg_call_id_and_unknown_ue(tmp_path, capsys):
    assert main(["flow", REJECTED, "-q"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "403 Forbidden" in out and "affiliation: failed" in out
    svg_path = tmp_path / "ladder.svg"
    assert main(["flow", REJECTED, "--format", "svg", "-o", str(svg_path), "--ue", "alice.b"]) == ExitCode.OK
    etree.parse(str(svg_path))
    call_id = "915ee946-388c-4bc9-8b2f-bbb9afe46ccc@10.2.0.7"
    assert main(["flow", REJECTED, "--call-id", call_id]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "(2 messages, times 2026-05-01 UTC)" in out
    assert main(["flow", REJECTED, "--ue", "nobody"]) == ExitCode.BAD_INPUT
    assert "no UE session matches --ue nobody" in capsys.readouterr().err


def test_an_analysis_that_kept_its_messages_draws_without_decoding_again(monkeypatch):
    """flow and --format html read each capture once: the ladder uses the messages the analysis kept."""
    from analyzer.meaning.analysis import MeaningOptions, analyse_capture
    from analyzer.report import ladder

    path = str(Path(__file__).resolve().parents[1] / "sample_captures" / "group-migration-compliant.pcapng")
    analysis = analyse_capture(path, meaning=MeaningOptions(keep_messages=True))

    def no_second_decode(*args, **kwargs):
        raise AssertionError("the capture was decoded a second time")

    monkeypatch.setattr(ladder, "get_engine", no_second_decode)
    kept = collect_messages(analysis)
    assert kept and [m.frame for m in kept] == sorted(m.frame for m in kept)
