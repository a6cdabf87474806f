"""One table write — replace or merge — done in a single DuckDB transaction.

Columns are matched by name (never by position); columns the table lacks are added with
`ALTER TABLE ADD COLUMN`; columns the data lacks stay NULL for new rows (and keep their values for
merged rows). Any error rolls everything back, so the table keeps exactly its previous rows and
columns.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from .catalog import Column, row_count, table_columns
from .errors import InvalidWriteError
from .naming import TableName, quote_ident
from .source import Source, staged_source
from .types import cast_expression, duckdb_type

WriteMode = Literal["replace", "merge"]
WRITE_MODES: tuple[WriteMode, ...] = ("replace", "merge")

# Test-only hook: when set to a path, `write` creates that file and sleeps inside the open
# transaction (after the data is in, before COMMIT) so a crash-safety test can kill -9 the process.
PAUSE_ENV_VAR = "SCHED_TEST_PAUSE_IN_WRITE"
PAUSE_SECONDS = 30.0


@dataclass(frozen=True)
class TableWrite:
    """What to write to one table, and how.

    `data` is a DataFrame, a LazyFrame (streamed to disk, never collected), or Parquet file paths
    sharing their columns (ingested from disk). `column_types` gives DuckDB types for named columns
    (e.g. `{"attendees": "JSON", "start": "TIMESTAMPTZ"}`); other columns get a type from their
    Polars dtype; columns the table already has keep their existing type (values are cast to it).
    With a `primary_key`, incoming rows are deduplicated on it (last occurrence wins) and rows with
    a null key are refused, in both modes.
    """

    data: pl.DataFrame | pl.LazyFrame | Sequence[str | Path]
    mode: WriteMode
    primary_key: tuple[str, ...] = ()
    column_types: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in WRITE_MODES:
            raise InvalidWriteError(f"write mode must be one of {WRITE_MODES}, got {self.mode!r}")
        key = (self.primary_key,) if isinstance(self.primary_key, str) else tuple(self.primary_key)
        object.__setattr__(self, "primary_key", key)  # accept a list or a bare column name
        if self.mode == "merge" and not key:
            raise InvalidWriteError("a merge needs a primary_key to match rows on; none was given")


@dataclass
class WriteResult:
    """What a write did, for logs and asset metadata."""

    table: str
    mode: WriteMode
    rows_in_table: int
    rows_written: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    columns_added: list[str]
    columns: list[Column]
    seconds: float
    table_created: bool = False


def execute_write(con: duckdb.DuckDBPyConnection, table: TableName, write: TableWrite) -> WriteResult:
    """Run `write` against `table` in one transaction; roll back and re-raise on any error."""
    started = time.perf_counter()
    with staged_source(con, write.data) as source:
        _check_key_columns(write.primary_key, source)
        con.execute("BEGIN TRANSACTION")
        try:
            result = _write(con, table, write, source)
            _pause_if_testing()
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
    result.seconds = time.perf_counter() - started
    return result


def _write(
    con: duckdb.DuckDBPyConnection, table: TableName, write: TableWrite, source: Source
) -> WriteResult:
    _refuse_null_keys(con, write.primary_key, source)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(table.schema)}")
    existing = table_columns(con, table)
    targets = _target_columns(source.schema, existing, write.column_types)
    added = _create_or_extend(con, table, existing, targets)
    select = {
        target: cast_expression(col, source.schema[col], type_) for col, (target, type_) in targets.items()
    }
    key = tuple(targets[col][0] for col in write.primary_key)

    inserted = updated = deleted = 0
    if write.mode == "replace":
        deleted = _count(con.execute(f"DELETE FROM {table.sql}"))
        if key:
            with _deduplicated(con, select, key, source) as stage:
                inserted = _insert_all(con, table, list(select), stage)
        else:
            inserted = _insert_select(con, table, select, source.from_sql)
    else:
        with _deduplicated(con, select, key, source) as stage:
            updated, inserted = _merge(con, table, list(select), key, stage)

    return WriteResult(
        table=str(table),
        mode=write.mode,
        rows_in_table=row_count(con, table),
        rows_written=inserted + updated,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_deleted=deleted,
        columns_added=added,
        columns=table_columns(con, table) or [],
        seconds=0.0,
        table_created=existing is None,
    )


def _check_key_columns(primary_key: tuple[str, ...], source: Source) -> None:
    missing = [col for col in primary_key if col not in source.schema]
    if missing:
        raise InvalidWriteError(f"primary key column(s) {missing} are not in the data {list(source.schema)}")


def _refuse_null_keys(con: duckdb.DuckDBPyConnection, primary_key: tuple[str, ...], source: Source) -> None:
    if not primary_key:
        return
    any_null = " OR ".join(f"{quote_ident(col)} IS NULL" for col in primary_key)
    nulls = _count(con.execute(f"SELECT count(*) FROM {source.from_sql} WHERE {any_null}"))
    if nulls:
        raise InvalidWriteError(
            f"refusing to write: {nulls} row(s) have a null in primary key {list(primary_key)}; nothing was written"
        )


def _target_columns(
    schema: Mapping[str, pl.DataType], existing: list[Column] | None, declared: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Incoming column -> (table column, DuckDB type). Existing columns keep their name and type.

    DuckDB identifiers are case-insensitive, so matching ignores case and reuses the table's spelling.
    """
    by_folded = {name.casefold(): (name, type_) for name, type_ in existing or []}
    targets: dict[str, tuple[str, str]] = {}
    for col, dtype in schema.items():
        match = by_folded.get(col.casefold())
        targets[col] = match if match else (col, declared.get(col) or duckdb_type(dtype, col))
    return targets


def _create_or_extend(
    con: duckdb.DuckDBPyConnection,
    table: TableName,
    existing: list[Column] | None,
    targets: Mapping[str, tuple[str, str]],
) -> list[str]:
    """Create the table, or add the columns it lacks; return the names of added columns."""
    if existing is None:
        columns = ", ".join(f"{quote_ident(name)} {type_}" for name, type_ in targets.values())
        con.execute(f"CREATE TABLE {table.sql} ({columns})")
        return []
    known = {name for name, _ in existing}
    added = [(name, type_) for name, type_ in targets.values() if name not in known]
    for name, type_ in added:
        con.execute(f"ALTER TABLE {table.sql} ADD COLUMN {quote_ident(name)} {type_}")
    return [name for name, _ in added]


def _insert_select(
    con: duckdb.DuckDBPyConnection, table: TableName, select: Mapping[str, str], from_sql: str
) -> int:
    names = ", ".join(quote_ident(name) for name in select)
    exprs = ", ".join(f"{expr} AS {quote_ident(name)}" for name, expr in select.items())
    return _count(con.execute(f"INSERT INTO {table.sql} ({names}) SELECT {exprs} FROM {from_sql}"))


def _insert_all(con: duckdb.DuckDBPyConnection, table: TableName, columns: list[str], stage: str) -> int:
    names = ", ".join(quote_ident(name) for name in columns)
    return _count(con.execute(f"INSERT INTO {table.sql} ({names}) SELECT {names} FROM {stage}"))


@contextlib.contextmanager
def _deduplicated(
    con: duckdb.DuckDBPyConnection, select: Mapping[str, str], key: tuple[str, ...], source: Source
) -> Iterator[str]:
    """A temporary table of the cast incoming rows, one per key (its last occurrence in the input).

    Casting before ranking means two spellings of one key (e.g. "1" and "01" into BIGINT) count as one.
    """
    name = quote_ident(f"__sched_stage_{uuid.uuid4().hex}")
    exprs = ", ".join(f"{expr} AS {quote_ident(col)}" for col, expr in select.items())
    partition = ", ".join(select[col] for col in key)
    rows, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT ({partition})) FROM {source.from_sql}"
    ).fetchall()[0]
    if rows == distinct:
        # Already one row per key (the usual case): a view avoids materializing every row in memory.
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {exprs} FROM {source.from_sql}")
        yield name
        con.execute(f"DROP VIEW {name}")
        return
    order = ", ".join(f"{col} DESC" for col in source.order_columns)
    names = ", ".join(quote_ident(col) for col in select)
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT {names} FROM ("
        f"SELECT {exprs}, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS __sched_rank "
        f"FROM {source.from_sql}) WHERE __sched_rank = 1"
    )
    yield name
    con.execute(f"DROP TABLE {name}")  # skipped on error: the rollback drops it


def _merge(
    con: duckdb.DuckDBPyConnection, table: TableName, columns: list[str], key: tuple[str, ...], stage: str
) -> tuple[int, int]:
    """Upsert the staged rows on `key`; return (updated, inserted).

    When the incoming rows carry every column of the table, matched rows are deleted and re-inserted:
    DuckDB's wide UPDATE ... FROM holds every updated column of every row group in memory. Otherwise
    an UPDATE keeps the values of the columns the incoming data lacks.
    """
    match = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in key)
    updated = _count(
        con.execute(
            f"SELECT count(*) FROM {stage} AS s WHERE EXISTS (SELECT 1 FROM {table.sql} AS t WHERE {match})"
        )
    )
    names = ", ".join(quote_ident(name) for name in columns)
    values = ", ".join(f"s.{quote_ident(name)}" for name in columns)
    table_names = {name.casefold() for name, _ in table_columns(con, table) or []}
    if table_names <= {name.casefold() for name in columns}:
        if updated:
            con.execute(
                f"DELETE FROM {table.sql} AS t WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {match})"
            )
        total = _count(con.execute(f"INSERT INTO {table.sql} ({names}) SELECT {values} FROM {stage} AS s"))
        return updated, total - updated
    non_key = [name for name in columns if name not in key]
    if updated and non_key:
        assignments = ", ".join(f"{quote_ident(name)} = s.{quote_ident(name)}" for name in non_key)
        con.execute(f"UPDATE {table.sql} AS t SET {assignments} FROM {stage} AS s WHERE {match}")
    inserted = _count(
        con.execute(
            f"INSERT INTO {table.sql} ({names}) SELECT {values} FROM {stage} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table.sql} AS t WHERE {match})"
        )
    )
    return updated, inserted


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    """The single number a DML statement or count(*) returns.

    `fetchall`, not `fetchone`: duckdb 2.x keeps a result "unfinished" until a fetch comes back
    empty, and an unfinished result blocks `register`/`sql` on the connection.
    """
    rows = cursor.fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # The original error matters more; closing the connection discards the transaction anyway.
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _pause_if_testing() -> None:
    """Test-only crash hook, see PAUSE_ENV_VAR. Never set it in production."""
    marker = os.environ.get(PAUSE_ENV_VAR)
    if marker:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(PAUSE_SECONDS)
