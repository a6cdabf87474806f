"""Exact reads while the account changes under them: edits during an incremental read, hard deletions
during a full read, with concurrency and behind a server that caps `take`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sched_assets.defs.sources import build_source_assets
from sched_assets.demo import DemoAccount, DemoApi, Faults
from sched_assets_tests.demo_helpers import account_booking_ids
from sched_assets_tests.reliability_helpers import (
    FULL_REFRESH,
    SyncRun,
    account_records,
    assert_raw_tables_exact,
    demo_server,
    read_table,
    record_outcome,
    sync,
)

# (settings of the client, faults of the server that shape the pages)
VARIANTS = {
    "one connection": ({"concurrency": 1}, {}),
    "concurrency 4, take capped at 40": ({"concurrency": 4}, {"max_take": 40}),
}


def _sync(api: DemoApi, url: str, database: Path, instance: dg.DagsterInstance, settings, **extra) -> SyncRun:
    """One successful sync of the source assets alone (analytics are not what these runs test)."""
    run = sync(
        api, url, database, instance, assets=[build_source_assets()], page_size=100, **settings, **extra
    )
    assert run.success, run.failure()
    return run


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_edits_during_an_incremental_read_are_exact_after_one_quiet_sync(
    variant: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    settings, shape = VARIANTS[variant]
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=2400, seed=21)
    api = DemoApi(account, faults=Faults(**shape))
    with demo_server(api) as server:
        _sync(api, server.url, database, instance, settings)
        # 2,000 bookings changed since the last sync, a minute apart: far wider than the 60-minute lag.
        for booking_id in account_booking_ids(account)[:2000]:
            account.touch([booking_id])
        # Edits of rows the read has passed shift every later row back by one under offset paging.
        api.faults = Faults(**shape, edits_per_page=2.0, edit_targets="any")
        changing = _sync(api, server.url, database, instance, settings)
        edited = changing.server["edited"]
        assert edited >= 20, changing.server  # the account really changed during the read
        api.faults = Faults(**shape)
        _sync(api, server.url, database, instance, settings)
    meta = changing.source_metadata()["bookings"]
    assert meta["sync_plan"].startswith("incremental") and meta["read_order"] == "updatedAt"
    assert_raw_tables_exact(database, {"bookings": account_records(account)["bookings"]})
    record_outcome(
        f"{edited} bookings edited during an incremental read of 2,000 changed ({variant})",
        outcome="run succeeded; one quiet follow-up sync",
        tables="exact",
        requests=changing.requests,
        retries=0,
        throttled_429=changing.throttled,
        seconds=round(changing.seconds, 1),
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_full_refresh_during_deletions_keeps_every_live_booking(
    variant: str, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    settings, shape = VARIANTS[variant]
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=8000, seed=22)
    api = DemoApi(account, faults=Faults(**shape))
    with demo_server(api) as server:
        _sync(api, server.url, database, instance, settings)
        api.faults = Faults(**shape, deletes_per_page=0.5, edits_per_page=0.2)
        refresh = _sync(api, server.url, database, instance, settings, run_config=FULL_REFRESH)
        deleted = refresh.server["deleted"]
        assert deleted >= 20, refresh.server
        stored = {row["id"] for row in read_table(database, "raw.bookings")}
        live = set(account_booking_ids(account))
        # Every booking that still exists is kept; rows deleted mid-read may stay until the next refresh.
        assert live <= stored, f"{len(live - stored)} live bookings dropped"
        meta = refresh.source_metadata()["bookings"]
        assert meta["read_order"] == "createdAt"
        api.faults = Faults(**shape)
        quiet = _sync(api, server.url, database, instance, settings, run_config=FULL_REFRESH)
    assert quiet.source_metadata()["bookings"]["complete_read"] is True
    assert_raw_tables_exact(database, {"bookings": account_records(account)["bookings"]})
    record_outcome(
        f"{deleted} bookings hard-deleted during a full refresh of 8,000 ({variant})",
        outcome="run succeeded; no live booking dropped; exact after a quiet full refresh",
        tables="every live row kept",
        requests=refresh.requests,
        retries=0,
        throttled_429=refresh.throttled,
        seconds=round(refresh.seconds, 1),
    )
