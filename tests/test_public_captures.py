"""Real captures made by other tools: we find the same SIP and HTTP messages as tshark, frame by frame.

Covers the public corpus (``shared/captures/public``, see its README for what each file holds) and every
capture committed under ``sample_captures``. tshark is the reference for which frame shows which message
(reassembled TCP/IP, tunnels, WebSocket, SCTP); only the comparisons need it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture import open_capture
from analyzer.cli import main
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.records import Message

REPO = Path(__file__).resolve().parents[1]
PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "captures" / "public"
PUBLIC_FILES = sorted(p for p in PUBLIC.glob("*.pcap*")) if PUBLIC.is_dir() else []
SAMPLE_FILES = sorted((REPO / "sample_captures").glob("**/*.pcap*"))

if PUBLIC_FILES:
    _public = [pytest.param(p, id=p.name) for p in PUBLIC_FILES]
else:  # only the public corpus is skipped; the committed samples still run
    _public = [pytest.param(None, id="public", marks=pytest.mark.skip(
        reason=f"public capture corpus not found at {PUBLIC} (it lives beside the repository)"))]
CAPTURES = [*_public, *(pytest.param(p, id=p.name) for p in SAMPLE_FILES)]

#: tshark needs to be told that this file's port 6060 carries SIP (its SIP heuristics skip TCP).
TSHARK_EXTRA = {"heplify__sip_ipv4_tcp_fragmented.pcap": ("-d", "tcp.port==6060,sip"),
                # SIP in NULL-encrypted IPsec ESP (issue 17 §4): Wireshark finds it with its heuristic only
                "group-migration-esp-null.pcapng": ("-o", "esp.enable_null_encryption_decode_heuristic:TRUE")}

#: Diagnostics each capture legitimately raises (code → count); any other is a regression.
EXPECTED_DIAGNOSTICS = {
    # NOTIFY (frame 91) and its 481 (frame 93) carry a To tag ending in bytes 91 0e e7 62 01: not UTF-8.
    "heplify__erspan_sip_ipv4_udp.pcapng": {"malformed-sip": 2},
    # Crafted by zeek: a REGISTER with only an Expires header (no Via, From, To, Call-ID, CSeq).
    "zeek__sip-junk-before-request.pcap": {"malformed-sip": 1},
}

tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                            reason="tshark not installed: apt-get install tshark")


@cache
def decoded(path: Path):
    """Messages, stats and diagnostics of one full decode, shared by the tests of one capture."""
    result = decode(str(path))
    messages = [item for item in result.items if isinstance(item, Message)]
    return messages, result.stats, result.diagnostics


def by_frame(rows) -> dict[int, tuple[list[str], list[str]]]:
    """frame → (sorted methods/statuses, sorted Call-IDs) from ``(frame, [what...], [call-id...])`` rows."""
    table: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for frame, what, call_ids in rows:
        table[frame][0].extend(what)
        table[frame][1].extend(call_ids)
    return {frame: (sorted(what), sorted(ids)) for frame, (what, ids) in table.items()}


def ours(path: Path, proto: str):
    return by_frame((m.frame, [m.method or str(m.status)], [m.call_id] if m.call_id else [])
                    for m in decoded(path)[0] if m.proto == proto)


@cache
def _tshark_runs() -> dict[tuple[Path, str], Future]:
    """Start every tshark run now, a few at a time in the background; the comparisons wait for their own."""
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    commands = {
        "sip": ["-Y", "sip", "-T", "fields", "-e", "frame.number", "-e", "sip.Method",
                "-e", "sip.Status-Code", "-e", "sip.Call-ID", "-E", "occurrence=a", "-E", "aggregator=|"],
        "http": ["-Y", "http.request || http.response", "-T", "fields", "-e", "frame.number",
                 "-e", "http.request.method", "-e", "http.response.code", "-E", "occurrence=a",
                 "-E", "aggregator=|"],
    }
    runs = {}
    for path in [*PUBLIC_FILES, *SAMPLE_FILES]:
        for proto, args in commands.items():
            command = ["tshark", "-n", "-r", str(path), *TSHARK_EXTRA.get(path.name, ()), *args]
            runs[path, proto] = pool.submit(subprocess.run, command, capture_output=True, text=True,
                                            timeout=120)
    pool.shutdown(wait=False)
    return runs


def theirs(path: Path, proto: str):
    run = _tshark_runs()[path, proto].result()
    assert run.returncode == 0, run.stderr
    rows = []
    for line in run.stdout.splitlines():
        frame, *fields = line.split("\t")
        what = [v for field in fields[:2] for v in field.split("|") if v]
        call_ids = [v for v in fields[2].split("|") if v] if proto == "sip" else []
        rows.append((int(frame), what, call_ids))
    return by_frame(rows)


def differences(expected: dict, got: dict) -> dict:
    return {frame: {"tshark": expected.get(frame), "mcxa": got.get(frame)}
            for frame in sorted(expected.keys() | got.keys()) if expected.get(frame) != got.get(frame)}


@tshark
@pytest.mark.parametrize("path", CAPTURES)
def test_sip_messages_agree_with_tshark(path):
    expected = theirs(path, "sip")
    assert differences(expected, ours(path, "sip")) == {}


@tshark
@pytest.mark.parametrize("path", CAPTURES)
def test_http_messages_agree_with_tshark(path):
    expected = theirs(path, "http")
    assert differences(expected, ours(path, "http")) == {}


@pytest.mark.parametrize("path", CAPTURES)
def test_every_packet_is_read_and_only_known_diagnostics_raised(path):
    with open_capture(path, Diagnostics()) as reader:
        packets = sum(1 for _ in reader)
    messages, stats, diagnostics = decoded(path)
    assert stats.packets == packets > 0
    assert stats.sip_messages + stats.http_messages == len(messages)
    assert diagnostics.summary() == EXPECTED_DIAGNOSTICS.get(path.name, {}), diagnostics.records


@pytest.mark.parametrize("path", CAPTURES)
def test_jsonl_is_one_contract_object_per_message(capsys, path):
    """Real-world bytes (IPv6, non-UTF-8 headers, WebSocket, SCTP) still give valid contract rows."""
    assert main(["messages", str(path), "--format", "jsonl", "--quiet"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    floor = [r for r in rows if r["proto"] in ("mcptt-fc", "mcpc", "mcvideo-tc")]  # media-plane control
    rows = [r for r in rows if r not in floor]
    messages = decoded(path)[0]
    assert [(r["frame"], r["proto"], r["call_id"]) for r in rows] == [
        (m.frame, m.proto, m.call_id) for m in messages]
    for row in floor:
        assert row["kind"] == "control" and row["method"] and row["status"] is None and row["call_id"] is None
    for row in rows:
        assert row["transport"] in ("udp", "tcp", "tls", "sctp")
        assert row["kind"] in ("request", "response")
        assert (row["method"] is None) != (row["status"] is None)
        for end in (row["src"], row["dst"]):
            host, _, port = end.rpartition(":")
            assert port.isdigit() and (":" not in host or (host[0], host[-1]) == ("[", "]"))
    assert err == ""


def test_expected_diagnostics_name_real_files():
    """A renamed capture must not silently drop its expectations (only checked when the corpus is here)."""
    if not PUBLIC_FILES:
        pytest.skip(f"public capture corpus not found at {PUBLIC}")
    names = {p.name for p in [*PUBLIC_FILES, *SAMPLE_FILES]}
    assert set(EXPECTED_DIAGNOSTICS) | set(TSHARK_EXTRA) <= names


def test_every_capture_holds_messages():
    """The corpus is not vacuous: every capture yields at least one SIP or HTTP message."""
    empty = [p.name for p in [*PUBLIC_FILES, *SAMPLE_FILES] if not decoded(p)[0]]
    # only TLS: its HTTP messages appear with its key log (tests/test_tshark_engine.py)
    assert empty == ["nginx-profile-https.pcap"]
