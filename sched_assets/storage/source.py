"""Expose a write's data to DuckDB as something to SELECT from, without loading large inputs in Python.

- DataFrame: registered with DuckDB as an Arrow table (zero-copy); column types from its Polars dtypes.
- Parquet files: read straight from disk with `read_parquet([...])`, matched by column name; column
  types from DuckDB's view of the files, so the sync's writes never import Polars.

Every source also offers ordering columns that follow the input's row order, so "last
occurrence wins" deduplication is exact even with `preserve_insertion_order=false`.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidWriteError
from .naming import quote_ident, quote_literal

if TYPE_CHECKING:
    import duckdb

ORDINAL_COLUMN = "__sched_ordinal"
_ROW_NUMBER = "file_row_number"
# `file_index` is a DuckDB virtual column; the row number is asked for as a real one: DuckLake crashes
# on a DELETE whose subquery reads the virtual `file_row_number` (a name DuckLake uses itself).
_PARQUET_ORDER = ("file_index", _ROW_NUMBER)


@dataclass(frozen=True)
class SourceColumn:
    """One incoming column: the DuckDB type a new table column gets, and whether its values are nested
    (lists, structs: stored as JSON text)."""

    new_type: str
    nested: bool = False


@dataclass(frozen=True)
class Source:
    """Incoming data as DuckDB sees it."""

    from_sql: str  # usable after FROM
    schema: Mapping[str, SourceColumn]  # the data's own columns, in input order
    order_columns: tuple[str, ...]  # ascending = input order; later rows sort last
    size_bytes: int = 0  # about how much data: the files' sizes, or the frame's in memory


@contextlib.contextmanager
def staged_source(con: duckdb.DuckDBPyConnection, data: Any) -> Iterator[Source]:
    """Make `data` (a Polars DataFrame or Parquet paths) readable by `con` for the block, then clean up."""
    if isinstance(data, Sequence) and not isinstance(data, str):
        yield _parquet_source(con, list(data))
    elif is_polars_frame(data):
        with _dataframe_source(con, data) as source:
            yield source
    else:
        raise InvalidWriteError(
            f"cannot write {type(data).__name__}; pass a polars DataFrame or Parquet paths"
        )


def is_polars_frame(data: object) -> bool:
    """Whether `data` is a Polars DataFrame, without importing Polars (if it is not loaded, it is not one)."""
    pl = sys.modules.get("polars")
    return pl is not None and isinstance(data, pl.DataFrame)


@contextlib.contextmanager
def _dataframe_source(con: duckdb.DuckDBPyConnection, frame: Any) -> Iterator[Source]:
    from .types import duckdb_type, is_nested

    _check_columns(frame.columns)
    view = f"__sched_src_{uuid.uuid4().hex}"
    schema = {
        name: SourceColumn(duckdb_type(dtype, name), is_nested(dtype)) for name, dtype in frame.schema.items()
    }
    con.register(view, frame.with_row_index(ORDINAL_COLUMN).to_arrow())
    try:
        yield Source(quote_ident(view), schema, (quote_ident(ORDINAL_COLUMN),), frame.estimated_size())
    finally:
        con.unregister(view)


def _parquet_source(con: duckdb.DuckDBPyConnection, paths: list[str | Path]) -> Source:
    if not paths:
        raise InvalidWriteError(
            "no Parquet files given; to write an empty table pass an empty DataFrame with its columns"
        )
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InvalidWriteError(f"Parquet file(s) not found: {', '.join(missing)}")
    size = sum(Path(p).stat().st_size for p in paths)
    files = [_columns(con, _read_parquet_sql([p])) for p in paths]  # footers only, no data
    first = files[0]
    for path, columns in zip(paths[1:], files[1:], strict=True):
        if set(columns) != set(first):
            raise InvalidWriteError(
                f"Parquet files must share their columns: {paths[0]} has {sorted(first)}, "
                f"{path} has {sorted(columns)}"
            )
    _check_columns(list(first))
    # Types over all files: a column that is all-null in the first file may be typed in a later one.
    from_sql = _read_parquet_sql(paths)
    merged = _columns(con, from_sql)
    return Source(from_sql, {name: _parquet_column(merged[name]) for name in first}, _PARQUET_ORDER, size)


def _columns(con: duckdb.DuckDBPyConnection, from_sql: str) -> dict[str, str]:
    """The data columns of the files (without the row number `_read_parquet_sql` adds)."""
    rows = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {from_sql})").fetchall()
    return {name: type_ for name, type_ in rows if name != _ROW_NUMBER}


def _parquet_column(type_: str) -> SourceColumn:
    nested = type_.endswith("]") or type_.startswith(("STRUCT", "MAP", "UNION"))
    if nested:
        return SourceColumn("JSON", nested=True)
    # An all-null column says nothing about its type; text loses nothing.
    return SourceColumn({"NULL": "VARCHAR", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(type_, type_))


def _read_parquet_sql(paths: Sequence[str | Path]) -> str:
    files = ", ".join(quote_literal(str(Path(p).absolute())) for p in paths)
    return f"read_parquet([{files}], union_by_name = true, file_row_number = true)"


def _check_columns(columns: list[str]) -> None:
    if not columns:
        raise InvalidWriteError("the data has no columns")
    for reserved in (ORDINAL_COLUMN, _ROW_NUMBER):
        if reserved in columns:
            raise InvalidWriteError(f"column name {reserved!r} is reserved by the storage layer")
    folded = [c.casefold() for c in columns]
    if len(set(folded)) != len(folded):
        raise InvalidWriteError(f"column names must be unique ignoring case (DuckDB rule): {columns}")
