"""``mcxa`` run in-process: what it prints and the exit code, checked together.

The JSONL fields and the exit codes are a contract (``shared/contract/README.md``): other programs parse
them. The real captures' expected messages come from ``sample_captures/real/README.md``; bad inputs are
written by the tests into ``tmp_path`` and must each end in exit code 2 and one line on stderr.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import polars as pl
import pytest

from analyzer import __version__
from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from tests.captures import pcap_bytes
from tests.packets import sip_request, sip_response, udp_frame, write_pcap

REAL = Path(__file__).resolve().parents[1] / "sample_captures" / "real"
UDP, TCP6, LATE, HTTP = (REAL / f"{name}.pcap" for name in (
    "sipp-mcptt-udp", "sipp-mcptt-tcp-ipv6", "sipp-mcptt-private-lateentry-udp", "nginx-profile-http"))

#: The contract's fields and the JSON types each may take.
CONTRACT = {"frame": (int,), "time": (float,), "proto": (str,), "kind": (str,), "method": (str, type(None)),
            "status": (int, type(None)), "call_id": (str, type(None)), "cseq": (str, type(None)),
            "src": (str,), "dst": (str,), "transport": (str,), "uri": (str, type(None)),
            "content_type": (str, type(None))}

#: The main flow of sample_captures/real/README.md: (method or status, CSeq, Call-ID prefix, from the UE).
MAIN_FLOW = [("REGISTER", "1 REGISTER", "reg", True), (401, "1 REGISTER", "reg", False),
             ("REGISTER", "2 REGISTER", "reg", True), (200, "2 REGISTER", "reg", False),
             ("PUBLISH", "1 PUBLISH", "pset", True), (200, "1 PUBLISH", "pset", False),
             ("PUBLISH", "1 PUBLISH", "affil", True), (200, "1 PUBLISH", "affil", False),
             ("INVITE", "1 INVITE", "gcall", True), (100, "1 INVITE", "gcall", False),
             (200, "1 INVITE", "gcall", False), ("ACK", "1 ACK", "gcall", True),
             ("BYE", "2 BYE", "gcall", True), (200, "2 BYE", "gcall", False)]
MAIN_FRAMES = {UDP: [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17],
               TCP6: [4, 6, 8, 9, 12, 14, 17, 19, 22, 24, 26, 28, 30, 32]}
ENDS = {UDP: ("10.99.0.2:5060", "10.99.0.1:5060", "10.99.0.2", "udp"),
        TCP6: ("[fd00:99::2]:5060", "[fd00:99::1]:5060", "fd00:99::2", "tcp")}


def mcxa(capsys, *args) -> tuple[int, str, str]:
    """Run the command line; (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def accounting_only(err: str) -> bool:
    """stderr of a clean ``messages`` run: the packet accounting (``test_accounting.py``), no diagnostic."""
    return len(err.splitlines()) == 1 and " packets: " in err and "diagnostic(s)" not in err


def jsonl(capsys, capture, *args) -> list[dict]:
    code, out, err = mcxa(capsys, "messages", capture, "--format", "jsonl", *args)
    assert code == ExitCode.OK and accounting_only(err), err
    return [json.loads(line) for line in out.splitlines()]


# -- the JSONL contract -------------------------------------------------------------------------------------

@pytest.mark.parametrize("capture", [UDP, TCP6], ids=["udp-ipv4", "tcp-ipv6"])
def test_jsonl_lists_the_main_flow_with_the_contract_fields(capsys, capture):
    rows = jsonl(capsys, capture)
    ue, server, host, transport = ENDS[capture]
    assert [r["frame"] for r in rows] == MAIN_FRAMES[capture]
    for row, (what, cseq, call, from_ue) in zip(rows, MAIN_FLOW, strict=True):
        for name, types in CONTRACT.items():
            assert isinstance(row[name], types), (row["frame"], name, row[name])
        request = isinstance(what, str)
        assert (row["proto"], row["kind"]) == ("sip", "request" if request else "response")
        assert (row["method"], row["status"]) == ((what, None) if request else (None, what))
        assert row["cseq"] == cseq and row["call_id"] == f"{call}///1-mcxa@{host}"
        assert (row["src"], row["dst"]) == ((ue, server) if from_ue else (server, ue))
        assert row["transport"] == transport
        assert (row["uri"] is not None) == request
    times = [r["time"] for r in rows]
    assert times == sorted(times) and 1.7e9 < times[0] < 1.9e9
    assert rows[8]["content_type"].startswith("multipart/mixed")  # the group-call INVITE
    assert rows[10]["content_type"] == "application/sdp"  # its 200 OK


def test_jsonl_http_messages(capsys):
    rows = jsonl(capsys, HTTP)
    assert [(r["frame"], r["proto"], r["kind"], r["method"], r["status"]) for r in rows] == [
        (4, "http", "request", "GET", None), (8, "http", "response", None, 200),
        (10, "http", "request", "GET", None), (11, "http", "response", None, 304)]
    for row in rows:
        assert set(CONTRACT) <= set(row)
        assert row["call_id"] is None and row["cseq"] is None and row["transport"] == "tcp"
    assert rows[0]["uri"] == ("/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@mcx.example/"
                              "mcptt-user-profile.xml")
    assert rows[1]["content_type"] == "application/vnd.3gpp.mcptt-user-profile+xml"
    assert rows[0]["dst"] == rows[1]["src"] == "10.99.0.1:80"


def test_jsonl_to_a_file_leaves_stdout_empty(capsys, tmp_path):
    target = tmp_path / "out.jsonl"
    code, out, err = mcxa(capsys, "messages", LATE, "--format", "jsonl", "-o", target)
    assert (code, out) == (ExitCode.OK, "") and accounting_only(err)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["frame"] for r in rows] == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14]


def test_gzip_file_and_standard_input_give_the_same_rows(capsys, tmp_path, monkeypatch):
    expected = jsonl(capsys, UDP)
    packed = tmp_path / "udp.pcap.gz"
    packed.write_bytes(gzip.compress(UDP.read_bytes()))
    assert jsonl(capsys, packed) == expected
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(UDP.read_bytes())))
    assert jsonl(capsys, "-") == expected


# -- the other formats carry the same rows ------------------------------------------------------------------

ROW_KEYS = ("frame", "proto", "kind", "method", "status", "call_id", "cseq", "src", "dst", "transport",
            "uri", "content_type")


@pytest.mark.parametrize("capture", [UDP, TCP6, HTTP], ids=["udp", "tcp-ipv6", "http"])
def test_csv_and_parquet_have_the_jsonl_rows(capsys, tmp_path, capture):
    expected = [tuple(r[k] for k in ROW_KEYS) for r in jsonl(capsys, capture)]
    code, out, err = mcxa(capsys, "messages", capture, "--format", "csv")
    assert code == ExitCode.OK and accounting_only(err)
    table = pl.read_csv(io.StringIO(out), infer_schema_length=0)  # all text: compare values, not guesses
    assert set(CONTRACT) <= set(table.columns)
    as_text = [tuple(None if v is None else str(v) for v in row) for row in expected]
    assert table.select(ROW_KEYS).rows() == as_text

    target = tmp_path / "messages.parquet"
    code, out, err = mcxa(capsys, "messages", capture, "--format", "parquet", "-o", target)
    assert (code, out) == (ExitCode.OK, "") and accounting_only(err)
    frame = pl.read_parquet(target)
    assert set(CONTRACT) <= set(frame.columns)
    assert frame.schema["frame"] == pl.Int64 and frame.schema["status"] == pl.Int64
    assert frame.schema["time"] == pl.Float64
    assert frame.select(ROW_KEYS).rows() == expected


def test_parquet_needs_an_output_file(capsys):
    code, out, err = mcxa(capsys, "messages", UDP, "--format", "parquet")
    assert code == ExitCode.BAD_INPUT and out == ""
    assert err.count("\n") == 1 and "--output" in err and "Traceback" not in err


def test_table_has_a_header_and_one_line_per_message(capsys):
    code, out, err = mcxa(capsys, "messages", UDP)  # table is the default
    assert code == ExitCode.OK
    assert err == (f"mcxa: {UDP}: 17 packets: 17 signalling (14 SIP messages), 0 media, 0 other, 0 with a "
                   "diagnostic\n")
    header, *lines = out.splitlines()
    assert header.split() == ["frame", "time", "src", "dst", "proto", "summary"]
    assert [int(line.split()[0]) for line in lines] == MAIN_FRAMES[UDP]
    assert "REGISTER sip:ims.mnc001.mcc001.3gppnetwork.org" in lines[0]
    assert "401 Unauthorized (1 REGISTER)" in lines[1]
    assert all("10.99.0.1:5060" in line and "10.99.0.2:5060" in line for line in lines)


# -- filters ------------------------------------------------------------------------------------------------

def frames_of(capsys, capture, *args) -> list[int]:
    return [r["frame"] for r in jsonl(capsys, capture, *args)]


def test_method_keeps_requests_and_their_responses_by_cseq(capsys):
    assert frames_of(capsys, UDP, "--method", "INVITE") == [12, 13, 14]  # not the ACK (CSeq 1 ACK)
    assert frames_of(capsys, LATE, "--method", "invite") == [2, 3, 4, 5, 10, 11]
    assert frames_of(capsys, UDP, "--method", "PUBLISH", "--method", "BYE") == [6, 7, 9, 10, 16, 17]
    assert frames_of(capsys, UDP, "--method", "SUBSCRIBE") == []
    assert frames_of(capsys, HTTP, "--method", "GET") == [4, 10]  # HTTP responses carry no method


def test_call_id_filter(capsys):
    assert frames_of(capsys, UDP, "--call-id", "gcall///1-mcxa@10.99.0.2") == [12, 13, 14, 15, 16, 17]
    assert frames_of(capsys, TCP6, "--call-id", "reg///1-mcxa@fd00:99::2") == [4, 6, 8, 9]
    assert frames_of(capsys, UDP, "--call-id", "gcall///1-mcxa") == []  # whole Call-IDs only
    assert frames_of(capsys, UDP, "--call-id", "gcall///1-mcxa@10.99.0.2", "--method", "BYE") == [16, 17]


def test_user_filter(capsys, tmp_path):
    capture = tmp_path / "users.pcap"
    carol = (b"MESSAGE sip:dave@mcx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-9\r\n"
             b"From: <sip:carol@mcx.example>;tag=c\r\nTo: <sip:dave@mcx.example>\r\nCall-ID: m-1\r\n"
             b"CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n")
    write_pcap(capture, [udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, sip_request("INVITE", "c-1")),
                         udp_frame("10.0.0.2", "10.0.0.1", 5060, 5060, sip_response(180, "Ringing", "c-1")),
                         udp_frame("10.0.0.3", "10.0.0.2", 5060, 5060, carol)])
    assert frames_of(capsys, capture, "--user", "alice") == [1, 2]  # From of the INVITE and its response
    assert frames_of(capsys, capture, "--user", "ALICE") == [1, 2]
    assert frames_of(capsys, capture, "--user", "bob") == [1, 2]  # Request-URI, To
    assert frames_of(capsys, capture, "--user", "dave@") == [3]
    assert frames_of(capsys, capture, "--user", "eve") == []
    assert frames_of(capsys, HTTP, "--user", "alice") == [4, 10]  # the HTTP request target


# -- bad input ----------------------------------------------------------------------------------------------

GOOD = UDP.read_bytes()
BAD_FILES = {
    "empty": (b"", "empty file"),
    "text": (b"REGISTER is not a capture\nsecond line\n", "not a pcap or pcapng file"),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "zip"),
    "truncated-pcap-header": (GOOD[:10], "truncated"),
    "truncated-pcap-magic": (GOOD[:3], "truncated"),
    "pcap-version-0": (GOOD[:4] + b"\x00\x00\x00\x00" + GOOD[8:], "version"),
    "pcapng-magic-only": (b"\x0a\x0d\x0d\x0a", "pcapng"),
}


def assert_one_line_error(code: int, out: str, err: str, where: str, reason: str) -> None:
    assert code == ExitCode.BAD_INPUT
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert where in err and reason in err.lower()
    assert "Traceback" not in err


@pytest.mark.parametrize("name", BAD_FILES)
def test_unreadable_capture_is_one_line_and_exit_2(capsys, tmp_path, name):
    content, reason = BAD_FILES[name]
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(content)
    for fmt in ("jsonl", "table"):
        assert_one_line_error(*mcxa(capsys, "messages", path, "--format", fmt), str(path), reason)


def test_missing_file_is_one_line_and_exit_2(capsys, tmp_path):
    path = tmp_path / "no-such.pcap"
    assert_one_line_error(*mcxa(capsys, "messages", path), str(path), "no such file")


def test_directory_is_one_line_and_exit_2(capsys, tmp_path):
    assert_one_line_error(*mcxa(capsys, "messages", tmp_path), str(tmp_path), "directory")


def test_output_into_a_missing_directory_fails_before_decoding(capsys, tmp_path):
    target = tmp_path / "no-such-dir" / "out.jsonl"
    assert_one_line_error(*mcxa(capsys, "messages", UDP, "--format", "jsonl", "-o", target),
                          str(target.parent), "does not exist")
    assert not target.parent.exists()


def test_capture_without_packets_is_not_an_error(capsys, tmp_path):
    path = tmp_path / "header-only.pcap"
    path.write_bytes(GOOD[:24])
    nothing = f"mcxa: {path}: 0 packets: 0 signalling (no SIP or HTTP message), 0 media, 0 other, 0 with a " \
              "diagnostic\n"
    assert mcxa(capsys, "messages", path, "--format", "jsonl") == (ExitCode.OK, "", nothing)
    code, out, err = mcxa(capsys, "messages", path)
    assert (code, err) == (ExitCode.OK, nothing) and out.split() == ["frame", "time", "src", "dst", "proto",
                                                                     "summary"]


def test_damage_after_the_header_lists_what_was_read_says_where_it_stopped_and_exits_3(capsys, tmp_path):
    path = tmp_path / "cut.pcap"
    frames = [udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, sip_request("INVITE", "c-1")),
              udp_frame("10.0.0.2", "10.0.0.1", 5060, 5060, sip_response(200, "OK", "c-1"))]
    data = pcap_bytes(frames)
    path.write_bytes(data[:-25])
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl")
    assert code == ExitCode.INCOMPLETE
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [1]  # stdout stays pure JSONL
    second = 24 + 16 + len(frames[0])  # where frame 2's record starts
    assert err.splitlines()[0] == (f"mcxa: {path}: incomplete capture: reading stopped after frame 1 at byte "
                                   f"offset {second}: frame 2 is cut short: 25 of its {len(frames[1])} "
                                   "captured bytes are missing")
    assert "truncated-packet" in err
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl", "--quiet")
    assert (code, err) == (ExitCode.INCOMPLETE, "") and len(out.splitlines()) == 1


@pytest.mark.parametrize("args, names", [
    (["messages", str(UDP), "--no-such-option"], "--no-such-option"),
    (["messages", str(UDP), "--format", "xml"], "'xml'"),
    (["messages", str(UDP), "--sip-ports", "abc"], "'abc'"),
    (["messages", str(UDP), "--sip-ports", "5060,70000"], "'70000'"),
    (["messages"], "CAPTURE"),
    (["no-such-command"], "no-such-command"),
], ids=["unknown-option", "unknown-format", "sip-ports-abc", "sip-ports-70000", "no-capture",
        "unknown-command"])
def test_bad_usage_is_one_line_and_exit_2(capsys, args, names):
    code, out, err = mcxa(capsys, *args)
    assert code == ExitCode.BAD_INPUT and out == ""
    assert err.count("\n") == 1 and names in err and "Traceback" not in err


def test_sip_ports_makes_non_sip_datagrams_on_that_port_malformed_sip(capsys, tmp_path):
    path = tmp_path / "port-6070.pcap"
    write_pcap(path, [udp_frame("10.0.0.1", "10.0.0.2", 6070, 6070, b"\x00\x01\x00\x08 not SIP"),
                      udp_frame("10.0.0.1", "10.0.0.2", 6070, 6070, sip_request("OPTIONS", "o-1"))])
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl")
    assert code == ExitCode.OK and accounting_only(err) and len(out.splitlines()) == 1
    code, out, err = mcxa(capsys, "messages", path, "--format", "jsonl", "--sip-ports", "6070,7070")
    assert code == ExitCode.OK and len(out.splitlines()) == 1
    assert "malformed-sip" in err and "[malformed-sip] frame 1:" in err


# -- help and version ---------------------------------------------------------------------------------------

def test_version(capsys):
    code, out, err = mcxa(capsys, "--version")
    assert (code, err) == (ExitCode.OK, "")
    assert out == f"mcxa, version {__version__}\n"


def test_messages_help(capsys):
    code, out, err = mcxa(capsys, "messages", "--help")
    assert (code, err) == (ExitCode.OK, "")
    assert out.startswith("Usage: mcxa messages [OPTIONS] CAPTURE")
    for option in ("--format", "--output", "--method", "--call-id", "--user", "--sip-ports"):
        assert option in out
