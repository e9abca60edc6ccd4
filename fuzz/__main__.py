"""``python -m fuzz``: list the harnesses, build seeds, run campaigns, replay inputs (``fuzz/__init__``)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from fuzz import CAPTURE, HARNESSES, NAMES, load_target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description="Fuzz mcxa's parsers and pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the harnesses and what each fuzzes")
    seeds = sub.add_parser("seeds", help="(re)build the seed corpora under fuzz/seeds/")
    seeds.add_argument("names", nargs="*", metavar="HARNESS")
    run = sub.add_parser("run", help="run harnesses for a budget; findings in fuzz/findings/")
    run.add_argument("names", nargs="*", metavar="HARNESS", help=f"any of: {', '.join(NAMES)} (default all)")
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="minutes per harness")
    budget.add_argument("--runs", type=int, help="executions per harness (default 100000)")
    run.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                     help="processes at once (default: one per core)")
    replay = sub.add_parser("replay", help="run files through a harness's target, uninstrumented")
    replay.add_argument("name", metavar="HARNESS", choices=NAMES)
    replay.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)

    if args.command == "list":
        for h in HARNESSES.values():
            print(f"{h.name:<10} {h.about}")
        print(f"{CAPTURE:<10} whole captures mutated and re-packed, through analyse, judge, report and "
              "every renderer")
        return 0
    if args.command == "seeds":
        from fuzz import seeds as builder

        for name in args.names or HARNESSES:
            if name not in HARNESSES:
                parser.error(f"unknown harness {name!r} (choose from {', '.join(HARNESSES)})")
            print(f"{name}: {builder.build(name)} seeds in {builder.seed_dir(name)}")
        return 0
    if args.command == "run":
        from fuzz.runner import run as run_campaign

        unknown = [n for n in args.names if n not in NAMES]
        if unknown:
            parser.error(f"unknown harness {unknown[0]!r} (choose from {', '.join(NAMES)})")
        runs = args.runs if args.runs or args.minutes else 100_000
        results = run_campaign(args.names, runs, args.minutes, max(1, args.jobs))
        return 1 if any(r.crashes or r.hangs or r.ooms for r in results) else 0
    return _replay(args.name, args.files)


def _replay(name: str, files: list[str]) -> int:
    """Each file through the target; prints one line per file; exit 1 if any raised."""
    target = load_target(name)
    failed = 0
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            target(data)
        except Exception:
            failed += 1
            print(f"{path}: FAILED", file=sys.stderr)
            traceback.print_exc()
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
