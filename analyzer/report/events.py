"""``mcxa events`` output: one row per event, with the UE session it belongs to."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from analyzer.base import times
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.meaning.events import Event
from analyzer.report import tables

COLUMNS = ("frame", "time", "ue", "kind", "direction", "outcome", "status", "system", "service", "identity",
           "impu", "group", "peer", "detail", "migration", "call_id", "ue_address", "server", "instance",
           "client_id", "end", "frames", "all_frames", "transition", "impi", "via", "evidence", "time_iso")


def event_row(e: Event, ue: str | None) -> dict:
    return {"frame": e.frame, "time": e.time, "ue": ue, "kind": e.kind, "direction": e.direction,
            "outcome": e.outcome, "status": e.status, "system": e.system, "service": e.service,
            "identity": e.identity, "impu": e.impu, "group": e.group, "peer": e.peer, "detail": e.detail,
            "migration": e.migration, "call_id": e.call_id, "ue_address": e.ue_address, "server": e.server,
            "instance": e.instance, "client_id": e.client_id, "end": e.end, "frames": list(e.frames),
            "all_frames": list(e.all_frames), "transition": e.transition, "impi": e.impi,
            "via": e.via, "evidence": e.evidence, "time_iso": times.iso_utc(e.time)}


def _rows(analysis: CaptureAnalysis, keep: Callable[[dict], bool]):
    session = analysis.session_of()
    return (row for e in analysis.events if keep(row := event_row(e, session.get(id(e)))))


def write_table(analysis: CaptureAnalysis, out: IO[str], keep) -> None:
    fmt = times.current()
    stamp, width = fmt.rows(), fmt.width
    out.write(f"{'frame':>7}  {'time':<{width}} {'ue':<4} {'system':<16} {'event':<25} {'outcome':<9} "
              "subject\n")
    for row in _rows(analysis, keep):
        subject = row["group"] or row["peer"] or row["identity"] or row["impu"] or ""
        note = f"  [{row['detail']}]" if row["detail"] else ""
        arrow = "←" if row["direction"] == "to-ue" else "→"
        outcome = row["outcome"] if row["status"] is None else f"{row['outcome']} {row['status']}"
        system = (row["system"] or "-")[:16]
        out.write(f"{row['frame']:>7}  {stamp(row['time'], row['frame']):<{width}} {row['ue'] or '-':<4} "
                  f"{system:<16} {arrow} {row['kind']:<23} {outcome:<9} {subject}{note}\n")


def _table(analysis: CaptureAnalysis, keep):
    import polars as pl

    return tables.frame(_rows(analysis, keep), COLUMNS,
                        {"frame": pl.Int64, "time": pl.Float64, "status": pl.Int64, "end": pl.Float64,
                         "migration": pl.Boolean, "frames": pl.List(pl.Int64),
                         "all_frames": pl.List(pl.Int64)})


WRITERS: dict[str, tuple[Callable, bool]] = {
    "table": (write_table, False),
    "jsonl": (lambda a, out, keep: tables.write_jsonl(_rows(a, keep), out), False),
    "csv": (lambda a, out, keep: tables.write_csv(_table(a, keep), out), False),
    "parquet": (lambda a, path, keep: tables.write_parquet(_table(a, keep), path), True),
}
