"""`analytics.booking_attendees`: the attendees JSON of every booking, one row per attendee."""

from __future__ import annotations

from sched_assets.analytics._sql import ATTENDEES_SHAPE

# One row per attendee: `booking_id, attendee_index, name, email, time_zone, language, absent, seat_uid,
# phone_number`. Bookings without attendees have no rows.
BOOKING_ATTENDEES_SQL = f"""
SELECT
    booking_id,
    CAST(attendee_index AS BIGINT) AS attendee_index,
    a.name AS name,
    a.email AS email,
    a.timeZone AS time_zone,
    a.language AS language,
    a.absent AS absent,
    a.seatUid AS seat_uid,
    a.phoneNumber AS phone_number
FROM (
    SELECT
        booking_id,
        -- 0-based, the attendee's position in the booking's `attendees` array ($[i] in JSON path terms)
        generate_subscripts(attendees, 1) - 1 AS attendee_index,
        unnest(attendees) AS a
    FROM (
        SELECT id AS booking_id, from_json(attendees, '{ATTENDEES_SHAPE}') AS attendees
        FROM raw.bookings
        WHERE id IS NOT NULL AND attendees IS NOT NULL
    )
)
ORDER BY booking_id, attendee_index
"""
