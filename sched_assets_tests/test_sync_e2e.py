"""The six source assets end to end: real Dagster runs, the real IO manager, the demo API on a local port."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sched_assets.demo import DemoAccount, DemoApi, Faults, RateLimit, serve
from sched_assets_tests.demo_helpers import account_booking_ids
from sched_assets_tests.sync_helpers import (
    assert_tables_equal_account,
    booking_ids,
    materialization_metadata,
    snapshot,
    sync,
)

PROJECT = Path(__file__).resolve().parents[1]
CONTRACT_CHECK = PROJECT.parent / "shared" / "contract_check.py"


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.mark.slow
def test_main_command_on_fresh_checkout_syncs_demo_account(tmp_path):
    """No configuration at all: the README's main command fills data/demo.duckdb with the demo account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHED_")}
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "sched_assets.definitions",
        "--select",
        "*",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DEMO MODE" in done.stderr
    database = tmp_path / "data" / "demo.duckdb"
    assert_tables_equal_account(database, DemoAccount())
    with duckdb.connect(str(database), read_only=True) as con:
        for table in (
            "booking_attendees",
            "booking_utilization_daily",
            "event_type_stats",
            "schedule_windows",
        ):
            assert con.execute(f"select count(*) from analytics.{table}").fetchone()[0] > 0, table
    contract = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(database)], capture_output=True, text=True
    )
    assert contract.returncode == 0, contract.stdout
    assert "contract: ok" in contract.stdout


@pytest.mark.slow
def test_storm_exact_then_changes_then_failed_sync_changes_nothing(tmp_path, instance):
    account = DemoAccount(bookings=20_000)
    api = DemoApi(account, faults=Faults(seed=11, error_rate=0.2, html_fraction=0.5))
    database = tmp_path / "sched.duckdb"
    with serve(api) as server:
        result = sync(server.url, database, instance, max_retries=5, page_size=100)
        assert_tables_equal_account(database, account)
        meta = materialization_metadata(result, "bookings")
        assert meta["retries"] > 0 and meta["source"] == server.url
        assert meta["dagster/row_count"] == 20_000

        # Records change upstream; the next (incremental) sync updates them without duplicates.
        touched = account.touch(0.01)
        added = account.add(25)
        result = sync(server.url, database, instance, max_retries=5)
        assert_tables_equal_account(database, account)
        meta = materialization_metadata(result, "bookings")
        assert meta["sync_plan"].startswith("incremental")
        assert meta["records_fetched"] < 1_000
        assert meta["records_fetched"] >= len(touched) + len(added)

        # A sync that fails midway (the API starts failing) leaves every table exactly as it was.
        before = snapshot(database)
        account.touch(0.05)
        account.add(10)
        api.faults = Faults(fail_after=30)
        api.reset_stats()
        failed = sync(server.url, database, instance, full_refresh=True, raise_on_error=False, max_retries=2)
        assert not failed.success
        assert snapshot(database) == before


def test_incremental_cursor_lag_full_refresh_and_null_updated_at(tmp_path, instance):
    account = DemoAccount(bookings=900)
    database = tmp_path / "sched.duckdb"
    with serve(DemoApi(account)) as server:
        first = materialization_metadata(sync(server.url, database, instance), "bookings")
        assert first["sync_plan"].startswith("first sync")
        assert first["requested_after_updated_at"] == "everything"
        cursor = datetime.fromisoformat(first["cursor_updated_at"])

        touched = account.touch([account_booking_ids(account)[5]])
        legacy = account.add(3, null_updated_at=True)  # invisible to afterUpdatedAt
        gone = account_booking_ids(account)[10]
        account.delete([gone])

        second = materialization_metadata(sync(server.url, database, instance), "bookings")
        assert second["sync_plan"].startswith("incremental")
        requested = datetime.fromisoformat(second["requested_after_updated_at"].replace("Z", "+00:00"))
        assert requested == cursor - timedelta(minutes=60)
        assert datetime.fromisoformat(second["cursor_updated_at"]) > cursor
        ids = booking_ids(database)
        assert touched[0] in ids
        assert gone in ids, "an incremental sync cannot see hard deletes"
        assert not set(legacy) & set(ids), "rows with null updatedAt never match afterUpdatedAt"

        third = materialization_metadata(sync(server.url, database, instance, full_refresh=True), "bookings")
        assert third["sync_plan"] == "full refresh requested"
        assert booking_ids(database) == account_booking_ids(account)
        assert gone not in booking_ids(database) and set(legacy) <= set(booking_ids(database))


def test_cursor_ignored_when_table_missing_or_source_changes(tmp_path, instance):
    account = DemoAccount(bookings=300)
    with serve(DemoApi(account)) as server:
        sync(server.url, tmp_path / "a.duckdb", instance)
        # Same Dagster instance, new database file: the cursor alone must not cause a partial table.
        meta = materialization_metadata(sync(server.url, tmp_path / "b.duckdb", instance), "bookings")
        assert meta["sync_plan"].startswith("table missing")
        assert booking_ids(tmp_path / "b.duckdb") == account_booking_ids(account)
    with serve(DemoApi(account)) as other:  # another URL is another source
        meta = materialization_metadata(sync(other.url, tmp_path / "b.duckdb", instance), "bookings")
        assert meta["sync_plan"].startswith("first sync")


def test_pacing_through_dagster_gets_no_429(tmp_path, instance):
    account = DemoAccount(bookings=400)
    api = DemoApi(account, rate_limit=RateLimit(limit=15, window=2.0, block=2.0))
    with serve(api) as server:
        result = sync(server.url, tmp_path / "s.duckdb", instance, page_size=10, concurrency=3)
    assert api.stats.throttled == 0
    assert api.stats.requests >= 45
    assert materialization_metadata(result, "bookings")["throttled_429"] == 0
    assert_tables_equal_account(tmp_path / "s.duckdb", account)


def test_subset_materializes_only_selected(tmp_path, instance):
    account = DemoAccount(bookings=50)
    api = DemoApi(account)
    with serve(api) as server:
        from sched_assets.definitions import warehouse_resources
        from sched_assets.defs.keys import raw_key
        from sched_assets.defs.resources import SchedApiResource
        from sched_assets.defs.sources import build_source_assets

        database = str(tmp_path / "x.duckdb")
        result = dg.materialize(
            [build_source_assets()],
            selection=[raw_key("schedules")],
            resources={
                "sched_api": SchedApiResource(base_url=server.url, api_key="cal_demo_public_key"),
                **warehouse_resources(database),
            },
            instance=instance,
        )
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [raw_key("schedules")]
    assert set(api.stats.by_path) == {"/v2/schedules"}
