"""``mcxa watch`` on captures still being written: a file growing record by record (cut anywhere), a ring
of files (pcap and pcapng) and a pipe; each procedure's verdict is told once, as soon as it is decided,
and agrees with sample_captures/expected.yaml; the end gives the full report and analyze's exit codes.
The capture tool's statistics are read for the packets it dropped."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture import live as capture_tool
from analyzer.capture import open_capture
from analyzer.capture.follow import Control, FollowedFiles, ring_members
from analyzer.cli import main as cli_main
from analyzer.engines import DecodeOptions
from analyzer.meaning.analysis import MeaningOptions
from analyzer.rules import load_rules
from analyzer.run import replay as rp
from analyzer.run import watch as watching

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
RULES = load_rules(None)
EXPECT = rp.Expectations.load(str(SAMPLES / "expected.yaml"), RULES)
#: Bounds on waiting for a child process (never reached when all is well; a hang fails instead).
BOUND = 120


def records(sample: str) -> tuple[bytes, list[bytes]]:
    """The pcap header and records of a sample capture (read with mcxa's own reader)."""
    with open_capture(SAMPLES / sample, Diagnostics()) as reader:
        packets = list(reader)
    header = b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 262144, packets[0][2])
    out = []
    for _, t, _, data, orig_len in packets:
        micros = round(t * 1_000_000)
        out.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(data), orig_len) + data)
    return header, out


def pcapng_blocks(sample: str) -> tuple[bytes, list[bytes]]:
    """The section and interface blocks of a (little-endian, one-section) pcapng sample, and its others."""
    data = (SAMPLES / sample).read_bytes()
    head, rest, pos = [], [], 0
    while pos < len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        (head if kind in (0x0A0D0D0A, 1) else rest).append(data[pos:pos + length])
        pos += length
    return b"".join(head), rest


def drifts(sample: str, procedures: list[dict]) -> list[str]:
    rules = EXPECT.rules
    expected = [p for p in EXPECT.captures[sample]["procedures"] if p["rule"] in rules]
    return rp.drifts(expected, [rp.summary(p) for p in procedures if p["rule"] in rules])


class FakeClock:
    """Wall time for ticks: a second per look, so every chance to judge is taken."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def watch_file(path: Path, members=None, write=None):
    """Watch ``path`` while ``write`` (a function) writes it in a thread; stop once it is done."""
    told = []
    watcher = watching.Watcher(str(path), RULES, None, MeaningOptions(), told.append, clock=FakeClock())
    control = Control(idle=watcher.idle)

    def writing():
        write()
        control.stop()

    writer = threading.Thread(target=writing, daemon=True)
    writer.start()
    analysis, _ = watching.watch(str(path), lambda p: FollowedFiles(str(path), control, None, members),
                                 watcher, DecodeOptions())
    writer.join(BOUND)
    return told, analysis


def slowly(path: Path, data: bytes, piece: int = 333) -> None:
    """Append ``data`` to ``path`` in pieces that cut records anywhere, flushed one by one."""
    with open(path, "ab") as f:
        for i in range(0, len(data), piece):
            f.write(data[i:i + piece])
            f.flush()
            time.sleep(0.002)


@pytest.mark.parametrize("sample", ["group-migration-compliant.pcapng",
                                    "group-migration-missing-deaffiliation.pcapng",
                                    "group-migration-affiliation-retried-late.pcapng"])
def test_a_file_being_written_is_judged_as_it_grows(tmp_path, sample):
    header, recs = records(sample)
    path = tmp_path / "growing.pcap"
    told, analysis = watch_file(path, write=lambda: slowly(path, header + b"".join(recs)))
    assert analysis.stats.packets == len(recs) and analysis.stats.stopped is None
    keys = [(t.procedure["rule"], t.procedure["anchor"]["frames"][0]) for t in told]
    assert len(keys) == len(set(keys)), "a procedure told twice"
    assert drifts(sample, [t.procedure for t in told]) == []
    migration = next(t for t in told if t.procedure["rule"] == "group-call-migration")
    if migration.procedure["verdict"] == "compliant":  # its last step succeeded: told while watching
        assert migration.how == "live"
    else:  # a missing step is certain only once its window has passed: the capture ends before that
        assert migration.how == "final"


def test_in_a_live_capture_a_missing_step_is_told_once_its_window_has_passed_without_traffic(tmp_path):
    """Packets stamped near the wall clock make the capture live: while nothing comes, its time goes on
    with the wall clock, and the deviation (deaffiliation missing) is decided before the capture ends."""
    sample = "group-migration-missing-deaffiliation.pcapng"
    header, recs = records(sample)
    path = tmp_path / "live.pcap"
    last = struct.unpack_from("<I", recs[-1])[0]
    wall = [float(last)]  # the packets were stamped just now
    told: list = []
    watcher = watching.Watcher(str(path), RULES, None, MeaningOptions(), told.append, clock=FakeClock(),
                               wall=lambda: wall[0])
    control = Control(idle=watcher.idle)

    def write():
        slowly(path, header + b"".join(recs))
        wall[0] = last + 120.0  # two quiet minutes: every window (30 s + 32 s) has passed
        deadline = time.monotonic() + BOUND
        while not any(t.procedure["kind"] == "migration" for t in told) and time.monotonic() < deadline:
            time.sleep(0.05)
        control.stop()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    watching.watch(str(path), lambda p: FollowedFiles(str(path), control), watcher, DecodeOptions(),
                   lambda: wall[0])  # stopped "now", by the same clock
    writer.join(BOUND)
    migration = next(t for t in told if t.procedure["kind"] == "migration")
    assert (migration.how, migration.procedure["verdict"]) == ("live", "deviation")
    assert migration.at >= last + 120.0 - watching.LAG
    assert drifts(sample, [t.procedure for t in told]) == []
    assert not any(t.how == "revised" for t in told)


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_ring_of_files_is_followed_file_after_file(tmp_path, kind):
    sample = "private-migration-compliant.pcapng"
    header, recs = records(sample) if kind == "pcap" else pcapng_blocks(sample)
    thirds = [recs[:len(recs) // 3], recs[len(recs) // 3:2 * len(recs) // 3], recs[2 * len(recs) // 3:]]
    stale = tmp_path / "old.txt"
    stale.write_text("not in the ring")

    def write():  # as tcpdump -C -W 3 names them: ring.pcap0, ring.pcap1, ring.pcap2
        for n, part in enumerate(thirds):
            slowly(tmp_path / f"ring.{kind}{n}", header + b"".join(part), piece=1000)

    told, analysis = watch_file(tmp_path / f"ring.{kind}", ring_members(str(tmp_path / f"ring.{kind}")),
                                write)
    assert analysis.stats.stopped is None
    assert analysis.stats.packets == len(recs)
    assert drifts(sample, [t.procedure for t in told]) == []


def test_a_ring_file_of_another_link_type_stops_reading_with_the_reason(tmp_path):
    header, recs = records("group-migration-compliant.pcapng")
    other = header[:20] + struct.pack("<I", 113)  # Linux cooked capture: its records cannot follow

    def write():
        slowly(tmp_path / "ring.pcap0", header + b"".join(recs[:10]), piece=1000)
        slowly(tmp_path / "ring.pcap1", other + b"".join(recs[10:]), piece=1000)

    _, analysis = watch_file(tmp_path / "ring.pcap", ring_members(str(tmp_path / "ring.pcap")), write)
    stopped = analysis.stats.stopped
    assert (stopped.code, stopped.frame) == ("read-error", 10)
    assert stopped.reason == (f"ring file {tmp_path / 'ring.pcap1'}: its pcap header (byte order, time "
                              "unit or link type) differs from the first file's, so its records cannot "
                              "follow those")


def test_a_record_cut_at_the_end_when_stopped_is_said(tmp_path):
    header, recs = records("group-migration-compliant.pcapng")
    path = tmp_path / "cut.pcap"
    data = header + b"".join(recs)
    _, analysis = watch_file(path, write=lambda: slowly(path, data[:-10]))
    assert analysis.stats.stopped is not None and analysis.stats.stopped.code == "truncated-packet"
    assert analysis.stats.packets == len(recs) - 1


def mcxa(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "analyzer", "watch", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def lines_until(proc: subprocess.Popen, wanted: str, got: list[str]) -> None:
    """Read stdout lines into ``got`` until one holds ``wanted`` (or the output ends)."""
    for line in proc.stdout:
        got.append(line)
        if wanted in line:
            return


def test_command_follows_a_file_and_ends_at_ctrl_c_with_the_report(tmp_path):
    sample = "group-migration-compliant.pcapng"
    header, recs = records(sample)
    path, report = tmp_path / "live.pcap", tmp_path / "report.json"
    proc = mcxa(path, "--format", "jsonl", "-o", report, "--save", tmp_path / "kept.pcap")
    try:
        slowly(path, header + b"".join(recs))
        got: list[str] = []
        reader = threading.Thread(target=lines_until, args=(proc, '"rule":"group-call-migration"', got))
        reader.start()
        reader.join(BOUND)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=BOUND)
    finally:
        proc.kill()
    objects = [json.loads(line) for line in "".join(got).splitlines() + out.splitlines()]
    assert proc.returncode == 0, err
    procedures = [o for o in objects if o["type"] == "procedure"]
    assert drifts(sample, procedures) == []
    assert next(p for p in procedures if p["rule"] == "group-call-migration")["decided"] == "live"
    assert objects[-1]["type"] == "summary" and objects[-1]["verdicts"] == {"compliant": 5}
    doc = json.loads(report.read_text())
    assert drifts(sample, doc["captures"][0]["procedures"]) == []
    assert (tmp_path / "kept.pcap").read_bytes() == header + b"".join(recs)


def test_command_reads_a_pipe_to_its_end():
    sample = "group-migration-missing-deaffiliation.pcapng"
    done = subprocess.run([sys.executable, "-m", "analyzer", "watch", "-"], cwd=ROOT, capture_output=True,
                          input=(SAMPLES / sample).read_bytes(), timeout=BOUND)
    out = done.stdout.decode()
    assert done.returncode == 1, done.stderr  # a deviation, as analyze says
    verdict = next(line for line in out.splitlines() if "group-call-migration" in line)
    assert "VERDICT DEVIATION" in verdict and "deaffiliation: missing" in verdict
    assert "    error step-missing:" in out
    assert out.splitlines()[-1] == "== 67 packets, 1 UE sessions, 5 procedures: 4 compliant, 1 deviation"


def test_drops_the_capture_recorded_are_said():
    """A pcapng interface statistics block (as dumpcap writes at its end) with 4 + 3 packets dropped."""
    sample = SAMPLES / "group-migration-compliant.pcapng"
    options = struct.pack("<HHQHHQHH", 5, 8, 4, 7, 8, 3, 0, 0)
    body = struct.pack("<III", 0, 0, 0) + options
    isb = struct.pack("<II", 5, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    done = subprocess.run([sys.executable, "-m", "analyzer", "watch", "-", "--format", "jsonl"], cwd=ROOT,
                          capture_output=True, input=sample.read_bytes() + isb, timeout=BOUND)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["capture_tool"]["dropped"] == 7
    assert b"mcxa: the capture tool dropped 7 packet(s) (pcapng interface statistics): steps may be missing" \
        in done.stderr


def test_bad_use_is_one_line(capsys):
    from analyzer.cli import main

    assert main(["watch"]) == 2
    assert "give one FILE (or - for standard input) to follow, or -i IFACE" in capsys.readouterr().err
    assert main(["watch", "/no/such/dir/cap.pcap"]) == 2
    assert capsys.readouterr().err == "mcxa: /no/such/dir: no such directory\n"


DUMPCAP_END = ["Capturing on 'Loopback: lo'", "File: -", "Packets captured: 70",
               "Packets received/dropped on interface 'Loopback: lo': 75/3 "
               "(pcap:0/dumpcap:2/flushed:0/ps_ifdrop:1) (96.0%)"]
TCPDUMP_END = ["tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
               "70 packets captured", "75 packets received by filter", "5 packets dropped by kernel"]


def test_the_tools_statistics_give_the_packets_dropped():
    dumpcap = capture_tool.dropped("dumpcap", DUMPCAP_END)
    assert (dumpcap["received"], dumpcap["dropped"]) == (75, 6)  # its own, the kernel's and the interface's
    tcpdump = capture_tool.dropped("tcpdump", TCPDUMP_END)
    assert (tcpdump["received"], tcpdump["dropped"]) == (75, 5)
    assert capture_tool.dropped("dumpcap", ["Capturing on 'lo'"]) is None


def test_the_capture_tool_commands_write_to_a_pipe():
    assert capture_tool.command("dumpcap", "wlan0", "port 5060") == [
        "dumpcap", "-q", "-i", "wlan0", "-w", "-", "-n", "-f", "port 5060"]
    assert capture_tool.command("tcpdump", "wlan0", None) == [
        "tcpdump", "-i", "wlan0", "-U", "-w", "-", "-s", "0"]


@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_a_capture_tool_that_fails_is_one_line_in_its_own_words(tool):
    if capture_tool.shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    if os.geteuid() != 0:
        pytest.skip("without root the tool fails for want of permission first")
    done = subprocess.run([sys.executable, "-m", "analyzer", "watch", "-i", "nosuch0", "--tool", tool],
                          cwd=ROOT, capture_output=True, text=True, timeout=BOUND)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"mcxa: {tool} exited with status 1: ") and "nosuch0" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_follower_waiting_for_a_file_never_written_ends_at_stop(tmp_path):
    control = Control()
    threading.Timer(0.3, control.stop).start()
    follower = FollowedFiles(str(tmp_path / "never.pcap"), control)
    assert follower.read(100) == b""


def test_the_status_line_is_cleared_around_each_verdict():
    import io

    from analyzer.cli.watching import StatusLine, Teller

    err, out = io.StringIO(), io.StringIO()
    status = StatusLine(err, "wlan0")
    status.show(watching.Status(packets=12345, ues=3, open=2, decided=7, latest=None))
    assert err.getvalue() == "\r\x1b[Kmcxa watch wlan0: 12,345 packets, 3 UEs, 2 open, 7 decided"
    procedure = {"rule": "registration", "ue": "sip:a@x", "session": "ue1", "group": None, "peer": None,
                 "from_system": "x", "verdict": "compliant", "end": 0.0, "steps": [], "deviations": []}
    Teller(out, "text", status)(watching.Told("live", procedure, 0.0))
    assert out.getvalue().endswith("VERDICT COMPLIANT  registration sip:a@x x\n")
    line = "mcxa watch wlan0: 12,345 packets, 3 UEs, 2 open, 7 decided"
    assert err.getvalue() == f"\r\x1b[K{line}\r\x1b[K\r\x1b[K{line}"  # drawn, cleared, drawn again


def test_floor_control_kpis_while_watching_are_those_of_analyze(tmp_path):
    sample = "group-migration-floor-control.pcapng"
    data = (SAMPLES / sample).read_bytes()
    path = tmp_path / "floor.pcapng"
    told, _ = watch_file(path, write=lambda: slowly(path, data, piece=4096))
    out = tmp_path / "report.json"
    assert cli_main(["analyze", str(SAMPLES / sample), "--format", "json", "-o", str(out)]) == 0
    analysed = json.loads(out.read_text())["captures"][0]["procedures"]

    def media(procedures):
        return [(p["rule"], p["kpis"].get("access_times"), p["kpis"].get("media_interruption"))
                for p in procedures if p["rule"] == "group-call-migration"]

    watched = media([t.procedure for t in told])
    assert watched == media(analysed) and watched[0][1] and watched[0][2] is not None


def test_a_refused_or_late_step_is_settled_only_once_no_later_packet_can_change_it():
    """A refused request accepted when asked again up to one window late is told with the step (and
    times the steps after it): a live verdict must not be told before that window has passed too; a
    success after its due time gives way to an earlier request refused after it, until Timer F."""
    from dataclasses import replace

    from analyzer.meaning.events import Event
    from analyzer.rules.results import StepResult

    [affiliation] = [s for r in RULES if r.id == "affiliation" for s in r.steps if s.id == "affiliate"]
    refused = Event("affiliation", 100.0, (1,), "from-ue", "10.0.0.1:5060", "10.0.0.2:5060", "failure",
                    status=403, evidence="publish")
    failed = StepResult(affiliation, "failed", refused, reference=90.0, due=120.0)
    grace = watching.GRACE
    assert not watching.settled(failed, {}, 120.0 + grace)
    assert not watching.settled(failed, {}, 150.0 + grace - 0.1)
    assert watching.settled(failed, {}, 150.0 + grace)
    accepted = Event("affiliation", 140.0, (2,), "from-ue", "10.0.0.1:5060", "10.0.0.2:5060", "success",
                     evidence="publish")
    retried = StepResult(affiliation, "failed", refused, reference=90.0, due=120.0, retry=accepted)
    assert watching.settled(retried, {}, 120.0 + grace)
    # a success after its due time: a request sent before it and refused after it would be the step
    late = StepResult(affiliation, "late", accepted, reference=90.0, due=120.0)
    assert not watching.settled(late, {}, 140.0 + grace - 0.1) and watching.settled(late, {}, 140.0 + grace)
    on_time = StepResult(affiliation, "matched", replace(accepted, time=110.0), reference=90.0, due=120.0)
    assert watching.settled(on_time, {}, 110.0)


@pytest.mark.parametrize(("sample", "again"), [("group-migration-noisy.pcapng", []),
                                               ("group-migration-missing-deaffiliation.pcapng", ["ue1"])])
def test_a_tick_judges_again_only_the_sessions_still_open(monkeypatch, sample, again):
    """A session whose procedures were all told, its events unchanged since, is not judged again: on a long
    watch the cost of a tick follows what is still open (here the capture's time stands still: a missing
    deaffiliation is certain only once its window has passed). What is told is what analyze judges."""
    from analyzer.engines import get_engine

    path = str(SAMPLES / sample)
    told: list = []
    watcher = watching.Watcher(path, RULES, None, MeaningOptions(), told.append, clock=lambda: 0.0)
    watcher.decoded = get_engine("dpkt")(path, DecodeOptions(workers=1))
    for item in watcher.decoded.items:
        watcher.feed(item)  # (never due: the clock stands still)
    judged: list[list[str]] = []
    real = watching.judge

    def counting(*args, sessions, **kwargs):
        judged.append([s.id for _, s in sessions])
        return real(*args, sessions=sessions, **kwargs)

    monkeypatch.setattr(watching, "judge", counting)
    watcher.tick()
    first = list(told)
    watcher.tick()
    assert judged == [["ue1"], again] and told == first
    monkeypatch.setattr(watching, "judge", real)
    _, instances = watcher.finish()
    assert sorted(t.procedure["verdict"] for t in told) == sorted(inst.verdict for inst in instances)
    assert not any(t.how == "revised" for t in told)
