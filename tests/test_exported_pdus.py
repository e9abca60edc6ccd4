"""Wireshark "Export PDUs" files (LINKTYPE_WIRESHARK_UPPER_PDU, 252; issue 17 §4): every exported SIP/HTTP
PDU is a message, from and to the addresses and ports of its tags, numbered by its frame in the exported
file; both engines agree; broken tag lists are diagnostics with their frame."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from analyzer.capture.upper_pdu import exported_pdu
from analyzer.engines import DecodeOptions, get_engine
from analyzer.messages.records import Message
from tests.captures import pcap_bytes
from tests.packets import SIP_REGISTER

SAMPLES = Path(__file__).resolve().parents[1] / "sample_captures"
EXPORTED = SAMPLES / "derived" / "sipp-mcptt-tcp-ipv6-exported-pdus.pcapng"
SOURCE = SAMPLES / "real" / "sipp-mcptt-tcp-ipv6.pcap"
tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                            reason="tshark not installed: apt-get install tshark")
HTTP_GET = b"GET /profile HTTP/1.1\r\nHost: cms.a.mcx.example\r\n\r\n"


def messages(path, engine: str = "dpkt"):
    decoded = get_engine(engine)(str(path), DecodeOptions(workers=1))
    return [m for m in decoded.items if isinstance(m, Message)], decoded


def sip_of(path):
    """What a user compares: each SIP message's method or status, Call-ID, ends and transport."""
    found, _ = messages(path)
    return [(m.method or m.status, m.call_id, m.src, m.dst, m.transport) for m in found if m.proto == "sip"]


def tag(kind: int, value: bytes) -> bytes:
    return struct.pack(">HH", kind, len(value)) + value


def record(pdu: bytes, proto: bytes = b"sip", src: bytes = bytes((10, 0, 0, 1)),
           dst: bytes = bytes((10, 0, 0, 2)), port_type: int | None = 3) -> bytes:
    tags = tag(12, proto + b"\x00" * (4 - len(proto) % 4))
    if src:
        tags += tag(20 if len(src) == 4 else 22, src) + tag(21 if len(dst) == 4 else 23, dst)
    if port_type is not None:
        tags += tag(24, struct.pack(">I", port_type))
    for kind, number in ((25, 5060), (26, 5080), (30, 7)):  # ports, original frame
        tags += tag(kind, struct.pack(">I", number))
    return tags + tag(0, b"") + pdu


def test_the_committed_export_lists_its_sources_sip_messages_frame_by_frame():
    found, decoded = messages(EXPORTED)
    assert [m.frame for m in found] == list(range(1, 15))
    assert sip_of(EXPORTED) == sip_of(SOURCE) and len(found) == 14
    assert {m.transport for m in found} == {"tcp"} and found[0].src.startswith("[fd00:99::")
    assert decoded.stats.accounting == {"signalling": 14, "media": 0, "other": 0, "diagnostic": 0}
    assert decoded.diagnostics.total == 0


@tshark
@pytest.mark.parametrize("name", ["group-migration-compliant.pcapng", "real/sipp-mcptt-udp.pcap",
                                  "real/sipp-mcptt-tcp-ipv6.pcap", "group-migration-tcp-ipv6.pcapng"])
def test_what_tshark_exports_from_a_sample_reads_as_its_sip(tmp_path, name):
    out = tmp_path / "exported.pcapng"
    subprocess.run(["tshark", "-r", str(SAMPLES / name), "-U", "OSI layer 7", "-w", str(out)],
                   capture_output=True, check=True)
    assert sip_of(out) == sip_of(SAMPLES / name) != []
    ours, _ = messages(out)
    theirs, _ = messages(out, "tshark")
    assert theirs == ours


def test_tags_give_addresses_ports_transport_and_http_is_a_message_too(tmp_path):
    v6 = bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002")
    records = [record(SIP_REGISTER), record(HTTP_GET, b"http", port_type=None),
               record(SIP_REGISTER, src=v6[0], dst=v6[1], port_type=2), record(b"\x01\x02", b"dns"),
               record(SIP_REGISTER, src=b"")]
    path = tmp_path / "pdus.pcap"
    path.write_bytes(pcap_bytes(records, linktype=252))
    found, decoded = messages(path)
    assert [(m.frame, m.method, m.src, m.dst, m.transport) for m in found] == [
        (1, "REGISTER", "10.0.0.1:5060", "10.0.0.2:5080", "udp"),
        (2, "GET", "10.0.0.1:5060", "10.0.0.2:5080", "tcp"),
        (3, "REGISTER", "[2001:db8::1]:5060", "[2001:db8::2]:5080", "tcp"),
        (5, "REGISTER", "0.0.0.0:5060", "0.0.0.0:5080", "udp")]
    assert decoded.stats.accounting == {"signalling": 4, "media": 0, "other": 1, "diagnostic": 0}
    assert exported_pdu(records[0]).original_frame == 7


@pytest.mark.parametrize("broken", [b"\x00\x0c\x00", b"\x00\x0c\x00\x08sip\x00", tag(99, b"") * 300],
                         ids=["tag-header-cut", "tag-value-cut", "no-end-of-tags"])
def test_a_broken_tag_list_is_a_diagnostic_with_its_frame(tmp_path, broken):
    path = tmp_path / "broken.pcap"
    path.write_bytes(pcap_bytes([broken, record(SIP_REGISTER)], linktype=252))
    found, decoded = messages(path)
    assert [m.frame for m in found] == [2]
    [d] = decoded.diagnostics.records
    assert d.code == "malformed-packet" and d.frames == (1,) and "exported PDU" in d.message
