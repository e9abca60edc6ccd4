"""Row tables in every machine format: JSONL, CSV and Parquet (via polars). One writer per format,
shared by every command that prints records; a command supplies its columns and a row function."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO

import orjson


def to_json(row: dict) -> str:
    """One JSON object on one line. orjson is ~15x faster than json here, which shows on big captures;
    json takes the rare string orjson refuses (lone surrogates)."""
    try:
        return orjson.dumps(row).decode()
    except orjson.JSONEncodeError:
        return json.dumps(row, ensure_ascii=False)


def write_jsonl(rows: Iterable[dict], out: IO[str]) -> None:
    write = out.write
    for row in rows:
        write(to_json(row) + "\n")


def frame(rows: Iterable[dict], columns: tuple[str, ...], types: dict):
    """A polars DataFrame of ``rows`` with ``columns``; ``types`` gives non-string column dtypes."""
    import polars as pl

    data: dict[str, list] = {name: [] for name in columns}
    for row in rows:
        for name in columns:
            data[name].append(row.get(name))
    return pl.DataFrame(data, schema={n: types.get(n, pl.Utf8) for n in columns})


def write_csv(table, out: IO[str]) -> None:
    """CSV cannot hold lists: list columns are joined with spaces."""
    import polars as pl

    lists = [name for name, dtype in table.schema.items() if isinstance(dtype, pl.List)]
    out.write(table.with_columns(pl.col(n).cast(pl.List(pl.Utf8)).list.join(" ") for n in lists).write_csv())


def write_parquet(table, path: str) -> None:
    table.write_parquet(path)
