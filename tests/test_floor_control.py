"""Issue 17 §2: MC media-plane control (TS 24.380 "MCPT" floor control, "MCPC" pre-established session call
control; TS 24.581 "MCV0".."MCV3") is decoded from RTCP APP packets on any media port, listed by
``mcxa messages`` and read as Wireshark reads it; RTP around it is still dropped unread by the prefilter."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from analyzer.base.diagnostics import Diagnostics
from analyzer.capture import open_capture
from analyzer.cli import main
from analyzer.engines import DecodeOptions
from analyzer.engines.dpkt_engine import decode
from analyzer.messages.floor import MAX_FIELDS, MAX_PACKETS, FloorMessage, decode_control
from analyzer.synth.floor import app_packet, field, floor_message, mcpc_message, rtp_packet
from analyzer.transport.demux import Demux
from analyzer.transport.records import ControlPayload
from tests.packets import udp_frame, write_pcap

UE, SRV = "10.0.0.1", "10.0.0.2"
ALICE, BOB = "sip:alice@mcx.example", "sip:bob@mcx.example"
tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def decoded(data: bytes) -> tuple[list[FloorMessage], list[str]]:
    return decode_control(ControlPayload(data, (1,), 1.0, f"{UE}:40000", f"{SRV}:40001"))


def mcxa(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


#: Old-numbered fields (0..24, as early implementations and Wireshark 4.0's value dissection have them).
OLD = [
    app_packet(b"MCPT", 0, 0x11111111, field(0, b"\x07\x00") + field(6, ALICE.encode())),
    app_packet(b"MCPT", 17, 0x22222222, field(1, u16(30))
               + field(14, (0x11111111).to_bytes(4, "big") + u16(0)) + field(6, ALICE.encode())
               + field(8, u16(7)) + field(13, u16(0x8000))),
    app_packet(b"MCPT", 3, 0x22222222, field(2, u16(4) + b"retry") + field(6, b"sip:x@y")),
    app_packet(b"MCPT", 2, 0x22222222, field(4, ALICE.encode()) + field(5, u16(1)) + field(8, u16(8))),
    app_packet(b"MCPT", 9, 0x22222222, field(3, b"\x02\x05") + field(6, BOB.encode())),
]
#: TS 24.380's numbering (from 102), as synth writes it.
NEW = [
    floor_message("floor-request", 0x11111111, priority=5, user_id=ALICE),
    floor_message("floor-granted", 0x22222222, ack=True, duration=30, ssrc=0x11111111, user_id=ALICE,
                  sequence_number=7, floor_indicator=0x8000),
    floor_message("floor-taken", 0x22222222, granted_party=ALICE, sequence_number=8),
    floor_message("floor-release", 0x11111111, user_id=ALICE),
    floor_message("floor-idle", 0x22222222, ack=True, sequence_number=9),
    mcpc_message("connect", 0x33333333, ack=True, session_identity="sip:grp@mcx.example",
                 group_id="sip:grp1@mcx.example", answer_state=1, inviting_user_id="sip:carol@mcx.example"),
]


# -- the decoder ---------------------------------------------------------------------------------------------

def test_every_floor_message_is_named_from_its_subtype_and_the_ack_bit_is_read():
    names = {0: "floor-request", 1: "floor-granted", 2: "floor-taken", 3: "floor-deny", 4: "floor-release",
             5: "floor-idle", 6: "floor-revoke", 8: "floor-queue-position-request",
             9: "floor-queue-position-info", 10: "floor-ack"}
    for subtype, name in names.items():
        for ack in (0, 0x10):
            [m], problems = decoded(app_packet(b"MCPT", subtype | ack, 9, b""))
            assert (m.proto, m.message, m.ack_requested, m.ssrc) == ("mcptt-fc", name, bool(ack), 9)
            assert problems == []
    [m], _ = decoded(app_packet(b"MCPT", 7, 9, b""))
    assert m.message == "floor-7"  # no table names it: said as a number, not guessed


def test_fields_are_read_in_both_numberings_with_their_padding():
    granted = decoded(NEW[1])[0][0]
    assert granted.fields == (("duration", 30), ("ssrc", 0x11111111), ("user_id", ALICE),
                              ("sequence_number", 7), ("floor_indicator", 0x8000))
    old = decoded(OLD[1])[0][0]
    assert old.fields == granted.fields
    assert decoded(OLD[2])[0][0].get("reject_cause") == "4 retry"
    assert decoded(OLD[4])[0][0].get("queue_info") == "position 2, priority 5"


def test_mcpc_and_mcvideo_messages():
    [connect], problems = decoded(NEW[5])
    assert (connect.proto, connect.message, connect.ack_requested, problems) == ("mcpc", "connect", True, [])
    assert dict(connect.fields) == {"session_identity": "prearranged sip:grp@mcx.example",
                                    "group_id": "sip:grp1@mcx.example", "answer_state": 1,
                                    "inviting_user_id": "sip:carol@mcx.example"}
    [video], _ = decoded(app_packet(b"MCV0", 1, 5, field(9, b"\x01\x02")))
    assert (video.proto, video.name, video.message, video.fields) == ("mcvideo-tc", "MCV0", "mcv0-1",
                                                                     (("field-9", "0x0102"),))


def test_several_packets_in_one_datagram_and_other_rtcp_skipped():
    receiver_report = bytes((0x80, 201)) + u16(1) + (5).to_bytes(4, "big")
    found, problems = decoded(NEW[0] + receiver_report + NEW[3])
    assert [m.message for m in found] == ["floor-request", "floor-release"] and problems == []


@pytest.mark.parametrize("data, problem", [
    (app_packet(b"MCPT", 0, 1, bytes((109, 40)) + b"sip:a"), "field 109 claims 40 bytes"),
    (app_packet(b"MCPT", 0, 1, field(103, b"\x01")), "field duration: 1 byte(s), 2 needed"),
    (NEW[0][:2] + u16(200) + NEW[0][4:], "RTCP packet claims 804 bytes"),
    (NEW[0] + b"\x40\xcc\x00\x00", "RTCP version 1"),
])
def test_damage_is_a_problem_not_a_crash(data, problem):
    _, problems = decoded(data)
    assert any(problem in p for p in problems), problems


def test_the_decoder_is_bounded():
    many_fields = app_packet(b"MCPT", 0, 1, field(103, u16(1)) * (MAX_FIELDS + 10))
    [m], problems = decoded(many_fields)
    assert len(m.fields) == MAX_FIELDS and any("more than" in p for p in problems)
    found, problems = decoded(NEW[4] * (MAX_PACKETS + 5))
    assert len(found) == MAX_PACKETS and any("more than" in p for p in problems)


# -- the capture pipeline ------------------------------------------------------------------------------------

def media_capture(tmp_path):
    """RTP both ways, a floor request/granted/release/idle among it, RTP whose second byte is 204 (payload
    type 76 with the marker bit) and RTCP APP of another name: only the four MC messages are decoded."""
    frames = []
    for i in range(40):
        frames.append(udp_frame(UE, SRV, 40000, 40002, rtp_packet(0xAAAA, i, i * 160)))
        if i == 5:
            frames.append(udp_frame(UE, SRV, 40001, 40003, NEW[0]))
        if i == 6:
            frames.append(udp_frame(SRV, UE, 40003, 40001, NEW[1]))
        if i == 10:
            frames.append(udp_frame(UE, SRV, 40000, 40002, bytes((0x80, 204)) + bytes(30) + b"MCPT"))
            frames.append(udp_frame(UE, SRV, 40001, 40003, app_packet(b"ABCD", 0, 1, b"")))
    frames.append(udp_frame(UE, SRV, 40001, 40003, NEW[3]))
    frames.append(udp_frame(SRV, UE, 40003, 40001, NEW[4]))
    path = tmp_path / "floor.pcap"
    write_pcap(path, frames)
    return path


def transport(path, prefilter: bool):
    diag = Diagnostics()
    demux = Demux(diag)
    with open_capture(path, diag) as reader:
        if prefilter:
            reader.prefilter = demux.prefilter
        items = list(demux.run(reader))
    return items, demux.accounting(reader.packets)


def test_the_prefilter_passes_floor_control_and_drops_the_rest_of_the_media(tmp_path):
    path = media_capture(tmp_path)
    with_filter, counted = transport(path, prefilter=True)
    without, counted_without = transport(path, prefilter=False)
    assert counted == counted_without == {"signalling": 0, "media": 46, "other": 0, "diagnostic": 0}
    assert [i.frames for i in with_filter] == [i.frames for i in without] == [(7,), (9,), (45,), (46,)]
    items = list(decode(str(path), DecodeOptions(workers=1)).items)
    assert [m.message for m in items] == ["floor-request", "floor-granted", "floor-release", "floor-idle"]


def test_mcxa_messages_lists_floor_control(tmp_path, capsys):
    path = media_capture(tmp_path)
    code, out, _ = mcxa(capsys, "messages", path)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5
    assert f"{UE}:40001" in lines[1]
    assert "MCPT  Floor Request priority=5 user_id=sip:alice@mcx.example" in lines[1]
    assert "Floor Granted (ack) duration=30 ssrc=286331153" in lines[2]
    code, out, _ = mcxa(capsys, "messages", path, "--format", "jsonl", "--method", "floor-granted")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["proto"] == "mcptt-fc" and row["kind"] == "control" and row["method"] == "floor-granted"
    assert row["frame"] == 9 and row["src"] == f"{SRV}:40003" and row["ssrc"] == 0x22222222
    assert row["ack_requested"] is True and row["fields"]["user_id"] == ALICE
    _, out, _ = mcxa(capsys, "messages", path, "--format", "jsonl", "--user", "alice")
    assert [json.loads(line)["method"] for line in out.splitlines()] == ["floor-request", "floor-granted",
                                                                         "floor-release"]
    _, out, _ = mcxa(capsys, "messages", path, "--format", "csv")
    assert out.splitlines()[0].endswith("ssrc,subtype,ack_requested,fields") and len(out.splitlines()) == 5


def test_a_damaged_floor_message_is_a_diagnostic_with_its_frame(tmp_path, capsys):
    path = tmp_path / "bad.pcap"
    damaged = app_packet(b"MCPT", 0, 1, bytes((109, 40)) + b"sip:")
    write_pcap(path, [udp_frame(UE, SRV, 40001, 40003, damaged)])
    code, out, err = mcxa(capsys, "messages", path)
    assert code == 0 and "Floor Request" in out
    assert "malformed-floor-control" in err and "field 109 claims 40 bytes" in err


# -- against Wireshark ---------------------------------------------------------------------------------------

TSHARK_FIELDS = ("rtcp.app.name", "rtcp.app.subtype", "rtcp.ssrc.identifier", "rtcp.mcptt.fld_id",
                 "rtcp.mcptt.fld_len", "rtcp.app_data.mcptt.priority", "rtcp.app_data.mcptt.user_id",
                 "rtcp.app_data.mcptt.duration", "rtcp.app_data.mcptt.rtcp",
                 "rtcp.app_data.mcptt.msg_seq_num", "rtcp.app_data.mcptt.floor_ind",
                 "rtcp.app_data.mcptt.rej_cause.floor_deny", "rtcp.mcptt.rej_phrase",
                 "rtcp.mcptt.granted_partys_id", "rtcp.app_data.mcptt.perm_to_req_floor",
                 "rtcp.app_data.mcptt.queue_pos_inf", "rtcp.app_data.mcptt.queue_pri_lev")
#: Our field name → the tshark fields holding its value (old numbering, which tshark 4.0 dissects).
VALUES = {"priority": ("rtcp.app_data.mcptt.priority",), "user_id": ("rtcp.app_data.mcptt.user_id",),
          "duration": ("rtcp.app_data.mcptt.duration",), "ssrc": ("rtcp.app_data.mcptt.rtcp",),
          "sequence_number": ("rtcp.app_data.mcptt.msg_seq_num",),
          "floor_indicator": ("rtcp.app_data.mcptt.floor_ind",),
          "reject_cause": ("rtcp.app_data.mcptt.rej_cause.floor_deny", "rtcp.mcptt.rej_phrase"),
          "granted_party": ("rtcp.mcptt.granted_partys_id",),
          "permission_to_request": ("rtcp.app_data.mcptt.perm_to_req_floor",),
          "queue_info": ("rtcp.app_data.mcptt.queue_pos_inf", "rtcp.app_data.mcptt.queue_pri_lev")}


def tshark_rows(path) -> list[dict[str, str]]:
    args = ["tshark", "-r", str(path), "-d", "udp.port==40001,rtcp", "-T", "fields", "-E", "separator=|"]
    for name in TSHARK_FIELDS:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [dict(zip(TSHARK_FIELDS, line.split("|"), strict=True)) for line in out.splitlines()]


@tshark
def test_header_and_field_layout_match_wireshark(tmp_path):
    """Name, subtype, SSRC, and each field's ID and length in both numberings; Wireshark 4.0 does not read
    MCPC fields, so of those only the header is compared."""
    path = tmp_path / "floor.pcap"
    write_pcap(path, [udp_frame(UE, SRV, 40000, 40001, p) for p in OLD + NEW])
    for data, row in zip(OLD + NEW, tshark_rows(path), strict=True):
        [m], problems = decoded(data)
        assert problems == []
        assert (m.name, str(m.subtype), f"0x{m.ssrc:08x}") == (row["rtcp.app.name"], row["rtcp.app.subtype"],
                                                         row["rtcp.ssrc.identifier"])
        if m.name == "MCPT":
            ids = row["rtcp.mcptt.fld_id"].split(",")
            assert len(ids) == len(m.fields) == len(row["rtcp.mcptt.fld_len"].split(","))


@tshark
def test_field_values_match_wireshark(tmp_path):
    path = tmp_path / "floor.pcap"
    write_pcap(path, [udp_frame(UE, SRV, 40000, 40001, p) for p in OLD])
    compared = 0
    for data, row in zip(OLD, tshark_rows(path), strict=True):
        [m], _ = decoded(data)
        for name, value in m.fields:
            theirs = " ".join(row[f] for f in VALUES[name] if row[f])
            if name == "queue_info":
                theirs = "position {}, priority {}".format(*theirs.split())
            assert str(value) == theirs, name
            compared += 1
    assert compared == 14
