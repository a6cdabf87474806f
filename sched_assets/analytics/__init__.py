"""Derived tables (schema `analytics`) computed in DuckDB from the raw tables. No Dagster here.

Each table is one SELECT over the `raw` schema (and `history.bookings`) (`SELECTS`, by table name); `build.build_table` runs it
as `CREATE OR REPLACE TABLE analytics.<name> AS ...` in one transaction, so no row of a derived table
passes through Python. `previews` renders small SQL results for asset metadata.
"""

from sched_assets.analytics.attendees import BOOKING_ATTENDEES_SQL
from sched_assets.analytics.changes import BOOKING_CHANGES_SQL
from sched_assets.analytics.event_types import EVENT_TYPE_STATS_SQL
from sched_assets.analytics.schedules import SCHEDULE_OVERRIDES_SQL, SCHEDULE_WINDOWS_SQL
from sched_assets.analytics.specs import (
    BOOKING_ATTENDEES,
    BOOKING_CHANGES,
    BOOKING_UTILIZATION_DAILY,
    EVENT_TYPE_STATS,
    SCHEDULE_OVERRIDES,
    SCHEDULE_WINDOWS,
)
from sched_assets.analytics.utilization import BOOKING_UTILIZATION_DAILY_SQL

# The SELECT of every derived table, by table name (the keys are exactly `specs.TABLES`).
SELECTS: dict[str, str] = {
    BOOKING_ATTENDEES.name: BOOKING_ATTENDEES_SQL,
    SCHEDULE_WINDOWS.name: SCHEDULE_WINDOWS_SQL,
    SCHEDULE_OVERRIDES.name: SCHEDULE_OVERRIDES_SQL,
    BOOKING_UTILIZATION_DAILY.name: BOOKING_UTILIZATION_DAILY_SQL,
    EVENT_TYPE_STATS.name: EVENT_TYPE_STATS_SQL,
    BOOKING_CHANGES.name: BOOKING_CHANGES_SQL,
}

__all__ = [
    "BOOKING_ATTENDEES_SQL",
    "BOOKING_CHANGES_SQL",
    "BOOKING_UTILIZATION_DAILY_SQL",
    "EVENT_TYPE_STATS_SQL",
    "SCHEDULE_OVERRIDES_SQL",
    "SCHEDULE_WINDOWS_SQL",
    "SELECTS",
]
