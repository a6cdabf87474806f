"""Pure-layer tests: hand-built raw tables in an in-memory DuckDB, hand-computed expectations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import duckdb
import polars as pl
import pytest

from sched_assets.analytics import SELECTS
from sched_assets.analytics.build import build_table
from sched_assets.analytics.previews import markdown_query
from sched_assets.analytics.specs import (
    BOOKING_ATTENDEES,
    BOOKING_UTILIZATION_DAILY,
    EVENT_TYPE_STATS,
    SCHEDULE_OVERRIDES,
    SCHEDULE_WINDOWS,
    TABLES,
)
from sched_assets_tests.analytics_helpers import build_frame
from sched_assets_tests.raw_tables import create_raw_tables, insert_rows

WEEKDAYS_MON_FRI = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
BERLIN = 10  # the profile's default schedule
TOKYO = 20
NEW_YORK = 30


def window(days: list[str], start: str, end: str) -> dict[str, Any]:
    return {"days": days, "startTime": start, "endTime": end}


def override(day: str, start: str, end: str) -> dict[str, Any]:
    return {"date": day, "startTime": start, "endTime": end}


def booking(
    booking_id: int,
    start: str,
    *,
    event_type_id: int | None = 100,
    status: str = "accepted",
    duration: int | None = 30,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "id": booking_id,
        "uid": f"uid-{booking_id}",
        "start": start,
        "status": status,
        "duration": duration,
        "event_type_id": event_type_id,
        **fields,
    }


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """Empty raw tables plus a profile whose default schedule is Berlin."""
    connection = duckdb.connect()
    # Results must not depend on the session zone; pick one far from every zone used here.
    connection.execute("SET TimeZone = 'Pacific/Kiritimati'")
    create_raw_tables(connection)
    insert_rows(
        connection,
        "my_profile",
        [{"id": 1, "username": "ada", "default_schedule_id": BERLIN, "time_zone": "Europe/Berlin"}],
    )
    yield connection
    connection.close()


def add_schedule(
    con: duckdb.DuckDBPyConnection,
    schedule_id: int,
    time_zone: str | None,
    availability: list[dict[str, Any]],
    overrides: list[dict[str, Any]] | None = None,
) -> None:
    insert_rows(
        con,
        "schedules",
        [
            {
                "id": schedule_id,
                "name": f"schedule {schedule_id}",
                "time_zone": time_zone,
                "availability": availability,
                "overrides": overrides or [],
            }
        ],
    )


def add_event_type(
    con: duckdb.DuckDBPyConnection, event_type_id: int, schedule_id: int | None, **fields: Any
) -> None:
    insert_rows(
        con,
        "event_types",
        [
            {
                "id": event_type_id,
                "title": f"type {event_type_id}",
                "slug": f"t{event_type_id}",
                "schedule_id": schedule_id,
                **fields,
            }
        ],
    )


def utilization_rows(con: duckdb.DuckDBPyConnection) -> dict[tuple[int, date], dict[str, Any]]:
    frame = build_frame(con, BOOKING_UTILIZATION_DAILY)
    return {(row["schedule_id"], row["date"]): row for row in frame.iter_rows(named=True)}


# -- booking_attendees -------------------------------------------------------------------------


def test_booking_attendees_one_row_per_attendee(con: duckdb.DuckDBPyConnection) -> None:
    insert_rows(
        con,
        "bookings",
        [
            booking(
                1,
                "2026-05-04T08:00:00Z",
                attendees=[
                    {
                        "name": "Ann",
                        "email": "ann@x.test",
                        "displayEmail": "ann@x.test",
                        "timeZone": "Europe/Paris",
                        "language": "fr",
                        "absent": False,
                        "phoneNumber": "+33 1 23",
                    },
                    {
                        "name": "Bob",
                        "email": "bob@x.test",
                        "timeZone": "Asia/Tokyo",
                        "language": "ja",
                        "absent": True,
                        "seatUid": "seat-9",
                        "bookingFieldsResponses": {"notes": "hi"},
                    },
                ],
            ),
            booking(2, "2026-05-04T09:00:00Z", attendees=[]),
            booking(3, "2026-05-04T10:00:00Z", attendees=None),
        ],
    )
    frame = build_frame(con, BOOKING_ATTENDEES)
    assert frame.columns == [
        "booking_id",
        "attendee_index",
        "name",
        "email",
        "time_zone",
        "language",
        "absent",
        "seat_uid",
        "phone_number",
    ]
    assert frame.rows() == [
        (1, 0, "Ann", "ann@x.test", "Europe/Paris", "fr", False, None, "+33 1 23"),
        (1, 1, "Bob", "bob@x.test", "Asia/Tokyo", "ja", True, "seat-9", None),
    ]


def test_booking_attendees_empty_table_keeps_schema(con: duckdb.DuckDBPyConnection) -> None:
    frame = build_frame(con, BOOKING_ATTENDEES)
    assert frame.is_empty()
    assert frame.schema["booking_id"] == pl.Int64
    assert frame.schema["absent"] == pl.Boolean


# -- schedule_windows / schedule_overrides ------------------------------------------------------


def test_schedule_windows_expands_weekdays_and_collapses_repeats(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [
            window(["Tuesday", "Monday"], "09:00", "17:00"),
            window(["Monday"], "09:00", "17:00"),  # verbatim repeat: one row
            window(["Friday"], "20:00", "23:59"),  # 23:59 means midnight
            window(["Saturday"], "12:00", "12:00"),  # empty
            window(["Someday"], "09:00", "10:00"),  # not a weekday: ignored
        ],
    )
    frame = build_frame(con, SCHEDULE_WINDOWS)
    assert frame.columns == ["schedule_id", "weekday", "start_time", "end_time", "minutes"]
    assert frame.rows() == [
        (BERLIN, "Monday", "09:00", "17:00", 480),
        (BERLIN, "Tuesday", "09:00", "17:00", 480),
        (BERLIN, "Friday", "20:00", "23:59", 240),
        (BERLIN, "Saturday", "12:00", "12:00", 0),
    ]


def test_schedule_overrides_count_real_minutes_on_dst_days(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [],
        [
            override("2026-03-29", "01:00", "04:00"),  # spring forward: 02:00-03:00 does not exist
            override("2026-10-25", "01:00", "04:00"),  # fall back: 02:00-03:00 happens twice
            override("2026-12-24", "00:00", "00:00"),  # unavailable all day
            override("2026-12-31", "10:00", "24:00"),
        ],
    )
    frame = build_frame(con, SCHEDULE_OVERRIDES)
    assert frame.rows() == [
        (BERLIN, date(2026, 3, 29), "01:00", "04:00", 120),
        (BERLIN, date(2026, 10, 25), "01:00", "04:00", 240),
        (BERLIN, date(2026, 12, 24), "00:00", "00:00", 0),
        (BERLIN, date(2026, 12, 31), "10:00", "24:00", 840),
    ]


# -- booking_utilization_daily ------------------------------------------------------------------


def test_dst_days_count_real_elapsed_minutes(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [window(["Sunday"], "01:00", "04:00"), window(["Sunday"], "09:00", "17:00")],
    )
    add_event_type(con, 100, BERLIN)
    insert_rows(con, "bookings", [booking(1, "2026-03-29T08:00:00Z"), booking(2, "2026-10-25T08:00:00Z")])
    rows = utilization_rows(con)
    # Every Sunday from 2026-03-29 to 2026-10-25 (30 weeks later) has availability; no other day does.
    assert len(rows) == 31
    assert {day.isoweekday() for _, day in rows} == {7}
    assert rows[BERLIN, date(2026, 3, 29)]["available_minutes"] == 120 + 480
    assert rows[BERLIN, date(2026, 4, 5)]["available_minutes"] == 180 + 480
    assert rows[BERLIN, date(2026, 10, 25)]["available_minutes"] == 240 + 480
    assert rows[BERLIN, date(2026, 3, 29)]["utilization"] == pytest.approx(30 / 600)
    assert rows[BERLIN, date(2026, 3, 29)]["time_zone"] == "Europe/Berlin"


def test_override_replaces_weekly_windows_on_its_date(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [window(WEEKDAYS_MON_FRI, "09:00", "17:00")],
        # Tuesday 2026-03-31: two overlapping override windows, 10:00-13:00 merged = 180.
        [override("2026-03-31", "10:00", "12:00"), override("2026-03-31", "11:00", "13:00")],
    )
    add_event_type(con, 100, BERLIN)
    insert_rows(
        con, "bookings", [booking(1, "2026-03-31T09:00:00Z", duration=90), booking(2, "2026-04-01T09:00:00Z")]
    )
    rows = utilization_rows(con)
    assert rows[BERLIN, date(2026, 3, 31)]["available_minutes"] == 180
    assert rows[BERLIN, date(2026, 3, 31)]["utilization"] == pytest.approx(0.5)
    assert rows[BERLIN, date(2026, 4, 1)]["available_minutes"] == 480  # weekly windows again


def test_empty_override_makes_day_unavailable_and_utilization_null(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [window(WEEKDAYS_MON_FRI, "09:00", "17:00")],
        [override("2026-12-24", "00:00", "00:00")],
    )
    add_event_type(con, 100, BERLIN)
    insert_rows(con, "bookings", [booking(1, "2026-12-24T09:00:00Z", duration=45)])
    row = utilization_rows(con)[BERLIN, date(2026, 12, 24)]
    assert row["available_minutes"] == 0
    assert row["booked_minutes"] == 45
    assert row["utilization"] is None


def test_overlapping_windows_are_merged(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [
            window(["Monday"], "09:00", "12:00"),
            window(["Monday"], "11:00", "14:00"),
            window(["Monday"], "09:30", "10:00"),  # inside the first
            window(["Monday"], "14:00", "15:00"),  # touches the second
            window(["Monday"], "16:00", "17:00"),  # separate
        ],
    )
    add_event_type(con, 100, BERLIN)
    insert_rows(con, "bookings", [booking(1, "2026-05-04T08:00:00Z")])  # Monday
    assert utilization_rows(con)[BERLIN, date(2026, 5, 4)]["available_minutes"] == 6 * 60 + 60


def test_end_of_day_windows(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(
        con,
        BERLIN,
        "Europe/Berlin",
        [
            window(["Monday"], "20:00", "23:59"),
            window(["Tuesday"], "22:00", "24:00"),
            window(["Wednesday"], "18:00", "00:00"),
        ],
    )
    add_event_type(con, 100, BERLIN)
    insert_rows(
        con,
        "bookings",
        [
            booking(1, "2026-05-04T19:00:00Z"),
            booking(2, "2026-05-05T20:30:00Z"),
            booking(3, "2026-05-06T17:00:00Z"),
        ],
    )
    rows = utilization_rows(con)
    assert rows[BERLIN, date(2026, 5, 4)]["available_minutes"] == 240
    assert rows[BERLIN, date(2026, 5, 5)]["available_minutes"] == 120
    assert rows[BERLIN, date(2026, 5, 6)]["available_minutes"] == 360


def test_event_type_without_schedule_and_unknown_event_type_use_profile_default(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_schedule(con, TOKYO, "Asia/Tokyo", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 300, None)  # no schedule of its own
    insert_rows(
        con,
        "bookings",
        [
            booking(1, "2026-05-04T08:00:00Z", event_type_id=300, duration=60),
            booking(2, "2026-05-04T09:00:00Z", event_type_id=999, duration=30),  # unknown event type
            booking(3, "2026-05-04T10:00:00Z", event_type_id=None, duration=15),  # no event type at all
        ],
    )
    rows = utilization_rows(con)
    assert set(rows) == {(BERLIN, date(2026, 5, 4))}
    assert rows[BERLIN, date(2026, 5, 4)]["booked_minutes"] == 105
    assert rows[BERLIN, date(2026, 5, 4)]["bookings_accepted"] == 3


def test_local_date_follows_the_schedule_zone(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, NEW_YORK, "America/New_York", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_schedule(con, TOKYO, "Asia/Tokyo", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 400, NEW_YORK)
    add_event_type(con, 200, TOKYO)
    insert_rows(
        con,
        "bookings",
        [
            # Tuesday 02:00 UTC is Monday 22:00 in New York (EDT, UTC-4).
            booking(1, "2026-06-02T02:00:00Z", event_type_id=400),
            # Monday 20:00 UTC is Tuesday 05:00 in Tokyo (UTC+9).
            booking(2, "2026-06-01T20:00:00Z", event_type_id=200),
        ],
    )
    rows = utilization_rows(con)
    assert set(rows) == {(NEW_YORK, date(2026, 6, 1)), (TOKYO, date(2026, 6, 2))}
    assert rows[NEW_YORK, date(2026, 6, 1)]["time_zone"] == "America/New_York"
    assert rows[TOKYO, date(2026, 6, 2)]["time_zone"] == "Asia/Tokyo"


def test_status_counts_and_only_accepted_minutes(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 100, BERLIN, before_event_buffer=5, after_event_buffer=10)
    add_event_type(con, 300, BERLIN, before_event_buffer=None, after_event_buffer=15)
    day = "2026-05-04T{}:00:00Z"
    insert_rows(
        con,
        "bookings",
        [
            booking(1, day.format("07"), event_type_id=100, duration=30),
            booking(2, day.format("08"), event_type_id=300, duration=60),
            booking(3, day.format("09"), status="cancelled", duration=30),
            booking(4, day.format("10"), status="rejected", duration=30),
            booking(5, day.format("11"), status="pending", duration=30),
            booking(6, day.format("12"), status="awaiting_host", duration=30),
            booking(7, day.format("13"), status="cancelled", duration=30),
        ],
    )
    row = utilization_rows(con)[BERLIN, date(2026, 5, 4)]
    assert row["booked_minutes"] == 90
    assert row["buffer_minutes"] == (5 + 10) + (0 + 15)
    assert row["utilization"] == pytest.approx(90 / 480)
    assert (row["bookings_accepted"], row["bookings_cancelled"], row["bookings_pending"]) == (2, 3, 2)


def test_no_shows(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 100, BERLIN)
    both_absent = [{"name": "A", "absent": True}, {"name": "B", "absent": True}]
    one_absent = [{"name": "A", "absent": True}, {"name": "B", "absent": False}]
    day = "2026-05-04T{}:00:00Z"
    insert_rows(
        con,
        "bookings",
        [
            booking(
                1, day.format("07"), absent_host=True, attendees=[{"name": "A", "absent": False}]
            ),  # counts
            booking(2, day.format("08"), absent_host=False, attendees=both_absent),  # counts
            booking(3, day.format("09"), absent_host=False, attendees=one_absent),  # some absent: no
            booking(4, day.format("10"), absent_host=None, attendees=[]),  # no attendees: no
            booking(5, day.format("11"), attendees=[{"name": "A"}]),  # absent missing: no
            booking(
                6, day.format("12"), status="cancelled", absent_host=True, attendees=both_absent
            ),  # not accepted
        ],
    )
    assert utilization_rows(con)[BERLIN, date(2026, 5, 4)]["no_shows"] == 2


def test_rows_span_first_to_last_booking_date(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 100, BERLIN)
    add_schedule(
        con, TOKYO, "Asia/Tokyo", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")]
    )  # no bookings: no rows
    insert_rows(
        con,
        "bookings",
        [booking(1, "2026-06-05T08:00:00Z"), booking(2, "2026-06-09T08:00:00Z", status="cancelled")],
    )
    frame = build_frame(con, BOOKING_UTILIZATION_DAILY)
    # Friday, then Monday and Tuesday; the weekend has neither availability nor bookings.
    assert frame.select("schedule_id", "date", "available_minutes", "booked_minutes").rows() == [
        (BERLIN, date(2026, 6, 5), 480, 30),
        (BERLIN, date(2026, 6, 8), 480, 0),
        (BERLIN, date(2026, 6, 9), 480, 0),
    ]
    assert frame.schema["date"] == pl.Date


def test_schedule_missing_from_raw_schedules_counts_bookings_with_no_availability(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_event_type(con, 100, 77)  # schedule 77 is not in raw.schedules
    insert_rows(con, "bookings", [booking(1, "2026-05-04T23:30:00Z")])  # 01:30 next day in Berlin
    frame = build_frame(con, BOOKING_UTILIZATION_DAILY)
    assert frame.select("schedule_id", "date", "time_zone", "available_minutes", "utilization").rows() == [
        (77, date(2026, 5, 5), "Europe/Berlin", 0, None)
    ]


def test_utilization_scales_to_many_bookings(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 100, BERLIN)
    # 200,000 accepted bookings of 30 minutes, 100 per weekday-or-weekend day from 2021-01-01.
    con.execute(
        """
        INSERT INTO raw.bookings (id, status, start, duration, event_type_id, attendees)
        SELECT i, 'accepted', TIMESTAMPTZ '2021-01-01 09:00:00+00' + to_days(CAST(i // 100 AS INTEGER)),
            30, 100, '[{"name": "x", "absent": false}]'
        FROM range(200000) AS t(i)
        """
    )
    frame = build_frame(con, BOOKING_UTILIZATION_DAILY)
    assert frame.height == 2000
    assert frame["booked_minutes"].sum() == 200000 * 30
    assert frame["bookings_accepted"].sum() == 200000


# -- event_type_stats ----------------------------------------------------------------------------


def test_event_type_stats(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    add_event_type(con, 100, TOKYO)
    add_event_type(con, 300, None)  # effective schedule: the profile default
    add_event_type(con, 500, TOKYO)  # no bookings
    insert_rows(
        con,
        "bookings",
        [
            # Event type 100: 2 accepted (one no-show), 1 cancelled, 1 rejected, 1 pending.
            booking(
                1,
                "2026-05-04T10:00:00Z",
                duration=30,
                created_at="2026-05-03T10:00:00Z",
                rating=4.0,
                absent_host=True,
            ),
            booking(2, "2026-05-05T10:00:00Z", duration=60, created_at="2026-05-05T04:00:00Z", rating=None),
            booking(
                3, "2026-05-06T10:00:00Z", status="cancelled", created_at="2026-05-06T09:00:00Z", rating=2.0
            ),
            booking(4, "2026-05-07T10:00:00Z", status="rejected", created_at="2026-05-07T10:00:00Z"),
            booking(5, "2026-05-08T10:00:00Z", status="pending", created_at=None),
            # Event type 300: only cancelled.
            booking(6, "2026-05-04T10:00:00Z", event_type_id=300, status="cancelled"),
            # Unknown event type 999.
            booking(7, "2026-05-04T10:00:00Z", event_type_id=999, duration=45),
            booking(8, "2026-05-04T11:00:00Z", event_type_id=None),  # no event type: not counted here
        ],
    )
    frame = build_frame(con, EVENT_TYPE_STATS)
    assert frame["event_type_id"].to_list() == [100, 300, 500, 999]
    rows = {row["event_type_id"]: row for row in frame.iter_rows(named=True)}

    first = rows[100]
    assert (first["title"], first["slug"], first["schedule_id"], first["is_known"]) == (
        "type 100",
        "t100",
        TOKYO,
        True,
    )
    assert (first["bookings_total"], first["accepted"], first["cancelled"], first["pending"]) == (5, 2, 2, 1)
    assert first["cancellation_rate"] == pytest.approx(2 / 5)
    assert first["no_show_rate"] == pytest.approx(1 / 2)
    assert first["avg_lead_time_hours"] == pytest.approx((24 + 6 + 1 + 0) / 4)
    assert first["avg_rating"] == pytest.approx(3.0)
    assert first["booked_minutes"] == 90

    only_cancelled = rows[300]
    assert only_cancelled["schedule_id"] == BERLIN
    assert only_cancelled["cancellation_rate"] == 1.0
    assert only_cancelled["no_show_rate"] is None  # none accepted
    assert only_cancelled["booked_minutes"] == 0

    unused = rows[500]
    assert (unused["bookings_total"], unused["cancellation_rate"], unused["no_show_rate"]) == (0, None, None)
    assert unused["avg_lead_time_hours"] is None

    unknown = rows[999]
    assert (unknown["title"], unknown["slug"], unknown["is_known"], unknown["schedule_id"]) == (
        None,
        None,
        False,
        BERLIN,
    )
    assert (unknown["bookings_total"], unknown["accepted"], unknown["booked_minutes"]) == (1, 1, 45)


def test_event_type_stats_without_profile(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM raw.my_profile")
    add_event_type(con, 300, None)
    insert_rows(con, "bookings", [booking(1, "2026-05-04T10:00:00Z", event_type_id=300)])
    frame = build_frame(con, EVENT_TYPE_STATS)
    assert frame.select("event_type_id", "schedule_id", "bookings_total").rows() == [(300, None, 1)]
    # Without any schedule, utilization has nothing to attach the booking to.
    assert build_frame(con, BOOKING_UTILIZATION_DAILY).is_empty()


# -- build_table: in place, atomic ---------------------------------------------------------------


def table_state(
    con: duckdb.DuckDBPyConnection, table: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Everything a failed build must leave untouched: the column list and every row, in order."""
    return con.execute(f"DESCRIBE {table}").fetchall(), con.execute(f"SELECT * FROM {table}").fetchall()


def test_build_table_reports_what_duckdb_holds(con: duckdb.DuckDBPyConnection) -> None:
    add_schedule(con, BERLIN, "Europe/Berlin", [window(WEEKDAYS_MON_FRI, "09:00", "17:00")])
    built = build_table(con, SCHEDULE_WINDOWS, SELECTS[SCHEDULE_WINDOWS.name])
    assert str(built.table) == "analytics.schedule_windows"
    assert (
        built.row_count
        == con.execute("SELECT count(*) FROM analytics.schedule_windows").fetchall()[0][0]
        == 5
    )
    described = [
        (name, type_) for name, type_, *_ in con.execute("DESCRIBE analytics.schedule_windows").fetchall()
    ]
    assert list(built.columns) == described
    assert described[0] == ("schedule_id", "BIGINT")
    assert [name for name, _ in described] == ["schedule_id", "weekday", "start_time", "end_time", "minutes"]


def test_every_select_builds_on_empty_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    assert set(SELECTS) == {table.name for table in TABLES}
    for table in TABLES:
        built = build_table(con, table, SELECTS[table.name])
        assert built.columns and built.row_count == 0
        assert set(table.primary_key) <= {name for name, _ in built.columns}


def test_failed_build_keeps_the_previous_table_exactly(con: duckdb.DuckDBPyConnection) -> None:
    insert_rows(
        con,
        "bookings",
        [booking(1, "2026-05-04T08:00:00Z", attendees=[{"name": "Ann", "absent": False}, {"name": "Bob"}])],
    )
    build_table(con, BOOKING_ATTENDEES, SELECTS[BOOKING_ATTENDEES.name])
    before = table_state(con, "analytics.booking_attendees")

    # An error in the middle of the rows, after DuckDB has started writing the new table.
    failing = (
        "SELECT i AS booking_id, CASE WHEN i = 150000 THEN error('boom') ELSE i END AS attendee_index "
        "FROM range(200000) AS t(i)"
    )
    with pytest.raises(duckdb.Error, match="boom"):
        build_table(con, BOOKING_ATTENDEES, failing)
    assert table_state(con, "analytics.booking_attendees") == before

    # A raw table that is missing fails to bind; the connection stays usable and the table intact.
    con.execute("DROP TABLE raw.bookings")
    with pytest.raises(duckdb.CatalogException, match="bookings"):
        build_table(con, BOOKING_ATTENDEES, SELECTS[BOOKING_ATTENDEES.name])
    assert table_state(con, "analytics.booking_attendees") == before
    assert con.execute("SELECT 1").fetchall() == [(1,)]  # no transaction left open


def test_failed_first_build_leaves_no_table(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.Error, match="boom"):
        build_table(con, EVENT_TYPE_STATS, "SELECT error('boom') AS event_type_id FROM range(10)")
    [(tables,)] = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'analytics'"
    ).fetchall()
    assert tables == 0


# -- previews --------------------------------------------------------------------------------------


def test_markdown_query_renders_small_results() -> None:
    with duckdb.connect() as memory:
        rendered = markdown_query(
            memory, "SELECT 1 AS id, 'a|b' AS name, DATE '2026-05-04' AS day, 1234.5 :: DOUBLE AS minutes"
        )
        assert (
            rendered
            == "| id | name | day | minutes |\n|---|---|---|---|\n| 1 | a\\|b | 2026-05-04 | 1,234.5 |"
        )
        assert markdown_query(memory, "SELECT 1 AS id WHERE false") == "_no rows_"
