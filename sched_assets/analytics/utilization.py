"""`analytics.booking_utilization_daily`: booked versus available minutes per schedule and local date."""

from __future__ import annotations

from sched_assets.analytics._sql import (
    ACCEPTED,
    BOOKING_FACTS,
    CANCELLED,
    EVENT_TYPE_FACTS,
    KNOWN_ZONES,
    OVERRIDE_ROWS,
    PENDING,
    PROFILE,
    PROFILE_ZONE,
    SCHEDULE_ZONES,
    WINDOW_ROWS,
    elapsed_minutes,
    merged_intervals,
    with_ctes,
)

_CTES: tuple[str, ...] = (
    PROFILE,
    KNOWN_ZONES,
    PROFILE_ZONE,
    SCHEDULE_ZONES,
    EVENT_TYPE_FACTS,
    BOOKING_FACTS,
    WINDOW_ROWS,
    OVERRIDE_ROWS,
    f"""
weekly_windows AS ({merged_intervals("window_rows", ("schedule_id", "weekday"))})""",
    # Dates with any override, even an empty one ("unavailable all day"), ignore the weekly windows.
    """
override_days AS (SELECT DISTINCT schedule_id, date FROM override_rows)""",
    f"""
override_windows AS ({merged_intervals("override_rows", ("schedule_id", "date"))})""",
    # Each booking on the local date of its start in its schedule's zone. A schedule id that is not
    # in raw.schedules still gets the profile's zone, so its bookings are counted (with 0 available).
    """
booking_days AS (
    SELECT
        bf.*,
        coalesce(sz.time_zone, pz.time_zone) AS time_zone,
        CAST(timezone(coalesce(sz.time_zone, pz.time_zone), bf.start) AS DATE) AS date
    FROM booking_facts AS bf
    CROSS JOIN profile_zone AS pz
    LEFT JOIN schedule_zones AS sz ON sz.schedule_id = bf.schedule_id
    WHERE bf.schedule_id IS NOT NULL AND bf.start IS NOT NULL
)""",
    f"""
booking_totals AS (
    SELECT
        schedule_id,
        date,
        count(*) AS bookings_total,
        sum(duration) FILTER (WHERE status = {ACCEPTED}) AS booked_minutes,
        sum(buffer_minutes) FILTER (WHERE status = {ACCEPTED}) AS buffer_minutes,
        count(*) FILTER (WHERE status = {ACCEPTED}) AS bookings_accepted,
        count(*) FILTER (WHERE status IN {CANCELLED}) AS bookings_cancelled,
        count(*) FILTER (WHERE status IN {PENDING}) AS bookings_pending,
        count(*) FILTER (WHERE is_no_show) AS no_shows
    FROM booking_days
    GROUP BY schedule_id, date
)""",
    # Every local date between a schedule's first and last booking.
    """
calendar AS (
    SELECT schedule_id, time_zone,
        CAST(unnest(generate_series(first_date, last_date, INTERVAL 1 DAY)) AS DATE) AS date
    FROM (
        SELECT schedule_id, any_value(time_zone) AS time_zone, min(date) AS first_date, max(date) AS last_date
        FROM booking_days
        GROUP BY schedule_id
    )
)""",
    """
day_windows AS (
    SELECT c.schedule_id, c.date, c.time_zone, o.start_minute, o.end_minute
    FROM calendar AS c
    JOIN override_windows AS o ON o.schedule_id = c.schedule_id AND o.date = c.date
    UNION ALL
    SELECT c.schedule_id, c.date, c.time_zone, w.start_minute, w.end_minute
    FROM calendar AS c
    JOIN weekly_windows AS w ON w.schedule_id = c.schedule_id AND w.weekday = dayname(c.date)
    WHERE NOT EXISTS (
        SELECT 1 FROM override_days AS od WHERE od.schedule_id = c.schedule_id AND od.date = c.date
    )
)""",
    f"""
availability AS (
    SELECT schedule_id, date,
        sum({elapsed_minutes("date", "start_minute", "end_minute", "time_zone")}) AS available_minutes
    FROM day_windows
    GROUP BY schedule_id, date
)""",
)

_SELECT = """
SELECT
    c.schedule_id,
    c.date,
    c.time_zone,
    CAST(coalesce(a.available_minutes, 0) AS BIGINT) AS available_minutes,
    CAST(coalesce(t.booked_minutes, 0) AS BIGINT) AS booked_minutes,
    CAST(coalesce(t.buffer_minutes, 0) AS BIGINT) AS buffer_minutes,
    CAST(coalesce(t.booked_minutes, 0) AS DOUBLE) / nullif(coalesce(a.available_minutes, 0), 0) AS utilization,
    coalesce(t.bookings_accepted, 0) AS bookings_accepted,
    coalesce(t.bookings_cancelled, 0) AS bookings_cancelled,
    coalesce(t.bookings_pending, 0) AS bookings_pending,
    coalesce(t.no_shows, 0) AS no_shows
FROM calendar AS c
LEFT JOIN availability AS a ON a.schedule_id = c.schedule_id AND a.date = c.date
LEFT JOIN booking_totals AS t ON t.schedule_id = c.schedule_id AND t.date = c.date
WHERE coalesce(a.available_minutes, 0) > 0 OR coalesce(t.bookings_total, 0) > 0
ORDER BY c.schedule_id, c.date
"""

# One row per `(schedule_id, date)`: available, booked and buffer minutes, utilization and booking
# counts by status (every formula is in the asset's docstring, defs/analytics.py).
BOOKING_UTILIZATION_DAILY_SQL = with_ctes(_CTES, _SELECT)
