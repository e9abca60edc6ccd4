#!/usr/bin/env python3
"""Benchmark `mcxa messages --format jsonl` against tshark on the shared 200 MB mixed capture.

Makes the capture once (../shared/bench/make_bench_pcap.py --size-mb 200 --seed 1) under bench/out/,
then times, in one run and on the same file: mcxa (each engine given with --engine), and
`tshark -r F -Y sip -T fields -e frame.number -e sip.Call-ID -e sip.Method`. Prints wall time, peak
RSS, the speed ratio, and whether both found the same SIP/HTTP message counts and Call-ID sets.

    python bench/bench_messages.py [--size-mb 200] [--seed 1] [--format pcap|pcapng] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_GENERATOR = REPO.parent / "shared" / "bench" / "make_bench_pcap.py"


def run(cmd: list[str], stdout_path: Path) -> tuple[float, float]:
    """Run a command with stdout to a file; return (wall seconds, peak RSS MiB) of that process alone."""
    with open(stdout_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss / 1024


def mcxa_counts(path: Path) -> tuple[int, int, set[str]]:
    sip = http = 0
    call_ids = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["proto"] == "sip":
                sip += 1
                call_ids.add(row["call_id"])
            else:
                http += 1
    return sip, http, call_ids


def tshark_sip_counts(path: Path) -> tuple[int, set[str]]:
    """Lines are per frame; several SIP messages in one frame give comma-joined values."""
    count, call_ids = 0, set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            ids = [c for c in fields[1].split(",") if c] if len(fields) > 1 else []
            count += max(1, len(ids))
            call_ids.update(ids)
    return count, call_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--engine", action="append", default=None,
                    help="mcxa engine(s) to time (default: dpkt and tshark)")
    args = ap.parse_args()

    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    capture = out_dir / f"bench-{args.size_mb:g}-{args.seed}.{args.format}"
    if not capture.exists():
        print(f"making {capture.name} ...", flush=True)
        subprocess.run([sys.executable, str(SHARED_GENERATOR), "--size-mb", str(args.size_mb), "--seed",
                        str(args.seed), "--format", args.format, str(capture)], check=True)
    mcxa = shutil.which("mcxa") or str(Path(sys.executable).with_name("mcxa"))
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench: tshark is not installed (apt-get install tshark)")

    print(f"capture: {capture} ({capture.stat().st_size / 1e6:.0f} MB), {args.repeat} run(s) each, medians")
    results = {}
    jobs = {f"mcxa --engine {e}": [mcxa, "messages", str(capture), "--format", "jsonl", "--quiet",
                                   "--engine", e] for e in (args.engine or ["dpkt", "tshark"])}
    jobs["tshark -Y sip -T fields"] = [tshark, "-r", str(capture), "-Y", "sip", "-T", "fields",
                                       "-e", "frame.number", "-e", "sip.Call-ID", "-e", "sip.Method"]
    for name, cmd in jobs.items():
        runs = [run(cmd, out_dir / f"{name.split()[0]}.out") for _ in range(args.repeat)]
        results[name] = (statistics.median(w for w, _ in runs), max(m for _, m in runs))

    base = results["tshark -Y sip -T fields"][0]
    print(f"{'tool':<28} {'wall s':>8} {'peak MiB':>9} {'speed vs tshark':>16}")
    for name, (wall, rss) in results.items():
        print(f"{name:<28} {wall:>8.2f} {rss:>9.0f} {base / wall:>15.1f}x")

    sip, http, mcxa_ids = mcxa_counts(out_dir / "mcxa.out")
    t_sip, t_ids = tshark_sip_counts(out_dir / "tshark.out")
    http_out = out_dir / "tshark-http.out"
    run([tshark, "-r", str(capture), "-Y", "http.request || http.response", "-T", "fields",
         "-e", "frame.number"], http_out)
    with open(http_out) as fh:
        t_http = sum(1 for _ in fh)
    print(f"SIP messages: mcxa {sip}, tshark {t_sip} -> {'same' if sip == t_sip else 'DIFFERENT'}")
    print(f"HTTP messages: mcxa {http}, tshark {t_http} -> {'same' if http == t_http else 'DIFFERENT'}")
    print(f"Call-ID sets: mcxa {len(mcxa_ids)}, tshark {len(t_ids)} -> "
          f"{'same' if mcxa_ids == t_ids else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
