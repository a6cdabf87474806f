"""`analytics.event_type_stats`: booking outcomes per event type."""

from __future__ import annotations

from sched_assets.analytics._sql import (
    ACCEPTED,
    BOOKING_FACTS,
    CANCELLED,
    EVENT_TYPE_FACTS,
    PENDING,
    PROFILE,
    with_ctes,
)
from sched_assets.analytics.changes import BOOKING_HISTORY_FACTS, VERSION_PAIRS

_CTES: tuple[str, ...] = (
    PROFILE,
    EVENT_TYPE_FACTS,
    BOOKING_FACTS,
    VERSION_PAIRS,
    BOOKING_HISTORY_FACTS,
    # Known event types, plus ids that bookings reference but raw.event_types lacks (deleted event
    # types, or another user's): their bookings still count, under the profile's default schedule.
    """
event_type_keys AS (
    SELECT event_type_id, title, slug, schedule_id, true AS is_known
    FROM event_type_facts
    UNION ALL
    SELECT DISTINCT bf.event_type_id, NULL, NULL, p.default_schedule_id, false
    FROM booking_facts AS bf
    CROSS JOIN profile AS p
    WHERE bf.event_type_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM event_type_facts AS et WHERE et.event_type_id = bf.event_type_id)
)""",
    f"""
booking_stats AS (
    SELECT
        event_type_id,
        count(*) AS bookings_total,
        count(*) FILTER (WHERE status = {ACCEPTED}) AS accepted,
        count(*) FILTER (WHERE status IN {CANCELLED}) AS cancelled,
        count(*) FILTER (WHERE status IN {PENDING}) AS pending,
        count(*) FILTER (WHERE is_no_show) AS no_shows,
        -- Exact sums (integer microseconds, decimal ratings), so the result does not depend on the
        -- order rows arrived in (a float sum does, in its last digit).
        avg(epoch_us(start) - epoch_us(created_at)) / 3600000000.0 AS avg_lead_time_hours,
        CAST(avg(CAST(rating AS DECIMAL(18, 6))) AS DOUBLE) AS avg_rating,
        sum(duration) FILTER (WHERE status = {ACCEPTED}) AS booked_minutes
    FROM booking_facts
    WHERE event_type_id IS NOT NULL
    GROUP BY event_type_id
)""",
    # From the history: per event type, the mean hours between a booking's first version seen
    # cancelled and its start, and how many times bookings' times changed.
    """
history_stats AS (
    SELECT
        event_type_id,
        avg(cancellation_lead_us) / 3600000000.0 AS avg_cancellation_lead_hours,
        count(cancellation_lead_us) AS cancellations_seen,
        sum(reschedules) AS reschedules
    FROM booking_history_facts
    WHERE event_type_id IS NOT NULL
    GROUP BY event_type_id
)""",
)

_SELECT = """
SELECT
    k.event_type_id,
    CAST(k.title AS VARCHAR) AS title,
    CAST(k.slug AS VARCHAR) AS slug,
    CAST(k.schedule_id AS BIGINT) AS schedule_id,
    k.is_known,
    coalesce(s.bookings_total, 0) AS bookings_total,
    coalesce(s.accepted, 0) AS accepted,
    coalesce(s.cancelled, 0) AS cancelled,
    coalesce(s.pending, 0) AS pending,
    coalesce(s.no_shows, 0) AS no_shows,
    CAST(s.cancelled AS DOUBLE) / nullif(s.bookings_total, 0) AS cancellation_rate,
    CAST(s.no_shows AS DOUBLE) / nullif(s.accepted, 0) AS no_show_rate,
    CAST(s.avg_lead_time_hours AS DOUBLE) AS avg_lead_time_hours,
    CAST(s.avg_rating AS DOUBLE) AS avg_rating,
    CAST(coalesce(s.booked_minutes, 0) AS BIGINT) AS booked_minutes,
    CAST(hs.avg_cancellation_lead_hours AS DOUBLE) AS avg_cancellation_lead_hours,
    CAST(coalesce(hs.cancellations_seen, 0) AS BIGINT) AS cancellations_seen,
    CAST(coalesce(hs.reschedules, 0) AS BIGINT) AS reschedules
FROM event_type_keys AS k
LEFT JOIN booking_stats AS s ON s.event_type_id = k.event_type_id
LEFT JOIN history_stats AS hs ON hs.event_type_id = k.event_type_id
WHERE k.event_type_id IS NOT NULL
ORDER BY k.event_type_id
"""

# One row per event type id: totals by status, rates, lead time, rating and booked minutes.
EVENT_TYPE_STATS_SQL = with_ctes(_CTES, _SELECT)
