"""The fuzzers in CI: every harness for a fixed number of libFuzzer runs from the repository's seeds, and
a short whole-capture mutation run that must reach events and procedures. Long campaigns are
``python -m fuzz run`` (README "Fuzzing"); these only prove each harness still runs clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from fuzz import CAPTURE, HARNESSES, seeds
from fuzz.runner import REPO, fuzz_command

#: Executions per harness, sized so each takes a few seconds on the project's 2-core machine.
RUNS = {"pcap": 3000, "tcp": 3000, "framer": 2000, "scenario": 1500, "mcfacts": 2000, "rules": 2000}
DEFAULT_RUNS = 5000
CAPTURE_RUNS = 200


def _run(command: list[str]) -> tuple[int, str]:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, errors="replace", timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """Every harness and the capture mutator, two processes at a time: name → (exit code, output)."""
    base = tmp_path_factory.mktemp("fuzz")
    commands = {}
    for name in HARNESSES:
        seed_dir = base / "seeds" / name
        assert seeds.build(name, str(seed_dir)) > 0, f"no seeds for {name}"
        commands[name] = fuzz_command(name, str(base / f"{name}-"), RUNS.get(name, DEFAULT_RUNS), None, 1,
                                      corpus=str(base / "corpus" / name), seed_dir=str(seed_dir))
    commands[CAPTURE] = fuzz_command(CAPTURE, str(base / "capture-"), CAPTURE_RUNS, None, 1,
                                     stats=str(base / "capture.json"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(commands, pool.map(_run, commands.values()), strict=True))
    results["capture.json"] = (0, (base / "capture.json").read_text())
    return results


def _finding(output: str) -> str:
    """What libFuzzer said went wrong (the Python traceback), for the assertion message."""
    for marker in ("=== Uncaught Python exception", "ALARM", "==ERROR", "Traceback"):
        if marker in output:
            return output[output.index(marker):][:3000]
    return output[-3000:]


@pytest.mark.parametrize("name", list(HARNESSES))
def test_harness_runs_clean(runs, name):
    code, output = runs[name]
    n = RUNS.get(name, DEFAULT_RUNS)
    assert code == 0 and f"Done {n} runs" in output, _finding(output)


def test_capture_mutations_reach_the_deep_stages(runs):
    code, output = runs[CAPTURE]
    stats = json.loads(runs["capture.json"][1])
    assert code == 0, output[-3000:]
    assert (stats["executions"], stats["crashes"], stats["hangs"], stats["ooms"]) == (CAPTURE_RUNS, 0, 0, 0)
    assert stats["differs"] == 0, output[-3000:]  # judged on two processes, each said the same
    reached = stats["reached"]
    # Mutations are mostly structure-aware: most mutated captures still hold messages, events and
    # judged procedures (measured: ~97 %, ~80 %, ~60 %).
    assert reached["messages"] > 0.85 * CAPTURE_RUNS
    assert reached["events"] > 0.6 * CAPTURE_RUNS
    assert reached["procedures"] > 0.4 * CAPTURE_RUNS


def test_list_names_every_harness():
    out = subprocess.run([sys.executable, "-m", "fuzz", "list"], cwd=REPO, capture_output=True, text=True,
                         check=True)
    listed = [line.split()[0] for line in out.stdout.splitlines()]
    assert listed == [*HARNESSES, CAPTURE]


def test_an_unknown_harness_is_refused():
    done = subprocess.run([sys.executable, "-m", "fuzz", "run", "nosuch", "--runs", "1"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown harness 'nosuch'" in done.stderr
