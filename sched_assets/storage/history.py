"""Every version of a table's rows (type-2 history), kept in step with the table inside its write.

`history.<name>` is a view of two tables and the table itself:

- `history._<name>_closed`: every version that ended (its row changed, or left the table), with the
  table's columns plus `valid_from` and `valid_to`;
- the table's own rows are the current versions (`valid_to` null), each dated by
  `history._<name>_current` (the key and `valid_from`). A current version is stored once, in the
  table: a first sync writes keys and dates, not a second copy of every row.

A write with a history runs in one transaction, in two steps around the change of the table's rows:

- `plan_history`, before: the stored rows that this write changes (fields compared by a 64-bit hash,
  per key; `_synced_at` is not compared, so a row re-read unchanged adds nothing) or removes (a replace
  that no longer has them) are set aside, whole;
- `record_history`, after: they become closed versions (`valid_to` = the new row's `_synced_at`, or
  the transaction's time for a removed row), and every row without a current date gets one (its
  `_synced_at`): new rows, changed rows, and rows of a table whose history was turned on later.

New columns of the table appear in the history (null in older versions). A history table of the
earlier layout (every version stored, `history.<name>` a table) is converted in the first write.
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
_CLOSING = "_sched_history_closing"  # temp table: the stored rows this write closes, whole
_NEXT = "_sched_next_synced_at"  # ... and the `_synced_at` of the row that replaces each (null: removed)
_DATES = "_sched_history_dates"  # temp table: the current dates of a few keys
_TOUCHED = "_sched_history_touched"  # temp table: the keys a merge stored


@dataclass(frozen=True)
class HistoryResult:
    """What one write did to the history."""

    table: str
    versions_added: int
    versions_closed: int  # superseded by a new version, or the row was deleted
    versions_in_table: int  # all versions (of the write's scope)
    current_versions: int  # open versions (`valid_to` null) of the write's scope


@dataclass(frozen=True)
class HistoryTables:
    """The view and the two tables behind one history."""

    view: TableName

    @property
    def closed(self) -> TableName:
        return TableName(self.view.schema, f"_{self.view.name}_closed")

    @property
    def current(self) -> TableName:
        return TableName(self.view.schema, f"_{self.view.name}_current")


@dataclass(frozen=True)
class PlannedHistory:
    """What `plan_history` found before the write; `record_history` finishes it after."""

    tables: HistoryTables
    table: TableName
    key: tuple[str, ...]
    scoped: str  # " AND (...)" on unqualified columns, or ""
    closing: bool  # whether the temp table of closing rows exists


def plan_history(
    con: duckdb.DuckDBPyConnection,
    history: TableName,
    table: TableName,
    key: Sequence[str],
    scope_where: str,
    incoming: str,
    incoming_columns: Sequence[str],
    replace: bool,
) -> PlannedHistory:
    """Before the write changes `table`'s rows: set aside the stored rows it changes or removes.

    `incoming` is the subquery of the rows the write stores (one per key, cast to the table's types),
    with `incoming_columns`; `replace` says whether the write replaces the rows of its scope
    (`scope_where`, SQL on unqualified columns) or merges into them. Runs inside the caller's
    transaction, after the table was created or given its new columns.
    """
    columns = table_columns(con, table) or []
    if SYNCED_AT not in {name for name, _ in columns}:
        raise InvalidWriteError(f"{table} has no {SYNCED_AT} column: its history cannot date versions")
    tables = HistoryTables(history)
    key = tuple(key)
    _prepare(con, tables, table, columns, key)
    scoped = f" AND ({scope_where})" if scope_where else ""
    stored = con.execute(f"SELECT 1 FROM {table.sql} WHERE true{scoped} LIMIT 1").fetchall()
    if not stored:  # nothing to close (a first sync): the incoming rows are not read here
        return PlannedHistory(tables, table, key, scoped, closing=False)
    # A merge keeps the stored values of columns it does not bring: only the ones it brings can change.
    # A replace sets the others to null.
    present = {name.casefold() for name in incoming_columns}
    compared = [
        (name, type_)
        for name, type_ in columns
        if name != SYNCED_AT and (replace or name.casefold() in present)
    ]
    old = ", ".join(quote_ident(name) for name, _ in compared)
    new = ", ".join(
        quote_ident(name) if name.casefold() in present else f"CAST(NULL AS {type_})"
        for name, type_ in compared
    )
    keys = ", ".join(quote_ident(k) for k in key)
    on = _matching(key, "o", "n")
    # Keys and hashes only in the join, so it stays small however wide the rows are.
    changed = f"n.{quote_ident(key[0])} IS NULL OR o._h <> n._h" if replace else "o._h <> n._h"
    on_row = _matching(key, "t", "c")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_CLOSING} AS SELECT t.*, c.{_NEXT} FROM {table.sql} t JOIN ("
        f"SELECT o.*, n.{SYNCED_AT} AS {_NEXT} FROM (SELECT {keys}, hash({old}) AS _h FROM {table.sql} "
        f"WHERE true{scoped}) o {'LEFT ' if replace else ''}JOIN (SELECT {keys}, hash({new}) AS _h, "
        f"coalesce({SYNCED_AT}, now()) AS {SYNCED_AT} FROM {incoming}) n ON {on} WHERE {changed}"
        f") c ON {on_row}"  # the key leads with the scope's columns: only the write's scope matches
    )
    return PlannedHistory(tables, table, key, scoped, closing=True)


def record_history(
    con: duckdb.DuckDBPyConnection, planned: PlannedHistory, merged: str | None = None
) -> HistoryResult:
    """After the write changed the table's rows: close the set-aside versions, date the new ones.

    `merged` is the subquery of the rows a merge stored (None for a replace). Only those rows can be
    new or changed, so only their keys are looked up: no join holds every key of a large table.
    """
    tables, table, scoped = planned.tables, planned.table, planned.scoped
    closed = _close(con, planned) if planned.closing else 0
    [(old_versions, current)] = con.execute(
        f"SELECT (SELECT count(*) FROM {tables.closed.sql} WHERE true{scoped}), "
        f"(SELECT count(*) FROM {table.sql} WHERE true{scoped})"
    ).fetchall()
    added = _date(con, planned, merged, int(current))
    return HistoryResult(str(tables.view), added, closed, int(old_versions + current), int(current))


def _close(con: duckdb.DuckDBPyConnection, planned: PlannedHistory) -> int:
    """The set-aside rows become closed versions, dated from their current date (if they had one)."""
    tables, on = planned.tables, _matching(planned.key, "c", "d")
    began = f"coalesce(d.{VALID_FROM}, c.{SYNCED_AT})"
    # The closing rows' dates first (the join builds on the few closing keys), then the wide rows
    # join that small table: a join with the current table would hash every key it holds.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_DATES} AS SELECT d.* FROM {tables.current.sql} d "
        f"SEMI JOIN {_CLOSING} c ON {on}"
    )
    closed = statement_count(
        con.execute(
            f"INSERT INTO {tables.closed.sql} BY NAME SELECT c.* EXCLUDE ({_NEXT}) REPLACE "
            f"({began} AS {SYNCED_AT}), {began} AS {VALID_FROM}, coalesce(c.{_NEXT}, now()) AS "
            f"{VALID_TO} FROM {_CLOSING} c LEFT JOIN {_DATES} d ON {on}"
        )
    )
    con.execute(f"DELETE FROM {tables.current.sql} AS d WHERE EXISTS (SELECT 1 FROM {_DATES} c WHERE {on})")
    _drop_temporary(con, _CLOSING, _DATES)
    return closed


def _drop_temporary(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop the write's temp tables once done. Not on an error: the rollback drops them, and a
    statement in the failed transaction would replace its error with "transaction is aborted"."""
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _date(con: duckdb.DuckDBPyConnection, planned: PlannedHistory, merged: str | None, rows: int) -> int:
    """Give every row of the write's scope (`rows` of them) without a current date one (its `_synced_at`)."""
    tables, table, scoped = planned.tables, planned.table, planned.scoped
    keys = ", ".join(quote_ident(k) for k in planned.key)
    insert = (
        f"INSERT INTO {tables.current.sql} ({keys}, {VALID_FROM}) SELECT {keys}, "
        f"coalesce({SYNCED_AT}, now()) FROM {table.sql} r WHERE true{scoped}"
    )
    [(dated,)] = con.execute(f"SELECT count(*) FROM {tables.current.sql} WHERE true{scoped}").fetchall()
    if not dated:  # a first sync: every row is new
        return statement_count(con.execute(insert))
    on = _matching(planned.key, "r", "d")
    added = 0
    if merged is not None:
        # A merge can only have added or changed the rows it stored: look up just their keys.
        touched = _matching(planned.key, "r", "t")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS SELECT {keys} FROM {merged}")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_DATES} AS SELECT {keys} FROM {tables.current.sql} r "
            f"SEMI JOIN {_TOUCHED} t ON {touched}"
        )
        added = statement_count(
            con.execute(
                f"{insert} AND EXISTS (SELECT 1 FROM {_TOUCHED} t WHERE {touched}) "
                f"AND NOT EXISTS (SELECT 1 FROM {_DATES} d WHERE {on})"
            )
        )
        _drop_temporary(con, _TOUCHED, _DATES)
        if dated + added == rows:  # every row has its date (the dated keys are the table's): the usual case
            return added
    # A replace, or rows of the scope without a date (written while the history was off): look up all.
    return added + statement_count(
        con.execute(f"{insert} AND NOT EXISTS (SELECT 1 FROM {tables.current.sql} d WHERE {on})")
    )


def _matching(key: Sequence[str], left: str, right: str) -> str:
    """SQL that `left` and `right` (aliases) have the same key."""
    return " AND ".join(f"{left}.{quote_ident(k)} = {right}.{quote_ident(k)}" for k in key)


def _prepare(
    con: duckdb.DuckDBPyConnection,
    tables: HistoryTables,
    table: TableName,
    columns: list[Column],
    key: tuple[str, ...],
) -> None:
    """Create the history's tables and view, convert an earlier layout, add the table's new columns."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(tables.view.schema)}")
    closed = table_columns(con, tables.closed)
    if closed is not None:
        _add_columns(con, tables.closed, closed, columns)
        return
    earlier = table_columns(con, tables.view)
    if earlier is not None:
        _add_columns(con, tables.view, earlier, columns)
        _convert_earlier_layout(con, tables, table, columns, key)
    else:
        defined = ", ".join(f"{quote_ident(name)} {type_}" for name, type_ in columns)
        con.execute(
            f"CREATE TABLE {tables.closed.sql} ({defined}, {VALID_FROM} TIMESTAMPTZ NOT NULL, "
            f"{VALID_TO} TIMESTAMPTZ)"
        )
        types = dict(columns)
        defined_key = ", ".join(f"{quote_ident(k)} {types[k]}" for k in key)
        con.execute(f"CREATE TABLE {tables.current.sql} ({defined_key}, {VALID_FROM} TIMESTAMPTZ NOT NULL)")
    _create_view(con, tables, table, key)


def _add_columns(
    con: duckdb.DuckDBPyConnection, target: TableName, existing: list[Column], columns: list[Column]
) -> None:
    have = {name.casefold() for name, _ in existing}
    for name, type_ in columns:
        if name.casefold() not in have:
            con.execute(f"ALTER TABLE {target.sql} ADD COLUMN {quote_ident(name)} {type_}")


def _convert_earlier_layout(
    con: duckdb.DuckDBPyConnection,
    tables: HistoryTables,
    table: TableName,
    columns: list[Column],
    key: tuple[str, ...],
) -> None:
    """`history.<name>` as a table of every version -> closed versions and current dates.

    An open version that no longer equals its row (the table was written without its history since)
    is closed now, as the earlier layout's next write would have done; the row gets a new date.
    """
    fields = [quote_ident(name) for name, _ in columns if name != SYNCED_AT]
    on = _matching(key, "r", "v")
    row, version = (", ".join(f"{alias}.{name}" for name in fields) for alias in ("r", "v"))
    same = f"EXISTS (SELECT 1 FROM {table.sql} r WHERE {on} AND hash({row}) = hash({version}))"
    old = tables.view.sql
    con.execute(
        f"CREATE TABLE {tables.closed.sql} AS SELECT * FROM {old} v WHERE {VALID_TO} IS NOT NULL "
        f"UNION ALL SELECT * REPLACE (now() AS {VALID_TO}) FROM {old} v WHERE {VALID_TO} IS NULL AND NOT {same}"
    )
    keys = ", ".join(quote_ident(k) for k in key)
    con.execute(
        f"CREATE TABLE {tables.current.sql} AS SELECT {keys}, {VALID_FROM} FROM {old} v "
        f"WHERE {VALID_TO} IS NULL AND {same}"
    )
    con.execute(f"DROP TABLE {old}")


def _create_view(
    con: duckdb.DuckDBPyConnection, tables: HistoryTables, table: TableName, key: tuple[str, ...]
) -> None:
    """Closed versions, then the table's rows dated by the current table (`*`: new columns follow)."""
    on = _matching(key, "r", "d")
    began = f"coalesce(d.{VALID_FROM}, r.{SYNCED_AT})"
    con.execute(
        f"CREATE VIEW {tables.view.sql} AS SELECT * FROM {tables.closed.sql} UNION ALL BY NAME "
        f"SELECT r.* REPLACE ({began} AS {SYNCED_AT}), {began} AS {VALID_FROM}, "
        f"NULL::TIMESTAMPTZ AS {VALID_TO} FROM {table.sql} r LEFT JOIN {tables.current.sql} d ON {on}"
    )
