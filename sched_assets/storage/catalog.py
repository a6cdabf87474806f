"""Questions about what is in the database: which tables and columns exist, with which types."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from .naming import TableName

Column = tuple[str, str]  # (name, DuckDB type as DuckDB reports it, e.g. "TIMESTAMP WITH TIME ZONE")


def table_columns(con: duckdb.DuckDBPyConnection, table: TableName) -> list[Column] | None:
    """The table's columns in table order, or None when the table does not exist."""
    rows = con.execute(
        """
        SELECT column_name, data_type
        FROM duckdb_columns()
        WHERE database_name = current_database() AND schema_name = ? AND table_name = ?
        ORDER BY column_index
        """,
        [table.schema, table.name],
    ).fetchall()
    return [(str(name), str(type_)) for name, type_ in rows] or None


def row_count(con: duckdb.DuckDBPyConnection, table: TableName) -> int:
    """Number of rows in an existing table."""
    rows = con.execute(f"SELECT count(*) FROM {table.sql}").fetchall()  # fetchall finishes the result
    return int(rows[0][0])


def statement_count(cursor: duckdb.DuckDBPyConnection) -> int:
    """The single number a DML statement or count(*) returns.

    `fetchall`, not `fetchone`: duckdb 2.x keeps a result "unfinished" until a fetch comes back
    empty, and an unfinished result blocks `register`/`sql` on the connection.
    """
    rows = cursor.fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
