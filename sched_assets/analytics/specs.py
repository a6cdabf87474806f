"""Names and keys of the derived tables, shared by the assets, their checks and the docs."""

from __future__ import annotations

from dataclasses import dataclass

from sched_assets.storage.naming import ANALYTICS_SCHEMA, TableName


@dataclass(frozen=True)
class TableSpec:
    """One derived table: its name in schema `analytics` and the columns that identify a row."""

    name: str
    primary_key: tuple[str, ...]
    grain: str

    @property
    def table_name(self) -> TableName:
        return TableName(ANALYTICS_SCHEMA, self.name)

    @property
    def qualified_name(self) -> str:
        return str(self.table_name)


BOOKING_ATTENDEES = TableSpec(
    name="booking_attendees",
    primary_key=("booking_id", "attendee_index"),
    grain="one row per attendee of a booking",
)
SCHEDULE_WINDOWS = TableSpec(
    name="schedule_windows",
    primary_key=("schedule_id", "weekday", "start_time", "end_time"),
    grain="one row per weekly availability window and weekday of a schedule",
)
SCHEDULE_OVERRIDES = TableSpec(
    name="schedule_overrides",
    primary_key=("schedule_id", "date", "start_time", "end_time"),
    grain="one row per date-override window of a schedule",
)
BOOKING_UTILIZATION_DAILY = TableSpec(
    name="booking_utilization_daily",
    primary_key=("schedule_id", "date"),
    grain="one row per schedule and local calendar date",
)
EVENT_TYPE_STATS = TableSpec(
    name="event_type_stats",
    primary_key=("event_type_id",),
    grain="one row per event type (known, or only referenced by bookings)",
)
BOOKING_CHANGES = TableSpec(
    name="booking_changes",
    primary_key=("booking_id", "seen_at"),
    grain="one row per status or time change of a booking, as successive syncs saw it",
)

TABLES: tuple[TableSpec, ...] = (
    BOOKING_ATTENDEES,
    SCHEDULE_WINDOWS,
    SCHEDULE_OVERRIDES,
    BOOKING_UTILIZATION_DAILY,
    EVENT_TYPE_STATS,
    BOOKING_CHANGES,
)
