"""``mcxa watch -i lo`` with real traffic: a sample capture's signalling is played on loopback (UDP datagrams
and real TCP connections between 127.NET.0.x addresses, one per address of the capture, see
``tests/wire_replay``) while mcxa captures it through dumpcap or tcpdump with a BPF filter on that
test's own network; the verdicts told agree with sample_captures/expected.yaml (addresses differ, the
verdicts do not depend on them), Ctrl-C ends with the report, and the tool's statistics are in it.

Needs root (capturing) and the tool; skipped with the reason otherwise. Every wait is bounded."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_watch import BOUND, drifts
from tests.wire_replay import WireReplay

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"


def _skip(tool: str) -> str | None:
    if os.geteuid() != 0:
        return "capturing on an interface needs root"
    if shutil.which(tool) is None:
        return f"{tool} is not installed (apt install {'tshark' if tool == 'dumpcap' else tool})"
    return None


def watch_live(tool: str, sample: str, tmp_path: Path, until: str | None):
    """Run ``mcxa watch -i lo`` on a network of its own, play ``sample`` into it, wait until mcxa has read
    its last payload (it is in the file --save writes) and, with ``until``, for a stdout line holding it
    (the verdict expected live); then Ctrl-C."""
    net = random.randrange(20, 250)
    report, kept = tmp_path / "report.json", tmp_path / "kept.pcapng"
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "watch", "-i", "lo", "--tool", tool,
                             "--format", "jsonl", "-o", str(report), "--save", str(kept),
                             f"net 127.{net}.0.0/16"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got: list[str] = []
    try:
        started = proc.stderr.readline()  # "mcxa watch: capturing on lo with ...", once the tool captures
        assert started.startswith("mcxa watch: capturing on lo with"), started + proc.stderr.read()
        replay = WireReplay(str(SAMPLES / sample), net, speed=4.0)
        replay.play()
        deadline = time.monotonic() + BOUND
        while replay.last not in kept.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)
        if until is not None:
            def read():
                for line in proc.stdout:
                    got.append(line)
                    if until in line:
                        return

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(BOUND)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=BOUND)
    finally:
        proc.kill()
    objects = [json.loads(line) for line in "".join(got).splitlines() + out.splitlines()]
    return proc.returncode, objects, err, json.loads(report.read_text())


@pytest.mark.parametrize("tool, sample, code", [
    ("dumpcap", "group-migration-compliant.pcapng", 0),
    ("dumpcap", "group-migration-missing-deaffiliation.pcapng", 1),
    ("tcpdump", "private-migration-compliant.pcapng", 0),
])
def test_live_capture_on_loopback_tells_the_expected_verdicts(tmp_path, tool, sample, code):
    reason = _skip(tool)
    if reason:
        pytest.skip(reason)
    compliant = code == 0
    # a compliant migration is told as soon as its last step succeeds: wait for it, then Ctrl-C; a missing
    # step only once its window passed, so that one is told at the end
    until = '"kind":"migration"' if compliant else None
    returncode, objects, err, doc = watch_live(tool, sample, tmp_path, until)
    assert returncode == code, err
    procedures = [o for o in objects if o["type"] == "procedure"]
    assert drifts(sample, procedures) == []
    migration = next(p for p in procedures if p["kind"] == "migration")
    assert migration["decided"] == ("live" if compliant else "final")
    assert drifts(sample, doc["captures"][0]["procedures"]) == []
    summary = objects[-1]
    assert summary["type"] == "summary" and summary["exit_code"] == code
    tool_part = doc["captures"][0]["capture_tool"]
    assert tool_part["tool"] == tool and tool_part["dropped"] == 0
    assert tool_part["received"] >= summary["packets"] > 0
    # what was seen is kept: analyze reads the file saved and agrees on the migration
    analyzed = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "--format", "json",
                               str(tmp_path / "kept.pcapng")], cwd=ROOT, capture_output=True, timeout=BOUND)
    assert drifts(sample, json.loads(analyzed.stdout)["captures"][0]["procedures"]) == []
