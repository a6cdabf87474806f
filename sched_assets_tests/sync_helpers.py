"""Shared helpers for end-to-end sync tests: materialize the real assets against a demo server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME, EndpointSpec
from sched_assets.definitions import warehouse_resources
from sched_assets.defs.analytics import analytics_assets
from sched_assets.defs.keys import raw_key
from sched_assets.defs.resources import SchedApiResource
from sched_assets.defs.sources import build_source_assets
from sched_assets.demo import DEMO_API_KEY, DemoAccount
from sched_assets.frames.columns import key_columns
from sched_assets_tests.demo_helpers import account_booking_ids, expected_count

RAW_TABLES = tuple(spec.name for spec in ENDPOINTS)
# What the analytics compute from `history.bookings`: it dates what the syncs saw (a booking without
# `updatedAt` by the sync itself), so it rightly differs between two syncs of the same data, or between
# several syncs and one sync of the same final state (None: the whole table).
FROM_HISTORY: dict[str, set[str] | None] = {
    "analytics.booking_changes": None,
    "analytics.event_type_stats": {"avg_cancellation_lead_hours", "cancellations_seen", "reschedules"},
}


def comparable_columns(table: str) -> str:
    """The SELECT list of `table` without what it computes from the history (`FROM_HISTORY`)."""
    dated = FROM_HISTORY.get(table) or set()
    return f"* EXCLUDE ({', '.join(sorted(dated))})" if dated else "*"


def sync(
    url: str,
    database: Path,
    instance: dg.DagsterInstance,
    *,
    full_refresh: bool = False,
    raise_on_error: bool = True,
    endpoints: tuple[EndpointSpec, ...] = ENDPOINTS,
    with_analytics: bool = False,
    **resource_overrides: Any,
) -> dg.ExecuteInJobResult:
    """Materialize the source assets once (and the analytics, if asked), as the main command would."""
    api = SchedApiResource(
        base_url=url,
        api_key=resource_overrides.pop("api_key", DEMO_API_KEY),
        **{"backoff_factor": 0.01, "max_backoff_seconds": 0.05, **resource_overrides},
    )
    return dg.materialize(
        [build_source_assets(endpoints), *(analytics_assets if with_analytics else [])],
        resources={"sched_api": api, **warehouse_resources(str(database))},
        instance=instance,
        run_config={"ops": {"raw_sources": {"config": {"full_refresh": full_refresh}}}},
        raise_on_error=raise_on_error,
    )


def table_rows(database: Path, table: str) -> list[tuple]:
    """Every row of raw.<table> in key order, `_synced_at` excluded (it changes on every write)."""
    with duckdb.connect(str(database), read_only=True) as con:
        columns = [
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema='raw' and table_name=? "
                "order by ordinal_position",
                [table],
            ).fetchall()
            if c != "_synced_at"
        ]
        order = ", ".join(key_columns(ENDPOINTS_BY_NAME[table]))
        quoted = ", ".join(f'"{c}"' for c in columns)
        return con.execute(f"select {quoted} from raw.{table} order by {order}").fetchall()


def snapshot(database: Path) -> dict[str, list[tuple]]:
    return {table: table_rows(database, table) for table in RAW_TABLES}


def booking_ids(database: Path) -> list[int]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [i for (i,) in con.execute("select id from raw.bookings order by id").fetchall()]


def assert_tables_equal_account(database: Path, account: DemoAccount) -> None:
    """Row counts of every table, booking ids, and a sample of booking fields equal the account."""
    with duckdb.connect(str(database), read_only=True) as con:
        for table in RAW_TABLES:
            count = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
            assert count == expected_count(account, table), table
        rows = con.execute(
            "select id, uid, status, title, epoch(updated_at)::bigint from raw.bookings order by id"
        ).fetchall()
    assert [r[0] for r in rows] == account_booking_ids(account)
    for row in rows[:: max(1, len(rows) // 50)]:
        booking = account.booking(row[0])
        assert (row[1], row[2], row[3]) == (booking["uid"], booking["status"], booking["title"])


def materialization_metadata(result: dg.ExecuteInJobResult, name: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key == raw_key(name):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {name}")
