"""Hand-built raw tables for tests: the exact columns and types of `raw.<name>`, filled from dicts.

The real raw tables are written by the sync assets; these stand in for them in the analytics and check
tests, with the columns the resource specs declare.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME
from sched_assets.frames.columns import column_types
from sched_assets.storage.naming import HISTORY_SCHEMA, RAW_SCHEMA, TableName, quote_ident


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema `raw` and every raw table, empty, with the contract's columns and types, and the
    history tables (`history.<name>`: the same columns plus `valid_from`, `valid_to`)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(RAW_SCHEMA)}")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(HISTORY_SCHEMA)}")
    for spec in ENDPOINTS:
        columns = ", ".join(
            f"{quote_ident(column)} {sql_type}" for column, sql_type in column_types(spec).items()
        )
        con.execute(f"CREATE OR REPLACE TABLE {TableName(RAW_SCHEMA, spec.name).sql} ({columns})")
        if spec.history:
            con.execute(
                f"CREATE OR REPLACE TABLE {TableName(HISTORY_SCHEMA, spec.name).sql} "
                f"({columns}, valid_from TIMESTAMPTZ NOT NULL, valid_to TIMESTAMPTZ)"
            )


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows (snake_case column -> value) to `raw.<table>`; missing columns stay NULL.

    Values for JSON columns may be Python objects (they are serialised); timestamps may be ISO strings.
    """
    types = column_types(ENDPOINTS_BY_NAME[table])
    target = TableName(RAW_SCHEMA, table)
    for row in rows:
        unknown = set(row) - set(types)
        if unknown:
            raise KeyError(f"{target} has no columns {sorted(unknown)}")
        columns = list(row)
        values = [
            json.dumps(row[c]) if types[c] == "JSON" and row[c] is not None else row[c] for c in columns
        ]
        placeholders = ", ".join(f"CAST(? AS {types[c]})" for c in columns)
        names = ", ".join(quote_ident(c) for c in columns)
        con.execute(f"INSERT INTO {target.sql} ({names}) VALUES ({placeholders})", values)


# A small account whose derived tables are easy to compute by hand (see the analytics tests):
# Berlin schedule 10 (the default) open Mon-Fri 09:00-17:00; event type 100 on it with 5 + 10 buffer
# minutes, 300 without a schedule; bookings on Monday 2026-05-04 and Tuesday 2026-05-05, one of an
# event type (999) that raw.event_types lacks.
SAMPLE_ACCOUNT: dict[str, list[dict[str, Any]]] = {
    "my_profile": [{"id": 1, "username": "ada", "default_schedule_id": 10, "time_zone": "Europe/Berlin"}],
    "schedules": [
        {
            "id": 10,
            "name": "Working hours",
            "time_zone": "Europe/Berlin",
            "is_default": True,
            "availability": [
                {
                    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                    "startTime": "09:00",
                    "endTime": "17:00",
                }
            ],
            "overrides": [{"date": "2026-12-24", "startTime": "10:00", "endTime": "12:00"}],
        }
    ],
    "event_types": [
        {
            "id": 100,
            "title": "Intro call",
            "slug": "intro",
            "length_in_minutes": 60,
            "schedule_id": 10,
            "before_event_buffer": 5,
            "after_event_buffer": 10,
        },
        {"id": 300, "title": "Quick chat", "slug": "chat", "length_in_minutes": 30, "schedule_id": None},
    ],
    "bookings": [
        {
            "id": 1,
            "uid": "b1",
            "status": "accepted",
            "start": "2026-05-04T08:00:00Z",
            "end": "2026-05-04T09:00:00Z",
            "duration": 60,
            "event_type_id": 100,
            "created_at": "2026-05-01T08:00:00Z",
            "absent_host": False,
            "attendees": [
                {
                    "name": "Ann",
                    "email": "ann@x.test",
                    "timeZone": "Europe/Paris",
                    "language": "fr",
                    "absent": False,
                }
            ],
        },
        {
            "id": 2,
            "uid": "b2",
            "status": "accepted",
            "start": "2026-05-04T10:00:00Z",
            "end": "2026-05-04T10:30:00Z",
            "duration": 30,
            "event_type_id": 300,
            "created_at": "2026-05-03T10:00:00Z",
            "absent_host": True,
            "attendees": [
                {"name": "Bob", "email": "bob@x.test", "timeZone": "UTC", "language": "en", "absent": False}
            ],
        },
        {
            "id": 3,
            "uid": "b3",
            "status": "cancelled",
            "start": "2026-05-05T08:00:00Z",
            "end": "2026-05-05T09:00:00Z",
            "duration": 60,
            "event_type_id": 100,
            "created_at": "2026-05-02T08:00:00Z",
            "attendees": [],
        },
        {
            "id": 4,
            "uid": "b4",
            "status": "accepted",
            "start": "2026-05-05T09:00:00Z",
            "end": "2026-05-05T09:30:00Z",
            "duration": 30,
            "event_type_id": 999,
            "created_at": "2026-05-04T09:00:00Z",
            "attendees": [
                {"name": "Cy", "email": "cy@x.test", "absent": True},
                {"name": "Di", "absent": True},
            ],
        },
    ],
    "calendars": [
        {
            "credential_id": 1,
            "external_id": "holidays@group",
            "integration": "google_calendar",
            "name": "Holidays",
        },
        {
            "credential_id": 2,
            "external_id": "holidays@group",
            "integration": "google_calendar",
            "name": "Holidays",
        },
    ],
    "conferencing": [{"id": 5, "type": "zoom_video", "app_id": "zoom"}],
}


def seed_sample_account(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables and fill them with `SAMPLE_ACCOUNT`."""
    create_raw_tables(con)
    for table, rows in SAMPLE_ACCOUNT.items():
        insert_rows(con, table, rows)
