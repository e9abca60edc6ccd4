"""Issue 14, capture and transport classes: hostile captures end in an exit code and diagnostics, never in
an internal error, and every transport cap, set tiny with ``--limit``, says it was hit and how to raise it.

The captures live in ``tests/hostile/captures/``, written by ``make_captures.py`` beside them (small sizes
here; ``bench/bench_hostile.py`` writes the issue's full sizes and measures time and memory).
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import pytest

from analyzer.cli import main
from tests.captures import FIN, Flow, pcap_bytes
from tests.packets import ether, ip, ipv4_fragments, sip_request, udp

HOSTILE = Path(__file__).resolve().parent / "hostile" / "captures"
_spec = importlib.util.spec_from_file_location("make_captures", HOSTILE / "make_captures.py")
make_captures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_captures)

LAND, STAMPS, SCTP, STREAMS, FRAGMENTS, SEGMENTS = (HOSTILE / name for name in (
    "land.pcap", "timestamps.pcapng", "sctp-chunks.pcap", "tcp-streams.pcap", "ip-fragments.pcap",
    "tcp-segments.pcap"))


def mcxa(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_the_committed_captures_are_what_the_generator_writes(tmp_path):
    for path in make_captures.write(tmp_path):
        assert path.read_bytes() == (HOSTILE / path.name).read_bytes(), path.name


@pytest.mark.parametrize("path", [LAND, STAMPS, SCTP, STREAMS, FRAGMENTS, SEGMENTS], ids=lambda p: p.name)
def test_analyze_survives_every_hostile_capture(capsys, path):
    code, out, err = mcxa(capsys, "analyze", path, "--format", "json")
    assert code == 0, err
    assert "internal error" not in err
    assert json.loads(out)["captures"][0]["diagnostics"]


# -- the root causes -----------------------------------------------------------------------------------------

def test_a_tcp_segment_to_itself_is_a_diagnostic_not_an_internal_error(capsys):
    code, out, err = mcxa(capsys, "messages", LAND, "--format", "jsonl")
    assert code == 0 and "internal error" not in err
    assert [(r["frame"], r["transport"]) for r in rows(out)] == [(7, "udp")]  # the message after them
    assert "malformed-packet ×6" in err
    assert "frame 1: TCP segment from 10.0.0.1:5060 to itself (source and destination are the same); not " \
           "followed" in err
    assert "0 signalling" not in err and "6 with a diagnostic" in err


def test_timestamps_that_are_not_dates_take_the_previous_packets_time(capsys):
    code, out, err = mcxa(capsys, "messages", STAMPS, "--format", "jsonl")
    assert code == 0 and "internal error" not in err
    times = [r["time"] for r in rows(out)]
    assert times == [0.0, 0.0, 0.0, 1_700_000_000.0, 1_700_000_000.0, 1_700_000_000.0, 1_700_000_000.0,
                     1_700_000_001.0]
    assert "bad-timestamp ×6" in err
    assert "[bad-timestamp] frame 1: timestamp 2.305843009213694e+19 is not a date in the years 1-9999; " \
           "the previous packet's time (0.0) is used" in err
    code, out, err = mcxa(capsys, "messages", STAMPS)  # the table formats every time
    assert code == 0 and "00:00:00.000" in out and "22:13:21.000" in out


def test_a_pcap_record_time_is_always_a_date(capsys, tmp_path):
    """Seconds are unsigned 32-bit: the largest is in 2106, no diagnostic."""
    record = ether(ip("10.0.0.1", "10.0.0.2", 17, udp(5060, 5060, sip_request("MESSAGE", "late"))))
    data = bytearray(pcap_bytes([record]))
    struct.pack_into("<II", data, 24, 0xFFFF_FFFF, 999_999)
    path = tmp_path / "late.pcap"
    path.write_bytes(data)
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl")
    assert code == 0 and rows(out)[0]["time"] == 4_294_967_295.999999 and "diagnostic(s)" not in err


def test_sctp_packets_of_tiny_chunks_are_read_in_linear_memory(capsys):
    code, out, err = mcxa(capsys, "messages", SCTP, "--format", "jsonl")
    assert code == 0
    assert [(r["frame"], r["transport"], r["method"]) for r in rows(out)] == [(5, "sctp", "MESSAGE")]
    assert "frame 1: SCTP chunk at byte 12 has length 3, shorter than its own header" in err
    assert "frame 2: SCTP chunk at byte 12 has length 3, shorter than its own header" in err
    assert "a fragmented SCTP message was dropped unfinished: the capture ended before its last chunk" in err


def test_half_open_tcp_streams_are_evicted_least_recently_active_first(capsys):
    code, _, err = mcxa(capsys, "messages", STREAMS, "--limit", "tcp_streams=100")
    assert code == 0
    assert "table-full ×200" in err and "tcp-unfinished ×300" in err
    assert "[table-full] 10.1.0.0:1024 ↔ 10.0.0.2:5060: TCP connection no longer followed, the least " \
           "recently active when 100 connections were followed at once (--limit tcp_streams=100 raises the " \
           "cap)" in err
    code, _, err = mcxa(capsys, "messages", STREAMS)
    assert "table-full" not in err  # the default holds them all


def test_bytes_held_by_all_tcp_connections_are_capped(capsys):
    code, _, err = mcxa(capsys, "messages", STREAMS, "--limit", "tcp_buffered_bytes=20000")
    assert code == 0
    assert "the least recently active when the TCP connections followed held over 20000 bytes together " \
           "(--limit tcp_buffered_bytes=20000 raises the cap)" in err


def test_fragments_of_datagrams_that_never_complete(capsys):
    code, _, err = mcxa(capsys, "messages", FRAGMENTS)
    assert code == 0 and "IP datagram never completed (299 fragment(s) seen)" in err
    code, _, err = mcxa(capsys, "messages", FRAGMENTS, "--limit", "ip_fragment_pieces=100")
    assert "fragment-incomplete ×3" in err
    assert "IP datagram never completed (100 fragment(s) seen); dropped at 100 fragments (--limit " \
           "ip_fragment_pieces=100 raises the cap)" in err
    assert "299 with a diagnostic" in err  # every fragment accounted for


def test_one_byte_segments_with_retransmissions(capsys):
    code, out, err = mcxa(capsys, "messages", SEGMENTS, "--format", "jsonl")
    assert code == 0
    (message,) = rows(out)
    assert message["method"] == "MESSAGE"
    assert len(message["frames"]) == 732  # every segment's frame
    assert "diagnostic(s): tcp-overlap-conflict ×482" in err  # every conflicting retransmission, no other
    for limit in ("tcp_history_segments=100", "tcp_history_bytes=100"):  # 250 segments back: beyond
        code, out, err = mcxa(capsys, "messages", SEGMENTS, "--format", "jsonl", "--limit", limit)
        assert len(rows(out)) == 1 and "diagnostic(s)" not in err


# -- each remaining transport cap, set tiny ------------------------------------------------------------------

@pytest.mark.parametrize(("limit", "said"), [
    ("sctp_chunks=100", "frame 3: SCTP packet has more than 100 chunks; the rest were skipped (--limit "
                        "sctp_chunks=100 raises the cap)"),
    ("sctp_partial_chunks=50", "a fragmented SCTP message was dropped unfinished: over 50 chunks (--limit "
                               "sctp_partial_chunks=50 raises the cap)"),
    ("sctp_partial_bytes=100", "a fragmented SCTP message was dropped unfinished: over 100 bytes (--limit "
                               "sctp_partial_bytes=100 raises the cap)"),
])
def test_sctp_caps(capsys, limit, said):
    code, out, err = mcxa(capsys, "messages", SCTP, "--format", "jsonl", "--limit", limit)
    assert code == 0 and said in err and len(rows(out)) == 1


def sctp_packet(sport: int, stream: int, flags: int, data: bytes) -> bytes:
    chunk = struct.pack(">BBHIHHI", 0, flags, 16 + len(data), 1, stream, 0, 3) + data
    chunk += b"\0" * (-len(chunk) % 4)
    return ether(ip("10.0.0.1", "10.0.0.2", 132, struct.pack(">HHII", sport, 5060, 1, 0) + chunk))


def test_sctp_table_caps(capsys, tmp_path):
    path = tmp_path / "sctp.pcap"
    sip = sip_request("MESSAGE", "sctp-1")
    path.write_bytes(pcap_bytes([sctp_packet(5000 + i, i, 2, b"begin") for i in range(3)]
                                + [sctp_packet(6000, 0, 3, sip)]))
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl", "--limit", "sctp_partial_messages=1",
                          "--limit", "sctp_associations=2")
    assert code == 0 and len(rows(out)) == 1
    assert "a fragmented SCTP message was dropped unfinished: more than 1 were being joined at once " \
           "(--limit sctp_partial_messages=1 raises the cap)" in err
    assert "more than 2 SCTP associations at once: the oldest is counted as it stands and forgotten " \
           "(--limit sctp_associations=2 raises the cap)" in err


def test_ip_fragments_cap(capsys, tmp_path):
    path = tmp_path / "frags.pcap"
    firsts = [ether(ipv4_fragments("10.0.0.1", "10.0.0.2", 17, b"x" * 64, 32, ident=i)[0]) for i in range(3)]
    path.write_bytes(pcap_bytes(firsts))
    code, _, err = mcxa(capsys, "messages", path, "--limit", "ip_fragments=1")
    assert code == 0 and "fragment-incomplete ×3" in err
    assert "IP datagram never completed (1 fragment(s) seen); pushed out: more than 1 datagrams were being " \
           "reassembled at once (--limit ip_fragments=1 raises the cap)" in err


def test_tcp_pending_caps(capsys, tmp_path):
    flow = Flow(("10.0.0.1", 40000), ("10.0.0.2", 5060))
    frames = flow.handshake()
    message = sip_request("MESSAGE", "held", body=b"x" * 400)
    pieces = flow.pieces("a", message, list(range(100, len(message), 100)))
    path = tmp_path / "held.pcap"
    path.write_bytes(pcap_bytes(frames + pieces[:1] + pieces[2:] + pieces[1:2]))  # the second one comes last
    for limit in ("tcp_pending_segments=2", "tcp_pending_bytes=150"):
        code, out, err = mcxa(capsys, "messages", path, "--limit", limit)
        assert code == 0 and f"given up on, as more was held out of order than the cap (--limit {limit} " \
                             "raises it)" in err
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl")
    assert len(rows(out)) == 1 and "diagnostic(s)" not in err  # the defaults wait for the hole to fill


def test_ignored_flows_cap(capsys, tmp_path):
    frames = []
    for port in range(40000, 40004):  # not SIP/HTTP/TLS: followed from the SYN, then ignored
        flow = Flow(("10.0.0.1", port), ("10.0.0.2", 5060))
        frames += [*flow.handshake(), flow.frame("a", b"\x00binary"), flow.frame("a", flags=FIN)]
    path = tmp_path / "ignored.pcap"
    path.write_bytes(pcap_bytes(frames))
    code, _, err = mcxa(capsys, "messages", path, "--limit", "ignored_flows=2")
    assert code == 0
    assert "[table-full] 2 TCP flows not followed (not SIP/HTTP/TLS, or ended) were forgotten, the oldest " \
           "first, to remember at most 2 (--limit ignored_flows=2 raises the cap)" in err
    code, _, err = mcxa(capsys, "messages", path)
    assert "table-full" not in err


@pytest.mark.parametrize(("limit", "said"), [
    ("line_bytes=20", "156 bytes skipped before a SIP/HTTP start line (the first line was longer than 20 "
                      "bytes: --limit line_bytes=20 raises the cap)"),
    ("header_bytes=50", "header section longer than 50 bytes (--limit header_bytes=50 raises the cap)"),
    ("message_bytes=1000", "announces a 15000000-byte body, over the 1000-byte cap (--limit "
                           "message_bytes=15000000 would take it)"),
])
def test_framing_caps(capsys, limit, said):
    code, _, err = mcxa(capsys, "messages", STREAMS, "--limit", limit)
    assert code == 0 and said in err




def _shown(name: str, value: int) -> str:
    """A default as the README writes it: 256 MiB for a byte count, 50 000 for a count."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if name.endswith("_bytes") and value % (1 << shift) == 0:
            return f"{value >> shift} {unit}"
    return f"{value:,}".replace(",", " ")


def test_the_readme_lists_every_cap_with_its_default():
    """The Limits table of the README is the user's list of the caps: one row per field, same default."""
    from analyzer.base.limits import DEFAULT, Limits

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index('<a id="limits"></a>'):readme.index("**Packet accounting.**")]
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip() for line in table.splitlines()
            if line.startswith("| `")}
    assert set(rows) == set(Limits.names())
    assert rows == {name: _shown(name, getattr(DEFAULT, name)) for name in Limits.names()}
