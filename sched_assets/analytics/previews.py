"""Small markdown previews of the derived tables: the rows a person wants to see first in the UI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import polars as pl

PREVIEW_ROWS = 10


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, date | datetime):
        return value.isoformat()
    # Pipes and newlines would break the table row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> str:
    """Render `frame` (all rows, chosen columns) as a GitHub-flavoured markdown table."""
    columns = list(columns or frame.columns)
    if frame.is_empty():
        return "_no rows_"
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.select(columns).iter_rows()]
    return "\n".join(lines)


def busiest_days(utilization: pl.DataFrame, limit: int = PREVIEW_ROWS) -> str:
    """The schedule-days with the highest utilization (days without availability last, by minutes)."""
    top = utilization.sort(
        ["utilization", "booked_minutes", "date"], descending=[True, True, False], nulls_last=True
    ).head(limit)
    return "**Busiest days**\n\n" + markdown_table(
        top.with_columns((pl.col("utilization") * 100).round(1).alias("utilization_pct")),
        [
            "schedule_id",
            "date",
            "booked_minutes",
            "available_minutes",
            "utilization_pct",
            "bookings_accepted",
        ],
    )


def most_cancelled(stats: pl.DataFrame, limit: int = PREVIEW_ROWS) -> str:
    """The event types with the most cancelled or rejected bookings."""
    top = stats.filter(pl.col("cancelled") > 0).sort(
        ["cancelled", "cancellation_rate", "event_type_id"], descending=[True, True, False], nulls_last=True
    )
    return "**Most cancellations**\n\n" + markdown_table(
        top.head(limit).with_columns((pl.col("cancellation_rate") * 100).round(1).alias("cancellation_pct")),
        ["event_type_id", "title", "cancelled", "bookings_total", "cancellation_pct"],
    )


def top_values(frame: pl.DataFrame, column: str, title: str, limit: int = PREVIEW_ROWS) -> str:
    """The most frequent values of one column, with their row counts."""
    counts = frame.group_by(column).len(name="rows").sort(["rows", column], descending=[True, False])
    return f"**{title}**\n\n" + markdown_table(counts.head(limit), [column, "rows"])


def head(frame: pl.DataFrame, title: str, limit: int = PREVIEW_ROWS) -> str:
    """The first rows of a frame under a title."""
    return f"**{title}**\n\n" + markdown_table(frame.head(limit))
