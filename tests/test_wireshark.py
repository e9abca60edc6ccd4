"""From a verdict to Wireshark in one step: frame lists as display filters tshark accepts, and the frames of
a UE session (``flow --pcap``) or of each deviating procedure (``analyze --pcap-dir``) written to a pcapng
that tshark and mcxa read back, with the original link type, timestamps and frame comments."""

from __future__ import annotations

import shutil
import subprocess

import dpkt
import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.report.wireshark import frame_filter
from tests.packets import write_pcap
from tests.test_ladder import REJECTED, SAMPLES

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def tshark(capture, *args: str) -> list[list[str]]:
    """tshark's fields, one list per frame (tshark fails the test on a filter it refuses)."""
    run = subprocess.run([TSHARK, "-r", str(capture), *args], capture_output=True, text=True, timeout=60,
                         check=True)
    return [line.split("\t") for line in run.stdout.splitlines()]


def test_a_frame_list_becomes_a_short_filter():
    assert frame_filter([63]) == "frame.number == 63"
    assert frame_filter([64, 63, 63]) == "frame.number in {63, 64}"
    assert frame_filter([62, 63, 64, 70, 71, 90, 91, 92, 93]) == "frame.number in {62..64, 70, 71, 90..93}"
    assert frame_filter(range(1, 5001)) == "frame.number in {1..5000}"
    assert frame_filter([]) == ""


@needs_tshark
def test_tshark_selects_exactly_the_frames_of_the_filters_the_text_report_prints(capsys):
    assert main(["analyze", REJECTED, "-q"]) == ExitCode.DEVIATION
    filters = [line.split("Wireshark: ", 1)[1] for line in capsys.readouterr().out.splitlines()
               if "Wireshark: " in line]
    assert filters and set(filters) == {"frame.number in {63, 64}"}
    assert tshark(REJECTED, "-Y", filters[0], "-T", "fields", "-e", "frame.number") == [["63"], ["64"]]
    assert tshark(REJECTED, "-Y", frame_filter([1, 2, 3, 63, 64]), "-T", "fields", "-e", "frame.number") == [
        ["1"], ["2"], ["3"], ["63"], ["64"]]


@needs_tshark
def test_flow_pcap_holds_the_session_frames_with_comments_original_times_and_link_type(tmp_path, capsys):
    out = tmp_path / "ue1.pcapng"
    assert main(["flow", REJECTED, "--ue", "alice.b", "--pcap", str(out)]) == ExitCode.OK
    assert f"{out}: 39 packets of ue1" in capsys.readouterr().err
    fields = ("-T", "fields", "-e", "frame.time_epoch", "-e", "frame.encap_type")
    rows = tshark(out, *fields, "-e", "frame.comment")
    assert len(rows) == 39
    comments = {row[2].split(",")[0]: row[2] for row in rows}
    frame63 = comments["mcxa: frame 63 of group-migration-affiliation-rejected.pcapng"]
    assert "SIP PUBLISH sip:mcptt-participating@b.mcx.example" in frame63
    assert "step group-call-migration/affiliation: failed" in frame63
    assert "deviation [error] group-call-migration: affiliation: " in frame63 and "403 Forbidden" in frame63
    assert "segment of SIP PUBLISH completed in frame 63" in comments[
        "mcxa: frame 62 of group-migration-affiliation-rejected.pcapng"]
    originals = {int(n): (t, encap) for n, t, encap in tshark(REJECTED, *fields[:2], "-e", "frame.number",
                                                                 *fields[2:])}
    for time, encap, comment in rows:
        number = int(comment.split(",")[0].split()[2])
        assert (time, encap) == originals[number]
    # mcxa reads it back: the same messages, the migration's affiliation PUBLISH and its 403 among them
    assert main(["messages", str(out), "--method", "PUBLISH", "-q"]) == ExitCode.OK
    assert "403 Forbidden" in capsys.readouterr().out


@needs_tshark
def test_flow_pcap_keeps_a_raw_ip_link_type(tmp_path, capsys):
    with open(REJECTED, "rb") as fh:
        frames = [bytes(dpkt.ethernet.Ethernet(data).data) for _, data in dpkt.pcapng.Reader(fh)]
    raw = tmp_path / "raw.pcap"
    write_pcap(raw, frames, linktype=101)
    out = tmp_path / "raw-ue1.pcapng"
    assert main(["flow", str(raw), "--pcap", str(out), "-q"]) == ExitCode.OK
    fields = ("-T", "fields", "-e", "frame.encap_type", "-e", "frame.time_epoch")
    rows = tshark(out, *fields, "-e", "sip.Method")
    originals = {t for _, t in tshark(raw, *fields)}
    assert rows and {r[0] for r in rows} == {"7"}  # WTAP_ENCAP_RAW_IP, as in the original
    assert {r[1] for r in rows} <= originals and "PUBLISH" in {r[2] for r in rows}


@needs_tshark
@pytest.mark.parametrize("fmt", ["text", "json"])  # (JSON judges as it streams: the sessions stay for this)
def test_analyze_pcap_dir_writes_one_capture_per_deviating_procedure(tmp_path, capsys, fmt):
    folder = tmp_path / "cases"
    code = main(["analyze", REJECTED, str(SAMPLES / "group-migration-compliant.pcapng"), "--pcap-dir",
                 str(folder), "--format", fmt])
    assert code == ExitCode.DEVIATION
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["group-migration-affiliation-rejected-ue1-affiliation.pcapng",
                       "group-migration-affiliation-rejected-ue1-group-call-migration.pcapng"]
    assert "13 packets of group-call-migration (ue1, deviation)" in capsys.readouterr().err
    migration = folder / written[1]
    info = subprocess.run(["capinfos", "-k", str(migration)], capture_output=True, text=True).stdout \
        if shutil.which("capinfos") else ""
    rows = tshark(migration, "-T", "fields", "-e", "frame.comment")
    comments = [c for row in rows for c in row[0].split(",")]
    assert "mcxa: frame 64 of group-migration-affiliation-rejected.pcapng" in comments
    assert any(c.startswith("deviation [error] group-call-migration: affiliation:") for c in comments)
    assert not info or "group-call-migration of sip:alice@a.mcx.example (ue1)" in info


def test_frames_of_a_capture_read_from_standard_input_cannot_be_written(tmp_path, capsys, monkeypatch):
    import io
    import sys

    with open(REJECTED, "rb") as fh:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(fh.read())))
    assert main(["flow", "-", "--pcap", str(tmp_path / "x.pcapng"), "-q"]) == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    assert "--pcap" in captured.err and "cannot be read again" in captured.err and not captured.out
    assert not (tmp_path / "x.pcapng").exists()


def test_pcap_dir_that_is_a_file_is_refused_before_decoding(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["analyze", REJECTED, "--pcap-dir", str(tmp_path / "file")]) == ExitCode.BAD_INPUT
    assert "--pcap-dir" in capsys.readouterr().err
