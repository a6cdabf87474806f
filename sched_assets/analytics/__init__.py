"""Derived tables (schema `analytics`) computed in DuckDB from the raw tables.

Every function takes an open DuckDB connection whose database holds the `raw` schema and returns the
table as a Polars frame; the SQL runs inside DuckDB, so only result rows reach Python. No Dagster here.
"""

from sched_assets.analytics.attendees import booking_attendees
from sched_assets.analytics.event_types import event_type_stats
from sched_assets.analytics.schedules import schedule_overrides, schedule_windows
from sched_assets.analytics.utilization import booking_utilization_daily

__all__ = [
    "booking_attendees",
    "booking_utilization_daily",
    "event_type_stats",
    "schedule_overrides",
    "schedule_windows",
]
