"""Paging traps end to end: unpaged lists, a server that ignores `skip`, an overstated `totalItems`.

Each must give exact results (or, when the server ignores `skip`, the first page and a clean stop with
a warning) with a bounded number of requests.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sched_assets.api.keyset import SLICES_PER_WORKER
from sched_assets.demo import DemoAccount, DemoApi, Faults
from sched_assets_tests.reliability_helpers import (
    FULL_REFRESH,
    RESOURCES,
    account_records,
    assert_raw_tables_exact,
    demo_server,
    record_outcome,
    snapshot,
    sync,
)


def test_unpaged_endpoint_with_300_items_is_read_once(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """300 event types (more than a page) come from one request; a paginator would loop forever."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=50, event_types=300)
    api = DemoApi(account)
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=100)
    assert run.success, run.failure()
    assert_raw_tables_exact(database, account_records(account))
    assert len(snapshot(database)["raw.event_types"][1]) == 300
    for name in RESOURCES:
        if name != "bookings":
            assert run.path_requests(name) == 1, (name, run.server["by_path"])
    record_outcome(
        "unpaged endpoint with 300 items (event types), page_size 100",
        outcome="run succeeded",
        tables="exact",
        requests=run.requests,
        retries=0,
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )


@pytest.mark.parametrize("concurrency", [1, 4])
def test_server_ignoring_skip_is_read_exactly_by_position(
    concurrency: int, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """Every `skip` is ignored: bookings are read by position (`afterCreatedAt`), so nothing is lost."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=300)
    api = DemoApi(account, faults=Faults(ignore_skip=True))
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=50, concurrency=concurrency)
    assert run.success, run.failure()
    assert_raw_tables_exact(database, account_records(account))
    meta = run.source_metadata()["bookings"]
    assert meta["read_order"] == "createdAt" and meta["complete_read"] is True
    # 6 pages of 50 (each re-reading the previous page's last row), slice ends, and the count after.
    assert run.path_requests("bookings") <= 7 + 2 * concurrency + 1, run.server["by_path"]
    record_outcome(
        f"server ignores `skip` on bookings (300 bookings, page 50, concurrency={concurrency})",
        outcome="run succeeded",
        tables="exact (read by position, not offset)",
        requests=run.requests,
        retries=0,
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )


@pytest.mark.parametrize("concurrency", [1, 4])
def test_overstated_total_items_ends_with_exact_results(
    concurrency: int, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """`totalItems` claims 1,000 more bookings than exist: reading stops at the first empty page, and the
    count after the read (1,300 > 300 read) marks the read incomplete, so nothing is deleted."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=300)
    api = DemoApi(account, faults=Faults(overstate_total=1000))
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=50, concurrency=concurrency)
    assert run.success, run.failure()
    assert_raw_tables_exact(database, account_records(account))
    # 7 pages of 50 (each re-reading the previous page's last row), the page holding only that row, the
    # empty page, up to three closing requests per slice, and the count taken after the read.
    slices = SLICES_PER_WORKER * concurrency if concurrency > 1 else 1
    assert run.path_requests("bookings") <= 10 + 3 * slices, run.server["by_path"]
    meta = run.source_metadata()["bookings"]
    assert meta["stopped_by"] == "empty page"
    assert meta["rows_counted_after_read"] == 1300 and meta["complete_read"] is False
    record_outcome(
        f"`totalItems` overstated by 1,000 (300 bookings, page 50, concurrency={concurrency})",
        outcome="run succeeded",
        tables="exact",
        requests=run.requests,
        retries=0,
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )


def test_full_refresh_against_a_server_ignoring_skip_keeps_the_table(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """After a complete sync, a full refresh from a server that ignores `skip` must not replace 300
    bookings with the 50 of page one: the loop guard means the read is incomplete."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=300)
    api = DemoApi(account)
    with demo_server(api) as server:
        assert sync(api, server.url, database, instance, page_size=50).success
        api.faults = Faults(ignore_skip=True)
        run = sync(api, server.url, database, instance, page_size=50, run_config=FULL_REFRESH)
    rows = len(snapshot(database)["raw.bookings"][1])
    record_outcome(
        "full refresh while the server ignores `skip` (after a complete sync of 300)",
        outcome="run succeeded" if run.success else "run failed",
        tables=f"raw.bookings: {rows} of 300 rows",
        requests=run.requests,
        retries=0,
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )
    assert rows == 300, f"a full refresh from a server ignoring `skip` shrank raw.bookings to {rows} rows"
