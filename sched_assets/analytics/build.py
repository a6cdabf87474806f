"""Build one derived table in place: `CREATE OR REPLACE TABLE analytics.<name> AS <select>`.

With many accounts, one account's share instead: the same SELECT reads only that account's raw rows
and replaces only its rows of the shared table (`account` leading every row). The rows never leave
DuckDB. Everything runs in one transaction, so a failing SELECT (bad data, a missing raw table, out of
memory) rolls back and leaves the previous table exactly as it was. No Dagster here.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sched_assets.analytics.specs import TableSpec
from sched_assets.storage.catalog import Column, row_count, table_columns
from sched_assets.storage.naming import HISTORY_SCHEMA, RAW_SCHEMA, TableName, quote_ident, quote_literal

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class ScopedRows:
    """The rows of some accounts in a shared table, usable wherever SQL names a table (`.sql`)."""

    table: TableName
    column: str
    values: tuple[str, ...]

    @property
    def where(self) -> str:
        values = ", ".join(quote_literal(value) for value in self.values)
        return f"{quote_ident(self.column)} IN ({values})"

    @property
    def sql(self) -> str:
        return f"(SELECT * FROM {self.table.sql} WHERE {self.where})"


@dataclass(frozen=True)
class BuiltTable:
    """What a build left in the warehouse, as DuckDB reports it."""

    table: TableName
    row_count: int  # rows of `rows`
    columns: tuple[Column, ...]  # (name, DuckDB type) in table order
    seconds: float
    rows: TableName | ScopedRows  # what this build wrote: the whole table, or the accounts' rows of it


@dataclass(frozen=True)
class Scope:
    """One account's share of the shared tables: rows whose `column` equals `value`."""

    column: str
    value: str

    @property
    def where(self) -> str:
        return f"{quote_ident(self.column)} = {quote_literal(self.value)}"


# Every read of a source table in the analytics SQL is `FROM|JOIN raw.<table>` or `... history.<table>`.
_SOURCE_READ = re.compile(rf"\b(FROM|JOIN)\s+({RAW_SCHEMA}|{HISTORY_SCHEMA})\.(\w+)\b", re.IGNORECASE)


def scoped_select(select_sql: str, scope: Scope) -> str:
    """`select_sql` reading only the scope's rows of every source table (without the scope column)."""
    column = quote_ident(scope.column)

    def narrowed(match: re.Match[str]) -> str:
        keyword, schema, table = match.group(1), match.group(2), match.group(3)
        return f"{keyword} (SELECT * EXCLUDE ({column}) FROM {schema.lower()}.{table} WHERE {scope.where})"

    return _SOURCE_READ.sub(narrowed, select_sql)


def build_table(
    con: duckdb.DuckDBPyConnection,
    table: TableSpec,
    select_sql: str,
    scope: Scope | Sequence[Scope] | None = None,
) -> BuiltTable:
    """Replace `analytics.<table.name>` (or the scopes' rows of it) with `select_sql`, atomically.

    Several scopes (a run's accounts) share one transaction: one commit instead of one per account, and
    a failure leaves every account's previous rows.
    """
    scopes = [scope] if isinstance(scope, Scope) else None if scope is None else list(scope)
    if scopes == []:
        raise ValueError("build_table needs at least one scope (or None for the whole table)")
    name = table.table_name
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(name.schema)}")
        if scopes is None:
            con.execute(f"CREATE OR REPLACE TABLE {name.sql} AS {select_sql}")
            rows = row_count(con, name)
        else:
            rows = _replace_scopes(con, name, select_sql, scopes)
        # Read inside the transaction: what we report is exactly what we commit.
        columns = table_columns(con, name) or []
        con.execute("COMMIT")
    except BaseException:
        import duckdb  # loaded already: `con` is a DuckDB connection

        # An error inside DuckDB may already have ended the transaction; the original error matters.
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    return BuiltTable(
        table=name,
        row_count=rows,
        columns=tuple(columns),
        seconds=time.perf_counter() - started,
        rows=name if scopes is None else ScopedRows(name, scopes[0].column, tuple(s.value for s in scopes)),
    )


def _replace_scopes(
    con: duckdb.DuckDBPyConnection, name: TableName, select_sql: str, scopes: list[Scope]
) -> int:
    """Replace the scopes' rows of the shared table; create it, or add the columns it lacks, first."""

    def rows_sql(scope: Scope) -> str:
        return (
            f"SELECT {quote_literal(scope.value)} AS {quote_ident(scope.column)}, * "
            f"FROM ({scoped_select(select_sql, scope)})"
        )

    column = scopes[0].column
    existing = table_columns(con, name)
    if existing is not None and column.casefold() not in {c.casefold() for c, _ in existing}:
        raise ValueError(
            f"{name} has no {column} column (it was built in single-account mode); point "
            "SCHED_DUCKDB_PATH at a new warehouse for many accounts, or drop the table"
        )
    # The SELECT's columns do not depend on the scope: shape the table once, from the first.
    con.execute(f"CREATE TABLE IF NOT EXISTS {name.sql} AS {rows_sql(scopes[0])} LIMIT 0")
    have = {c.casefold() for c, _ in table_columns(con, name) or []}
    for new_column, type_, *_ in con.execute(f"DESCRIBE {rows_sql(scopes[0])}").fetchall():
        if str(new_column).casefold() not in have:  # a new version of the SELECT added a column
            con.execute(f"ALTER TABLE {name.sql} ADD COLUMN {quote_ident(new_column)} {type_}")
    where = ScopedRows(name, column, tuple(s.value for s in scopes)).where
    con.execute(f"DELETE FROM {name.sql} WHERE {where}").fetchall()
    for scope in scopes:
        con.execute(f"INSERT INTO {name.sql} BY NAME {rows_sql(scope)}").fetchall()
    [(rows,)] = con.execute(f"SELECT count(*) FROM {name.sql} WHERE {where}").fetchall()
    return int(rows)
