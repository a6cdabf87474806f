"""`analytics.booking_changes` and the per-booking history facts `event_type_stats` uses.

Both read `history.bookings`, the versions of each booking the syncs have seen. A change is dated by
the sync that saw it (`valid_from` of the new version), not when it happened, and several changes
between two syncs show as one.
"""

from __future__ import annotations

from sched_assets.analytics._sql import CANCELLED, with_ctes

# Each version next to the one before it (per booking, in the order the syncs saw them).
VERSION_PAIRS = """
version_pairs AS (
    SELECT
        id AS booking_id,
        event_type_id,
        valid_from,
        updated_at,
        rescheduled_to_uid,
        lower(status) AS status,
        start,
        "end",
        lag(lower(status)) OVER w AS prev_status,
        lag(start) OVER w AS prev_start,
        lag("end") OVER w AS prev_end,
        row_number() OVER w AS version_number
    FROM history.bookings
    WINDOW w AS (PARTITION BY id ORDER BY valid_from)
)"""

# One row per transition that changed the status or the time (a new version that changed neither,
# e.g. only the title, is not a change here).
BOOKING_CHANGES = """
booking_changes AS (
    SELECT
        booking_id,
        valid_from AS seen_at,
        version_number,
        event_type_id,
        prev_status IS DISTINCT FROM status AS status_changed,
        prev_start IS DISTINCT FROM start OR prev_end IS DISTINCT FROM "end" AS time_changed,
        prev_status AS from_status,
        status AS to_status,
        prev_start AS from_start,
        start AS to_start,
        prev_end AS from_end,
        "end" AS to_end
    FROM version_pairs
    WHERE version_number > 1
        AND (prev_status IS DISTINCT FROM status OR prev_start IS DISTINCT FROM start
            OR prev_end IS DISTINCT FROM "end")
)"""

# Per booking (its event type: that of its latest version): the first version seen cancelled, unless
# the cancellation is a reschedule (hours from then to the start it had: the API's updatedAt of that
# version, else the sync that saw it); and its reschedules: a reschedule Cal.com makes as a new booking
# (the old one cancelled with `rescheduledToUid`), or a change of the booking's own start or end.
BOOKING_HISTORY_FACTS = f"""
booking_history_facts AS (
    SELECT
        p.booking_id,
        arg_max(p.event_type_id, p.valid_from) AS event_type_id,
        arg_min(epoch_us(p.start) - epoch_us(coalesce(p.updated_at, p.valid_from)), p.valid_from)
            FILTER (WHERE p.status IN {CANCELLED} AND p.rescheduled_to_uid IS NULL) AS cancellation_lead_us,
        count(*) FILTER (WHERE p.version_number > 1
            AND (p.prev_start IS DISTINCT FROM p.start OR p.prev_end IS DISTINCT FROM p."end"))
            + CAST(bool_or(p.rescheduled_to_uid IS NOT NULL) AS INTEGER) AS reschedules
    FROM version_pairs AS p
    GROUP BY p.booking_id
)"""

_SELECT = """
SELECT
    booking_id, seen_at, version_number, event_type_id, status_changed, time_changed,
    from_status, to_status, from_start, to_start, from_end, to_end
FROM booking_changes
ORDER BY booking_id, seen_at
"""

# One row per status or time change of a booking, as successive syncs saw it.
BOOKING_CHANGES_SQL = with_ctes((VERSION_PAIRS, BOOKING_CHANGES), _SELECT)
