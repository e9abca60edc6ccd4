"""RTP a UE received, counted per stream (issue 17 §2): the second walk that feeds the migration's
``rtp_received`` and ``rtp_interruption``, checked against what tshark counts, and on a migration whose
old call ends before the new one begins."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from analyzer.transport.rtp import RtpCount, received
from tests.captures import START, pcap_bytes
from tests.packets import ether, ip, ipv4_fragments, udp, udp_frame

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
FLOOR = SAMPLES / "group-migration-floor-control.pcapng"
UE = "10.1.0.5"
RTP = b"\x80\x08" + bytes(170)
RTCP = b"\x81\xc9" + bytes(30)  # a receiver report (payload-type byte 201): not RTP


def sll(l3: bytes) -> bytes:
    """A Linux cooked (SLL) frame: what ``tcpdump -i any`` writes."""
    return bytes((0, 0, 0, 1, 0, 6)) + bytes(8) + b"\x08\x00" + l3  # to us, ARPHRD_ETHER, 6-byte address


def test_rtp_to_the_ports_asked_for_is_counted_with_its_first_and_last_frame(tmp_path):
    frames = [udp_frame("10.9.0.1", UE, 50000, 40000, RTP),          # 1: counted
              udp_frame("10.9.0.1", UE, 50001, 40001, RTCP),         # 2: RTCP on the RTCP port: not RTP
              udp_frame("10.9.0.1", UE, 50000, 40000, RTCP),         # 3: RTCP on the RTP port: not RTP
              udp_frame("10.9.0.1", UE, 50000, 40002, RTP),          # 4: a port not asked for
              udp_frame("10.9.0.1", "10.1.0.6", 50000, 40000, RTP),  # 5: another address
              *(ether(f) for f in ipv4_fragments("10.9.0.1", UE, 17, udp(50000, 40000, RTP * 20), 1480)),
              udp_frame("10.9.0.1", UE, 50000, 40000, b"SIP/2.0 200 OK\r\n"),  # 9: not version 2
              udp_frame("fd00::9", "fd00::5", 50000, 40000, RTP),    # 10: IPv6, counted
              udp_frame("10.9.0.1", UE, 50000, 40000, RTP)]          # 11: counted
    assert len(frames) == 11  # (6-8: the fragments of one datagram: not followed)
    path = tmp_path / "rtp.pcap"
    path.write_bytes(pcap_bytes(frames))
    got = received(str(path), [f"{UE}:40000", f"{UE}:40001", "[fd00::5]:40000", "not an endpoint"])
    assert got == {f"{UE}:40000": RtpCount(2, 1, START, 11, START + 0.10),
                   "[fd00::5]:40000": RtpCount(1, 10, START + 0.09, 10, START + 0.09)}
    sll_path = tmp_path / "sll.pcap"  # the link registry's way, when the fixed offsets do not apply
    sll_path.write_bytes(pcap_bytes([sll(ip("10.9.0.1", UE, 17, udp(50000, 40000, RTP)))] * 3, linktype=113))
    assert received(str(sll_path), [f"{UE}:40000"])[f"{UE}:40000"].packets == 3


def migration(capsys, capture, *args: str) -> dict:
    assert main(["analyze", str(capture), "--format", "json", *args]) == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    return next(p for p in doc["captures"][0]["procedures"] if p["rule"] == "group-call-migration")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_each_calls_rtp_is_what_tshark_counts_to_the_ue(capsys):
    """The floor-control sample: the UE's downlink RTP in the call it leaves and the one it enters. Its
    scenario never leaves the old call, whose RTP goes on after the new one began: a negative gap."""
    kpis = migration(capsys, FLOOR)["kpis"]
    streams = kpis["rtp_received"]
    assert [(r["call"], r["to"], r["packets"], r["frames"]) for r in streams] == [
        ("old", "10.1.0.5:46254", 1423, [21, 2477]), ("new", "10.2.0.7:47382", 871, [652, 2448])]
    for r in streams:
        host, _, port = r["to"].rpartition(":")
        out = subprocess.run(["tshark", "-r", str(FLOOR), "-Y", f"ip.dst == {host} && udp.dstport == {port}",
                              "-T", "fields", "-e", "frame.number"], capture_output=True, text=True,
                             check=True).stdout.split()
        assert (len(out), int(out[0]), int(out[-1])) == (r["packets"], *r["frames"])
    assert (kpis["rtp_interruption"], kpis["rtp_interruption_frames"]) == (-17.94, [2477, 652])
    assert kpis["media_interruption"] == 3.6  # (floor control: the talk burst heard last, then the first)


def test_the_rtp_gap_when_the_old_call_ends_before_the_new_one_begins(tmp_path, capsys):
    scenario = tmp_path / "left.yaml"
    scenario.write_text((SAMPLES / "group-migration-floor-control.yaml").read_text().replace(
        "  - {at: 10.0, ue: ue1, do: deaffiliate",
        "  - {at: 9.5, ue: ue1, do: leave, call: call-a}\n  - {at: 10.0, ue: ue1, do: deaffiliate"))
    capture = tmp_path / "left.pcapng"
    assert main(["synth", str(scenario), "-o", str(capture), "-q"]) == ExitCode.OK
    kpis = migration(capsys, capture)["kpis"]
    old, new = kpis["rtp_received"]
    assert old["call"] == "old" and new["call"] == "new"
    assert 2.9 < kpis["rtp_interruption"] < 3.2  # last RTP before the BYE at 9.5 s, first after 12.5 s
    assert kpis["rtp_interruption_frames"] == [old["frames"][1], new["frames"][0]]
    # read from standard input, the capture cannot be walked again: no RTP figures, the rest stands
    with open(capture, "rb") as fh:
        out = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "-", "--format", "json"],
                             stdin=fh, capture_output=True, text=True).stdout
    piped = next(p for p in json.loads(out)["captures"][0]["procedures"]
                 if p["rule"] == "group-call-migration")
    assert "rtp_received" not in piped["kpis"] and "media_interruption" in piped["kpis"]
