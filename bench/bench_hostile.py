#!/usr/bin/env python3
"""Time and memory of `mcxa messages` and `mcxa analyze` on issue 14's hostile captures, at full size.

Writes each capture and transport class of ``tests/hostile/captures/make_captures.py`` at the sizes of the
issue's table (LAND segments, pcapng timestamps beyond year 9999, 240 KB SCTP packets of tiny chunks,
200 000 half-open TCP streams, 8 x 8 191 IP fragments that never complete, 65 536 one-byte TCP segments
with retransmissions) under bench/out/hostile/, runs both commands on each in a subprocess and prints the
exit code, wall time, CPU time (user + system, all processes), peak RSS (the largest process, from
wait4) and the peak of the whole process tree's RSS (sampled every 20 ms: the dpkt engine forks a worker
for captures over 8 MB), with the diagnostics line. Then the same on the 200 MB bench capture
(../shared/bench/make_bench_pcap.py), with tshark in the same run for a ratio: normal speed must not
change. ``--baseline DIR`` also runs the mcxa source tree in DIR (e.g. ``git archive HEAD | tar -x -C
DIR``) on every capture, for a before/after; its address space is capped at 4 GiB (an SCTP packet of tiny
chunks took 6.9 GB before).

    python bench/bench_hostile.py [--only tcp-streams ...] [--no-bench-capture] [--baseline DIR]

Targets (issue 14): exit 0-3, <= 10 s and <= 500 MB on every hostile capture; <= 300 MB on the 200 000
half-open TCP streams, with a diagnostic saying streams were evicted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
SHARED_GENERATOR = REPO.parent / "shared" / "bench" / "make_bench_pcap.py"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _generator():
    script = REPO / "tests" / "hostile" / "captures" / "make_captures.py"
    spec = importlib.util.spec_from_file_location("make_captures", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and its descendants now (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue
    return total


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run(cmd: list[str], env: dict | None = None, capped: bool = False) -> dict:
    """Run ``cmd`` (stdout discarded); exit code, wall and CPU seconds, peak RSS MiB (largest process, and
    the sampled peak of the process tree), the stderr line naming the diagnostics."""
    err_path = OUT / "hostile" / "stderr.txt"
    err_path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.devnull, "wb") as devnull, open(err_path, "wb") as err:
        start = time.perf_counter()
        # (the baseline runs in its own tree: ``python -m`` puts the working directory first on sys.path)
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=err, env=env,
                                cwd=env["PYTHONPATH"] if env else None,
                                preexec_fn=_cap_memory if capped else None)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.02):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    text = err_path.read_text(errors="replace")
    said = next((line.split(": ", 2)[-1] for line in text.splitlines() if "diagnostic(s)" in line), "")
    if "internal error" in text or "MemoryError" in text:
        said = "INTERNAL ERROR: " + text.strip().splitlines()[-1]
    return {"code": os.waitstatus_to_exitcode(status), "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss / 1024, "tree": peak[0] / (1 << 20), "said": said, "stderr": text}


def _row(label: str, r: dict, note: str = "") -> str:
    return (f"{label:<40} {r['code']:>4} {r['wall']:>7.2f} {r['cpu']:>6.2f} {r['rss']:>8.0f} "
            f"{r['tree']:>9.0f}  {note}")


HEADER = f"{'run':<40} {'exit':>4} {'wall s':>7} {'cpu s':>6} {'RSS MiB':>8} {'tree MiB':>9}"


def hostile(mcxa: str, only: list[str], baseline: list[str] | None, env: dict | None) -> bool:
    directory = OUT / "hostile"
    directory.mkdir(parents=True, exist_ok=True)
    print(f"writing the hostile captures under {directory} ...", flush=True)
    paths = _generator().write(directory, full=True, only=only or None)
    print(f"\n{HEADER}  diagnostics")
    ok = True
    for path in paths:
        print(f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)")
        for command, fmt in (("messages", "jsonl"), ("analyze", "json")):
            # messages names its diagnostics on stderr; analyze puts them in its report
            report = directory / "report.json"
            report.unlink(missing_ok=True)
            output = ["-o", str(report)] if command == "analyze" else []
            r = run([mcxa, command, str(path), "--format", fmt, *output])
            said = r["stderr"] + (report.read_text(errors="replace") if report.exists() else "")
            limit = 300 if path.stem == "tcp-streams" else 500
            good = 0 <= r["code"] <= 3 and r["wall"] <= 10 and max(r["rss"], r["tree"]) <= limit \
                and not r["said"].startswith("INTERNAL")
            if path.stem == "tcp-streams":
                good = good and "--limit tcp_streams=" in said
            ok = ok and good
            print(_row(f"  mcxa {command}", r, ("" if good else "OVER TARGET ") + r["said"][:80]), flush=True)
            if baseline:
                b = run([*baseline, command, str(path), "--format", fmt], env, capped=True)
                print(_row(f"  baseline {command}", b, b["said"][:80]), flush=True)
    return ok


def bench_capture(mcxa: str, baseline: list[str] | None, base_env: dict | None) -> None:
    capture = OUT / "bench-200-1.pcap"
    if not capture.exists():
        print(f"making {capture.name} ...", flush=True)
        subprocess.run([sys.executable, str(SHARED_GENERATOR), "--size-mb", "200", "--seed", "1",
                        str(capture)], check=True)
    jobs = {"mcxa messages --format jsonl": ([mcxa, "messages", str(capture), "--format", "jsonl"], None),
            "mcxa analyze --format json": ([mcxa, "analyze", str(capture), "--format", "json"], None)}
    if baseline:
        for command, fmt in (("messages", "jsonl"), ("analyze", "json")):
            jobs[f"baseline {command} --format {fmt}"] = ([*baseline, command, str(capture), "--format", fmt],
                                                          base_env)
    tshark = shutil.which("tshark")
    if tshark:
        jobs["tshark -Y sip -T fields"] = ([tshark, "-r", str(capture), "-Y", "sip", "-T", "fields", "-e",
                                            "frame.number", "-e", "sip.Call-ID", "-e", "sip.Method"], None)
    print(f"\n{capture.name} ({capture.stat().st_size / 1e6:.0f} MB)")
    print(f"{HEADER}  vs tshark")
    results = {name: run(cmd, env) for name, (cmd, env) in jobs.items()}
    base_wall = results["tshark -Y sip -T fields"]["wall"] if tshark else None
    for name, r in results.items():
        print(_row(name, r, f"{base_wall / r['wall']:.1f}x" if base_wall else "-"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=[], help="only these hostile classes")
    ap.add_argument("--no-bench-capture", action="store_true", help="skip the 200 MB bench capture")
    ap.add_argument("--baseline", metavar="DIR", help="an mcxa source tree to compare on the bench capture")
    args = ap.parse_args()
    mcxa = shutil.which("mcxa") or str(Path(sys.executable).with_name("mcxa"))
    baseline = [sys.executable, "-m", "analyzer"] if args.baseline else None
    env = dict(os.environ, PYTHONPATH=str(Path(args.baseline).resolve())) if args.baseline else None
    ok = hostile(mcxa, args.only, baseline, env)
    if not args.no_bench_capture:
        bench_capture(mcxa, baseline, env)
    print("\nall hostile captures within the targets" if ok else "\nSOME HOSTILE CAPTURE IS OVER A TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
