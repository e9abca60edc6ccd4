"""``mcxa messages`` output: the contract's JSONL fields, a terminal table, CSV and Parquet.

Rows are built in one place (``message_row``) so every format carries the same fields, in the order
``../shared/contract/README.md`` lists them, followed by the extra fields we add.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable, Iterable
from typing import IO

import orjson

from analyzer.messages.records import Message

#: Contract fields first (their order is the contract's), then additions.
COLUMNS = ("frame", "time", "proto", "kind", "method", "status", "call_id", "cseq", "src", "dst",
           "transport", "uri", "content_type", "reason", "frames", "framing", "reply_to")


def message_row(m: Message) -> dict:
    return {"frame": m.frame, "time": m.time, "proto": m.proto, "kind": m.kind, "method": m.method,
            "status": m.status, "call_id": m.call_id, "cseq": m.cseq, "src": m.src, "dst": m.dst,
            "transport": m.transport, "uri": m.uri, "content_type": m.content_type, "reason": m.reason,
            "frames": list(m.frames), "framing": m.framing, "reply_to": m.reply_to}


def to_json(row: dict) -> str:
    """One JSON object on one line. orjson is ~15x faster than json here, which shows on big captures;
    json takes the rare string orjson refuses (lone surrogates)."""
    try:
        return orjson.dumps(row).decode()
    except orjson.JSONEncodeError:
        return json.dumps(row, ensure_ascii=False)


def write_jsonl(messages: Iterable[Message], out: IO[str]) -> None:
    write = out.write
    for m in messages:
        write(to_json(message_row(m)) + "\n")


def write_table(messages: Iterable[Message], out: IO[str]) -> None:
    """One line per message, streamed (a capture can hold millions), aligned for a terminal."""
    out.write(f"{'frame':>7}  {'time':<15} {'src':<22} {'dst':<22} {'proto':<5} summary\n")
    for m in messages:
        clock = _time.strftime("%H:%M:%S", _time.gmtime(m.time)) + f".{int(m.time * 1000) % 1000:03d}"
        if m.kind == "request":
            summary = f"{m.method} {m.uri}"
        else:
            summary = f"{m.status} {m.reason or ''}".rstrip()
            if m.cseq:
                summary += f" ({m.cseq})"
        proto = m.proto.upper() if m.framing is None else f"{m.proto.upper()}/WS"
        out.write(f"{m.frame:>7}  {clock:<15} {m.src:<22} {m.dst:<22} {proto:<5} {summary}\n")


def _frame(messages: Iterable[Message]):
    import polars as pl

    columns: dict[str, list] = {name: [] for name in COLUMNS}
    for m in messages:
        for name, value in message_row(m).items():
            columns[name].append(value)
    schema = {"frame": pl.Int64, "time": pl.Float64, "status": pl.Int64, "reply_to": pl.Int64,
              "frames": pl.List(pl.Int64)}
    return pl.DataFrame(columns, schema={n: schema.get(n, pl.Utf8) for n in COLUMNS})


def write_csv(messages: Iterable[Message], out: IO[str]) -> None:
    import polars as pl

    table = _frame(messages).with_columns(
        pl.col("frames").cast(pl.List(pl.Utf8)).list.join(" "))
    out.write(table.write_csv())


def write_parquet(messages: Iterable[Message], path: str) -> None:
    _frame(messages).write_parquet(path)


#: --format → (writer, needs a file path rather than a text stream)
WRITERS: dict[str, tuple[Callable, bool]] = {
    "table": (write_table, False),
    "jsonl": (write_jsonl, False),
    "csv": (write_csv, False),
    "parquet": (write_parquet, True),
}
