"""Build one derived table in place: `CREATE OR REPLACE TABLE analytics.<name> AS <select>`.

The rows never leave DuckDB. Everything runs in one transaction, so a failing SELECT (bad data, a
missing raw table, out of memory) rolls back and leaves the previous table exactly as it was.
No Dagster here.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sched_assets.analytics.specs import TableSpec
from sched_assets.storage.catalog import Column, row_count, table_columns
from sched_assets.storage.naming import TableName, quote_ident

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class BuiltTable:
    """What a build left in the warehouse, as DuckDB reports it."""

    table: TableName
    row_count: int
    columns: tuple[Column, ...]  # (name, DuckDB type) in table order
    seconds: float


def build_table(con: duckdb.DuckDBPyConnection, table: TableSpec, select_sql: str) -> BuiltTable:
    """Replace `analytics.<table.name>` with the result of `select_sql`, atomically."""
    name = table.table_name
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(name.schema)}")
        con.execute(f"CREATE OR REPLACE TABLE {name.sql} AS {select_sql}")
        # Read inside the transaction: what we report is exactly what we commit.
        columns = table_columns(con, name) or []
        rows = row_count(con, name)
        con.execute("COMMIT")
    except BaseException:
        import duckdb  # loaded already: `con` is a DuckDB connection

        # An error inside DuckDB may already have ended the transaction; the original error matters.
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    return BuiltTable(
        table=name, row_count=rows, columns=tuple(columns), seconds=time.perf_counter() - started
    )
