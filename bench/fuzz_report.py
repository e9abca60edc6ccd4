#!/usr/bin/env python3
"""Fuzzing figures: per harness, executions, executions per second, crashes, hangs and memory blow-ups,
and for the whole-capture mutator how many mutated captures still reached messages, events and judged
procedures. Reads what ``python -m fuzz run`` logged (``fuzz/logs/campaigns.jsonl``), or runs a budget
first.

    python bench/fuzz_report.py                       # every campaign logged, added up per harness
    python bench/fuzz_report.py --campaign 20261207-031317 [--campaign ...]
    python bench/fuzz_report.py --since 20261207-0400 # campaigns started at or after (their ids sort by time)
    python bench/fuzz_report.py --run --runs 20000 [--jobs 2] [HARNESS...]   # run, then report that run

Executions per second are per process (a harness split over two processes counts both processes' time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from fuzz import CAPTURE, LOGS, NAMES  # noqa: E402

FIELDS = ("executions", "seconds", "crashes", "hangs", "ooms")


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def totals(records: list[dict]) -> dict[str, dict]:
    """Harness → summed figures (and the campaigns they came from)."""
    out: dict[str, dict] = defaultdict(lambda: {**dict.fromkeys(FIELDS, 0), "reached": defaultdict(int),
                                                "campaigns": set()})
    for r in records:
        t = out[r["harness"]]
        for name in FIELDS:
            t[name] += r.get(name, 0)
        for stage, n in r.get("reached", {}).items():
            t["reached"][stage] += n
        t["campaigns"].add(r["campaign"])
    return out


def print_report(found: dict[str, dict]) -> None:
    print(f"{'harness':<10} {'executions':>12} {'exec/s':>8} {'crashes':>8} {'hangs':>6} {'memory':>7}"
          "  campaigns")
    for name in [n for n in NAMES if n in found]:
        t = found[name]
        rate = t["executions"] / t["seconds"] if t["seconds"] else 0
        print(f"{name:<10} {t['executions']:>12,} {rate:>8,.0f} {t['crashes']:>8} {t['hangs']:>6} "
              f"{t['ooms']:>7}  {', '.join(sorted(t['campaigns']))}")
    parsers = [found[n] for n in found if n != CAPTURE]
    if parsers:
        least = min(parsers, key=lambda t: t["executions"])["executions"]
        bad = sum(t["crashes"] + t["hangs"] + t["ooms"] for t in parsers)
        print(f"\nparser harnesses: {len(parsers)}, fewest executions {least:,}, findings {bad}")
    if CAPTURE in found:
        t = found[CAPTURE]
        n = t["executions"] or 1
        reached = t["reached"]
        print(f"whole-capture mutations: {t['executions']:,}; reached messages {reached['messages']:,} "
              f"({100 * reached['messages'] / n:.0f} %), events {reached['events']:,} "
              f"({100 * reached['events'] / n:.0f} %), procedures {reached['procedures']:,} "
              f"({100 * reached['procedures'] / n:.0f} %); findings {t['crashes'] + t['hangs'] + t['ooms']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", action="append", help="only this campaign (repeatable)")
    parser.add_argument("--since", help="only campaigns whose id sorts at or after this")
    parser.add_argument("--run", action="store_true", help="run a campaign first and report it")
    parser.add_argument("--runs", type=int, default=20_000, help="with --run: executions per harness")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("names", nargs="*", metavar="HARNESS", help="with --run: which (default all)")
    args = parser.parse_args(argv)
    records = read_log(os.path.join(LOGS, "campaigns.jsonl"))
    if args.run:
        from fuzz.runner import run

        records = [r.as_dict() for r in run(args.names, args.runs, None, args.jobs, echo=lambda _: None)]
    if args.campaign:
        records = [r for r in records if r["campaign"] in args.campaign]
    if args.since:
        records = [r for r in records if r["campaign"] >= args.since]
    if not records:
        print("no campaign logged (run: python -m fuzz run)", file=sys.stderr)
        return 1
    print_report(totals(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
