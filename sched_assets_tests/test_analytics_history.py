"""The analytics read from `history.bookings` (`booking_changes`, the history columns of
`event_type_stats`) on hand-built versions, against hand-computed expectations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from sched_assets.analytics import SELECTS
from sched_assets.analytics.build import build_table
from sched_assets.analytics.specs import BOOKING_CHANGES, EVENT_TYPE_STATS
from sched_assets_tests.raw_tables import create_raw_tables, insert_rows

T1, T2, T3 = (datetime(2026, 12, day, 12, tzinfo=UTC) for day in (1, 2, 3))  # three syncs


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'Pacific/Kiritimati'")  # results must not depend on it
    create_raw_tables(connection)
    insert_rows(connection, "my_profile", [{"id": 1, "username": "ada", "default_schedule_id": 10}])
    insert_rows(
        connection,
        "event_types",
        [{"id": 100, "title": "Intro", "slug": "intro"}, {"id": 200, "title": "Demo", "slug": "demo"}],
    )
    yield connection
    connection.close()


def version(booking_id: int, event_type_id: int, status: str, start: str, seen: datetime, **fields: Any):
    return {
        "id": booking_id,
        "event_type_id": event_type_id,
        "status": status,
        "start": at(start),
        "end": at(start).replace(minute=30),
        "title": fields.pop("title", "meeting"),
        "_synced_at": seen,
        **fields,
    }


def add_history(con: duckdb.DuckDBPyConnection, bookings: dict[int, list[dict[str, Any]]]) -> None:
    """Each booking's versions in order: raw.bookings gets the last, history.bookings all of them
    (`valid_from` = when seen, `valid_to` = when the next was seen)."""
    for versions in bookings.values():
        insert_rows(con, "bookings", [versions[-1]])
        for index, row in enumerate(versions):
            closed = versions[index + 1]["_synced_at"] if index + 1 < len(versions) else None
            columns = [*row, "valid_from", "valid_to"]
            values = [*row.values(), row["_synced_at"], closed]
            names = ", ".join(f'"{c}"' for c in columns)
            con.execute(
                f"INSERT INTO history.bookings ({names}) VALUES ({', '.join('?' for _ in columns)})", values
            )


@pytest.fixture
def history(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    add_history(
        con,
        {
            # Seen pending, then accepted: a status change at T2.
            1: [
                version(1, 100, "pending", "2026-12-09T09:00", T1),
                version(1, 100, "accepted", "2026-12-09T09:00", T2),
            ],
            # Moved a day later (T2), then cancelled (T3, the API says at 2026-12-08 10:00): a time change,
            # a status change, and a cancellation 48 h before the start it had then.
            2: [
                version(2, 100, "accepted", "2026-12-09T10:00", T1),
                version(2, 100, "accepted", "2026-12-10T10:00", T2),
                version(2, 100, "cancelled", "2026-12-10T10:00", T3, updated_at=at("2026-12-08T10:00")),
            ],
            # Cancelled when first seen (T1), no updatedAt: dated by the sync, 96 h before its start.
            3: [version(3, 200, "CANCELLED", "2026-12-05T12:00", T1)],
            # Rescheduled the Cal.com way: cancelled with a successor. A reschedule, not a cancellation.
            6: [
                version(6, 200, "accepted", "2026-12-12T08:00", T1),
                version(6, 200, "cancelled", "2026-12-12T08:00", T2, rescheduled_to_uid="uid-7"),
            ],
            # Only the title changed: a version, but not a change here.
            4: [
                version(4, 200, "accepted", "2026-12-11T08:00", T1),
                version(4, 200, "accepted", "2026-12-11T08:00", T2, title="renamed"),
            ],
        },
    )
    return con


def test_booking_changes_are_the_status_and_time_transitions(history: duckdb.DuckDBPyConnection) -> None:
    build_table(history, BOOKING_CHANGES, SELECTS[BOOKING_CHANGES.name])

    rows = history.execute(
        "SELECT booking_id, seen_at, version_number, event_type_id, status_changed, time_changed, "
        "from_status, to_status, from_start, to_start FROM analytics.booking_changes ORDER BY ALL"
    ).fetchall()

    assert rows == [
        (1, T2, 2, 100, True, False, "pending", "accepted", at("2026-12-09T09:00"), at("2026-12-09T09:00")),
        (2, T2, 2, 100, False, True, "accepted", "accepted", at("2026-12-09T10:00"), at("2026-12-10T10:00")),
        (2, T3, 3, 100, True, False, "accepted", "cancelled", at("2026-12-10T10:00"), at("2026-12-10T10:00")),
        (6, T2, 2, 200, True, False, "accepted", "cancelled", at("2026-12-12T08:00"), at("2026-12-12T08:00")),
    ]
    key = history.execute(
        "SELECT count(DISTINCT (booking_id, seen_at)) FROM analytics.booking_changes"
    ).fetchone()
    assert key == (4,)


def test_event_type_stats_cancellation_lead_time_and_reschedules(history: duckdb.DuckDBPyConnection) -> None:
    build_table(history, EVENT_TYPE_STATS, SELECTS[EVENT_TYPE_STATS.name])

    rows = history.execute(
        "SELECT event_type_id, avg_cancellation_lead_hours, cancellations_seen, reschedules, cancelled "
        "FROM analytics.event_type_stats ORDER BY event_type_id"
    ).fetchall()

    assert rows == [(100, 48.0, 1, 1, 1), (200, 96.0, 1, 1, 2)]


def test_without_history_the_history_columns_are_empty(con: duckdb.DuckDBPyConnection) -> None:
    insert_rows(con, "bookings", [version(5, 100, "cancelled", "2026-12-09T09:00", T1)])
    build_table(con, EVENT_TYPE_STATS, SELECTS[EVENT_TYPE_STATS.name])
    build_table(con, BOOKING_CHANGES, SELECTS[BOOKING_CHANGES.name])

    assert con.execute(
        "SELECT avg_cancellation_lead_hours, cancellations_seen, reschedules, cancelled "
        "FROM analytics.event_type_stats WHERE event_type_id = 100"
    ).fetchall() == [(None, 0, 0, 1)]
    assert con.execute("SELECT count(*) FROM analytics.booking_changes").fetchall() == [(0,)]
