"""End to end against the documented API: event types without the legacy shape, capped pages."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from sched_assets.api.keyset import SLICES_PER_WORKER
from sched_assets.api.specs import ENDPOINTS
from sched_assets.demo import DemoAccount, DemoApi, Faults, serve
from sched_assets_tests.demo_helpers import all_records
from sched_assets_tests.sync_helpers import (
    assert_tables_equal_account,
    comparable_columns,
    materialization_metadata,
    sync,
)

EVENT_TYPE_COLUMNS = (
    "id, team_id, title, slug, length_in_minutes, schedule_id, before_event_buffer, after_event_buffer, "
    "hidden, price, currency, scheduling_type"
)


def _rows(database, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_documented_event_types_only_then_legacy_shape_give_the_same_tables(tmp_path, instance):
    account = DemoAccount(bookings=600, event_types=12)
    expected = {(r["id"], r.get("teamId")) for r in all_records(account, "event_types")}
    assert any(team for _, team in expected) and any(team is None for _, team in expected)

    documented = tmp_path / "documented.duckdb"
    with serve(DemoApi(account, faults=Faults(legacy_event_types=False))) as server:
        result = sync(server.url, documented, instance, with_analytics=True)
    meta = materialization_metadata(result, "event_types")
    assert meta["response_shape"] == "documented"
    assert meta["dagster/row_count"] == len(expected)
    assert set(_rows(documented, "select id, team_id from raw.event_types")) == expected
    assert_tables_equal_account(documented, account)

    # A client that sends no version header gets the old grouped shape: read, renamed, same account.
    no_header = tuple(
        dataclasses.replace(s, version=None) if s.name == "event_types" else s for s in ENDPOINTS
    )
    legacy = tmp_path / "legacy.duckdb"
    with serve(DemoApi(account)) as server:
        result = sync(server.url, legacy, instance, endpoints=no_header, with_analytics=True)
    assert materialization_metadata(result, "event_types")["response_shape"] == "legacy"

    select = f"select {EVENT_TYPE_COLUMNS} from raw.event_types order by id"
    assert _rows(legacy, select) == _rows(documented, select)
    for table in ("booking_utilization_daily", "event_type_stats", "booking_attendees"):
        query = f"select {comparable_columns(f'analytics.{table}')} from analytics.{table} order by all"
        assert _rows(legacy, query) == _rows(documented, query), table
    # Team bookings find their event type and schedule.
    [(unknown,)] = _rows(documented, "select count(*) from analytics.event_type_stats where not is_known")
    [(team_rows,)] = _rows(
        documented,
        "select count(*) from analytics.event_type_stats s join raw.event_types e on e.id = s.event_type_id "
        "where e.team_id is not null and s.bookings_total > 0",
    )
    assert team_rows > 0
    assert unknown == len(
        {b["eventTypeId"] for b in all_records(account, "bookings")} - {i for i, _ in expected} - {None}
    )


@pytest.mark.parametrize("page_size", [100, 250])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_server_capping_take_at_40_loses_no_booking(tmp_path, instance, page_size, concurrency):
    account = DemoAccount(bookings=3000)
    database = tmp_path / "capped.duckdb"
    with serve(DemoApi(account, faults=Faults(max_take=40))) as server:
        result = sync(server.url, database, instance, page_size=page_size, concurrency=concurrency)
    meta = materialization_metadata(result, "bookings")
    assert meta["dagster/row_count"] == 3000
    assert_tables_equal_account(database, account)
    # Paged by the server's size; a keyset read re-reads the last timestamp's row on the next page, and
    # each slice (three per connection) may end on a short page.
    slices = SLICES_PER_WORKER * concurrency if concurrency > 1 else 1
    assert 3000 // 40 <= meta["pages"] <= 3000 // 39 + 2 * slices


def test_one_failing_team_fails_the_sync_and_changes_nothing(tmp_path, instance):
    account = DemoAccount(bookings=200)
    database = tmp_path / "teams.duckdb"
    with serve(DemoApi(account)) as server:
        sync(server.url, database, instance)
    before = _rows(database, "select id, title from raw.event_types order by id")
    team = all_records(account, "teams")[-1]["id"]
    with serve(DemoApi(account, faults=Faults(fail_team_ids=frozenset({team})))) as server:
        result = sync(server.url, database, instance, raise_on_error=False, max_retries=1)
    assert not result.success
    message = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert f"teams id={team}" in message and "No table was changed" in message
    assert _rows(database, "select id, title from raw.event_types order by id") == before
