"""The progress bar: shown on a terminal after the delay (bytes, packets/s, messages found), never on a
pipe, with --quiet, or on stdout; disabled means no callback at all."""

from __future__ import annotations

import io
import json
import sys

import pytest
from rich.console import Console

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main, progress
from analyzer.cli.progress import DecodeProgress, decode_progress
from analyzer.engines import DecodeStats
from tests.packets import sip_request, udp_frame, write_pcap


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_appears_after_the_delay_with_bytes_rate_and_messages():
    stream, now = FakeTTY(), [100.0]
    bar = DecodeProgress("/captures/drive.pcapng", 10_000_000, Console(file=stream, force_terminal=True,
                                                                         width=160), clock=lambda: now[0])
    stats = DecodeStats(packets=5_000, bytes_read=1 << 20, sip_messages=3, http_messages=1)
    now[0] = 100.5
    bar(stats)
    assert stream.getvalue() == ""  # quick captures never see a bar
    now[0], stats.packets, stats.bytes_read, stats.sip_messages = 102.0, 400_000, 4_000_000, 1_234
    bar(stats)
    shown = stream.getvalue()
    assert "drive.pcapng" in shown and "4.0 MB/10.0 MB" in shown
    assert "200,000 packets/s" in shown and "1,234 SIP + 1 HTTP messages" in shown
    bar.close()
    assert stream.getvalue().endswith("\x1b[2K")  # transient: the line is erased at the end


def test_disabled_without_a_terminal_with_quiet_or_for_small_files(big_capture, tmp_path, monkeypatch):
    with decode_progress(str(big_capture), stderr=FakeTTY()) as bar:
        assert bar is None  # stdout is captured here, not a terminal: output goes to a pipe or file
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    small = tmp_path / "small.pcap"
    write_pcap(small, [udp_frame("10.0.0.1", "10.0.0.2", 5060, 5060, sip_request("OPTIONS", "c"))])
    for path, quiet, stderr in [(big_capture, False, io.StringIO()), (big_capture, True, FakeTTY()),
                                (small, False, FakeTTY()), (tmp_path / "missing.pcap", False, FakeTTY())]:
        with decode_progress(str(path), quiet, stderr=stderr) as bar:
            assert bar is None  # DecodeOptions.progress stays None: nothing is called per chunk
        assert stderr.getvalue() == ""
    with decode_progress(str(big_capture), stderr=FakeTTY()) as bar:
        assert isinstance(bar, DecodeProgress)


@pytest.mark.parametrize("command", [["messages", "--format", "jsonl"], ["events", "--format", "jsonl"],
                                     ["sessions", "--format", "json"], ["analyze", "--format", "json"]])
def test_commands_print_no_progress_when_stderr_is_not_a_terminal(capsys, big_capture, command):
    code = main([command[0], str(big_capture), *command[1:]])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK and "\x1b" not in err and "packets/s" not in err  # (an accounting line may be)
    assert "\x1b" not in out and (out.strip() or command[0] == "events")  # OPTIONS make no MC event


@pytest.mark.parametrize("command", [["messages", "--format", "jsonl"], ["analyze", "--format", "json"]])
def test_on_a_terminal_the_bar_goes_to_stderr_and_stdout_stays_clean(capsys, monkeypatch, big_capture,
                                                                    command):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "REFRESH", 0.0)
    monkeypatch.setenv("TERM", "xterm")
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # a person watching, output to -o or after
    rows = big_capture.with_suffix(".jsonl")
    if command[0] == "messages":  # rows streamed to the terminal itself would show no bar: write a file
        command = [*command, "-o", str(rows)]
    code = main([command[0], str(big_capture), *command[1:]])
    out, _ = capsys.readouterr()
    assert code == ExitCode.OK and "\x1b" not in out and "packets/s" not in out
    if command[0] == "messages":
        assert [json.loads(line)["method"] for line in rows.read_text().splitlines()] == ["OPTIONS"] * 4
    else:
        assert json.loads(out)["captures"][0]["stats"]["sip_messages"] == 4
    assert "packets/s" in tty.getvalue() and "big.pcap" in tty.getvalue()
    tty.seek(0)
    tty.truncate()
    assert main([command[0], str(big_capture), *command[1:], "--quiet"]) == ExitCode.OK
    assert tty.getvalue() == ""
