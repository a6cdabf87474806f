"""Derived assets (schema `analytics`): one asset per table, computed in DuckDB from the raw tables.

The SQL lives in `sched_assets.analytics` (no Dagster there); each asset opens the warehouse read-only,
builds its frame, closes the connection (it holds the cross-process lock) and returns the frame for
the DuckDB IO manager to write to `analytics.<name>` (replace mode, keyed as in `analytics.specs`).
"""

from collections.abc import Callable, Sequence

import dagster as dg
import duckdb
import polars as pl

from sched_assets import analytics as tables
from sched_assets.analytics import previews
from sched_assets.analytics.specs import (
    BOOKING_ATTENDEES,
    BOOKING_UTILIZATION_DAILY,
    EVENT_TYPE_STATS,
    SCHEDULE_OVERRIDES,
    SCHEDULE_WINDOWS,
    SCHEMA,
    TableSpec,
)
from sched_assets.storage import WarehouseResource

GROUP = "analytics"
OWNERS = ["team:data"]
RAW_SCHEMA = "raw"


def raw_key(name: str) -> dg.AssetKey:
    """Key of the raw source asset for one API resource (`raw/<name>`)."""
    return dg.AssetKey([RAW_SCHEMA, name])


def analytics_key(table: TableSpec) -> dg.AssetKey:
    """Key of a derived asset (`analytics/<name>`), which the IO manager maps to `analytics.<name>`."""
    return dg.AssetKey([SCHEMA, table.name])


def _analytics_asset(
    table: TableSpec, sources: Sequence[str]
) -> Callable[[Callable[..., pl.DataFrame]], dg.AssetsDefinition]:
    """`@dg.asset` with what every derived table shares: key, group, kinds, lineage and write settings."""
    return dg.asset(
        key=analytics_key(table),
        group_name=GROUP,
        kinds={"duckdb", "polars"},
        owners=OWNERS,
        deps=[raw_key(name) for name in sources],
        metadata={
            "write_mode": "replace",
            "primary_key": list(table.primary_key),
            "dagster/table_name": table.qualified_name,
        },
    )


def _build(
    warehouse: WarehouseResource, build: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]
) -> pl.DataFrame:
    # Leave the `with` before returning: the IO manager needs the write lock this read lock blocks.
    with warehouse.get_warehouse().connect(read_only=True) as con:
        return build(con)


@_analytics_asset(BOOKING_ATTENDEES, ["bookings"])
def booking_attendees(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    """Attendees of every booking, unnested from `raw.bookings.attendees`.

    **Grain:** one row per attendee of a booking. **Key:** `(booking_id, attendee_index)`.

    **Source:** `raw.bookings`.

    - `attendee_index`: 0-based position in the booking's `attendees` array.
    - `name, email, time_zone, language, absent, seat_uid, phone_number`: the attendee's
      `name, email, timeZone, language, absent, seatUid, phoneNumber` (NULL when absent from the JSON).
    - Bookings without attendees have no rows.
    """
    frame = _build(warehouse, tables.booking_attendees)
    context.add_output_metadata(
        {
            "preview": dg.MetadataValue.md(previews.top_values(frame, "time_zone", "Attendees by time zone")),
            "bookings_with_attendees": frame["booking_id"].n_unique(),
            "absent_attendees": int(frame["absent"].sum()),
        }
    )
    return frame


@_analytics_asset(SCHEDULE_WINDOWS, ["schedules"])
def schedule_windows(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
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
    frame = _build(warehouse, tables.schedule_windows)
    weekly = frame.group_by("schedule_id").agg(pl.col("minutes").sum().alias("weekly_minutes"))
    context.add_output_metadata(
        {
            "preview": dg.MetadataValue.md(
                previews.head(weekly.sort("schedule_id"), "Nominal weekly minutes per schedule")
            ),
            "schedules": frame["schedule_id"].n_unique(),
        }
    )
    return frame


@_analytics_asset(SCHEDULE_OVERRIDES, ["schedules", "my_profile"])
def schedule_overrides(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    """Date overrides of every schedule, unnested from `raw.schedules.overrides`.

    **Grain:** one row per override window. **Key:** `(schedule_id, date, start_time, end_time)`.

    **Sources:** `raw.schedules` (overrides, `time_zone`), `raw.my_profile` (`time_zone` fallback).

    - `date`: the override's local date; `start_time`, `end_time` as the API sends them.
    - `minutes`: real elapsed minutes from local start to local end on that date in the schedule's
      zone (so DST days count the hour they lose or gain); 0 for an empty window such as
      `00:00-00:00`, which Cal.com uses for "unavailable all day".
    """
    frame = _build(warehouse, tables.schedule_overrides)
    context.add_output_metadata(
        {
            "preview": dg.MetadataValue.md(
                previews.head(frame.sort("date", descending=True), "Latest overrides")
            ),
            "schedules": frame["schedule_id"].n_unique(),
        }
    )
    return frame


@_analytics_asset(BOOKING_UTILIZATION_DAILY, ["bookings", "event_types", "schedules", "my_profile"])
def booking_utilization_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> pl.DataFrame:
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
    frame = _build(warehouse, tables.booking_utilization_daily)
    available = int(frame["available_minutes"].sum())
    metadata: dict[str, object] = {
        "preview": dg.MetadataValue.md(previews.busiest_days(frame)),
        "days_over_capacity": frame.filter(pl.col("utilization") > 1).height,
        "schedules": frame["schedule_id"].n_unique(),
    }
    if available:
        metadata["overall_utilization"] = int(frame["booked_minutes"].sum()) / available
    context.add_output_metadata(metadata)
    return frame


@_analytics_asset(EVENT_TYPE_STATS, ["bookings", "event_types", "my_profile"])
def event_type_stats(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> pl.DataFrame:
    """Booking outcomes per event type.

    **Grain:** one row per event type. **Key:** `event_type_id`.

    **Sources:** `raw.event_types`, `raw.bookings`, `raw.my_profile`.

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
    """
    frame = _build(warehouse, tables.event_type_stats)
    context.add_output_metadata(
        {
            "preview": dg.MetadataValue.md(previews.most_cancelled(frame)),
            "unknown_event_types": frame.filter(~pl.col("is_known")).height,
        }
    )
    return frame


analytics_assets: list[dg.AssetsDefinition] = [
    booking_attendees,
    schedule_windows,
    schedule_overrides,
    booking_utilization_daily,
    event_type_stats,
]
