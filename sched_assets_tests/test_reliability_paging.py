"""Paging traps end to end: unpaged lists, a server that ignores `skip`, an overstated `totalItems`.

Each must give exact results (or, when the server ignores `skip`, the first page and a clean stop with
a warning) with a bounded number of requests.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from sched_assets.api.selector import select_records
from sched_assets.demo import DemoAccount, DemoApi, Faults
from sched_assets_tests.reliability_helpers import (
    FULL_REFRESH,
    RESOURCES,
    account_records,
    api_get,
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
def test_server_ignoring_skip_stops_after_the_first_page(
    concurrency: int, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """Every `skip` returns page one: the client keeps the first page, warns, and stops."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=300)
    api = DemoApi(account, faults=Faults(ignore_skip=True))
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=50, concurrency=concurrency)
        first_page = select_records(api_get(api, "bookings", {"take": "50", "skip": "0"}), "data.*")
    assert run.success, run.failure()
    expected = {**account_records(account), "bookings": first_page}
    assert_raw_tables_exact(database, expected)
    # The first page, then the window of pages in flight (each a repeat of page one), then stop.
    assert run.path_requests("bookings") <= 1 + concurrency, run.server["by_path"]
    assert run.source_metadata()["bookings"]["stopped_by"].startswith("loop guard")
    assert any("repeats an earlier page" in m and "ignore `skip`" in m for m in run.log_messages())
    record_outcome(
        f"server ignores `skip` on bookings (300 bookings, page 50, concurrency={concurrency})",
        outcome="run succeeded with a warning; first page only",
        tables="first page (50 rows)",
        requests=run.requests,
        retries=0,
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )


@pytest.mark.parametrize("concurrency", [1, 4])
def test_overstated_total_items_ends_with_exact_results(
    concurrency: int, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """`totalItems` claims 1,000 more bookings than exist: paging stops at the first empty page."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=300)
    api = DemoApi(account, faults=Faults(overstate_total=1000))
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=50, concurrency=concurrency)
    assert run.success, run.failure()
    assert_raw_tables_exact(database, account_records(account))
    # 6 full pages + the empty page that ends it + at most `concurrency` pages already in flight.
    assert run.path_requests("bookings") <= 6 + 1 + concurrency, run.server["by_path"]
    assert run.source_metadata()["bookings"]["stopped_by"] == "empty page"
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
