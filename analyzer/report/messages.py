"""``mcxa messages`` output: the contract's JSONL fields, a terminal table, CSV and Parquet.

Rows are built in one place (``message_row``) so every format carries the same fields, in the order
``../shared/contract/README.md`` lists them, followed by the extra fields we add.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import IO

from analyzer.base import times
from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message
from analyzer.report import tables

#: Contract fields first (their order is the contract's), then additions.
COLUMNS = ("frame", "time", "proto", "kind", "method", "status", "call_id", "cseq", "src", "dst",
           "transport", "uri", "content_type", "reason", "frames", "framing", "reply_to", "time_iso", "ssrc",
           "subtype", "ack_requested", "fields")


def message_row(m: Message | FloorMessage) -> dict:
    """One row; a media-plane control message has ``kind`` "control", its message name (floor-granted,
    connect ...) as ``method``, and its sender SSRC, subtype and decoded fields added."""
    if isinstance(m, FloorMessage):
        return {"frame": m.frame, "time": m.time, "proto": m.proto, "kind": "control", "method": m.message,
                "status": None, "call_id": None, "cseq": None, "src": m.src, "dst": m.dst,
                "transport": m.transport, "uri": None, "content_type": None, "reason": None,
                "frames": list(m.frames), "framing": None, "reply_to": None,
                "time_iso": times.iso_utc(m.time),
                "ssrc": m.ssrc, "subtype": m.subtype, "ack_requested": m.ack_requested,
                "fields": dict(m.fields)}
    return {"frame": m.frame, "time": m.time, "proto": m.proto, "kind": m.kind, "method": m.method,
            "status": m.status, "call_id": m.call_id, "cseq": m.cseq, "src": m.src, "dst": m.dst,
            "transport": m.transport, "uri": m.uri, "content_type": m.content_type, "reason": m.reason,
            "frames": list(m.frames), "framing": m.framing, "reply_to": m.reply_to,
            "time_iso": times.iso_utc(m.time), "ssrc": None, "subtype": None, "ack_requested": None,
            "fields": None}


def write_jsonl(messages: Iterable[Message | FloorMessage], out: IO[str]) -> None:
    tables.write_jsonl(map(message_row, messages), out)


def write_table(messages: Iterable[Message | FloorMessage], out: IO[str]) -> None:
    """One line per message, streamed (a capture can hold millions), aligned for a terminal."""
    fmt = times.current()
    stamp, width = fmt.rows(), fmt.width
    out.write(f"{'frame':>7}  {'time':<{width}} {'src':<22} {'dst':<22} {'proto':<5} summary\n")
    for m in messages:
        when = stamp(m.time, m.frame)
        if isinstance(m, FloorMessage):
            summary = floor_summary(m)
            out.write(f"{m.frame:>7}  {when:<{width}} {m.src:<22} {m.dst:<22} {m.name:<5} {summary}\n")
            continue
        if m.kind == "request":
            summary = f"{m.method} {m.uri}"
        else:
            summary = f"{m.status} {m.reason or ''}".rstrip()
            if m.cseq:
                summary += f" ({m.cseq})"
        proto = m.proto.upper() if m.framing is None else f"{m.proto.upper()}/WS"
        out.write(f"{m.frame:>7}  {when:<{width}} {m.src:<22} {m.dst:<22} {proto:<5} {summary}\n")


def floor_title(m: FloorMessage) -> str:
    """``Floor Granted``, ``MCPC Connect``, ``MCV0 3``: the message's name for people."""
    title = m.message.replace("-", " ").title()
    return title if m.name == "MCPT" else f"{m.name} {title.split(' ', 1)[-1] if m.name != 'MCPC' else title}"


def floor_summary(m: FloorMessage) -> str:
    """``Floor Granted (ack) ssrc=0x1f2e user_id=sip:alice@...``: a line for tables and ladders."""
    words = [floor_title(m)]
    if m.ack_requested:
        words.append("(ack)")
    words.extend(f"{name}={value}" for name, value in m.fields if not str(value).startswith("0x"))
    return " ".join(words)


def _table(messages: Iterable[Message | FloorMessage]):
    import polars as pl

    def flat(m) -> dict:  # a table cell holds the decoded fields as their JSON text
        row = message_row(m)
        if row["fields"] is not None:
            row["fields"] = json.dumps(row["fields"], ensure_ascii=False)
        return row

    return tables.frame(map(flat, messages), COLUMNS,
                        {"frame": pl.Int64, "time": pl.Float64, "status": pl.Int64, "reply_to": pl.Int64,
                         "frames": pl.List(pl.Int64), "ssrc": pl.Int64, "subtype": pl.Int64,
                         "ack_requested": pl.Boolean})


def write_csv(messages: Iterable[Message | FloorMessage], out: IO[str]) -> None:
    tables.write_csv(_table(messages), out)


def write_parquet(messages: Iterable[Message | FloorMessage], path: str) -> None:
    tables.write_parquet(_table(messages), path)


#: --format → (writer, needs a file path rather than a text stream)
WRITERS: dict[str, tuple[Callable, bool]] = {
    "table": (write_table, False),
    "jsonl": (write_jsonl, False),
    "csv": (write_csv, False),
    "parquet": (write_parquet, True),
}
