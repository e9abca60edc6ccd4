"""Every input a fuzzer once crashed on, kept as a small file under ``tests/hostile/fuzz/<harness>/``.

Each goes back through its harness's target (nothing but the documented errors may escape), and through
the command a user would run on it: ``mcxa messages`` and ``mcxa analyze`` for a capture, ``mcxa rules
lint`` for a rule file, ``mcxa synth`` for a scenario. A command ends 0-3, and when it refuses the input
(exit 2) it says so in one line that names the file, never as an internal error.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from analyzer.base.exitcodes import ExitCode
from analyzer.cli import main
from fuzz import load_target

HOSTILE = Path(__file__).parent / "hostile" / "fuzz"
CASES = [(d.name, f) for d in sorted(HOSTILE.iterdir()) if d.is_dir()
         for f in sorted(d.iterdir()) if f.is_file()]
CAPTURE_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                  b"\x0a\x0d\x0d\x0a", b"\x1f\x8b")


def _id(case) -> str:
    return f"{case[0]}/{case[1].name}"


@cache
def _target(harness: str):
    return load_target(harness)


@pytest.mark.parametrize("case", CASES, ids=map(_id, CASES))
def test_through_its_harness(case):
    harness, path = case
    _target(harness)(path.read_bytes())


def _commands(path: Path, tmp_path: Path) -> list[list[str]]:
    if path.read_bytes().startswith(CAPTURE_MAGICS):
        return [["messages", str(path)], ["analyze", str(path)]]
    if path.parent.name == "rules":
        return [["rules", "lint", str(path)]]
    if path.parent.name == "scenario":
        return [["synth", str(path), "-o", str(tmp_path / "out.pcapng")]]
    return []


COMMAND_CASES = [c for c in CASES if _commands(c[1], Path("."))]


@pytest.mark.parametrize("case", COMMAND_CASES, ids=map(_id, COMMAND_CASES))
def test_through_the_cli(case, tmp_path, capsys):
    for argv in _commands(case[1], tmp_path):
        code = main(argv)
        err = capsys.readouterr().err
        assert ExitCode.OK <= code <= ExitCode.INCOMPLETE, (argv, err)
        assert "internal error" not in err, (argv, err)
        if code == ExitCode.BAD_INPUT:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and str(case[1]) in lines[0], (argv, err)


def test_every_shipped_rule_explains(capsys):
    """``mcxa rules explain`` once crashed on every rule without a ``migration`` (found by the rules
    harness); each shipped rule now reads as steps."""
    from analyzer.rules import load_rules

    for rule in load_rules():
        assert main(["rules", "explain", rule.id]) == ExitCode.OK
        assert capsys.readouterr().out.startswith(f"{rule.id}: ")
