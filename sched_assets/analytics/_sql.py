"""SQL building blocks shared by the derived tables.

Each constant is one named common table expression (`name AS (...)`) over the `raw` schema;
`with_ctes()` joins the ones a table needs into a single SELECT, so DuckDB plans everything at once.
The SELECTs are only text: `analytics.build` runs them as `CREATE OR REPLACE TABLE ... AS`, so no
row of a derived table passes through Python.
"""

from __future__ import annotations

from collections.abc import Sequence

WEEKDAYS: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# JSON shapes read out of the raw JSON columns; fields not named here are ignored, and a value of the
# wrong type becomes NULL instead of failing the whole query (from_json is the lenient transform).
AVAILABILITY_SHAPE = '[{"days": ["VARCHAR"], "startTime": "VARCHAR", "endTime": "VARCHAR"}]'
OVERRIDES_SHAPE = '[{"date": "VARCHAR", "startTime": "VARCHAR", "endTime": "VARCHAR"}]'
ATTENDEES_SHAPE = (
    '[{"name": "VARCHAR", "email": "VARCHAR", "timeZone": "VARCHAR", "language": "VARCHAR",'
    ' "absent": "BOOLEAN", "seatUid": "VARCHAR", "phoneNumber": "VARCHAR"}]'
)

ACCEPTED = "'accepted'"
CANCELLED = "('cancelled', 'rejected')"
PENDING = "('pending', 'awaiting_host')"


def with_ctes(ctes: Sequence[str], select: str) -> str:
    """The statement `WITH <ctes> <select>` (just `select` without CTEs)."""
    return "WITH " + ",".join(ctes) + "\n" + select if ctes else select


def minute_of_day(text: str) -> str:
    """SQL for the minute of the day of an "HH:MM" (or "HH:MM:SS") string; NULL when unparseable."""
    minutes = (
        f"(TRY_CAST(split_part({text}, ':', 1) AS INTEGER) * 60"
        f" + TRY_CAST(split_part({text}, ':', 2) AS INTEGER))"
    )
    return f"CASE WHEN {minutes} BETWEEN 0 AND 1440 THEN {minutes} END"


def window_end(start_minute: str, end_minute: str) -> str:
    """SQL for a window's end minute, read the way people mean it.

    "23:59" (the last end time Cal.com's editor offers) and "24:00" both mean the end of the day, and
    "00:00" after a later start means midnight; otherwise the end stays as written, so an end at or
    before the start gives an empty window.
    """
    return (
        f"CASE WHEN {end_minute} >= 1439 THEN 1440"
        f" WHEN {end_minute} = 0 AND {start_minute} > 0 THEN 1440"
        f" ELSE {end_minute} END"
    )


def elapsed_minutes(day: str, start_minute: str, end_minute: str, zone: str) -> str:
    """SQL for the real minutes between two wall-clock times of one local date in a time zone.

    Both ends are turned into instants with DuckDB's ICU `timezone(zone, local_timestamp)`, so a DST
    change inside the window counts (Europe/Berlin 2026-03-29 01:00-04:00 is 120 minutes). A wall
    time that does not exist or exists twice resolves to the standard-time offset, as ICU does.
    """

    def instant(minute: str) -> str:
        return f"epoch(timezone({zone}, CAST({day} AS TIMESTAMP) + to_minutes({minute})))"

    return f"CAST(round(({instant(end_minute)} - {instant(start_minute)}) / 60) AS BIGINT)"


def merged_intervals(source: str, partition: Sequence[str]) -> str:
    """SQL that merges overlapping `[start_minute, end_minute)` rows of `source` within each partition.

    Classic gaps-and-islands: a row starts a new island when it begins after every earlier row
    (ordered by start) has ended; each island becomes one interval. Empty rows (end <= start) drop out.
    """
    keys = ", ".join(partition)
    return f"""
    SELECT {keys}, min(start_minute) AS start_minute, max(end_minute) AS end_minute
    FROM (
        SELECT *, sum(starts_island) OVER (
            PARTITION BY {keys} ORDER BY start_minute, end_minute ROWS UNBOUNDED PRECEDING
        ) AS island
        FROM (
            SELECT {keys}, start_minute, end_minute,
                CASE WHEN start_minute <= max(end_minute) OVER (
                    PARTITION BY {keys} ORDER BY start_minute, end_minute
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                ) THEN 0 ELSE 1 END AS starts_island
            FROM {source}
            WHERE start_minute < end_minute
        )
    )
    GROUP BY {keys}, island
    """


# The profile row (the API returns exactly one; the newest wins if a stale one lingers). An aggregate
# without GROUP BY always yields one row, so CROSS JOINs against it never drop rows.
PROFILE = """
profile AS (
    SELECT
        first(default_schedule_id ORDER BY _synced_at DESC NULLS LAST) AS default_schedule_id,
        first(time_zone ORDER BY _synced_at DESC NULLS LAST) AS time_zone
    FROM raw.my_profile
)"""

# Zone names ICU knows; an unknown name would make timezone() fail the whole table, so it falls back.
KNOWN_ZONES = """
known_zones AS (SELECT name FROM pg_timezone_names())"""

PROFILE_ZONE = """
profile_zone AS (
    SELECT coalesce(z.name, 'UTC') AS time_zone
    FROM profile AS p
    LEFT JOIN known_zones AS z ON z.name = p.time_zone
)"""

# A schedule's zone: its own, else the profile's, else UTC.
SCHEDULE_ZONES = """
schedule_zones AS (
    SELECT s.id AS schedule_id, coalesce(z.name, pz.time_zone) AS time_zone
    FROM raw.schedules AS s
    CROSS JOIN profile_zone AS pz
    LEFT JOIN known_zones AS z ON z.name = s.time_zone
)"""

# Event types with their effective schedule (own, else the profile's default) and total buffer.
EVENT_TYPE_FACTS = """
event_type_facts AS (
    SELECT
        et.id AS event_type_id,
        et.title,
        et.slug,
        coalesce(et.schedule_id, p.default_schedule_id) AS schedule_id,
        coalesce(et.before_event_buffer, 0) + coalesce(et.after_event_buffer, 0) AS buffer_minutes
    FROM raw.event_types AS et
    CROSS JOIN profile AS p
)"""

# One row per booking with only the columns the metrics need; attendees JSON is parsed for accepted
# bookings only, which is all the no-show rule looks at.
BOOKING_FACTS = f"""
booking_facts AS (
    SELECT
        b.id AS booking_id,
        b.event_type_id,
        lower(b.status) AS status,
        b.start,
        b.created_at,
        coalesce(b.duration, CAST(round((epoch(b."end") - epoch(b.start)) / 60) AS BIGINT)) AS duration,
        b.rating,
        coalesce(et.schedule_id, p.default_schedule_id) AS schedule_id,
        coalesce(et.buffer_minutes, 0) AS buffer_minutes,
        CASE WHEN lower(b.status) = {ACCEPTED} THEN
            coalesce(b.absent_host, false)
            OR coalesce(
                json_array_length(b.attendees) > 0
                AND list_bool_and(list_transform(
                    from_json(b.attendees, '[{{"absent": "BOOLEAN"}}]'),
                    lambda a: coalesce(a.absent, false)
                )),
                false
            )
        ELSE false END AS is_no_show
    FROM raw.bookings AS b
    CROSS JOIN profile AS p
    LEFT JOIN event_type_facts AS et ON et.event_type_id = b.event_type_id
)"""

# Weekly availability: one row per window and weekday, with parsed minute-of-day bounds.
WINDOW_ROWS = f"""
window_rows AS (
    SELECT schedule_id, weekday, start_time, end_time, start_minute,
        {window_end("start_minute", "raw_end_minute")} AS end_minute
    FROM (
        SELECT schedule_id,
            concat(upper(left(trim(day), 1)), lower(substr(trim(day), 2))) AS weekday,
            w.startTime AS start_time,
            w.endTime AS end_time,
            {minute_of_day("w.startTime")} AS start_minute,
            {minute_of_day("w.endTime")} AS raw_end_minute
        FROM (
            SELECT schedule_id, w, unnest(w.days) AS day
            FROM (
                SELECT id AS schedule_id, unnest(from_json(availability, '{AVAILABILITY_SHAPE}')) AS w
                FROM raw.schedules
            )
        )
    )
    WHERE weekday IN {WEEKDAYS!r} AND start_minute IS NOT NULL AND raw_end_minute IS NOT NULL
)"""

# Date overrides: one row per override window, in the schedule's zone.
OVERRIDE_ROWS = f"""
override_rows AS (
    SELECT schedule_id, date, time_zone, start_time, end_time, start_minute,
        {window_end("start_minute", "raw_end_minute")} AS end_minute
    FROM (
        SELECT o.schedule_id,
            TRY_CAST(left(o.w.date, 10) AS DATE) AS date,
            z.time_zone,
            o.w.startTime AS start_time,
            o.w.endTime AS end_time,
            {minute_of_day("o.w.startTime")} AS start_minute,
            {minute_of_day("o.w.endTime")} AS raw_end_minute
        FROM (
            SELECT id AS schedule_id, unnest(from_json(overrides, '{OVERRIDES_SHAPE}')) AS w
            FROM raw.schedules
        ) AS o
        JOIN schedule_zones AS z ON z.schedule_id = o.schedule_id
    )
    WHERE date IS NOT NULL AND start_minute IS NOT NULL AND raw_end_minute IS NOT NULL
)"""
