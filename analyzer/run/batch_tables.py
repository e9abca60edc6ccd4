"""What ``mcxa batch`` writes besides the reports: the procedures/deviations/captures tables (Parquet and
CSV, via polars) and the summary on stdout, which names every capture not read, or read only partly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from analyzer.base.times import iso_utc
from analyzer.report.document import stop_text

PROCEDURE_COLUMNS = ("capture", "rule", "kind", "verdict", "ue", "group", "peer", "from_system", "to_system",
                     "start", "end", "migration_duration", "service_interruption", "deviating_steps",
                     "start_iso", "end_iso", "media_interruption", "late_entry_time", "max_access_time",
                     "rtp_interruption")
DEVIATION_COLUMNS = ("capture", "rule", "ue", "step", "code", "severity", "message", "spec", "frames")
CAPTURE_COLUMNS = ("capture", "sha256", "packets", "sip_messages", "http_messages", "decode_errors",
                   "procedures", "status", "error", "seconds", "cached", "read_complete",
                   "stopped_after_frame", "stopped_at_offset", "stop_reason")


@dataclass
class BatchOutcome:
    """What one ``mcxa batch`` run gives: counts, the captures it could not read (or read only partly),
    the tables and the exit code."""

    analysed: int
    skipped: int
    failed: list[dict]  # results of the captures that could not be read at all (not judged)
    incomplete: list[dict]  # results of the captures read only up to a damage (judged up to it)
    tables: dict
    exit_code: int

    @property
    def nothing_judged(self) -> bool:
        return self.analysed + self.skipped == 0


def procedure_rows(capture: str, part: dict) -> Iterable[dict]:
    for p in part["procedures"]:
        kpis = p.get("kpis") or {}
        bad = [f"{s['id']}:{s['status']}" for s in p["steps"] if s["status"] != "matched"]
        yield {"capture": capture, **{k: p.get(k) for k in PROCEDURE_COLUMNS[1:11]},
               "migration_duration": kpis.get("migration_duration"),
               "service_interruption": kpis.get("service_interruption"),
               "deviating_steps": " ".join(bad),
               "start_iso": iso_utc(p.get("start")), "end_iso": iso_utc(p.get("end")),
               # media-plane figures, where floor control and RTP show them (``analyzer.rules.media``)
               "media_interruption": kpis.get("media_interruption"),
               "late_entry_time": kpis.get("late_entry_time"),
               "max_access_time": max((a["seconds"] for a in kpis.get("access_times", ())), default=None),
               "rtp_interruption": kpis.get("rtp_interruption")}


def deviation_rows(capture: str, part: dict) -> Iterable[dict]:
    for p in part["procedures"]:
        for d in p["deviations"]:
            yield {"capture": capture, "rule": p["rule"], "ue": p["ue"], "step": d.get("step"),
                   "code": d["code"], "severity": d["severity"], "message": d["message"],
                   "spec": d.get("spec"), "frames": list(d.get("frames") or [])}


def read_completely(result: dict) -> bool | None:
    """Whether the capture was read to its end; None when it could not be read at all."""
    from analyzer.report.document import read_completely as complete

    return complete(result["part"]) if result.get("part") else None


def build_tables(results: list[dict]):
    """(procedures, deviations, captures) polars DataFrames from per-capture results, in input order."""
    import polars as pl

    from analyzer.report.tables import frame

    procs, devs, caps = [], [], []
    stat_columns = ("packets", "sip_messages", "http_messages", "decode_errors")
    for r in results:
        part = r.get("part")
        stats = part["stats"] if part else {}
        complete = read_completely(r)
        reading = part["reading"] if complete is False else {}
        caps.append({"capture": r["capture"], "sha256": r.get("sha256"), "status": r["status"],
                     "error": r.get("error"), "seconds": r.get("seconds"), "cached": r.get("cached", False),
                     "procedures": len(part["procedures"]) if part else None,
                     **{k: stats.get(k) for k in stat_columns},
                     "read_complete": complete, "stopped_after_frame": reading.get("after_frame"),
                     "stopped_at_offset": reading.get("offset"),
                     "stop_reason": f"{reading.get('code')}: {reading.get('reason')}" if reading else None})
        if part:
            procs += procedure_rows(r["capture"], part)
            devs += deviation_rows(r["capture"], part)
    f64, i64 = pl.Float64, pl.Int64
    procedures = frame(procs, PROCEDURE_COLUMNS, {"start": f64, "end": f64, "migration_duration": f64,
                                                  "service_interruption": f64, "media_interruption": f64,
                                                  "late_entry_time": f64, "max_access_time": f64,
                                                  "rtp_interruption": f64})
    deviations = frame(devs, DEVIATION_COLUMNS, {"frames": pl.List(i64)})
    captures = frame(caps, CAPTURE_COLUMNS, {"packets": i64, "sip_messages": i64, "http_messages": i64,
                                             "decode_errors": i64, "procedures": i64, "seconds": f64,
                                             "cached": pl.Boolean, "read_complete": pl.Boolean,
                                             "stopped_after_frame": i64, "stopped_at_offset": i64})
    return procedures, deviations, captures


def write_tables(out_dir: Path, tables: dict) -> None:
    from analyzer.report.tables import write_csv, write_parquet

    for name, table in tables.items():
        write_parquet(table, str(out_dir / f"{name}.parquet"))
        with open(out_dir / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            write_csv(table, fh)


def error_lines(outcome: BatchOutcome) -> list[str]:
    """For stderr: one line per capture that could not be read; one line in all when none could be."""
    if not outcome.nothing_judged:
        return [f"batch: unreadable capture: {r['error']}" for r in outcome.failed]
    first, n = outcome.failed[0]["error"], len(outcome.failed)
    return [f"batch: nothing judged: {first}" if n == 1 else
            f"batch: nothing judged: none of the {n} captures could be read (the first: {first})"]


def write_summary(outcome: BatchOutcome, out: IO[str]) -> None:
    """Counts, the captures not read (or read only partly) with why, verdicts per rule, the 5 most frequent
    deviations, service interruption percentiles."""
    import polars as pl

    procedures, deviations = outcome.tables["procedures"], outcome.tables["deviations"]
    out.write(f"captures: {outcome.analysed} analysed, {outcome.skipped} skipped (unchanged), "
              f"{len(outcome.failed)} unreadable, {len(outcome.incomplete)} read only partly\n")
    for r in outcome.failed:
        out.write(f"  UNREADABLE {r['error']}\n")
    for r in outcome.incomplete:
        out.write(f"  INCOMPLETE {r['capture']}: {stop_text(r['part'])}; judged up to there\n")
    if procedures.height:
        out.write("verdicts per rule:\n")
        counts = procedures.group_by("rule", "verdict").len().sort("rule", "verdict")
        for rule in counts["rule"].unique(maintain_order=True):
            row = counts.filter(pl.col("rule") == rule)
            text = ", ".join(f"{v} {n}" for v, n in zip(row["verdict"], row["len"], strict=True))
            out.write(f"  {rule:<28} {text}\n")
    else:
        out.write("nothing judged: no capture could be read\n" if outcome.nothing_judged else
                  "no procedure found\n")
    if deviations.height:
        out.write("most frequent deviations (rule / step / code):\n")
        top = (deviations.group_by("rule", "step", "code").len()
               .sort(["len", "rule", "step", "code"], descending=[True, False, False, False]).head(5))
        for rule, step, code, n in top.iter_rows():
            out.write(f"  {n:>5} × {rule} / {step or '-'} / {code}\n")
    interruptions = procedures["service_interruption"].drop_nulls()
    if interruptions.len():
        q = [interruptions.quantile(p, "linear") for p in (0.5, 0.9, 0.99)]
        out.write(f"service interruption (s, {interruptions.len()} migrations): p50 {q[0]:.3f}  "
                  f"p90 {q[1]:.3f}  p99 {q[2]:.3f}\n")
