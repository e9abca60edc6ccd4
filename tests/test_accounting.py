"""Issue 13: the dpkt engine accounts for every packet, and damage is loud.

Every packet ends in exactly one fate (``analyzer.engines.FATES``): the counts add up to the packets read on
every capture, in one process and with the transport stage forked, and the prefilter decides each packet as
the general path would. ``mcxa messages`` prints the accounting, the TLS flows it could not read and where
reading stopped (exit 3), on stderr; GRE version 1 over PPP and NFLOG give the messages tshark gives.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.base.exitcodes import ExitCode
from analyzer.capture import open_capture, source
from analyzer.cli import main
from analyzer.engines import FATES, DecodeOptions, DecodeStats, ReadStop, dpkt_engine, parallel
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.records import Message
from analyzer.report.accounting import accounting_dict, accounting_text, summary_lines, tls_text
from analyzer.transport.demux import Demux
from tests.captures import SYN, Flow, gre, pcap_bytes, udp_ip
from tests.encapsulations import PPP_CCP_DATA, PPP_LCP, enhanced_gre, nflog, ppp
from tests.packets import ether, ip, ipv4_fragments, sip_request, sip_response, udp, udp_frame
from tests.test_tls import built_hello, records, sni_extension

REPO = Path(__file__).resolve().parents[1]
PUBLIC = REPO.parent / "shared" / "captures" / "public"
CAPTURES = (sorted((REPO / "sample_captures").glob("**/*.pcap*")) + sorted(PUBLIC.glob("*.pcap*"))
            + sorted((REPO / "tests" / "hostile" / "captures").glob("*.pcap*")))  # issue 14's, small
HTTPS = REPO / "sample_captures" / "real" / "nginx-profile-https.pcap"
SAMPLE = REPO / "sample_captures" / "group-migration-compliant.pcapng"
UE, SRV = "10.0.0.1", "10.0.0.2"
INVITE = sip_request("INVITE", "call-1", body=b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n" * 12)
OK = sip_response(200, "OK", "call-1")

tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
public = pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"public capture corpus not found at {PUBLIC}")


def mcxa(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def full_decode(path, workers: int = 1, parse_in_worker: bool = False):
    result = decode(str(path), DecodeOptions(workers=workers, parse_in_worker=parse_in_worker))
    return list(result.items), result.stats, result.diagnostics


def transport_accounting(path, prefilter: bool) -> dict[str, int]:
    """The transport stage's accounting, with or without the reader's prefilter."""
    diag = Diagnostics()
    demux = Demux(diag)
    with open_capture(path, diag) as reader:
        if prefilter:
            reader.prefilter = demux.prefilter
        for _ in demux.run(reader):
            pass
    return demux.accounting(reader.packets)


# -- every packet, exactly once ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fates_add_up_to_the_packets_in_one_process_and_forked(path, monkeypatch):
    items, stats, _ = full_decode(path)
    assert set(stats.accounting) == {"signalling", "media", "other", "diagnostic"} <= set(FATES)
    assert sum(stats.accounting.values()) == stats.packets > 0
    assert all(n >= 0 for n in stats.accounting.values())
    if any(isinstance(i, Message) for i in items):
        assert stats.accounting["signalling"] > 0
    if parallel.available():
        monkeypatch.setattr(dpkt_engine, "PARALLEL_MIN_BYTES", 0)
        for parse_in_worker in (False, True):  # the worker parses the messages, or the parent does
            forked = full_decode(path, workers=2, parse_in_worker=parse_in_worker)
            assert forked[1] == stats and forked[0] == items


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_the_prefilter_decides_each_packet_as_the_general_path_would(path):
    assert transport_accounting(path, prefilter=True) == transport_accounting(path, prefilter=False)


@public
def test_sip_over_tcp_with_its_handshake_and_acks_is_signalling():
    """heplify's capture: 16 frames of SIP over TCP (handshake and ACKs included), 68 of RTP/RTCP."""
    _, stats, _ = full_decode(PUBLIC / "heplify__sip_ipv4_tcp.pcap")
    assert stats.accounting == {"signalling": 16, "media": 68, "other": 0, "diagnostic": 0}


@tshark
@public
@pytest.mark.parametrize("name", ["sngrep__aaa.pcap", "sipnab__b2bua-asterisk.pcapng",
                                  "sipnab__register-invite-reinvite-bye.pcap", "heplify__sip_ipv4_tcp.pcap"])
def test_media_is_what_tshark_finds_as_rtp_or_rtcp(name):
    """sngrep's capture holds 10 RTP/RTCP packets among DNS and NetBIOS datagrams that start alike."""
    path = PUBLIC / name
    command = ["tshark", "-n", "-r", str(path), "-o", "rtp.heuristic_rtp:TRUE",
               "-o", "rtcp.heuristic_rtcp:TRUE", "-Y", "rtp || rtcp", "-T", "fields", "-e", "frame.number"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert full_decode(path)[1].accounting["media"] == len(run.stdout.split())


def write(tmp_path, frames, linktype: int = 1, name: str = "crafted.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(pcap_bytes(frames, linktype))
    return path


def test_each_kind_of_packet_gets_its_fate(tmp_path):
    sip, web, other = (Flow((UE, 40000 + i), (SRV, port)) for i, port in enumerate((5060, 22, 443)))
    bad_start = udp_frame(UE, SRV, 5060, 5060, b"SIP/2.0 999 \xff\xfe\r\n\r\n")  # a start line, unparsable
    pptp = ("203.0.113.1", "198.51.100.7")
    frames = {
        "signalling": [udp_frame(UE, SRV, 5060, 5060, INVITE), udp_frame(UE, SRV, 5060, 5060, b"\r\n\r\n"),
                       *sip.handshake(), sip.frame("a", OK), sip.frame("b", flags=0x10),
                       sip.frame("a", flags=0x11), sip.frame("b", flags=0x11),
                       sip.frame("a", flags=0x10)],  # the last ACK, after both FINs
        "media": [udp_frame(UE, SRV, 40000, 50000, b"\x80\x08" + bytes(170)) for _ in range(5)],
        "other": [ether(b"\x00" * 28, 0x0806),  # ARP
                  udp_frame(UE, SRV, 40000, 53, b"\x12\x34\x01\x00" + bytes(20)),  # DNS
                  udp_frame(SRV, UE, 53, 40000, b"\x9a\xbc\x81\x80" + bytes(20)),  # DNS, ID 0x9abc: not RTP
                  *web.handshake(), web.frame("a", b"SSH-2.0-OpenSSH_9.6\r\n"), web.frame("b", b"\x00" * 40),
                  other.frame("a", b"\x17\x03\x03\x00\x10" + bytes(16)),  # TLS seen from its middle
                  ether(ip(UE, SRV, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01")),  # ICMP echo
                  ether(ip(*pptp, 47, enhanced_gre(ppp(b"\x01\x01\x00\x04", PPP_LCP))))],
        "diagnostic": [udp_frame(UE, SRV, 5060, 5060, b"\x01\x02\x03\x04 not SIP"), bad_start,
                       ether(ip(UE, SRV, 17, b"\x13\xc4"))[:40],  # UDP header cut
                       ether(ip(*pptp, 47, enhanced_gre(ppp(b"\x90" + bytes(40), PPP_CCP_DATA))))],
    }
    path = write(tmp_path, [f for kind in frames.values() for f in kind])
    items, stats, diagnostics = full_decode(path)
    assert [(m.frame, m.method or m.status) for m in items] == [(1, "INVITE"), (6, 200)]
    assert stats.accounting == {fate: len(kind) for fate, kind in frames.items()}
    assert diagnostics.summary() == {"malformed-sip": 2, "malformed-packet": 1,
                                     "unsupported-encapsulation": 1}
    assert transport_accounting(path, prefilter=False) == transport_accounting(path, prefilter=True)


def test_packets_of_a_message_the_capture_cut_off_count_with_its_diagnostic(tmp_path):
    """The frames holding only the start of a message the end of the capture cut off are named by a
    tcp-unfinished diagnostic and counted with it; a frame that also completed a message stays signalling."""
    flow = Flow((UE, 40000), (SRV, 5060))
    cut = sip_request("MESSAGE", "call-2", body=b"x" * 300)[:-100]
    frames = [*flow.handshake(), flow.frame("a", INVITE + cut[:40]),  # completes the INVITE, starts the cut
              *flow.pieces("a", cut[40:], [100])]
    items, stats, diagnostics = full_decode(write(tmp_path, frames))
    assert [m.method for m in items] == ["INVITE"]
    assert diagnostics.summary() == {"tcp-unfinished": 1}
    assert stats.accounting == {"signalling": 4, "media": 0, "other": 0, "diagnostic": 2}


def test_fragments_count_when_their_datagram_completes_or_expires_even_nested_in_a_tunnel(tmp_path):
    inner = ipv4_fragments("10.9.0.1", "10.9.0.2", 17, udp(5060, 5060, INVITE), 400, ident=5)
    outer = [ether(f) for piece in inner
             for f in ipv4_fragments("192.0.2.1", "192.0.2.2", 47, gre(piece), 256, ident=len(piece))]
    plain = [ether(f) for f in ipv4_fragments(UE, SRV, 17, udp(5060, 5060, INVITE), 304, ident=9)]
    assert len(inner) == 2 and len(outer) == 4 and len(plain) == 3
    _, stats, _ = full_decode(write(tmp_path, outer + plain))
    assert (stats.sip_messages, stats.accounting) == (2, {"signalling": 7, "media": 0, "other": 0,
                                                          "diagnostic": 0})
    _, stats, diagnostics = full_decode(write(tmp_path, outer[:-1] + plain[1:], name="lost.pcap"))
    assert stats.sip_messages == 0 and diagnostics.summary() == {"fragment-incomplete": 3}
    assert stats.accounting == {"signalling": 0, "media": 0, "other": 0, "diagnostic": 5}


# -- what is said about it ---------------------------------------------------------------------------------

def stats_of(**fields) -> DecodeStats:
    return DecodeStats(**fields)


def test_accounting_line_and_json():
    stats = stats_of(packets=72, sip_messages=40, http_messages=2,
                     accounting={"signalling": 42, "media": 25, "other": 5, "diagnostic": 0})
    assert accounting_text(stats) == ("72 packets: 42 signalling (40 SIP, 2 HTTP messages), 25 media, "
                                      "5 other, 0 with a diagnostic")
    assert accounting_dict(stats) == {
        "total": 72, "fates": {"signalling": 42, "media": 25, "other": 5, "diagnostic": 0},
        "messages": {"sip": 40, "http": 2}, "tls_flows": 0, "tls_servers": {}, "tls_keylog": False}
    # the text reads the same from the JSON form a report holds
    assert accounting_text(accounting_dict(stats)) == accounting_text(stats)
    one = stats_of(packets=1, sip_messages=1, accounting={"signalling": 1, "media": 0, "other": 0,
                                                          "diagnostic": 0})
    assert accounting_text(one) == ("1 packet: 1 signalling (1 SIP message), 0 media, 0 other, "
                                    "0 with a diagnostic")
    assert accounting_text(stats_of(packets=3)) == "3 packets read"  # not decoded to its end


def test_tls_line_names_the_servers_and_the_key_log():
    stats = stats_of(packets=40, tls_hellos=3, tls_servers={"cms.b.mcx.example": 2, "10.0.0.9:443": 1},
                     accounting={"signalling": 40, "media": 0, "other": 0, "diagnostic": 0})
    assert tls_text(stats) == ("3 TLS flows (cms.b.mcx.example ×2, 10.0.0.9:443): encrypted, their SIP/HTTP "
                               "cannot be read — give --tls-keylog FILE")
    stats.tls_keylog = True
    assert tls_text(stats) == ("3 TLS flows (cms.b.mcx.example ×2, 10.0.0.9:443): the key log "
                                            "does not decrypt them")
    assert "1 TLS flow (x): encrypted, its SIP/HTTP" in tls_text(stats_of(tls_hellos=1, tls_servers={"x": 1}))
    assert tls_text(stats_of(packets=4)) is None
    assert accounting_text(stats).startswith(
        "40 packets: 40 signalling (no SIP or HTTP message; 3 TLS flows)")


def test_stopped_comes_first_and_in_the_json():
    stop = ReadStop("truncated-packet", 12, 5000, "frame 13 is cut short: 40 of its 120 captured bytes are "
                                                  "missing")
    stats = stats_of(packets=12, stopped=stop, accounting={"signalling": 12, "media": 0, "other": 0,
                                                           "diagnostic": 0})
    assert summary_lines(stats)[0] == ("incomplete capture: reading stopped after frame 12 at byte offset "
                                       "5000: frame 13 is cut short: 40 of its 120 captured bytes are "
                                       "missing")
    assert accounting_dict(stats)["stopped"] == {"code": "truncated-packet", "after_frame": 12,
                                                 "offset": 5000, "reason": stop.reason}


# -- mcxa messages ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "jsonl"])
def test_https_only_capture_says_how_many_tls_flows_and_points_to_the_key_log(capsys, fmt):
    code, out, err = mcxa(capsys, "messages", HTTPS, "--format", fmt)
    assert code == ExitCode.OK
    assert out == ("" if fmt == "jsonl" else out.splitlines()[0] + "\n")  # no message: an empty table
    assert err == (f"mcxa: {HTTPS}: 17 packets: 17 signalling (no SIP or HTTP message; 1 TLS flow), 0 media, "
                   f"0 other, 0 with a diagnostic\n"
                   f"mcxa: {HTTPS}: 1 TLS flow (cms.mcx.example): encrypted, its SIP/HTTP cannot be read — "
                   f"give --tls-keylog FILE\n")


def test_half_a_gzip_capture_says_where_reading_stopped_first_and_exits_3(capsys, tmp_path):
    packed = gzip.compress(SAMPLE.read_bytes())
    half = tmp_path / "half.pcapng.gz"
    half.write_bytes(packed[:len(packed) // 2])
    code, out, err = mcxa(capsys, "messages", half, "--format", "jsonl")
    assert code == ExitCode.INCOMPLETE
    rows = [json.loads(line) for line in out.splitlines()]  # stdout stays machine-readable
    first, accounting, *rest = err.splitlines()
    stopped = decode(str(half))
    list(stopped.items)
    stop = stopped.stats.stopped
    assert rows and all(r["frame"] <= stop.frame for r in rows)
    assert first == (f"mcxa: {half}: incomplete capture: reading stopped after frame {stop.frame} at byte "
                     f"offset {stop.offset}: gzip stream is cut short (it ends before its end-of-stream "
                     "marker) (the offset counts decompressed bytes)")
    assert accounting.startswith(f"mcxa: {half}: {stop.frame} packets: ")
    assert any("bad-compression" in line for line in rest)
    assert mcxa(capsys, "messages", half, "--format", "jsonl", "-q")[::2] == (ExitCode.INCOMPLETE, "")


def test_a_capture_cut_like_head_c_exits_3_with_the_messages_before_the_cut(capsys, tmp_path):
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(SAMPLE.read_bytes()[:6000])
    code, out, err = mcxa(capsys, "messages", cut)
    assert code == ExitCode.INCOMPLETE and len(out.splitlines()) > 1
    assert err.splitlines()[0].startswith(f"mcxa: {cut}: incomplete capture: reading stopped after frame ")
    assert "is cut short" in err.splitlines()[0]


def test_an_io_error_while_reading_is_an_incomplete_capture_not_an_output_error(capsys, monkeypatch):
    real_open = open
    size = SAMPLE.stat().st_size

    class Dying:
        def __init__(self, f):
            self._f = f

        def read(self, n=-1):
            if self._f.tell() >= size // 2:
                raise OSError(5, "Input/output error")
            return self._f.read(min(n, size // 2 - self._f.tell()) if n >= 0 else size // 2)

        def __getattr__(self, name):
            return getattr(self._f, name)

    monkeypatch.setattr(source, "open", lambda *a, **k: Dying(real_open(*a, **k)), raising=False)
    code, out, err = mcxa(capsys, "messages", SAMPLE, "--format", "jsonl")
    assert code == ExitCode.INCOMPLETE and out
    pattern = (rf"mcxa: {re.escape(str(SAMPLE))}: incomplete capture: reading stopped after frame (\d+) at "
               r"byte offset (\d+): read failed: Input/output error")
    stopped = re.fullmatch(pattern, err.splitlines()[0])
    assert stopped and len(out.splitlines()) < 40 and 0 < int(stopped[2]) <= size // 2  # the frame cut starts
    assert "mcxa: output:" not in err and "read-error" in err


# -- against tshark: GRE version 1 over PPP, NFLOG ---------------------------------------------------------

def tshark_sip(path: Path) -> list[tuple[int, str]]:
    command = ["tshark", "-n", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number",
               "-e", "sip.Method", "-e", "sip.Status-Code"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [(int(frame), method or code) for frame, method, code in
            (line.split("\t") for line in run.stdout.splitlines())]


def ours(capsys, path: Path) -> list[tuple[int, str]]:
    code, out, _ = mcxa(capsys, "messages", path, "--format", "jsonl")
    assert code == ExitCode.OK
    return [(r["frame"], r["method"] or str(r["status"])) for r in map(json.loads, out.splitlines())]


@tshark
def test_sip_in_pptp_gre_over_ppp_as_tshark_shows_it(capsys, tmp_path):
    tunnel = ("203.0.113.1", "198.51.100.7")
    inner = udp_ip("192.168.0.10", "10.0.0.2", 5060, 5060, sip_response(100, "Trying", "call-1"))
    frames = [ether(ip(*tunnel[::-1], 47, enhanced_gre(ppp(udp_ip("10.0.0.2", "192.168.0.10", 5060, 5060,
                                                                  INVITE)))))]
    frames += [ether(ip(*tunnel, 47, enhanced_gre(ppp(inner), seq=2, ack=1))),
               ether(ip(*tunnel, 47, enhanced_gre(ppp(inner, address_control=False, compress=True), seq=3))),
               ether(ip(*tunnel, 47, enhanced_gre(b"", seq=None, ack=4))),
               ether(ip(*tunnel, 47, enhanced_gre(ppp(b"\x01\x01\x00\x04", PPP_LCP), seq=4)))]
    path = write(tmp_path, frames, name="pptp.pcap")
    assert ours(capsys, path) == tshark_sip(path) == [(1, "INVITE"), (2, "100"), (3, "100")]


@tshark
def test_nflog_as_tshark_shows_it(capsys, tmp_path):
    invite6 = ip("2001:db8::1", "2001:db8::2", 17, udp(5060, 5060, INVITE))
    frames = [nflog(udp_ip(UE, SRV, 5060, 5060, INVITE)), nflog(invite6),
              nflog(udp_ip(SRV, UE, 5060, 5060, OK)),
              nflog(udp_ip(UE, SRV, 5060, 5060, INVITE), family=7),  # no hardware protocol: not IP
              bytes((2, 0, 0, 7)) + b"\x08\x00\x01\x00" + b"\x08\x00\x03\x00"]  # no payload logged
    path = write(tmp_path, frames, linktype=239, name="nflog.pcap")
    assert ours(capsys, path) == tshark_sip(path) == [(1, "INVITE"), (2, "INVITE"), (3, "200")]


def test_tls_hello_without_a_server_name_is_counted_by_its_address(tmp_path):
    flow, named = Flow((UE, 40000), (SRV, 443)), Flow((UE, 40001), (SRV, 443))
    frames = [flow.frame("a", flags=SYN), flow.frame("a", records(built_hello(None))), *named.handshake(),
              named.frame("a", records(built_hello(sni_extension(b"idms.mcx.example"))))]
    _, stats, _ = full_decode(write(tmp_path, frames))
    assert stats.tls_servers == {"10.0.0.2:443": 1, "idms.mcx.example": 1}
    assert stats.accounting["signalling"] == len(frames)
