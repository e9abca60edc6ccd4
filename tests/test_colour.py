"""Colour and progress as a person at a terminal sees them (a real pseudo-terminal): ``analyze`` and ``flow``
colour verdicts, steps and deviations on a terminal, not in a pipe, not with ``NO_COLOR``; ``--color
always|never`` overrides both; the progress line goes on after reading, naming the stage at work (both
engines)."""

from __future__ import annotations

import re
import shutil

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from tests.terminal import plain, run_on_terminal

REJECTED = "sample_captures/group-migration-affiliation-rejected.pcapng"
RED = re.compile(r"\x1b\[[0-9;]*31m")


@pytest.mark.parametrize("command", [["analyze", REJECTED], ["flow", REJECTED]])
def test_on_a_terminal_deviations_are_red_and_no_color_turns_colour_off(command):
    code, out = run_on_terminal([*command, "-q"], 120)
    assert code in (ExitCode.OK, ExitCode.DEVIATION)
    red = [line for line in out.splitlines() if RED.search(line)]
    assert red and any("affiliation" in plain(line) or "403" in plain(line) for line in red)
    for env, args in (({"NO_COLOR": "1"}, []), ({}, ["--color", "never"])):
        code2, quiet = run_on_terminal([*command, "-q", *args], 120, env=env)
        assert code2 == code and "\x1b[" not in quiet
        assert plain(quiet) == plain(out)  # the same text, only uncoloured


def test_analyze_colours_verdict_words_and_severities():
    _, out = run_on_terminal(["analyze", REJECTED, "-q"], 120)
    assert "\x1b[1;31mdeviation\x1b[0m " in out and "\x1b[1;31m[error]\x1b[0m" in out
    assert "\x1b[33m[warning]\x1b[0m" in out


@pytest.mark.parametrize("command", [["analyze", REJECTED], ["flow", REJECTED]])
def test_colour_always_goes_into_a_pipe_even_with_no_color(capsys, monkeypatch, command):
    assert main([*command, "-q"]) in (ExitCode.OK, ExitCode.DEVIATION)
    assert "\x1b[" not in capsys.readouterr().out  # a pipe: no colour by default
    monkeypatch.setenv("NO_COLOR", "1")
    main([*command, "-q", "--color", "always"])
    assert RED.search(capsys.readouterr().out)


def test_colour_option_is_refused_where_nothing_is_coloured(capsys):
    assert main(["messages", REJECTED, "--color", "always"]) == ExitCode.BAD_INPUT
    assert "No such option '--color'" in capsys.readouterr().err


#: The progress line at once (no 1 s delay), so what it says does not depend on the machine's speed.
AT_ONCE = "import analyzer.cli.progress as p\np.DELAY = p.REFRESH = 0.0"


@pytest.mark.parametrize("engine", ["dpkt", "tshark"])
@pytest.mark.parametrize("command, stages", [(["analyze"], ["events", "sessions", "rules", "report"]),
                                             (["flow"], ["events", "sessions", "rules", "report"]),
                                             (["sessions"], ["events", "sessions", "report"])])
def test_progress_goes_on_after_reading_with_the_stage_at_work(tmp_path, big_capture, engine, command,
                                                                stages):
    if engine == "tshark" and shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    args = [*command, str(big_capture), "--engine", engine, "-o", str(tmp_path / "out")]
    code, out = run_on_terminal(args, 160, prelude=AT_ONCE)
    assert code in (ExitCode.OK, ExitCode.BAD_INPUT)  # flow: no UE session in this capture (exit 2)
    shown = plain(out)
    said = re.findall(r"big\.pcap: (events|sessions|rules|report) ", shown)
    assert list(dict.fromkeys(said)) == stages  # each stage, in order
    assert set(said) == set(stages)
    reading = "frame 1,444" if engine == "tshark" else "2.2 MB/2.2 MB"
    assert reading in shown and "4 SIP + 0 HTTP messages" in shown
