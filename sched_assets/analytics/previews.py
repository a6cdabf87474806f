"""Small markdown previews of the derived tables: the rows a person wants to see first in the UI.

Each preview is a short SQL query (sorted and limited inside DuckDB), so only the shown rows reach
Python, whatever the size of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from sched_assets.storage.naming import quote_ident

if TYPE_CHECKING:
    import duckdb


class Relation(Protocol):
    """A table, or a subquery of some of its rows: anything SQL can read `FROM`."""

    @property
    def sql(self) -> str: ...


PREVIEW_ROWS = 10


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float | Decimal):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, date | datetime):
        return value.isoformat()
    # Pipes and newlines would break the table row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows (in `columns` order) as a GitHub-flavoured markdown table."""
    if not rows:
        return "_no rows_"
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_query(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Run a small query and render its whole result as a markdown table (keep it LIMITed)."""
    cursor = con.execute(sql)
    rows = cursor.fetchall()
    return markdown_table([column[0] for column in cursor.description or ()], rows)


def busiest_days(con: duckdb.DuckDBPyConnection, table: Relation, limit: int = PREVIEW_ROWS) -> str:
    """The schedule-days with the highest utilization (days without availability last, by minutes)."""
    return "**Busiest days**\n\n" + markdown_query(
        con,
        f"""
        SELECT schedule_id, date, booked_minutes, available_minutes,
            round(utilization * 100, 1) AS utilization_pct, bookings_accepted
        FROM {table.sql}
        ORDER BY utilization DESC NULLS LAST, booked_minutes DESC NULLS LAST, date NULLS LAST
        LIMIT {int(limit)}
        """,
    )


def most_cancelled(con: duckdb.DuckDBPyConnection, table: Relation, limit: int = PREVIEW_ROWS) -> str:
    """The event types with the most cancelled or rejected bookings."""
    return "**Most cancellations**\n\n" + markdown_query(
        con,
        f"""
        SELECT event_type_id, title, cancelled, bookings_total,
            round(cancellation_rate * 100, 1) AS cancellation_pct
        FROM {table.sql}
        WHERE cancelled > 0
        ORDER BY cancelled DESC, cancellation_rate DESC NULLS LAST, event_type_id
        LIMIT {int(limit)}
        """,
    )


def top_values(
    con: duckdb.DuckDBPyConnection, table: Relation, column: str, title: str, limit: int = PREVIEW_ROWS
) -> str:
    """The most frequent values of one column (NULL counts as a value), with their row counts."""
    value = quote_ident(column)
    return f"**{title}**\n\n" + markdown_query(
        con,
        f"""
        SELECT {value}, count(*) AS "rows" FROM {table.sql}
        GROUP BY {value}
        ORDER BY "rows" DESC, {value} NULLS FIRST
        LIMIT {int(limit)}
        """,
    )


def head(con: duckdb.DuckDBPyConnection, sql: str, title: str, limit: int = PREVIEW_ROWS) -> str:
    """The first rows of `sql` (a SELECT ending in its ORDER BY) under a title.

    LIMIT goes on the query itself: an ORDER BY inside a subquery need not survive the outer query.
    """
    return f"**{title}**\n\n" + markdown_query(con, f"{sql}\nLIMIT {int(limit)}")
