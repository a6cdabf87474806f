"""Expose a write's data to DuckDB as something to SELECT from, without loading large inputs in Python.

- DataFrame: registered with DuckDB as an Arrow table (zero-copy).
- Parquet files: read straight from disk with `read_parquet([...])`, matched by column name.

Every source also offers ordering columns that follow the input's row order, so "last
occurrence wins" deduplication is exact even with `preserve_insertion_order=false`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from .errors import InvalidWriteError
from .naming import quote_ident, quote_literal

ORDINAL_COLUMN = "__sched_ordinal"
_PARQUET_ORDER = ("file_index", "file_row_number")  # DuckDB virtual columns


@dataclass(frozen=True)
class Source:
    """Incoming data as DuckDB sees it."""

    from_sql: str  # usable after FROM
    schema: Mapping[str, pl.DataType]  # the data's own columns, in input order
    order_columns: tuple[str, ...]  # ascending = input order; later rows sort last


SourceData = pl.DataFrame | Sequence[str | Path]


@contextlib.contextmanager
def staged_source(con: duckdb.DuckDBPyConnection, data: SourceData) -> Iterator[Source]:
    """Make `data` readable by `con` for the duration of the block, then clean up."""
    if isinstance(data, pl.DataFrame):
        with _dataframe_source(con, data) as source:
            yield source
    elif isinstance(data, Sequence) and not isinstance(data, str):
        yield _parquet_source(list(data))
    else:
        raise InvalidWriteError(
            f"cannot write {type(data).__name__}; pass a polars DataFrame or Parquet paths"
        )


@contextlib.contextmanager
def _dataframe_source(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> Iterator[Source]:
    _check_columns(frame.columns)
    view = f"__sched_src_{uuid.uuid4().hex}"
    con.register(view, frame.with_row_index(ORDINAL_COLUMN).to_arrow())
    try:
        yield Source(quote_ident(view), dict(frame.schema), (quote_ident(ORDINAL_COLUMN),))
    finally:
        con.unregister(view)


def _parquet_source(paths: list[str | Path]) -> Source:
    if not paths:
        raise InvalidWriteError(
            "no Parquet files given; to write an empty table pass an empty DataFrame with its columns"
        )
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InvalidWriteError(f"Parquet file(s) not found: {', '.join(missing)}")
    schemas = [pl.read_parquet_schema(p) for p in paths]  # footers only, no data
    first = schemas[0]
    for path, schema in zip(paths[1:], schemas[1:], strict=True):
        if set(schema) != set(first):
            raise InvalidWriteError(
                f"Parquet files must share their columns: {paths[0]} has {sorted(first)}, "
                f"{path} has {sorted(schema)}"
            )
    _check_columns(list(first))
    # A column that is all-null in the first file may be typed in a later one.
    merged = {
        name: next((s[name] for s in schemas if s[name] != pl.Null), dtype) for name, dtype in first.items()
    }
    return Source(_read_parquet_sql(paths), merged, _PARQUET_ORDER)


def _read_parquet_sql(paths: Sequence[str | Path]) -> str:
    files = ", ".join(quote_literal(str(Path(p).absolute())) for p in paths)
    return f"read_parquet([{files}], union_by_name = true)"


def _check_columns(columns: list[str]) -> None:
    if not columns:
        raise InvalidWriteError("the data has no columns")
    if ORDINAL_COLUMN in columns:
        raise InvalidWriteError(f"column name {ORDINAL_COLUMN!r} is reserved by the storage layer")
    folded = [c.casefold() for c in columns]
    if len(set(folded)) != len(folded):
        raise InvalidWriteError(f"column names must be unique ignoring case (DuckDB rule): {columns}")
