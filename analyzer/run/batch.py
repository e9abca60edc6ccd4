"""``mcxa batch``: judge many captures in parallel, resume where a previous run stopped, and collect the
results as polars tables (Parquet and CSV, ``analyzer.run.batch_tables``) plus one contract JSON report per
capture.

The per-capture work (``analyse_one``) is a plain picklable function: the local executor runs it in a
``ProcessPoolExecutor`` (fork start method where available), the Dask executor submits the very same
function with ``Client.map``. Workers decode with ``DecodeOptions(workers=1)`` so processes do not nest.
Workers only read the capture; the parent writes every file under ``--out``.

The exit code (``batch_exit_code``) is a gate a CI job can trust: a batch that could not read some of its
captures never exits 0, and one that could read none of them is an error, not "nothing to judge".
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import multiprocessing
import os
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from analyzer.base.errors import McxaError, UsageError
from analyzer.base.exitcodes import ExitCode
from analyzer.base.limits import DEFAULT as DEFAULT_LIMITS
from analyzer.base.limits import Limits
from analyzer.run.batch_tables import BatchOutcome, build_tables, read_completely, write_tables

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".gz", ".cap")
#: 2: reports carry ``reading``; results stored by version 1 did not, so they are analysed again.
STATE_VERSION = 2



# ---------------------------------------------------------------------------------------------- inputs

def find_captures(paths: Iterable[str]) -> list[str]:
    """Files as given, directories searched recursively for capture suffixes, globs expanded; in the order
    given (each directory/glob sorted), each file once."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(str(p) for p in Path(path).rglob("*")
                            if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES))
        elif os.path.exists(path):
            found.append(path)
        elif glob.has_magic(path):
            for match in sorted(glob.glob(path, recursive=True)):
                found += find_captures([match]) if os.path.isdir(match) else [match]
        else:
            raise UsageError("does not exist (no such file, directory or glob match)", path)
    seen: set[str] = set()
    unique = []
    for path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ruleset_hash(rules: Sequence, window: float | None, options: dict) -> str:
    """What makes a stored result reusable: every rule file's bytes, the window and the analysis options
    (with the bytes of --systems / --identities files)."""
    digest = hashlib.sha256()
    for path in sorted(str(r.path) for r in rules):
        digest.update(path.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    extra = dict(options, window=window)
    for key in ("systems_file", "identities_file"):
        if extra.get(key):
            extra[key + "_sha256"] = file_sha256(extra[key])
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- worker

@dataclass(frozen=True)
class Settings:
    """Everything a worker needs, by value (picklable, so remote Dask workers need only the captures)."""

    rules: tuple
    window: float | None
    engine: str
    sip_ports: frozenset
    meaning: object  # analyzer.meaning.analysis.MeaningOptions


def analyse_one(settings: Settings, capture: str) -> dict:
    """Judge one capture; never raises for a bad capture: ``status`` says ok or error."""
    from analyzer.engines import DecodeOptions
    from analyzer.meaning.analysis import analyse_capture
    from analyzer.report import document as report

    start = time.perf_counter()
    try:
        analysis = analyse_capture(capture, settings.engine,
                                   DecodeOptions(sip_ports=settings.sip_ports, workers=1,
                                                 limits=settings.meaning.limits),
                                   replace(settings.meaning, streamed=True))  # (judged a session at a time)
        part = report.capture_report(analysis, report.Procedures(analysis, list(settings.rules),
                                                                 settings.window))
        return {"capture": capture, "status": "ok", "error": None, "part": part,
                "seconds": round(time.perf_counter() - start, 3)}
    except McxaError as exc:
        error = str(exc)
    except OSError as exc:
        error = f"{capture}: {exc.strerror or exc}"
    except Exception as exc:  # a bug of ours on this capture: the batch goes on
        error = f"{capture}: internal error: {type(exc).__name__}: {exc}"
    return {"capture": capture, "status": "error", "error": error, "part": None,
            "seconds": round(time.perf_counter() - start, 3)}


def _run_local(settings: Settings, captures: list[str], jobs: int) -> list[dict]:
    from functools import partial

    work = partial(analyse_one, settings)
    if jobs <= 1 or len(captures) <= 1:
        return [work(c) for c in captures]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(jobs, len(captures)), mp_context=context) as pool:
        return list(pool.map(work, captures, chunksize=1))


def _run_dask(settings: Settings, captures: list[str], jobs: int, scheduler: str | None) -> list[dict]:
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--executor dask needs dask[distributed]: pip install 'mcxa[dask]'") from None
    from functools import partial

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        # Workers forked rather than spawned start in 0.3 s instead of 2.3 s, and close in 0.1 s instead of
        # 0.7 s (measured, 2 workers): on a dozen captures that was most of the gap to the process pool.
        # Their sampling profiler (every 10 ms, for the dashboard this cluster does not show) only takes
        # the GIL from the task.
        fork = "fork" in multiprocessing.get_all_start_methods()
        with dask.config.set({"distributed.worker.multiprocessing-method": "fork" if fork else "spawn",
                              "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(partial(analyse_one, settings), captures, pure=False)
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------------- the run

def _report_name(capture: str, sha256: str) -> str:
    stem = os.path.basename(capture)
    for suffix in (".gz", ".pcapng", ".pcap", ".cap"):
        stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "capture"
    return f"{stem}-{sha256[:8]}.json"


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version") == STATE_VERSION and isinstance(state.get("captures"), dict):
            return state
    except (OSError, ValueError):
        pass
    return {"version": STATE_VERSION, "captures": {}}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def batch_exit_code(results: list[dict]) -> ExitCode:
    """1 on any deviation in the captures judged; else 2 when any capture could not be read at all (or
    none was given a verdict); else 3 when a procedure is incomplete or a capture was read only partly;
    else 0. A deviation comes first: it is a finding about the network that the unread captures cannot
    undo; after it, an unread capture outranks "incomplete", as it would for ``mcxa analyze``."""
    from analyzer.report import document as report

    parts = [r["part"] for r in results if r.get("part")]
    code = report.exit_code({"captures": parts})
    if code == ExitCode.DEVIATION:
        return code
    if not parts or len(parts) < len(results):
        return ExitCode.BAD_INPUT
    return code


def run_batch(paths: Sequence[str], out: str, *, jobs: int | None = None, executor: str = "local",
              scheduler: str | None = None, force: bool = False, rules_dir: str | None = None,
              window: float | None = None, engine: str = "dpkt", sip_ports=frozenset((5060, 5061)),
              systems_file: str | None = None, identities_file: str | None = None,
              migration_reason: str | None = None, limits: Limits = DEFAULT_LIMITS) -> BatchOutcome:
    from analyzer.meaning.analysis import MeaningOptions
    from analyzer.meaning.events import MIGRATION_REASON
    from analyzer.meaning.sessions import load_identity_map
    from analyzer.meaning.systems import SystemMap
    from analyzer.report import document as report
    from analyzer.rules import load_rules

    captures = find_captures(paths)
    if not captures:
        raise UsageError("no capture found (files, directories with *.pcap/*.pcapng/*.gz/*.cap, or globs)")
    rules = load_rules(rules_dir)
    reason = migration_reason or MIGRATION_REASON.pattern
    try:
        pattern = re.compile(reason, re.I)
    except re.error as exc:
        raise UsageError(f"--migration-reason: not a regular expression: {exc}") from None
    meaning = MeaningOptions(systems=SystemMap.from_file(systems_file) if systems_file else None,
                             identity_map=load_identity_map(identities_file) if identities_file else [],
                             migration_reason=pattern, limits=limits)
    options = {"engine": engine, "sip_ports": sorted(sip_ports), "systems_file": systems_file,
               "identities_file": identities_file, "migration_reason": reason,
               "limits": {k: v for k, v in asdict(limits).items() if v != getattr(DEFAULT_LIMITS, k)}}
    rule_hash = ruleset_hash(rules, window, options)
    if not jobs:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    out_dir = Path(out)
    (out_dir / "reports").mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "state.json"
    state = _load_state(state_path)

    results: dict[str, dict] = {}
    todo: list[str] = []
    hashes: dict[str, str | None] = {}
    for capture in captures:
        try:
            hashes[capture] = file_sha256(capture)
        except OSError as exc:
            hashes[capture] = None
            results[capture] = {"capture": capture, "status": "error", "part": None, "seconds": 0.0,
                                "error": f"{capture}: {exc.strerror or exc}"}
            continue
        known = state["captures"].get(capture)
        if (not force and known and known.get("status") == "ok" and known.get("sha256") == hashes[capture]
                and known.get("ruleset") == rule_hash):
            try:
                doc = json.loads((out_dir / "reports" / known["report"]).read_text(encoding="utf-8"))
                part = doc["captures"][0]
                if isinstance(part["reading"], dict):  # a report without it cannot say it was cut
                    results[capture] = {"capture": capture, "status": "ok", "error": None, "cached": True,
                                        "part": part, "seconds": known.get("seconds")}
                    continue
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                pass  # the report went missing or is broken: analyse again
        todo.append(capture)

    settings = Settings(tuple(rules), window, engine, frozenset(sip_ports), meaning)
    fresh = _run_dask(settings, todo, jobs, scheduler) if executor == "dask" and todo else \
        _run_local(settings, todo, jobs)

    for result in fresh:
        capture = result["capture"]
        entry = {"sha256": hashes[capture], "ruleset": rule_hash, "status": result["status"],
                 "error": result["error"], "seconds": result["seconds"]}
        if result["status"] == "ok":
            name = _report_name(capture, hashes[capture])
            doc = report.report([result["part"]], rules)
            text = io.StringIO()
            report.write_json(doc, text)
            _atomic_write(out_dir / "reports" / name, text.getvalue())
            entry["report"] = name
        state["captures"][capture] = entry
        results[capture] = result
    _atomic_write(state_path, json.dumps(state, indent=1, sort_keys=True) + "\n")

    ordered = [dict(results[c], sha256=hashes[c]) for c in captures]
    procedures, deviations, capture_table = build_tables(ordered)
    tables = {"procedures": procedures, "deviations": deviations, "captures": capture_table}
    write_tables(out_dir, tables)
    return BatchOutcome(analysed=len(fresh) - sum(r["status"] != "ok" for r in fresh),
                        skipped=sum(bool(r.get("cached")) for r in ordered),
                        failed=[r for r in ordered if r["status"] != "ok"],
                        incomplete=[r for r in ordered if read_completely(r) is False], tables=tables,
                        exit_code=int(batch_exit_code(ordered)))
