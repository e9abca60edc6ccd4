"""``mcxa messages`` output: the contract's JSONL fields, a terminal table, CSV and Parquet.

Rows are built in one place (``message_row``) so every format carries the same fields, in the order
``../shared/contract/README.md`` lists them, followed by the extra fields we add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO

from analyzer.base import times
from analyzer.messages.records import Message
from analyzer.report import tables

#: Contract fields first (their order is the contract's), then additions.
COLUMNS = ("frame", "time", "proto", "kind", "method", "status", "call_id", "cseq", "src", "dst",
           "transport", "uri", "content_type", "reason", "frames", "framing", "reply_to", "time_iso")


def message_row(m: Message) -> dict:
    return {"frame": m.frame, "time": m.time, "proto": m.proto, "kind": m.kind, "method": m.method,
            "status": m.status, "call_id": m.call_id, "cseq": m.cseq, "src": m.src, "dst": m.dst,
            "transport": m.transport, "uri": m.uri, "content_type": m.content_type, "reason": m.reason,
            "frames": list(m.frames), "framing": m.framing, "reply_to": m.reply_to,
            "time_iso": times.iso_utc(m.time)}


def write_jsonl(messages: Iterable[Message], out: IO[str]) -> None:
    tables.write_jsonl(map(message_row, messages), out)


def write_table(messages: Iterable[Message], out: IO[str]) -> None:
    """One line per message, streamed (a capture can hold millions), aligned for a terminal."""
    fmt = times.current()
    stamp, width = fmt.rows(), fmt.width
    out.write(f"{'frame':>7}  {'time':<{width}} {'src':<22} {'dst':<22} {'proto':<5} summary\n")
    for m in messages:
        when = stamp(m.time, m.frame)
        if m.kind == "request":
            summary = f"{m.method} {m.uri}"
        else:
            summary = f"{m.status} {m.reason or ''}".rstrip()
            if m.cseq:
                summary += f" ({m.cseq})"
        proto = m.proto.upper() if m.framing is None else f"{m.proto.upper()}/WS"
        out.write(f"{m.frame:>7}  {when:<{width}} {m.src:<22} {m.dst:<22} {proto:<5} {summary}\n")


def _table(messages: Iterable[Message]):
    import polars as pl

    return tables.frame(map(message_row, messages), COLUMNS,
                        {"frame": pl.Int64, "time": pl.Float64, "status": pl.Int64, "reply_to": pl.Int64,
                         "frames": pl.List(pl.Int64)})


def write_csv(messages: Iterable[Message], out: IO[str]) -> None:
    tables.write_csv(_table(messages), out)


def write_parquet(messages: Iterable[Message], path: str) -> None:
    tables.write_parquet(_table(messages), path)


#: --format → (writer, needs a file path rather than a text stream)
WRITERS: dict[str, tuple[Callable, bool]] = {
    "table": (write_table, False),
    "jsonl": (write_jsonl, False),
    "csv": (write_csv, False),
    "parquet": (write_parquet, True),
}
