"""Derived assets (schema `analytics`): one asset per table, built in place inside DuckDB.

The SQL lives in `sched_assets.analytics` (no Dagster there). Each asset takes the warehouse's write
connection (which holds the cross-process lock), replaces `analytics.<name>` with
`CREATE OR REPLACE TABLE ... AS SELECT` in one transaction, and reports row count, column schema and a
preview, all computed by SQL. No row passes through Python, and no IO manager is involved: the assets
return a `MaterializeResult` without a value.
"""

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import dagster as dg

from sched_assets.accounts import ACCOUNT_COLUMN
from sched_assets.analytics import SELECTS, previews
from sched_assets.analytics.build import BuiltTable, Scope, ScopedRows, build_table
from sched_assets.analytics.chart_data import event_type_bars, utilization_points
from sched_assets.analytics.charts import (
    EVENT_TYPE_TITLE,
    UTILIZATION_TITLE,
    event_type_chart,
    png_markdown,
    utilization_chart,
)
from sched_assets.analytics.specs import (
    BOOKING_ATTENDEES,
    BOOKING_CHANGES,
    BOOKING_UTILIZATION_DAILY,
    EVENT_TYPE_STATS,
    SCHEDULE_OVERRIDES,
    SCHEDULE_WINDOWS,
    TableSpec,
)
from sched_assets.defs.keys import analytics_key
from sched_assets.defs.partitions import run_accounts
from sched_assets.storage.catalog import table_columns
from sched_assets.storage.locking import retry_conflicts
from sched_assets.storage.naming import TableName
from sched_assets.storage.resource import WarehouseResource

if TYPE_CHECKING:  # no `from __future__ import annotations`: Dagster reads the asset parameters' types
    import duckdb

GROUP = "analytics"
OWNERS = ["team:data"]

# The tables each derived table reads: its lineage, and what must exist first.
SOURCES: dict[str, tuple[str, ...]] = {
    BOOKING_ATTENDEES.name: ("raw.bookings",),
    SCHEDULE_WINDOWS.name: ("raw.schedules",),
    SCHEDULE_OVERRIDES.name: ("raw.schedules", "raw.my_profile"),
    BOOKING_UTILIZATION_DAILY.name: ("raw.bookings", "raw.event_types", "raw.schedules", "raw.my_profile"),
    EVENT_TYPE_STATS.name: ("raw.bookings", "raw.event_types", "raw.my_profile", "history.bookings"),
    BOOKING_CHANGES.name: ("history.bookings",),
}


def _analytics_asset(
    table: TableSpec,
) -> Callable[[Callable[..., dg.MaterializeResult]], dg.AssetsDefinition]:
    """`@dg.asset` with what every derived table shares: key, group, kinds, owners and lineage."""
    return dg.asset(
        key=analytics_key(table.name),
        group_name=GROUP,
        kinds={"duckdb"},
        owners=OWNERS,
        deps=[dg.AssetKey(source.split(".")) for source in SOURCES[table.name]],
        metadata={"primary_key": list(table.primary_key), "dagster/table_name": table.qualified_name},
    )


def _build(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    con: "duckdb.DuckDBPyConnection",
    table: TableSpec,
) -> BuiltTable:
    """Check the raw tables `table` reads exist, then build it (see `analytics.build`)."""
    for source in SOURCES[table.name]:
        if table_columns(con, TableName.parse(source)) is None:
            # Without this, DuckDB's bind error names the table but not what to do about it.
            key = dg.AssetKey(source.split("."))
            raise dg.Failure(
                description=(
                    f"{table.qualified_name} reads {source}, which does not exist in "
                    f"{warehouse.location}: materialize {key.to_user_string()} first"
                )
            )
    policy = warehouse.get_write_warehouse().retry_policy

    accounts = run_accounts(context)
    # The run's accounts in one transaction (one commit, not one per account); a failure leaves every
    # account's previous rows. Re-run whole when another writer's commit conflicts with ours (DuckLake).
    scopes = None if accounts is None else [Scope(ACCOUNT_COLUMN, name) for name in accounts]
    built = retry_conflicts(
        lambda: build_table(con, table, SELECTS[table.name], scopes), policy, what=f"build {table.name}"
    ).value
    context.log.info(f"built {built.table}: {built.row_count} rows in {built.seconds:.2f}s")
    return built


def _result(built: BuiltTable, extra: Mapping[str, object]) -> dg.MaterializeResult:
    """Dagster's standard table metadata, from DuckDB's catalog, plus the asset's own numbers."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name=name, type=type_) for name, type_ in built.columns])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(built.row_count),
            "dagster/column_schema": dg.MetadataValue.table_schema(schema),
            "dagster/table_name": dg.MetadataValue.text(str(built.table)),
            "build_seconds": dg.MetadataValue.float(round(built.seconds, 3)),
            **extra,
        }
    )


def _charted(built: BuiltTable) -> bool:
    """Whether to draw the table's chart: not in a run of several accounts, where Dagster would store
    the same ~70 KB image with every account's materialization (a run of one account draws it)."""
    return not isinstance(built.rows, ScopedRows) or len(built.rows.values) == 1


T = TypeVar("T")


def _chart_metadata(name: str, data: T | None, draw: Callable[[T], bytes], title: str) -> dict[str, object]:
    """`{name: the chart as markdown}`, or nothing when `data` is None (not charted, see `_charted`)."""
    return {} if data is None else {name: dg.MetadataValue.md(png_markdown(draw(data), title))}


def _one_row(con: "duckdb.DuckDBPyConnection", sql: str) -> tuple:
    """The single row of an aggregate query."""
    [row] = con.execute(sql).fetchall()
    return row


def _schedule_table(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    table: TableSpec,
    preview_sql: str,
    title: str,
) -> dg.MaterializeResult:
    """Build a per-schedule table; report how many schedules it covers and a preview (`{table}` in the SQL)."""
    with warehouse.get_connection() as con:
        built = _build(context, warehouse, con, table)
        [schedules] = _one_row(con, f"SELECT count(DISTINCT schedule_id) FROM {built.rows.sql}")
        preview = previews.head(con, preview_sql.format(table=built.rows.sql), title)
    return _result(built, {"preview": dg.MetadataValue.md(preview), "schedules": schedules})


@_analytics_asset(BOOKING_ATTENDEES)
def booking_attendees(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Attendees of every booking, unnested from `raw.bookings.attendees`.

    **Grain:** one row per attendee of a booking. **Key:** `(booking_id, attendee_index)`.

    **Source:** `raw.bookings`.

    - `attendee_index`: 0-based position in the booking's `attendees` array.
    - `name, email, time_zone, language, absent, seat_uid, phone_number`: the attendee's
      `name, email, timeZone, language, absent, seatUid, phoneNumber` (NULL when absent from the JSON).
    - Bookings without attendees have no rows.
    """
    with warehouse.get_connection() as con:
        built = _build(context, warehouse, con, BOOKING_ATTENDEES)
        bookings, absent = _one_row(
            con,
            f"SELECT count(DISTINCT booking_id), count(*) FILTER (WHERE absent) FROM {built.rows.sql}",
        )
        preview = previews.top_values(con, built.rows, "time_zone", "Attendees by time zone")
    return _result(
        built,
        {
            "preview": dg.MetadataValue.md(preview),
            "bookings_with_attendees": bookings,
            "absent_attendees": absent,
        },
    )


@_analytics_asset(SCHEDULE_WINDOWS)
def schedule_windows(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Weekly availability windows of every schedule, unnested from `raw.schedules.availability`.

    **Grain:** one row per availability window and weekday. **Key:** `(schedule_id, weekday,
    start_time, end_time)` (a window repeated verbatim is one row).

    **Source:** `raw.schedules`.

    - `weekday`: `Monday` .. `Sunday`, one row per entry of the window's `days`.
    - `start_time`, `end_time`: as the API sends them (`"HH:MM"`).
    - `minutes`: nominal wall-clock length, `end - start`, where an end of `23:59`/`24:00` (or `00:00`
      after a later start) means midnight; 0 when the end is not after the start. DST is applied per
      date in `booking_utilization_daily`, not here (a weekly window has no date).
    """
    return _schedule_table(
        context,
        warehouse,
        SCHEDULE_WINDOWS,
        "SELECT schedule_id, sum(minutes) AS weekly_minutes FROM {table} GROUP BY schedule_id ORDER BY schedule_id",
        "Nominal weekly minutes per schedule",
    )


@_analytics_asset(SCHEDULE_OVERRIDES)
def schedule_overrides(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Date overrides of every schedule, unnested from `raw.schedules.overrides`.

    **Grain:** one row per override window. **Key:** `(schedule_id, date, start_time, end_time)`.

    **Sources:** `raw.schedules` (overrides, `time_zone`), `raw.my_profile` (`time_zone` fallback).

    - `date`: the override's local date; `start_time`, `end_time` as the API sends them.
    - `minutes`: real elapsed minutes from local start to local end on that date in the schedule's
      zone (so DST days count the hour they lose or gain); 0 for an empty window such as
      `00:00-00:00`, which Cal.com uses for "unavailable all day".
    """
    return _schedule_table(
        context,
        warehouse,
        SCHEDULE_OVERRIDES,
        "SELECT * FROM {table} ORDER BY date DESC, schedule_id, start_time, end_time",
        "Latest overrides",
    )


@_analytics_asset(BOOKING_UTILIZATION_DAILY)
def booking_utilization_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Booked versus available time per schedule and local day.

    **Grain:** one row per `(schedule_id, date)`. **Key:** `(schedule_id, date)`.

    **Sources:** `raw.bookings`, `raw.event_types`, `raw.schedules`, `raw.my_profile`.

    - A booking belongs to its event type's `schedule_id`; when that is null or the event type is not
      in `raw.event_types`, to `my_profile.default_schedule_id` (bookings with neither are left out).
    - `time_zone`: the schedule's zone, else the profile's, else UTC. `date` is the local date of the
      booking's `start` in that zone.
    - `available_minutes`: if the schedule has overrides on `date`, their windows; else the weekly
      windows whose `days` include the weekday. Overlapping windows are merged, then each window counts
      the **real elapsed minutes** between its local start and end on that date (Europe/Berlin
      2026-03-29 01:00-04:00 = 120, 2026-10-25 01:00-04:00 = 240; 09:00-17:00 stays 480). An end of
      `23:59`/`24:00` means midnight. Nonexistent or repeated wall times resolve to standard time.
    - `booked_minutes`: Σ `duration` of `accepted` bookings (`end - start` when duration is null).
    - `buffer_minutes`: Σ of their event types' `before_event_buffer + after_event_buffer` (null → 0).
    - `utilization = booked_minutes / available_minutes`, null when `available_minutes` is 0.
    - `bookings_accepted`; `bookings_cancelled` = cancelled + rejected; `bookings_pending` = pending +
      awaiting_host; `no_shows` = accepted bookings with `absent_host`, or with ≥ 1 attendee and every
      attendee `absent`.
    - Rows: every date from the schedule's first to last booking date with `available_minutes > 0`
      or any booking.
    """
    with warehouse.get_connection() as con:
        built = _build(context, warehouse, con, BOOKING_UTILIZATION_DAILY)
        over, schedules, overall = _one_row(
            con,
            "SELECT count(*) FILTER (WHERE utilization > 1), count(DISTINCT schedule_id), "
            f"sum(booked_minutes) / nullif(sum(available_minutes), 0) FROM {built.rows.sql}",
        )
        preview = previews.busiest_days(con, built.rows)
        points = utilization_points(con, built.rows) if _charted(built) else None
    extra: dict[str, object] = {
        "preview": dg.MetadataValue.md(preview),
        "days_over_capacity": over,
        "schedules": schedules,
        **_chart_metadata("utilization_chart", points, utilization_chart, UTILIZATION_TITLE),
    }
    if overall is not None:  # no availability at all: a ratio would be meaningless
        extra["overall_utilization"] = overall
    return _result(built, extra)


@_analytics_asset(EVENT_TYPE_STATS)
def event_type_stats(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Booking outcomes per event type.

    **Grain:** one row per event type. **Key:** `event_type_id`.

    **Sources:** `raw.event_types`, `raw.bookings`, `raw.my_profile`, `history.bookings`.

    - Rows: every event type in `raw.event_types`, plus every `event_type_id` that bookings reference
      but `raw.event_types` lacks (`is_known = false`, null `title`/`slug`), so no booking is dropped.
      Bookings without an `event_type_id` are not counted here.
    - `schedule_id`: effective schedule, the event type's own or else the profile's default.
    - `bookings_total`: bookings of every status; `accepted`; `cancelled` = cancelled + rejected;
      `pending` = pending + awaiting_host; `no_shows` as in `booking_utilization_daily`.
    - `cancellation_rate = cancelled / bookings_total` (null when 0 bookings).
    - `no_show_rate = no_shows / accepted` (null when none accepted).
    - `avg_lead_time_hours`: mean of `start - created_at` in hours over all its bookings.
    - `avg_rating`: mean of non-null `rating`. `booked_minutes`: Σ `duration` of accepted bookings.
    - From `history.bookings` (each booking under the event type of its latest version):
      `avg_cancellation_lead_hours` = mean over bookings ever seen cancelled (not by a reschedule) of
      the hours from the cancellation (that version's `updated_at`, else the sync that saw it) to the
      start it had then; `cancellations_seen` = those bookings; `reschedules` = bookings seen cancelled
      with a `rescheduled_to_uid`, plus changes of a booking's own `start`/`end`. See docs/tables.md.
    """
    with warehouse.get_connection() as con:
        built = _build(context, warehouse, con, EVENT_TYPE_STATS)
        [unknown] = _one_row(con, f"SELECT count(*) FILTER (WHERE NOT is_known) FROM {built.rows.sql}")
        preview = previews.most_cancelled(con, built.rows)
        bars = event_type_bars(con, built.rows) if _charted(built) else None
    return _result(
        built,
        {
            "preview": dg.MetadataValue.md(preview),
            "unknown_event_types": unknown,
            **_chart_metadata("event_type_chart", bars, event_type_chart, EVENT_TYPE_TITLE),
        },
    )


@_analytics_asset(BOOKING_CHANGES)
def booking_changes(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Every status or time change of a booking, as successive syncs saw it.

    **Grain:** one row per status or time change of a booking. **Key:** `(booking_id, seen_at)`.

    **Source:** `history.bookings`.

    - A row for each version (after a booking's first) whose `status` or `start`/`end` differ from the
      version before it; `version_number` counts versions from 1. Versions that changed other fields
      only (a title) are not changes here.
    - `seen_at`: `valid_from` of the new version, i.e. the sync that saw the change, not when it
      happened; several changes between two syncs are one row. `status_changed`, `time_changed` say
      what changed; `from_*` / `to_*` are the values before and after (status lower-cased).
    """
    with warehouse.get_connection() as con:
        built = _build(context, warehouse, con, BOOKING_CHANGES)
        status, time = _one_row(
            con,
            f"SELECT count(*) FILTER (WHERE status_changed), count(*) FILTER (WHERE time_changed) "
            f"FROM {built.rows.sql}",
        )
        preview = previews.markdown_query(
            con,
            f"SELECT booking_id, seen_at, from_status, to_status, from_start, to_start FROM {built.rows.sql} "
            f"ORDER BY seen_at DESC, booking_id LIMIT {previews.PREVIEW_ROWS}",
        )
    return _result(
        built,
        {
            "preview": dg.MetadataValue.md(f"**Latest changes**\n\n{preview}"),
            "status_changes": status,
            "time_changes": time,
        },
    )


analytics_assets: list[dg.AssetsDefinition] = [
    booking_attendees,
    schedule_windows,
    schedule_overrides,
    booking_utilization_daily,
    event_type_stats,
    booking_changes,
]
