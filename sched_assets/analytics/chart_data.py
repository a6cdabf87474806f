"""The few values the asset-page charts need, read from a derived table with SQL (no Dagster here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sched_assets.analytics.build import ScopedRows
from sched_assets.analytics.charts import EventTypeBar, UtilizationPoint
from sched_assets.storage.naming import quote_ident

if TYPE_CHECKING:
    import duckdb

    from sched_assets.storage.naming import TableName


def utilization_points(
    con: duckdb.DuckDBPyConnection, rows: TableName | ScopedRows
) -> list[UtilizationPoint]:
    """One point per schedule-day of `analytics.booking_utilization_daily` (its rows `rows`), the
    schedule labelled by its name (and account, with several accounts)."""
    scoped = isinstance(rows, ScopedRows) and len(rows.values) > 1
    account = quote_ident(rows.column) if isinstance(rows, ScopedRows) else None
    same_account = f" AND s.{account} = u.{account}" if account else ""
    label = "coalesce(s.name, 'schedule ' || u.schedule_id)"
    if scoped:
        label = f"u.{account} || ': ' || {label}"
    result = con.execute(
        f"SELECT {label}, u.date, u.booked_minutes, u.available_minutes FROM {rows.sql} AS u "
        f"LEFT JOIN raw.schedules AS s ON s.id = u.schedule_id{same_account}"
    ).fetchall()
    return [
        UtilizationPoint(str(name), day, float(booked or 0), float(available or 0))
        for name, day, booked, available in result
    ]


def event_type_bars(con: duckdb.DuckDBPyConnection, rows: TableName | ScopedRows) -> list[EventTypeBar]:
    """One bar per event type of `analytics.event_type_stats` (its rows `rows`)."""
    label = "coalesce(title, 'event type ' || event_type_id)"
    result = con.execute(f"SELECT {label}, bookings_total, cancellation_rate FROM {rows.sql}").fetchall()
    return [EventTypeBar(str(name), int(total), rate) for name, total, rate in result]
