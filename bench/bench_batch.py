#!/usr/bin/env python3
"""Benchmark `mcxa batch`: synthesise N small captures (the sample scenarios with other seeds and RTP noise)
under bench/out/batch-captures/, then time, in one run, `mcxa batch` with --jobs 1, with --jobs J and
through a local Dask cluster (--executor dask --jobs J). Prints wall times and speed-ups, and checks that
every run gives the same procedures table.

    python bench/bench_batch.py [--captures 60] [--jobs 2] [--rtp-streams 2] [--options-interval 0.02]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MCXA = [sys.executable, "-m", "analyzer"]


def make_captures(folder: Path, count: int, rtp_streams: int, options_interval: float) -> None:
    from analyzer.synth import parse_scenario, synthesize, write_pcapng

    scenarios = sorted((REPO / "sample_captures").glob("*-migration-*.yaml"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        source = scenarios[i % len(scenarios)]
        data = yaml.safe_load(source.read_text())
        data["seed"] = 1000 + i
        data["noise"] = {"rtp_streams": rtp_streams, "options_interval": options_interval}
        target = folder / f"{source.stem}-{i:03d}.pcapng"
        write_pcapng(synthesize(parse_scenario(yaml.safe_dump(data), str(source))), target)


def timed(args: list[str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run([*MCXA, "batch", *args, "--out", str(out)], cwd=REPO, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1, 3):
        sys.exit(f"bench: mcxa batch {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rtp-streams", type=int, default=2)
    parser.add_argument("--options-interval", type=float, default=0.02,
                        help="OPTIONS keep-alive period: SIP messages make the analysis heavier")
    args = parser.parse_args()

    folder = HERE / "out" / "batch-captures"
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    make_captures(folder, args.captures, args.rtp_streams, args.options_interval)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(f"{args.captures} captures, {size:.1f} MiB, synthesised in {time.perf_counter() - start:.1f} s")

    runs = {"local --jobs 1": ["--jobs", "1"],
            f"local --jobs {args.jobs}": ["--jobs", str(args.jobs)],
            f"dask LocalCluster --jobs {args.jobs}": ["--executor", "dask", "--jobs", str(args.jobs)]}
    walls, tables = {}, {}
    for i, (label, extra) in enumerate(runs.items()):
        out = HERE / "out" / f"batch-run{i}"
        walls[label] = timed([str(folder), *extra], out)
        tables[label] = pl.read_parquet(out / "procedures.parquet")
        per = pl.read_parquet(out / "captures.parquet")["seconds"]
        print(f"{label:<28} {walls[label]:6.2f} s wall   (per capture: mean {per.mean():.3f} s)")
    base = walls["local --jobs 1"]
    for label in list(runs)[1:]:
        print(f"speed-up {label:<28} ×{base / walls[label]:.2f}")
    first = next(iter(tables.values()))
    same = all(t.equals(first) for t in tables.values())
    print(f"same procedures table in every run: {same} ({first.height} rows)")


if __name__ == "__main__":
    main()
