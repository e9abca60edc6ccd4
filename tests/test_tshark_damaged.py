"""The tshark engine on damaged input behaves as the dpkt engine does: the messages before the damage, a
diagnostic, where reading stopped and a verdict — or one error line naming the file, before any output.

Damaged copies of a synthesised sample and of a real SIPp/tcpdump capture are written into ``tmp_path``;
each engine's output is compared with the other's, as the user sees it (stdout, stderr, exit code).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.engines import FATES, DecodeOptions, get_engine
from analyzer.engines.tshark_engine import UNSHOWN

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_captures" / "group-migration-compliant.pcapng"  # synthesised, SIP over UDP
SIPP = REPO / "sample_captures" / "real" / "sipp-mcptt-udp.pcap"  # SIPp through tcpdump
HTTPS = REPO / "sample_captures" / "real" / "group-migration-real-https.pcapng"  # nginx/curl HTTPS merged in
KEYLOG = REPO / "sample_captures" / "real" / "nginx-profile-https.keylog"

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark not installed: apt-get install tshark")


def _corrupt(data: bytes) -> bytes:
    """A gzip stream with garbage in the middle of its deflate data."""
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0x55 for b in data[middle:middle + 64]) + data[middle + 64:]


def _garbage_length(pcap: bytes, record: int) -> bytes:
    """A pcap whose record at byte ``record`` claims 2 GiB of captured bytes."""
    return pcap[:record + 8] + struct.pack("<I", 0x7FFF_FFFF) + pcap[record + 12:]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    here = tmp_path_factory.mktemp("damaged")
    sample = SAMPLE.read_bytes()
    made = {
        "cut.pcapng": sample[:30_000],  # inside frame 44
        "cut.pcap": SIPP.read_bytes()[:7_000],  # inside frame 8
        "cut-inside.pcapng.gz": gzip.compress(sample[:30_000]),  # a whole gzip stream of a cut capture
        "cut.pcapng.gz": gzip.compress(sample)[:8_000],  # the gzip stream cut short, inside a packet
        "corrupt.pcapng.gz": _corrupt(gzip.compress(sample)),
        "cut-https.pcapng": HTTPS.read_bytes()[:30_000],  # inside frame 45, after the HTTPS retrieval
        "garbage.pcap": _garbage_length(SIPP.read_bytes(), 10_521),  # the record of frame 13
        "empty.pcap": b"",
        "notes.pcap": b"# notes from the drive test\nnothing captured here\n",
        "header-cut.pcapng": sample[:10],
    }
    for name, data in made.items():
        (here / name).write_bytes(data)
    return {name: here / name for name in [*made, "missing.pcap"]}


def without_accounting(err: str) -> str:
    """stderr without the packet accounting line, the one thing the engines say differently."""
    return "".join(line for line in err.splitlines(keepends=True) if " packets: " not in line)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


#: Unreadable inputs → the reason both engines give in their one line.
UNREADABLE = {"empty.pcap": "empty file",
              "notes.pcap": "not a pcap or pcapng file (starts with 23 20 6e 6f)",
              "header-cut.pcapng": "pcapng section header block is truncated (10 of at least 28 bytes)",
              "missing.pcap": "cannot open: No such file or directory"}


@pytest.mark.parametrize("command", ["messages", "analyze"])
@pytest.mark.parametrize("name", UNREADABLE)
def test_unreadable_input_is_one_line_before_any_output(damaged, capsys, name, command):
    path = damaged[name]
    for engine in ("tshark", "dpkt"):
        code, out, err = run(capsys, command, str(path), "--engine", engine)
        assert (code, out) == (ExitCode.BAD_INPUT, "")
        assert err == f"mcxa: {path}: {UNREADABLE[name]}\n"


#: Damaged captures → the last frame read whole (None: wherever zlib's output ends), why reading stopped.
CUT = {"cut.pcapng": (43, "truncated-packet"), "cut.pcap": (7, "truncated-packet"),
       "cut-inside.pcapng.gz": (43, "truncated-packet"), "cut.pcapng.gz": (None, "bad-compression"),
       "garbage.pcap": (12, "bad-record")}


@pytest.mark.parametrize("name", CUT)
def test_damaged_capture_messages_are_those_of_the_dpkt_engine(damaged, capsys, name):
    path = str(damaged[name])
    tshark = run(capsys, "messages", path, "--engine", "tshark")
    dpkt = run(capsys, "messages", path, "--engine", "dpkt")
    assert tshark[:2] == dpkt[:2]  # exit code, the table
    code, out, err = tshark
    assert code == ExitCode.INCOMPLETE
    last, why = CUT[name]
    assert err.startswith(f"mcxa: {path}: incomplete capture: reading stopped after frame {last or ''}")
    assert f"[{why}]" in err
    assert without_accounting(err) == without_accounting(dpkt[2])  # where it stopped, the diagnostics
    frames = [int(line.split()[0]) for line in out.splitlines()[1:]]
    assert frames and max(frames) <= (last or max(frames))


@pytest.mark.parametrize("name", CUT)
def test_damaged_capture_report_is_that_of_the_dpkt_engine(damaged, capsys, name):
    path = str(damaged[name])
    docs = {}
    for engine in ("tshark", "dpkt"):
        code, out, _ = run(capsys, "analyze", path, "--engine", engine, "--format", "json", "-q")
        assert code == ExitCode.INCOMPLETE  # read only partly, nothing deviates
        docs[engine] = json.loads(out)["captures"][0]
    tshark, dpkt = docs["tshark"], docs["dpkt"]
    assert tshark["reading"] == dpkt["reading"]
    last, why = CUT[name]
    after = tshark["reading"]["after_frame"]
    assert not tshark["reading"]["complete"] and after == (last or after) and 0 < after < 72
    assert tshark["reading"]["code"] == why
    assert tshark["procedures"] == dpkt["procedures"]
    assert tshark["diagnostics"] == dpkt["diagnostics"]
    accounting = tshark.pop("accounting")
    assert {k: v for k, v in accounting.items() if k != "fates"} == \
        {k: v for k, v in dpkt.pop("accounting").items() if k != "fates"}
    assert tshark["stats"] == dpkt["stats"]
    assert sum(accounting["fates"].values()) == tshark["stats"]["packets"] == after


def test_damaged_capture_report_says_first_where_reading_stopped(damaged, capsys):
    code, out, _ = run(capsys, "analyze", str(damaged["cut.pcapng"]), "--engine", "tshark", "-q")
    assert code == ExitCode.INCOMPLETE
    assert "reading stopped after frame 43 at byte offset 29688" in "\n".join(out.splitlines()[:2])


def test_key_log_on_a_cut_capture_decrypts_what_came_before(damaged, capsys):
    path = str(damaged["cut-https.pcapng"])
    code, out, err = run(capsys, "messages", path, "--tls-keylog", str(KEYLOG), "--format", "jsonl")
    assert code == ExitCode.INCOMPLETE
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["method"], r["status"]) for r in rows if r["proto"] == "http"] == [("GET", None), (None, 200)]
    assert max(r["frame"] for r in rows) == 44
    said = err.splitlines()
    assert "using --engine tshark" in said[0]
    assert said[1] == (f"mcxa: {path}: incomplete capture: reading stopped after frame 44 at byte offset "
                       "29116: frame 45 (enhanced packet block) is cut short: 224 of its 1108 bytes are "
                       "missing")


def test_corrupt_gzip_each_engine_says_where_it_stopped(damaged, capsys):
    """zlib may recover a different amount before the corrupt block in each reader: each engine lists the
    messages it read and says after which frame it stopped, and the capture is incomplete."""
    path = str(damaged["corrupt.pcapng.gz"])
    for engine in ("tshark", "dpkt"):
        code, out, _ = run(capsys, "analyze", path, "--engine", engine, "--format", "json", "-q")
        assert code == ExitCode.INCOMPLETE
        doc = json.loads(out)["captures"][0]
        reading = doc["reading"]
        assert (reading["complete"], reading["code"]) == (False, "bad-compression")
        assert doc["stats"]["packets"] == reading["after_frame"]
        assert "bad-compression" in {d["code"] for d in doc["diagnostics"]}
        code, out, err = run(capsys, "messages", path, "--engine", engine, "--format", "jsonl")
        assert code == ExitCode.INCOMPLETE
        assert all(json.loads(line)["frame"] <= reading["after_frame"] for line in out.splitlines())
        assert err.startswith(f"mcxa: {path}: incomplete capture: reading stopped after frame "
                              f"{reading['after_frame']}")
        assert "corrupt" in err.splitlines()[0]


def mcxa(*args: str, stdin: Path) -> subprocess.CompletedProcess:
    with open(stdin, "rb") as fh:
        return subprocess.run([sys.executable, "-m", "analyzer", *args], stdin=fh, capture_output=True,
                              text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("name", ["cut.pcapng", "cut.pcapng.gz"])
def test_tshark_engine_reads_standard_input(damaged, capsys, name):
    """As the dpkt engine reads the file: the same messages, diagnostics and report."""
    piped = mcxa("messages", "-", "--engine", "tshark", "--format", "jsonl", stdin=damaged[name])
    code, out, err = run(capsys, "messages", str(damaged[name]), "--engine", "dpkt", "--format", "jsonl")
    assert (piped.returncode, piped.stdout) == (code, out)
    assert without_accounting(piped.stderr) == without_accounting(err.replace(str(damaged[name]), "-"))
    piped = mcxa("analyze", "-", "--engine", "tshark", "--format", "json", "-q", stdin=damaged[name])
    code, out, _ = run(capsys, "analyze", str(damaged[name]), "--engine", "dpkt", "--format", "json", "-q")
    assert piped.returncode == code == ExitCode.INCOMPLETE
    piped, dpkt = json.loads(piped.stdout)["captures"][0], json.loads(out)["captures"][0]
    assert piped.pop("file") == "-"
    del dpkt["file"], piped["accounting"]["fates"], dpkt["accounting"]["fates"]
    assert piped == dpkt


def test_tshark_engine_on_unreadable_standard_input_is_one_line(damaged):
    piped = mcxa("messages", "-", "--engine", "tshark", stdin=damaged["notes.pcap"])
    assert (piped.returncode, piped.stdout) == (ExitCode.BAD_INPUT, "")
    assert piped.stderr == f"mcxa: <stdin>: {UNREADABLE['notes.pcap']}\n"


def test_a_pipe_still_open_after_bytes_that_are_no_capture_is_one_line_and_exit_2():
    """The copy to tshark is left reading standard input when the command ends: it must hold no lock the
    interpreter's exit needs (it aborted there: exit 134, 'Fatal Python error: ... could not acquire lock
    for <_io.BufferedReader name='<stdin>'>')."""
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "messages", "-", "--engine", "tshark"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b"these are my notes, not a capture file at all" + bytes(64))
    proc.stdin.flush()
    try:
        proc.wait(timeout=60)  # (standard input still open; the few lines written fit the pipes)
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        proc.kill()
        proc.stdin.close()
    assert (proc.returncode, out) == (ExitCode.BAD_INPUT, b"")
    assert err.decode().splitlines() == ["mcxa: <stdin>: not a pcap or pcapng file (starts with 74 68 65 73)"]


def _fake_tshark(tmp_path: Path, monkeypatch, script: str) -> None:
    """A ``tshark`` first on the PATH that runs ``script`` (sh), which may call the real one."""
    fake = tmp_path / "bin" / "tshark"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")


def test_unknown_tshark_warning_is_a_diagnostic_not_a_crash(tmp_path, monkeypatch, capsys):
    real = shutil.which("tshark")
    _fake_tshark(tmp_path, monkeypatch, f'echo "tshark: a warning mcxa has never seen" >&2\nexec {real} "$@"')
    code, out, err = run(capsys, "messages", str(SIPP), "--engine", "tshark")
    assert code == ExitCode.OK
    assert out == run(capsys, "messages", str(SIPP), "--engine", "dpkt")[1]
    assert "[tshark-warning] tshark: a warning mcxa has never seen" in err


def test_unknown_tshark_failure_stops_reading_with_a_verdict(tmp_path, monkeypatch, capsys):
    _fake_tshark(tmp_path, monkeypatch, 'echo "tshark: something broke" >&2\nexit 1')
    code, out, _ = run(capsys, "analyze", str(SIPP), "--engine", "tshark", "--format", "json")
    assert code == ExitCode.INCOMPLETE
    doc = json.loads(out)["captures"][0]
    assert doc["reading"] == {"complete": False, "code": "read-error", "after_frame": 0, "offset": None,
                              "reason": "tshark: something broke"}
    code, out, err = run(capsys, "messages", str(SIPP), "--engine", "tshark")
    assert (code, out.splitlines()[1:]) == (ExitCode.INCOMPLETE, [])
    assert "[read-error] frame 1: tshark: something broke; reading stopped after frame 0" in err


def test_accounting_adds_up_and_names_what_tshark_did_not_show():
    decoded = get_engine("tshark")(str(SAMPLE), DecodeOptions())
    items = list(decoded.items)
    stats = decoded.stats
    assert UNSHOWN in FATES
    assert set(stats.accounting) <= set(FATES)
    assert sum(stats.accounting.values()) == stats.packets == 72
    shown = {getattr(i, "frame", None) for i in items}
    assert stats.accounting["signalling"] == len(shown)
    assert stats.tls_servers == {"idms.b.mcx.example": 1}
