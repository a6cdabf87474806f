"""`analytics.schedule_windows` and `analytics.schedule_overrides`: schedules' JSON, one row per window."""

from __future__ import annotations

from sched_assets.analytics._sql import (
    KNOWN_ZONES,
    OVERRIDE_ROWS,
    PROFILE,
    PROFILE_ZONE,
    SCHEDULE_ZONES,
    WEEKDAYS,
    WINDOW_ROWS,
    elapsed_minutes,
    with_ctes,
)

_WEEKDAY_ORDER = "list_position(" + repr(list(WEEKDAYS)) + ", weekday)"

# One row per weekly availability window and weekday: `schedule_id, weekday, start_time, end_time,
# minutes`. Weekly windows have no date, so their minutes are nominal wall-clock minutes (a DST day is
# handled in booking_utilization_daily, where the date is known). Repeated windows collapse into one
# row. The outer SELECT sorts Monday..Sunday and leaves the sort key out of the table.
SCHEDULE_WINDOWS_SQL = with_ctes(
    (WINDOW_ROWS,),
    f"""
SELECT schedule_id, weekday, start_time, end_time, minutes
FROM (
    SELECT DISTINCT
        schedule_id,
        weekday,
        start_time,
        end_time,
        CAST(greatest(end_minute - start_minute, 0) AS BIGINT) AS minutes,
        {_WEEKDAY_ORDER} AS weekday_order
    FROM window_rows
    WHERE schedule_id IS NOT NULL
)
ORDER BY schedule_id, weekday_order, start_time, end_time
""",
)

# One row per date-override window: `schedule_id, date, start_time, end_time, minutes`. Overrides have
# a date, so their minutes are the real elapsed time on that date in the schedule's zone.
SCHEDULE_OVERRIDES_SQL = with_ctes(
    (PROFILE, KNOWN_ZONES, PROFILE_ZONE, SCHEDULE_ZONES, OVERRIDE_ROWS),
    f"""
SELECT DISTINCT
    schedule_id,
    date,
    start_time,
    end_time,
    CASE WHEN start_minute < end_minute
        THEN {elapsed_minutes("date", "start_minute", "end_minute", "time_zone")}
        ELSE 0 END AS minutes
FROM override_rows
WHERE schedule_id IS NOT NULL
ORDER BY schedule_id, date, start_time, end_time
""",
)
