"""Running campaigns: each harness in its own processes, several at once, findings and logs kept.

A libFuzzer harness runs as ``python -m fuzz.fuzz_NAME fuzz/corpus/NAME fuzz/seeds/NAME -flags``: new
coverage goes to the corpus directory, crashes (``crash-*``), hangs (``timeout-*``, libFuzzer's
``-timeout``) and memory blow-ups (``oom-*``, ``-rss_limit_mb``) to ``fuzz/findings/NAME/``, each with a
``.txt`` beside it holding the traceback. libFuzzer stops at the first finding, so a process that found
one is started again on what is left of its budget (at most ``MAX_RESTARTS`` times). The whole-capture
mutator (``capture``) runs the same way with its own loop.

Every process's figures become one line of ``fuzz/logs/campaigns.jsonl`` (``bench/fuzz_report.py``
reads it); libFuzzer's own output goes to ``fuzz/logs/CAMPAIGN/NAME-PART.log``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fuzz import CAPTURE, CORPUS, DICTIONARIES, FINDINGS, HARNESSES, LOGS, seeds

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 10  # seconds one input may take before it is a hang (the bound for a hostile capture)
RSS_LIMIT_MB = 1024  # above this the process's memory is a finding
MAX_RESTARTS = 20
KINDS = {"crash": "crashes", "leak": "crashes", "timeout": "hangs", "oom": "ooms", "slow-unit": "slow",
         "differs": "crashes"}  # (differs: the capture mutator's two-process judgement disagreed, --split)
_EXECUTED = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(rb"Done (\d+) runs in")
_PROGRESS = re.compile(rb"^#(\d+)\s", re.M)


@dataclass(slots=True)
class Result:
    """What one part of a campaign did (one line of campaigns.jsonl)."""

    campaign: str
    harness: str
    part: int
    executions: int = 0
    seconds: float = 0.0
    crashes: int = 0
    hangs: int = 0
    ooms: int = 0
    slow: int = 0
    restarts: int = 0
    findings: list[str] = field(default_factory=list)
    reached: dict = field(default_factory=dict)  # capture mutator: captures reaching each stage

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


def run(names: list[str], runs: int | None = None, minutes: float | None = None, jobs: int = 2,
        campaign: str | None = None, echo=print) -> list[Result]:
    """Run ``names`` (all when empty) with a budget of ``runs`` executions or ``minutes`` each, ``jobs``
    processes at a time; a harness is split across processes when there are fewer harnesses than jobs."""
    names = list(names) or [*HARNESSES, CAPTURE]
    campaign = campaign or time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(LOGS, campaign), exist_ok=True)
    parts = max(1, jobs // len(names))
    tasks = []
    for name in names:
        if name in HARNESSES:
            seeds.build(name)
        for part in range(parts):
            share = None if runs is None else max(1, runs // parts + (part < runs % parts))
            tasks.append((name, part, share))
    lock = threading.Lock()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)

    def task(t: tuple) -> Result:
        result = _task(campaign, *t, minutes, echo)
        with lock, open(os.path.join(LOGS, "campaigns.jsonl"), "a") as f:  # logged as each part ends
            f.write(json.dumps(result.as_dict()) + "\n")
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(task, tasks))


#: Set by SIGINT/SIGTERM: the processes running are interrupted (libFuzzer prints its figures and ends),
#: counted and logged like finished ones, and nothing more is started.
_stopping = threading.Event()
_live: set[subprocess.Popen] = set()


def _interrupt(signum, frame) -> None:
    _stopping.set()
    for process in list(_live):
        process.send_signal(signal.SIGINT)


def _task(campaign: str, name: str, part: int, runs: int | None, minutes: float | None, echo) -> Result:
    result = Result(campaign, name, part)
    log_path = os.path.join(LOGS, campaign, f"{name}-{part}.log")
    findings = os.path.join(FINDINGS, name)
    os.makedirs(findings, exist_ok=True)
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    while True:
        left_runs = None if runs is None else runs - result.executions
        left_time = None if deadline is None else deadline - time.monotonic()
        if (left_runs is not None and left_runs <= 0) or (left_time is not None and left_time < 1) \
                or _stopping.is_set():
            break
        before = set(os.listdir(findings))
        seed = 1 + part * 1000 + result.restarts
        started = time.monotonic()
        if os.path.exists(log_path + ".json"):
            os.remove(log_path + ".json")  # each process writes its own counts
        with open(log_path, "ab") as log:
            command = fuzz_command(name, os.path.join(findings, f"{part}-"), left_runs, left_time, seed,
                                   log_path + ".json")
            process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            _live.add(process)
            code = process.wait()
            _live.discard(process)
        result.seconds += time.monotonic() - started
        mine = f"{part}-"  # parts of one harness share its directory: each names its own artifacts
        artifacts = sorted(f for f in set(os.listdir(findings)) - before
                           if f.startswith(mine) and not f.endswith(".txt"))
        _count(result, name, log_path, code, findings, artifacts)
        if code == 0 or result.restarts >= MAX_RESTARTS or not artifacts or _stopping.is_set():
            if code != 0 and not artifacts and not _stopping.is_set():
                echo(f"fuzz: {name}: exited with {code} and no finding; see {log_path}")
            break
        result.restarts += 1
    echo(f"fuzz: {name}[{part}]: {result.executions} executions in {result.seconds:.0f} s, "
         f"{result.crashes} crash(es), {result.hangs} hang(s), {result.ooms} memory blow-up(s)")
    return result


def fuzz_command(name: str, prefix: str, runs: int | None, seconds: float | None, seed: int,
                 stats: str | None = None, corpus: str | None = None,
                 seed_dir: str | None = None) -> list[str]:
    """The command that runs harness ``name`` for ``runs`` executions or ``seconds``, findings named
    ``PREFIX{crash,timeout,oom}-SHA1``. ``stats``: where the capture mutator writes its counts. A
    libFuzzer harness grows ``corpus`` (default ``fuzz/corpus/NAME``) from ``seed_dir`` (its seeds)."""
    budget = [f"-runs={runs}"] if runs is not None else [f"-max_total_time={max(1, int(seconds))}"]
    if name == CAPTURE:
        return [sys.executable, "-m", "fuzz.capture_mutator", "--seed", str(seed), "--findings", prefix,
                "--timeout", str(TIMEOUT), "--rss-limit-mb", str(RSS_LIMIT_MB), "--split",
                *(["--stats", stats] if stats else []),
                *(["--runs", str(runs)] if runs is not None else ["--seconds", str(int(seconds))])]
    h = HARNESSES[name]
    corpus = corpus or os.path.join(CORPUS, name)
    os.makedirs(corpus, exist_ok=True)
    flags = [f"-max_len={h.max_len}", f"-timeout={TIMEOUT}", f"-rss_limit_mb={RSS_LIMIT_MB}",
             f"-artifact_prefix={prefix}", "-print_final_stats=1", f"-seed={seed}", *budget]
    if h.dictionary:
        flags.append(f"-dict={os.path.join(DICTIONARIES, h.dictionary)}")
    return [sys.executable, "-m", h.module, corpus, seed_dir or seeds.seed_dir(name), *flags]


def _count(result: Result, name: str, log_path: str, code: int, findings: str, artifacts: list[str]) -> None:
    """Add one process's executions and findings to ``result`` (its log's last run, its new artifacts)."""
    if name == CAPTURE:
        try:
            with open(log_path + ".json") as f:
                stats = json.load(f)
        except (OSError, ValueError):
            stats = {}
        result.executions += stats.get("executions", 0)
        for stage, n in stats.get("reached", {}).items():
            result.reached[stage] = result.reached.get(stage, 0) + n
    else:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(log_path) - (1 << 20)))
            tail = f.read()
        last = tail.rsplit(b"INFO: Running with entropic", 1)[-1]
        found = _EXECUTED.findall(last) or _DONE.findall(last) or _PROGRESS.findall(last)
        result.executions += int(found[-1]) if found else 0
        if not artifacts and code != 0 and b"=== Uncaught Python exception" in last:
            # The exception was printed but the process died before libFuzzer wrote the input (seen once,
            # killed by its own alarm): still a crash; the traceback is all there is to keep.
            artifacts.append(f"{os.path.basename(log_path)[:-4].rsplit('-', 1)[-1]}-crash-unsaved-"
                             f"{result.restarts}")
            with open(os.path.join(findings, artifacts[-1]), "wb"):
                pass
        if artifacts:
            _explain(findings, artifacts, last)
    for artifact in artifacts:
        kind = next((k for k in KINDS if artifact.split("-", 1)[-1].startswith(k + "-")), "crash")
        field_name = KINDS[kind]
        setattr(result, field_name, getattr(result, field_name) + 1)
        result.findings.append(os.path.join(findings, artifact))


def _explain(findings: str, artifacts: list[str], log: bytes) -> None:
    """Keep the traceback (or libFuzzer's reason) beside each artifact, as ``ARTIFACT.txt``."""
    start = max(log.rfind(b"=== Uncaught Python exception"), log.rfind(b"==ERROR"), log.rfind(b"ALARM"))
    text = log[start:start + 8000] if start >= 0 else log[-8000:]
    for artifact in artifacts:
        with open(os.path.join(findings, artifact + ".txt"), "wb") as f:
            f.write(text)
