"""One table write — replace or merge — done in a single DuckDB transaction.

Columns are matched by name (never by position); columns the table lacks are added with
`ALTER TABLE ADD COLUMN`; columns the data lacks stay NULL for new rows (and keep their values for
merged rows). Any error rolls everything back, so the table keeps exactly its previous rows and
columns.

The primary-key rules live here and nowhere else: incoming rows are deduplicated on the key (the
last occurrence in input order wins), and rows with a null in the key are refused or, with
`NullKeys.SKIP`, left out and counted. The input's key columns are read once, in one narrow
aggregate (rows, rows without a key, distinct keys); the rows themselves are then read once, by the
INSERT. Only when the input repeats a key is there one more narrow pass, which finds the superseded
rows so the INSERT can leave them out (a window over whole wide rows would not fit a small
`memory_limit`).

DuckDB and the staging helpers are imported by the functions that run a write (Polars only for a
DataFrame the caller already has), so `TableWrite` and its enums stay plain Python: asset definitions
name them without loading either.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .catalog import Column, row_count, statement_count, table_columns
from .errors import InvalidWriteError
from .history import HistoryResult, plan_history, record_history
from .naming import TableName, quote_ident, quote_literal

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from .source import Source, SourceColumn

_E = TypeVar("_E", bound=StrEnum)

# DuckDB's write-ahead log (see `_set_checkpoint_policy`): incoming data above this many bytes is
# written into the file at COMMIT; smaller writes are logged until the log holds `_LOG_UP_TO`.
_WRITE_THROUGH_BYTES = 16 << 20
_LOG_UP_TO = "1GiB"


class WriteMode(StrEnum):
    """How a write treats the rows already in the table."""

    REPLACE = "replace"  # the table's rows become exactly the incoming rows (columns are kept)
    MERGE = "merge"  # upsert on the primary key: matched rows are updated, others inserted


class NullKeys(StrEnum):
    """What a write does with incoming rows that have a null in a primary-key column."""

    REFUSE = "refuse"  # refuse the whole write (`InvalidWriteError`); nothing changes
    SKIP = "skip"  # leave those rows out and count them in `WriteResult.rows_without_key`


@dataclass(frozen=True)
class TableWrite:
    """What to write to one table, and how.

    `data` is a polars DataFrame (possibly empty: it still creates or keeps the table's columns) or
    Parquet file paths sharing their columns (read from disk by DuckDB, never loaded into Python).
    `mode` and `null_keys` accept their enum or its string value. `column_types` gives DuckDB types
    for named columns (e.g. `{"attendees": "JSON", "start": "TIMESTAMPTZ"}`); other columns get a
    type from their Polars dtype; columns the table already has keep their existing type (values are
    cast to it). With a `primary_key`, incoming rows are deduplicated on it (last occurrence in
    input order wins: row order of a DataFrame, file then row order of Parquet paths), in both
    modes, and rows with a null key are handled as `null_keys` says.
    """

    data: pl.DataFrame | Sequence[str | Path]
    mode: WriteMode
    primary_key: tuple[str, ...] = ()
    column_types: Mapping[str, str] = field(default_factory=dict)
    null_keys: NullKeys = NullKeys.REFUSE
    # Among rows with the same key, the one with the greatest value here wins (then the last in input
    # order): parallel reads deliver rows out of order, and a row edited mid-read is seen twice.
    version_column: str | None = None
    # Constant columns that select this write's share of a shared table (e.g. `{"account": "acme"}`):
    # stored first in every row, leading the key, and a replace deletes only the rows that match them.
    scope: Mapping[str, str] = field(default_factory=dict)
    # "schema.table" of a versions table kept in step with this one in the same transaction
    # (`storage.history`); needs a primary key.
    history: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _member(WriteMode, self.mode, "write mode"))
        object.__setattr__(self, "null_keys", _member(NullKeys, self.null_keys, "null_keys"))
        key = (self.primary_key,) if isinstance(self.primary_key, str) else tuple(self.primary_key)
        object.__setattr__(self, "primary_key", key)  # accept a list or a bare column name
        object.__setattr__(self, "data", _normalized_data(self.data))
        if self.mode is WriteMode.MERGE and not key:
            raise InvalidWriteError("a merge needs a primary_key to match rows on; none was given")
        if self.history is not None and not key:
            raise InvalidWriteError("a history needs a primary_key to follow rows by; none was given")


@dataclass(frozen=True)
class TableWrites:
    """Several scoped writes to one table (one per account of a run), each its own transaction."""

    writes: tuple[TableWrite, ...]

    def __post_init__(self) -> None:
        if any(not write.scope for write in self.writes):
            raise InvalidWriteError("every write of a TableWrites needs a scope (e.g. {'account': name})")


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
    rows_without_key: int = 0  # incoming rows left out for a null key (`NullKeys.SKIP`)
    rows_deduplicated: int = 0  # incoming rows left out because a later row has the same key
    commit_retries: int = 0  # times the transaction was re-run after losing a commit race (DuckLake)
    history: HistoryResult | None = None  # what the write did to its history table, if it has one


@dataclass(frozen=True)
class KeyStats:
    """What one narrow pass over the incoming key columns found."""

    rows: int
    rows_without_key: int
    distinct_keys: int

    @property
    def superseded(self) -> int:
        """Rows with a key that a later row repeats (left out: the last occurrence wins)."""
        return self.rows - self.rows_without_key - self.distinct_keys


def execute_write(con: duckdb.DuckDBPyConnection, table: TableName, write: TableWrite) -> WriteResult:
    """Run `write` against `table` in one transaction; roll back and re-raise on any error."""
    [result] = execute_writes(con, [(table, write)])
    return result


def execute_writes(
    con: duckdb.DuckDBPyConnection, writes: Sequence[tuple[TableName, TableWrite]]
) -> list[WriteResult]:
    """Run several writes (to different tables) in ONE transaction: all of them land, or none does."""
    from .source import staged_source

    started = time.perf_counter()
    with contextlib.ExitStack() as staged:
        sources = []
        for _, write in writes:
            source = staged.enter_context(staged_source(con, write.data))
            _check_key_columns(write.primary_key, source)
            sources.append(source)
        _set_checkpoint_policy(con, sum(source.size_bytes for source in sources))
        con.execute("BEGIN TRANSACTION")
        try:
            results = []
            for (table, write), source in zip(writes, sources, strict=True):
                began = time.perf_counter()
                result = _write(con, table, write, source)
                result.seconds = time.perf_counter() - began
                results.append(result)
            _commit(con)
        except BaseException:
            _rollback(con)
            raise
    if len(results) == 1:
        results[0].seconds = time.perf_counter() - started
    return results


def _set_checkpoint_policy(con: duckdb.DuckDBPyConnection, incoming_bytes: int) -> None:
    """Log a small write; write a large one straight into the file at its COMMIT.

    DuckDB logs a committed transaction to its write-ahead log and copies the log into the file at a
    checkpoint: when the log passes `checkpoint_threshold`, or when the file closes. A transaction
    that DuckDB estimates (by rows and column widths) to be over the threshold skips the log: it is
    checkpointed at COMMIT. Small writes get a high threshold (a run writing its accounts one
    transaction each checkpoints once, when it closes, not every few accounts: 200 x 2,000 bookings,
    18.5 -> 6.5 s), large ones none (their rows are written once, not logged and then copied: 100,000
    bookings with history, 2.5 -> 1.7 s). A DuckLake catalog's commits do not use this log.
    """
    threshold = "0B" if incoming_bytes > _WRITE_THROUGH_BYTES else _LOG_UP_TO
    con.execute(f"SET checkpoint_threshold = {quote_literal(threshold)}")


def _commit(con: duckdb.DuckDBPyConnection) -> None:
    """COMMIT the write's transaction (a function of its own: crash tests wrap it to die right before)."""
    con.execute("COMMIT")


def _write(
    con: duckdb.DuckDBPyConnection, table: TableName, write: TableWrite, source: Source
) -> WriteResult:
    existing = table_columns(con, table)
    _check_scope(con, table, existing, write.scope, source)
    scope_targets = {col: _existing_or(existing, col, "VARCHAR") for col in write.scope}
    targets = _target_columns(source.schema, existing, write.column_types)
    select = {
        **{target: quote_literal(write.scope[col]) for col, (target, _) in scope_targets.items()},
        **{
            target: _cast_expression(col, source.schema[col].nested, type_)
            for col, (target, type_) in targets.items()
        },
    }
    targets = {**scope_targets, **targets}  # scope columns lead the table
    key = tuple(targets[col][0] for col in write.primary_key)
    # Ranked and checked on the cast values: "1" and "01" into a BIGINT key are one key. The scope is
    # one constant, so it takes no part in deduplicating the incoming rows, only in matching stored ones.
    key_exprs = [select[col] for col in key]
    key = tuple(target for target, _ in scope_targets.values()) + key
    scoped = " AND ".join(
        f"{quote_ident(target)} = {quote_literal(write.scope[col])}"
        for col, (target, _) in scope_targets.items()
    )
    stats = _key_stats(con, source, key_exprs)
    if stats.rows_without_key and write.null_keys is NullKeys.REFUSE:
        raise InvalidWriteError(
            f"refusing to write {table}: {stats.rows_without_key} row(s) have a null in primary key "
            f"{list(write.primary_key)}; nothing was written"
        )

    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(table.schema)}")
    added = _create_or_extend(con, table, existing, targets)
    inserted = updated = deleted = 0
    version = select[targets[write.version_column][0]] if write.version_column in targets else None
    with _incoming_rows(con, source, select, key_exprs, stats, version) as rows:
        planned = None
        if write.history is not None:  # before the rows change: what this write closes
            planned = plan_history(
                con,
                TableName.parse(write.history),
                table,
                key,
                scoped,
                rows,
                list(select),
                replace=write.mode is WriteMode.REPLACE,
            )
        if write.mode is WriteMode.REPLACE:
            where = f" WHERE {scoped}" if scoped else ""
            deleted = statement_count(con.execute(f"DELETE FROM {table.sql}{where}"))
            inserted = _insert(con, table, list(select), rows)
        else:
            updated, inserted = _merge(con, table, list(select), key, rows)
        merged = rows if write.mode is WriteMode.MERGE else None
        history = record_history(con, planned, merged) if planned is not None else None

    return WriteResult(
        table=str(table),
        mode=write.mode,
        rows_in_table=_scoped_count(con, table, scoped) if scoped else row_count(con, table),
        rows_written=inserted + updated,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_deleted=deleted,
        columns_added=added,
        columns=table_columns(con, table) or [],
        seconds=0.0,
        table_created=existing is None,
        rows_without_key=stats.rows_without_key,
        rows_deduplicated=stats.superseded,
        history=history,
    )


def _existing_or(existing: list[Column] | None, column: str, type_: str) -> tuple[str, str]:
    """The table's own spelling and type of `column` if it has one, else `(column, type_)`."""
    for name, existing_type in existing or []:
        if name.casefold() == column.casefold():
            return name, existing_type
    return column, type_


def _check_scope(
    con: duckdb.DuckDBPyConnection,
    table: TableName,
    existing: list[Column] | None,
    scope: Mapping[str, str],
    source: Source,
) -> None:
    """Refuse a scoped write that would mix with unscoped rows, or whose data has a scope column."""
    if not scope:
        return
    clash = [col for col in scope if col.casefold() in {name.casefold() for name in source.schema}]
    if clash:
        raise InvalidWriteError(f"the data has column(s) {clash}, which this write sets for its scope")
    have = {name.casefold() for name, _ in existing or []}
    missing = [col for col in scope if col.casefold() not in have]
    if existing is not None and missing:
        raise InvalidWriteError(
            f"{table} has no column(s) {missing} (it was written in single-account mode); "
            "point SCHED_DUCKDB_PATH at a new warehouse for many accounts, or drop the table"
        )


def _scoped_count(con: duckdb.DuckDBPyConnection, table: TableName, where: str) -> int:
    return statement_count(con.execute(f"SELECT count(*) FROM {table.sql} WHERE {where}"))


def _cast_expression(column: str, nested: bool, target_type: str) -> str:
    """SQL (without alias) that turns the incoming column into the target column's type.

    Strings become JSON/TIMESTAMPTZ through CAST, which validates them, so bad input fails the
    whole write (and rolls it back) instead of storing garbage. Nested values are serialized with
    `to_json` so they land as JSON text rather than DuckDB's list/struct repr.
    """
    ident = quote_ident(column)
    value = f"to_json({ident})" if nested else ident
    return f"CAST({value} AS {target_type})"


def _member(enum: type[_E], value: object, what: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = tuple(member.value for member in enum)
        raise InvalidWriteError(f"{what} must be one of {allowed}, got {value!r}") from None


def _normalized_data(data: object) -> pl.DataFrame | tuple[str | Path, ...]:
    from .source import is_polars_frame

    if isinstance(data, str | Path):
        return (data,)
    if isinstance(data, Sequence) and all(isinstance(p, str | Path) for p in data):
        return tuple(data)
    if is_polars_frame(data):
        return data  # type: ignore[return-value]
    lazy = type(data).__name__ == "LazyFrame" and type(data).__module__.startswith("polars")
    hint = " (collect it, or sink it to Parquet and pass the paths)" if lazy else ""
    raise InvalidWriteError(
        f"cannot write {type(data).__name__}{hint}; pass a polars DataFrame or Parquet file paths"
    )


def _check_key_columns(primary_key: tuple[str, ...], source: Source) -> None:
    missing = [col for col in primary_key if col not in source.schema]
    if missing:
        raise InvalidWriteError(f"primary key column(s) {missing} are not in the data {list(source.schema)}")


def _any_null(key_exprs: Sequence[str]) -> str:
    return " OR ".join(f"{expr} IS NULL" for expr in key_exprs)


def _key_stats(con: duckdb.DuckDBPyConnection, source: Source, key_exprs: Sequence[str]) -> KeyStats:
    """Rows, rows with a null key and distinct non-null keys, from one pass over the key columns only."""
    if not key_exprs:
        return KeyStats(rows=0, rows_without_key=0, distinct_keys=0)
    null = _any_null(key_exprs)
    rows, nulls, distinct = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {null}), "
        f"count(DISTINCT ({', '.join(key_exprs)})) FILTER (WHERE NOT ({null})) FROM {source.from_sql}"
    ).fetchall()[0]
    return KeyStats(rows=int(rows), rows_without_key=int(nulls), distinct_keys=int(distinct))


@contextlib.contextmanager
def _incoming_rows(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    select: Mapping[str, str],
    key_exprs: Sequence[str],
    stats: KeyStats,
    version: str | None = None,
) -> Iterator[str]:
    """A subquery of the cast incoming rows to store: one per key (its last occurrence), none without a key.

    Nothing is materialized when every key is unique (the usual case). Otherwise a temporary table
    holds just the input positions of the superseded rows (two integers each), found with a window
    over the key and position columns, and the rows are read with an anti-join on it.
    """
    exprs = ", ".join(f"{expr} AS {quote_ident(col)}" for col, expr in select.items())
    where = f" WHERE NOT ({_any_null(key_exprs)})" if stats.rows_without_key else ""
    if not stats.superseded:
        yield f"(SELECT {exprs} FROM {source.from_sql}{where})"
        return
    superseded = quote_ident(f"__sched_superseded_{uuid.uuid4().hex}")
    positions = [f"__sched_pos{i}" for i in range(len(source.order_columns))]
    order = ", ".join(
        [
            *([f"{version} DESC NULLS LAST"] if version else []),
            *(f"{col} DESC" for col in source.order_columns),
        ]
    )
    con.execute(
        f"CREATE TEMP TABLE {superseded} AS SELECT "
        + ", ".join(f"{col} AS {pos}" for col, pos in zip(source.order_columns, positions, strict=True))
        + f" FROM {source.from_sql}{where} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key_exprs)} ORDER BY {order}) > 1"
    )
    on = " AND ".join(
        f"__sched_s.{pos} = __sched_src.{col}"
        for col, pos in zip(source.order_columns, positions, strict=True)
    )
    yield (
        f"(SELECT {exprs} FROM {source.from_sql} AS __sched_src "
        f"ANTI JOIN {superseded} AS __sched_s ON {on}{where})"
    )
    con.execute(f"DROP TABLE {superseded}")  # skipped on error: the rollback drops it


def _target_columns(
    schema: Mapping[str, SourceColumn], existing: list[Column] | None, declared: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Incoming column -> (table column, DuckDB type). Existing columns keep their name and type.

    DuckDB identifiers are case-insensitive, so matching ignores case and reuses the table's spelling.
    """
    by_folded = {name.casefold(): (name, type_) for name, type_ in existing or []}
    targets: dict[str, tuple[str, str]] = {}
    for col, column in schema.items():
        match = by_folded.get(col.casefold())
        targets[col] = match if match else (col, declared.get(col) or column.new_type)
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


def _insert(con: duckdb.DuckDBPyConnection, table: TableName, columns: list[str], rows: str) -> int:
    names = ", ".join(quote_ident(name) for name in columns)
    return statement_count(con.execute(f"INSERT INTO {table.sql} ({names}) SELECT {names} FROM {rows}"))


def _merge(
    con: duckdb.DuckDBPyConnection, table: TableName, columns: list[str], key: tuple[str, ...], rows: str
) -> tuple[int, int]:
    """Upsert `rows` (one per key) on `key`; return (updated, inserted).

    When the incoming rows carry every column of the table, matched rows are deleted and re-inserted:
    DuckDB's wide UPDATE ... FROM holds every updated column of every row group in memory. Otherwise
    an UPDATE keeps the values of the columns the incoming data lacks. Counts assume the table's key
    is unique, which every write here keeps true.
    """
    match = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in key)
    names = ", ".join(quote_ident(name) for name in columns)
    values = ", ".join(f"s.{quote_ident(name)}" for name in columns)
    table_names = {name.casefold() for name, _ in table_columns(con, table) or []}
    if table_names <= {name.casefold() for name in columns}:
        updated = statement_count(
            con.execute(
                f"DELETE FROM {table.sql} AS t WHERE EXISTS (SELECT 1 FROM {rows} AS s WHERE {match})"
            )
        )
        total = statement_count(
            con.execute(f"INSERT INTO {table.sql} ({names}) SELECT {values} FROM {rows} AS s")
        )
        return updated, total - updated
    non_key = [name for name in columns if name not in key]
    if non_key:
        assignments = ", ".join(f"{quote_ident(name)} = s.{quote_ident(name)}" for name in non_key)
        updated = statement_count(
            con.execute(f"UPDATE {table.sql} AS t SET {assignments} FROM {rows} AS s WHERE {match}")
        )
    else:  # only key columns came in: a matched row has nothing to change
        updated = statement_count(
            con.execute(
                f"SELECT count(*) FROM {rows} AS s WHERE EXISTS (SELECT 1 FROM {table.sql} AS t WHERE {match})"
            )
        )
    inserted = statement_count(
        con.execute(
            f"INSERT INTO {table.sql} ({names}) SELECT {values} FROM {rows} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table.sql} AS t WHERE {match})"
        )
    )
    return updated, inserted


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    import duckdb

    # The original error matters more; closing the connection discards the transaction anyway.
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")
