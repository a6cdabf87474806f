"""Every version of a table's rows (type-2 history), kept in step with the table inside its write.

After a write to `raw.<table>`, `record_history` compares the table's rows (the write's scope of them)
with the current versions in the history table, in the same transaction:

- a row whose stored fields differ from its current version (or that has none) gets a new version
  (fields compared by a 64-bit hash of them all, per key),
  `valid_from` = its `_synced_at`; the version it replaces is closed at that time;
- a current version whose row is gone from the table (a full refresh no longer saw it) is closed at
  the transaction's time;
- a row re-read unchanged (the incremental lag window) adds nothing: `_synced_at` is not compared.

The comparison covers the whole table each time, so history catches up by itself (the first write
after it is turned on records every row) and never depends on what one write touched. New columns of
the table appear in the history table (null in older versions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .catalog import Column, statement_count, table_columns
from .errors import InvalidWriteError
from .naming import TableName, quote_ident

if TYPE_CHECKING:
    import duckdb

VALID_FROM, VALID_TO = "valid_from", "valid_to"
SYNCED_AT = "_synced_at"  # when the row was written; not a field of the record, so never compared
_CHANGED = "_sched_history_changed"  # temp table of this write's new versions


@dataclass(frozen=True)
class HistoryResult:
    """What one write did to the history table."""

    table: str
    versions_added: int
    versions_closed: int  # superseded by a new version, or the row was deleted
    versions_in_table: int  # all versions (of the write's scope)
    current_versions: int  # open versions (`valid_to` null) of the write's scope


def record_history(
    con: duckdb.DuckDBPyConnection,
    history: TableName,
    table: TableName,
    key: Sequence[str],
    scope_where: str = "",
) -> HistoryResult:
    """Bring `history` in step with `table` (rows matching `scope_where`, SQL on unqualified columns).

    Runs inside the caller's transaction: the caller commits both tables, or neither.
    """
    columns = table_columns(con, table) or []
    names = [name for name, _ in columns]
    if SYNCED_AT not in names:
        raise InvalidWriteError(f"{table} has no {SYNCED_AT} column: its history cannot date versions")
    _create_or_extend(con, history, columns)
    scoped = f" AND ({scope_where})" if scope_where else ""
    [(open_versions,)] = con.execute(
        f"SELECT count(*) FROM {history.sql} WHERE {VALID_TO} IS NULL{scoped}"
    ).fetchall()
    if open_versions:
        added, closed = _record_changes(con, history, table, names, key, scoped)
    else:  # nothing to compare with (the first write): every row is a first version
        added = statement_count(
            con.execute(
                f"INSERT INTO {history.sql} BY NAME SELECT *, coalesce({SYNCED_AT}, now()) AS {VALID_FROM}, "
                f"NULL::TIMESTAMPTZ AS {VALID_TO} FROM {table.sql} WHERE true{scoped}"
            )
        )
        closed = 0
    [(versions, current)] = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {VALID_TO} IS NULL) FROM {history.sql} WHERE true{scoped}"
    ).fetchall()
    return HistoryResult(str(history), added, closed, int(versions), int(current))


def _record_changes(
    con: duckdb.DuckDBPyConnection,
    history: TableName,
    table: TableName,
    names: list[str],
    key: Sequence[str],
    scoped: str,
) -> tuple[int, int]:
    """New versions for changed and new rows, closed ones for changed and deleted rows: (added, closed)."""
    keys = ", ".join(quote_ident(k) for k in key)
    # One 64-bit hash of the stored fields per row: the join holds keys and hashes, not whole rows,
    # so it stays small within the write's memory limit however wide the rows are.
    fields = ", ".join(quote_ident(name) for name in names if name != SYNCED_AT)
    on = " AND ".join(f"r.{quote_ident(k)} = h.{quote_ident(k)}" for k in key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_CHANGED} AS SELECT r.* EXCLUDE (_h) FROM (SELECT {keys}, "
        f"coalesce({SYNCED_AT}, now()) AS {SYNCED_AT}, hash({fields}) AS _h FROM {table.sql} WHERE true{scoped}) r "
        f"LEFT JOIN (SELECT {keys}, hash({fields}) AS _h FROM {history.sql} WHERE {VALID_TO} IS NULL{scoped}) h "
        f"ON {on} WHERE h.{quote_ident(key[0])} IS NULL OR r._h <> h._h"
    )
    try:
        on_target = " AND ".join(f"t.{quote_ident(k)} = c.{quote_ident(k)}" for k in key)
        superseded = statement_count(
            con.execute(
                f"UPDATE {history.sql} AS t SET {VALID_TO} = c.{SYNCED_AT} FROM {_CHANGED} c "
                f"WHERE t.{VALID_TO} IS NULL AND {on_target}"
            )
        )
        on_table = " AND ".join(f"r.{quote_ident(k)} = t.{quote_ident(k)}" for k in key)
        deleted = statement_count(
            con.execute(
                f"UPDATE {history.sql} AS t SET {VALID_TO} = now() WHERE t.{VALID_TO} IS NULL{scoped} "
                f"AND NOT EXISTS (SELECT 1 FROM {table.sql} r WHERE {on_table})"
            )
        )
        on_changed = " AND ".join(f"r.{quote_ident(k)} = c.{quote_ident(k)}" for k in key)
        added = statement_count(
            con.execute(
                f"INSERT INTO {history.sql} BY NAME SELECT r.*, c.{SYNCED_AT} AS {VALID_FROM}, "
                f"NULL::TIMESTAMPTZ AS {VALID_TO} FROM {table.sql} r JOIN {_CHANGED} c ON {on_changed}"
            )
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_CHANGED}")
    return added, superseded + deleted


def _create_or_extend(con: duckdb.DuckDBPyConnection, history: TableName, columns: list[Column]) -> None:
    """The history table has the table's columns (in its order, new ones appended) plus the validity."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(history.schema)}")
    existing = table_columns(con, history)
    if existing is None:
        defined = ", ".join(f"{quote_ident(name)} {type_}" for name, type_ in columns)
        con.execute(
            f"CREATE TABLE {history.sql} ({defined}, {VALID_FROM} TIMESTAMPTZ NOT NULL, {VALID_TO} TIMESTAMPTZ)"
        )
        return
    have = {name.casefold() for name, _ in existing}
    for name, type_ in columns:
        if name.casefold() not in have:
            con.execute(f"ALTER TABLE {history.sql} ADD COLUMN {quote_ident(name)} {type_}")
