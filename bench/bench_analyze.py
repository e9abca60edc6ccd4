#!/usr/bin/env python3
"""Benchmark the whole analysis against tshark, in one run: wall and CPU time, memory, 1 and 2 processes.

Inputs (made under --out when missing, or given): the shared mixed bench captures
(``../shared/bench/make_bench_pcap.py --size-mb MB --seed S``, ~90 % RTP: a drive test), the core-side
captures of ``make_core_capture.py`` (N UEs, SIP only: an MC server's view), and any --capture FILE.
On each, in turn and --repeat times (medians; runs interleaved so that load on a shared machine falls on
every tool alike), each in a fresh process with its output thrown away:

    tshark -r F -Y sip -T fields -e frame.number -e sip.Call-ID -e sip.Method     (the yardstick)
    mcxa messages F --format jsonl --jobs J                                        (decoding alone)
    mcxa analyze F --format json --jobs J                                          (the whole analysis)

and prints per run: wall time, CPU time (user + system, the process and every child it waited for),
``max RSS`` (the largest process's peak, exact: ``os.wait4``), ``tree PSS`` (the sum over the process and
its children, shared pages split between them, sampled every 50 ms from /proc: the machine's real cost
when a worker is forked), and the speed against tshark in that same run. Then the speed-up of 2 processes
over 1, and for core captures the UE points: time per UE and per SIP message, memory per UE and per UE
active at once, and what each further UE added between points (flat = linear).

    python bench/bench_analyze.py [--bench-mb 200 1000] [--core-ues 200 2000 20000] [--capture F ...]
                                  [--jobs 1 2] [--tools tshark messages analyze] [--repeat 3]
                                  [--out bench/out] [--seed 1] [--save results.json]

``--bench-mb`` or ``--core-ues`` with no value leaves that family out. Without tshark the ratios are left
out. CI runs it on tiny inputs to keep it working (``tests/test_bench_tools.py``); nothing is asserted
on the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_GENERATOR = REPO.parent / "shared" / "bench" / "make_bench_pcap.py"
sys.path.insert(0, str(HERE))

from bench_messages import tshark_sip_counts  # noqa: E402

#: mcxa runs as ``python -m analyzer`` from this checkout, whatever the current directory.
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
_SAMPLE_EVERY = 0.05  # seconds between two looks at the process tree's memory and CPU
_TICKS = os.sysconf("SC_CLK_TCK")
#: Exit codes that are results, not failures: analyze 1 deviation / 3 incomplete; messages 3 incomplete.
_OK = {"tshark": {0}, "messages": {0, 3}, "analyze": {0, 1, 3}}


@dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    cpu: float  # seconds, user + system, children waited for included
    worker_cpu: float  # seconds of that in child processes (sampled: may miss their last 50 ms)
    max_rss: float  # MiB, the largest single process
    tree_pss: float  # MiB, the process tree's sampled peak


@dataclass(frozen=True, slots=True)
class Row:
    """The medians of one tool with one --jobs on one input."""

    capture: str
    tool: str
    jobs: int | None
    wall: float
    cpu: float
    worker_cpu: float
    max_rss: float
    tree_pss: float
    runs: int

    @property
    def two_core_bound(self) -> float | None:
        """The speed-up two free cores would give this split at best: all CPU over its longer half."""
        if self.worker_cpu <= 0:
            return None
        return self.cpu / max(self.cpu - self.worker_cpu, self.worker_cpu)


# -- measuring ------------------------------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux: /proc/PID/task/TID/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _pss_kib(pid: int) -> int:
    """Proportional set size of one process (kB), or its RSS where smaps_rollup is not readable."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def _cpu_ticks(pid: int, own: bool = True, children: bool = True) -> int:
    """CPU clock ticks (user + system) of one process itself and/or of the children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    utime, stime, cutime, cstime = map(int, fields[11:15])
    return (utime + stime if own else 0) + (cutime + cstime if children else 0)


class _Sampler(threading.Thread):
    """Samples a process tree until told to stop: the peak of its summed PSS, and the CPU its children
    (the forked decoder) used, reaped or not."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self.children_ticks = pid, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            tree = _tree(self.pid)
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(p) for p in tree))
            children = _cpu_ticks(self.pid, own=False) + sum(_cpu_ticks(p) for p in tree[1:])
            self.children_ticks = max(self.children_ticks, children)
            self.done.wait(_SAMPLE_EVERY)


def measure(cmd: list[str], stdout: Path | None, ok: set[int]) -> Run:
    """Run ``cmd`` in a fresh process (stdout to the file, or thrown away); its wall, CPU and memory."""
    with tempfile.TemporaryFile() as err, open(stdout or os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_ENV)
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            sys.exit(f"bench: {' '.join(cmd)} exited {proc.returncode}: {' | '.join(tail)}")
    return Run(wall, usage.ru_utime + usage.ru_stime, sampler.children_ticks / _TICKS, usage.ru_maxrss / 1024,
               sampler.peak_kib / 1024)


# -- inputs ---------------------------------------------------------------------------------------------

def bench_capture(out: Path, size_mb: float, seed: int) -> Path:
    path = out / f"bench-{size_mb:g}-{seed}.pcap"
    if not path.exists():
        print(f"making {path.name} ...", flush=True)
        subprocess.run([sys.executable, str(SHARED_GENERATOR), "--size-mb", str(size_mb), "--seed", str(seed),
                        str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def core_capture(out: Path, ues: int, seed: int) -> Path:
    path = out / f"core-{ues}-{seed}.pcapng"
    if not path.exists() or not Path(f"{path}.meta.json").exists():
        print(f"making {path.name} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "make_core_capture.py"), "--ues", str(ues), "--seed",
                        str(seed), "-o", str(path)], check=True)
    return path


def meta_of(path: Path) -> dict:
    """What ``make_core_capture.py`` wrote beside a capture (UEs, SIP messages, UEs active at once)."""
    meta = Path(f"{path}.meta.json")
    return json.loads(meta.read_text()) if meta.exists() else {}


# -- the runs -------------------------------------------------------------------------------------------

def commands(capture: Path, tools: list[str], jobs: list[int], tshark: str | None,
             out: Path) -> dict[tuple[str, int | None], tuple[list[str], Path | None]]:
    mcxa = [sys.executable, "-m", "analyzer"]
    runs: dict[tuple[str, int | None], tuple[list[str], Path | None]] = {}
    if "tshark" in tools and tshark:
        runs[("tshark", None)] = ([tshark, "-r", str(capture), "-Y", "sip", "-T", "fields",
                                   "-e", "frame.number", "-e", "sip.Call-ID", "-e", "sip.Method"],
                                  out / f"{capture.name}.tshark.out")
    for tool, extra in (("messages", ["--format", "jsonl"]), ("analyze", ["--format", "json"])):
        if tool in tools:
            for j in jobs:
                runs[(tool, j)] = ([*mcxa, tool, str(capture), *extra, "--quiet", "--jobs", str(j)], None)
    return runs


def bench_one(capture: Path, tools: list[str], jobs: list[int], tshark: str | None, out: Path,
              repeat: int) -> list[Row]:
    runs = commands(capture, tools, jobs, tshark, out)
    results: dict[tuple[str, int | None], list[Run]] = {key: [] for key in runs}
    for _ in range(repeat):
        for key, (cmd, stdout) in runs.items():
            results[key].append(measure(cmd, stdout, _OK[key[0]]))
    return [Row(str(capture), tool, j, statistics.median(r.wall for r in rs),
                statistics.median(r.cpu for r in rs), statistics.median(r.worker_cpu for r in rs),
                max(r.max_rss for r in rs), max(r.tree_pss for r in rs), len(rs))
            for (tool, j), rs in results.items()]


# -- printing -------------------------------------------------------------------------------------------

def _ratio(base: float | None, wall: float) -> str:
    if base is None:
        return "-"
    r = base / wall
    return f"{r:.2f}× faster" if r >= 1 else f"{1 / r:.2f}× slower"


def print_capture(capture: Path, rows: list[Row], sip: int | None) -> None:
    size = capture.stat().st_size / 1e6
    print(f"\n{capture.name}: {size:.1f} MB" + (f", {sip} SIP messages" if sip is not None else ""))
    print(f"  {'tool':<16}{'jobs':>5}{'wall s':>9}{'cpu s':>8}{'worker':>8}{'max RSS MiB':>13}"
          f"{'tree PSS MiB':>14}   vs tshark")
    tshark = next((r.wall for r in rows if r.tool == "tshark"), None)
    for r in rows:
        name = "tshark -Y sip" if r.tool == "tshark" else f"mcxa {r.tool}"
        ratio = _ratio(tshark, r.wall) if r.tool != "tshark" else "1"
        worker = f"{r.worker_cpu:.2f}" if r.worker_cpu > 0 else "-"
        print(f"  {name:<16}{r.jobs or '-':>5}{r.wall:>9.2f}{r.cpu:>8.2f}{worker:>8}{r.max_rss:>13.0f}"
              f"{r.tree_pss:>14.0f}   {ratio}")
    for tool in ("messages", "analyze"):
        by_jobs = {r.jobs: r for r in rows if r.tool == tool}
        if 1 in by_jobs and len(by_jobs) > 1:
            top = by_jobs[max(by_jobs)]
            bound = top.two_core_bound
            print(f"  mcxa {tool}: --jobs {top.jobs} is ×{by_jobs[1].wall / top.wall:.2f} the speed of "
                  "--jobs 1 here" + (f"; its split allows ×{bound:.2f} on two free cores" if bound else ""))


def print_ue_points(points: list[tuple[dict, list[Row]]]) -> None:
    """Core captures, smallest first: per UE, per message, per active UE, and what each added UE cost."""
    if not points:
        return
    print("\nmcxa analyze on the core captures (time and memory against UEs; +… = per UE added since the "
          "previous line)")
    print(f"  {'UEs':>6}{'SIP msgs':>10}{'active':>7}{'jobs':>5}{'wall s':>9}{'ms/UE':>8}{'µs/msg':>8}"
          f"{'max RSS':>9}{'KiB/UE':>8}{'KiB/act':>8}{'+ms/UE':>8}{'+KiB/UE':>9}")
    previous: dict[int | None, tuple[int, Row]] = {}
    for meta, rows in points:
        ues, msgs, active = meta["ues"], meta["sip_messages"], meta.get("max_active_ues") or meta["ues"]
        for r in (r for r in rows if r.tool == "analyze"):
            grow = ""
            if r.jobs in previous and previous[r.jobs][0] < ues:
                n0, r0 = previous[r.jobs]
                added = ues - n0
                grow = (f"{(r.wall - r0.wall) * 1e3 / added:>8.2f}"
                        f"{(r.max_rss - r0.max_rss) * 1024 / added:>9.1f}")
            print(f"  {ues:>6}{msgs:>10}{active:>7}{r.jobs:>5}{r.wall:>9.2f}{r.wall * 1e3 / ues:>8.2f}"
                  f"{r.wall * 1e6 / msgs:>8.1f}{r.max_rss:>9.0f}{r.max_rss * 1024 / ues:>8.1f}"
                  f"{r.max_rss * 1024 / active:>8.1f}{grow}")
            previous[r.jobs] = (ues, r)


def _revision() -> str:
    """The commit measured, and whether the checkout had changes besides."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {head}" + (f" + changes in {len(dirty)} file(s)" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-mb", type=float, nargs="*", default=[200.0],
                    help="sizes of the shared mixed bench captures (default 200)")
    ap.add_argument("--core-ues", type=int, nargs="*", default=[200, 2000],
                    help="UE counts of the core-side captures (default 200 2000)")
    ap.add_argument("--capture", type=Path, action="append", default=[], help="another capture (repeatable)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="mcxa --jobs values (default 1 2)")
    ap.add_argument("--tools", nargs="+", default=["tshark", "messages", "analyze"],
                    choices=["tshark", "messages", "analyze"])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; medians are printed (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "out",
                    help="where inputs are made (default bench/out)")
    ap.add_argument("--save", type=Path, help="also write every median as JSON here")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    tshark = shutil.which("tshark")
    if tshark is None and "tshark" in args.tools:
        print("tshark is not installed (apt-get install tshark): no ratios")
    inputs = [bench_capture(args.out, mb, args.seed) for mb in args.bench_mb]
    core = [core_capture(args.out, n, args.seed) for n in sorted(args.core_ues)]
    load = os.getloadavg()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_revision()}, {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; medians of {args.repeat} run(s), ratios within this "
          "run")

    saved, points = [], []
    for capture in [*inputs, *core, *args.capture]:
        rows = bench_one(capture, args.tools, args.jobs, tshark, args.out, args.repeat)
        meta = meta_of(capture)
        sip = meta.get("sip_messages")
        tshark_out = args.out / f"{capture.name}.tshark.out"
        if sip is None and any(r.tool == "tshark" for r in rows):
            sip = tshark_sip_counts(tshark_out)[0]
        print_capture(capture, rows, sip)
        if meta.get("ues"):
            points.append((meta, rows))
        saved.extend({**asdict(r), "sip_messages": sip, "ues": meta.get("ues")} for r in rows)
    print_ue_points(sorted(points, key=lambda p: p[0]["ues"]))
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.save:
        args.save.write_text(json.dumps(saved, indent=1) + "\n")


if __name__ == "__main__":
    main()
