"""What every ``mcxa`` command does alike, as a user sees it: a missing option value names the subcommand,
``flow`` judges with ``--rules``/``--window`` as ``analyze`` does, JSON documents are indented, ``replay
--format junit -o F`` writes only F, and shell completion emits a script and completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_captures"
REJECTED = str(SAMPLES / "group-migration-affiliation-rejected.pcapng")
COMPLIANT = str(SAMPLES / "group-migration-compliant.pcapng")


def mcxa(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, option", [
    (["messages", COMPLIANT], "--method"), (["events", COMPLIANT], "--ue"), (["sessions", COMPLIANT], "-o"),
    (["flow", COMPLIANT], "--ue"), (["flow", COMPLIANT], "--rules"), (["analyze", COMPLIANT], "--window"),
    (["batch", COMPLIANT], "--out"), (["replay", COMPLIANT], "--speed"), (["synth", "x.yaml"], "-o"),
    (["rules", "explain", "x"], "--rules"),
], ids=lambda v: v if isinstance(v, str) else " ".join(a for a in v if not a.startswith("/")))
def test_a_missing_option_value_names_the_subcommand(capsys, args, option):
    code, out, err = mcxa(capsys, *args, option)
    command = " ".join(a for a in args if not a.startswith("/") and not a.endswith(".yaml") and a != "x")
    assert (code, out) == (ExitCode.BAD_INPUT, "")
    assert err == f"mcxa {command}: {option} needs a value (see 'mcxa {command} --help')\n"


def test_other_usage_errors_keep_naming_the_subcommand(capsys):
    code, _, err = mcxa(capsys, "flow", COMPLIANT, "--format", "png")
    assert code == ExitCode.BAD_INPUT and err.startswith("mcxa flow: Invalid value for '--format'")


def test_flow_judges_with_the_rules_and_window_given(capsys, tmp_path):
    code, out, _ = mcxa(capsys, "flow", COMPLIANT, "-q", "--color", "never")
    assert code == ExitCode.OK and "late-entry: matched" in out and ": late" not in out
    # a window shorter than any step: the same messages, now judged late
    code, out, _ = mcxa(capsys, "flow", COMPLIANT, "-q", "--color", "never", "--window", "0.001")
    assert code == ExitCode.OK and "late-entry: late" in out
    # rules without the migration rule: its steps are not drawn
    (tmp_path / "registration.yaml").write_bytes((ROOT / "rules" / "registration.yaml").read_bytes())
    code, out, _ = mcxa(capsys, "flow", COMPLIANT, "-q", "--color", "never", "--rules", tmp_path)
    assert code == ExitCode.OK and "registered: matched" in out and "late-entry" not in out
    code, out, err = mcxa(capsys, "flow", COMPLIANT, "--rules", tmp_path / "none")
    assert (code, out) == (ExitCode.BAD_INPUT, "") and err.count("\n") == 1 and "none" in err


def test_sessions_json_is_one_indented_document(capsys):
    code, out, _ = mcxa(capsys, "sessions", COMPLIANT, "--format", "json", "-q")
    assert code == ExitCode.OK
    assert out.startswith('{\n  "file": ') and out.endswith("}\n")
    assert json.loads(out)["sessions"][0]["ue"] == "ue1"


def test_replay_junit_to_a_file_prints_no_feed(capsys, tmp_path):
    report = tmp_path / "replay.xml"
    code, out, err = mcxa(capsys, "replay", COMPLIANT, "--format", "junit", "-o", report)
    assert (code, out) == (ExitCode.OK, "")
    assert report.read_text().startswith("<?xml") and "VERDICT" not in err


def _completion(env: dict) -> str:
    result = subprocess.run([sys.executable, "-m", "analyzer"], env={**os.environ, **env}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    return result.stdout


def test_shell_completion_emits_a_script_and_completes():
    script = _completion({"_MCXA_COMPLETE": "bash_source"})
    assert "_mcxa_completion()" in script and "complete -o nosort -F _mcxa_completion mcxa" in script
    assert "compdef _mcxa_completion mcxa" in _completion({"_MCXA_COMPLETE": "zsh_source"})
    words = _completion({"_MCXA_COMPLETE": "bash_complete", "COMP_WORDS": "mcxa ses", "COMP_CWORD": "1"})
    assert words.split() == ["plain,sessions"]
    words = _completion({"_MCXA_COMPLETE": "bash_complete", "COMP_WORDS": "mcxa flow x --rul",
                         "COMP_CWORD": "3"})
    assert words.split() == ["plain,--rules"]
