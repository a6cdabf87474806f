"""End-to-end faults: the real assets synced from the demo API on a local port, with faults switched on.

Faults that a sync must survive end with tables exactly equal to the demo account (every key and value,
analytics byte-for-byte equal to a fault-free sync). Faults that must fail the run fail it with a message
that says what happened and what to do, and leave every table byte-for-byte as it was.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sched_assets.api.specs import ENDPOINTS
from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi, Faults, RateLimit
from sched_assets_tests.reliability_helpers import (
    RETRY_LINE,
    BlockInjector,
    Snapshot,
    SyncRun,
    account_records,
    analytics_only,
    assert_raw_tables_exact,
    demo_server,
    diff_snapshots,
    record_outcome,
    snapshot,
    sync,
)

BOOKINGS = 600
PAGE_SIZE = 25  # 24 bookings pages + 5 other requests: enough requests for faults to land


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(bookings=BOOKINGS)


@pytest.fixture(scope="module")
def synced_database(
    account: DemoAccount, instance: dg.DagsterInstance, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A database after one fault-free sync of the account: every fatal case starts from a copy."""
    database = tmp_path_factory.mktemp("synced") / "sched.duckdb"
    api = DemoApi(account)
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=PAGE_SIZE)
    assert run.success, run.failure()
    return database


@pytest.fixture(scope="module")
def reference_analytics(synced_database: Path) -> Snapshot:
    """The analytics tables of a fault-free sync: faulty syncs must end with exactly these."""
    return analytics_only(snapshot(synced_database))


def assert_exact(database: Path, account: DemoAccount, reference: Snapshot) -> None:
    """Raw tables equal the account record for record; analytics equal the fault-free sync's."""
    assert_raw_tables_exact(database, account_records(account))
    assert diff_snapshots(reference, analytics_only(snapshot(database))) == []


# ---- 1. faults a sync survives --------------------------------------------------------------------


@dataclass(frozen=True)
class Survivable:
    """A fault the sync must ride out, and how to tell it really happened."""

    name: str
    faults: Faults
    settings: dict[str, Any] = field(default_factory=dict)
    timeout_stall: float = 30.0
    happened: Callable[[SyncRun], int] = lambda run: 0
    log_hint: str = ""  # a phrase the retry warnings must contain


def _count_5xx(run: SyncRun) -> int:
    return sum(n for status, n in run.server["by_status"].items() if status.startswith("5"))


def _count_action(action: str) -> Callable[[SyncRun], int]:
    return lambda run: int(run.server["by_action"].get(action, 0))


SURVIVABLE = [
    Survivable(
        "20% 5xx (half HTML gateway pages)",
        Faults(seed=11, error_rate=0.2, html_fraction=0.5),
        {"max_retries": 8},
        happened=_count_5xx,
        log_hint="HTML page instead of JSON",
    ),
    Survivable(
        "15% connection resets",
        Faults(seed=12, reset_rate=0.15),
        {"max_retries": 8},
        happened=_count_action("reset"),
        log_hint="talking to the API",
    ),
    Survivable(
        "10% read timeouts (server stalls 1 s, client read timeout 0.3 s)",
        Faults(seed=13, timeout_rate=0.1),
        {"max_retries": 8, "read_timeout_seconds": 0.3},
        timeout_stall=1.0,
        happened=_count_action("timeout"),
        log_hint="ReadTimeout",
    ),
    Survivable(
        "20% truncated JSON bodies (HTTP 200)",
        Faults(seed=14, truncate_rate=0.2),
        {"max_retries": 8},
        happened=_count_action("truncate"),
        log_hint="not valid JSON",
    ),
    Survivable(
        "30% latency spikes of 0.4 s",
        Faults(seed=15, spike_rate=0.3, spike_latency=0.4),
        happened=lambda run: 1,  # spikes are not counted by the server; the wall time shows them
    ),
]


@pytest.mark.parametrize("case", SURVIVABLE, ids=lambda case: case.name.split(" (")[0])
def test_sync_survives_fault_with_exact_tables(
    case: Survivable,
    account: DemoAccount,
    reference_analytics: Snapshot,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    """The run succeeds, every table is exact, and the fault demonstrably hit the sync."""
    database = tmp_path / "sched.duckdb"
    api = DemoApi(account, faults=case.faults)
    with demo_server(api, timeout_stall=case.timeout_stall) as server:
        run = sync(api, server.url, database, instance, page_size=PAGE_SIZE, **case.settings)
    assert run.success, run.failure()
    assert_exact(database, account, reference_analytics)

    faults_seen = case.happened(run)
    assert faults_seen > 0, f"the fault never fired: {run.server}"
    retries = run.total("retries")
    if case.log_hint:
        assert retries > 0
        assert any(case.log_hint in message for message in run.log_messages())
    else:
        # A spike under the read timeout is a slow answer, not a failure: never retried as a timeout.
        # (On a loaded CI machine an unrelated transient may still cost a retry; it must say what it was.)
        retried = [message for message in run.log_messages() if RETRY_LINE.search(message)]
        assert len(retried) == retries, retried
        assert not any("Timeout" in message for message in retried), retried
    # Finite: every request the server saw is one the client counted, and no request retried forever.
    assert run.total("requests") == run.requests
    assert run.requests <= 29 * (1 + case.settings.get("max_retries", 3))
    record_outcome(
        case.name,
        outcome="run succeeded",
        tables="exact",
        requests=run.requests,
        retries=retries,
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
        faults_fired=faults_seen,
    )


RATE_LIMIT = RateLimit(limit=20, window=2, block=2)
RATE_LIMIT_SETTINGS = {"rate_limit_wait_seconds": 2.0}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_rate_limit_block_mid_sync_waits_for_the_reset(
    concurrency: int,
    account: DemoAccount,
    reference_analytics: Snapshot,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    """Another consumer of the key trips a 2 s block mid-sync: the client waits for the reset.

    It may learn of the block only from a 429: at most one per connection in flight when the block
    starts (requests already sent cannot be recalled), none after. The sync then finishes, exact.
    17 requests (page size 50) fit one window, so any wait here is the block's.
    """
    database = tmp_path / "sched.duckdb"
    api = DemoApi(account, rate_limit=RATE_LIMIT, faults=Faults(latency=0.03))
    injector = BlockInjector(api, DEMO_API_KEY, after=3)
    with demo_server(api) as server:
        api.reset_stats()
        injector.start()
        try:
            run = sync(
                api,
                server.url,
                database,
                instance,
                concurrency=concurrency,
                page_size=50,
                **RATE_LIMIT_SETTINGS,
            )
        finally:
            injector.stop()
    assert injector.blocked_at is not None, "the injector never tripped the block"
    assert run.success, run.failure()
    assert_exact(database, account, reference_analytics)

    client_429 = run.throttled - injector.injected_429
    # Requests that arrived while the key was blocked (the injector's own 429 opened the block).
    during_block = run.server["blocked_requests"]
    # Each connection open when the block starts may learn of it from one 429 and then waits: resources
    # are read in parallel threads sharing the budget, so that is the bookings pages and team
    # event-types reads in flight (`concurrency` each) plus one request per other resource.
    in_flight = 2 * concurrency + len(ENDPOINTS) - 2
    assert 1 <= client_429 <= in_flight, run.server
    assert during_block <= in_flight, run.server
    assert run.total("throttled_429") == client_429
    assert run.seconds >= RATE_LIMIT.block
    record_outcome(
        f"rate-limit block (2 s) mid-sync, concurrency={concurrency}",
        outcome="run succeeded after waiting for the reset",
        tables="exact",
        requests=run.requests - injector.injected_requests,
        retries=run.total("retries"),
        throttled_429=client_429,
        seconds=round(run.seconds, 1),
    )


# ---- 2. faults that must fail the run cleanly -----------------------------------------------------

WRONG_KEY = "cal_live_" + "W" * 24  # built at runtime: no key-shaped literal in the repository


@dataclass(frozen=True)
class Fatal:
    """A fault that must fail the run, what its message must say, and the client settings."""

    name: str
    faults: Faults = field(default_factory=Faults)
    settings: dict[str, Any] = field(default_factory=dict)
    root: str = ""  # serve the client a wrong API root (scheme, host and port stay right)
    says: tuple[str, ...] = ()


FATAL = [
    Fatal(
        "retries exhausted (bookings always 5xx)",
        Faults(seed=3, error_rate=1.0, resources=frozenset({"bookings"})),
        {"max_retries": 2},
        says=("bookings", "still failing after 2 retries", "try again later", "max_retries"),
    ),
    Fatal(
        "outage mid-sync (every request 503 after 10 successes)",
        Faults(fail_after=10),
        {"max_retries": 2},
        says=("HTTP 503", "still failing after 2 retries", "try again later"),
    ),
    Fatal(
        "401 invalid API key",
        settings={"api_key": WRONG_KEY},
        says=("HTTP 401", "SCHED_API_KEY", "not valid"),
    ),
    Fatal(
        "403 on bookings",
        Faults(fail_status={"bookings": 403}),
        says=("bookings", "HTTP 403", "not allowed to read", "deselect"),
    ),
    Fatal(
        "404 on one endpoint (schedules)",
        Faults(fail_status={"schedules": 404}),
        says=("schedules", "HTTP 404", "SCHED_API_BASE_URL", "version prefix"),
    ),
    Fatal(
        "404 everywhere (base URL with a wrong version prefix)",
        root="/v9",
        says=("HTTP 404", "SCHED_API_BASE_URL"),
    ),
    Fatal(
        "400 on bookings",
        Faults(fail_status={"bookings": 400}),
        says=("bookings", "HTTP 400", "page_size"),
    ),
]


@pytest.mark.parametrize("case", FATAL, ids=lambda case: case.name.split(" (")[0])
def test_fatal_fault_fails_cleanly_and_changes_no_table(
    case: Fatal, account: DemoAccount, synced_database: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """From a synced database, a faulty sync fails with a helpful message and changes no table.

    The faulty server listens on a new port, i.e. is a new source: bookings are read in full (many pages).
    """
    database = tmp_path / "sched.duckdb"
    for source in synced_database.parent.glob(synced_database.name + "*"):
        shutil.copyfile(source, database.with_name(source.name))
    before = snapshot(database)
    api = DemoApi(account, faults=case.faults)
    with demo_server(api) as server:
        url = server.base_url + case.root if case.root else server.url
        run = sync(api, url, database, instance, page_size=PAGE_SIZE, **case.settings)

    assert not run.success
    message = run.failure()
    for phrase in case.says:
        assert phrase in message, f"{phrase!r} missing from:\n{message}"
    assert "No table was changed" in message
    assert diff_snapshots(before, snapshot(database)) == []
    assert run.result.get_asset_materialization_events() == []
    record_outcome(
        case.name,
        outcome="run failed, clear message",
        tables="unchanged (byte-for-byte)",
        requests=run.requests,
        retries=run.retry_warnings(),
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )


def test_invalid_key_fails_fast_without_retries_or_leaking_the_key(
    account: DemoAccount, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """401 is not retried: one request per endpoint at most, seconds not minutes, key never printed."""
    database = tmp_path / "sched.duckdb"
    api = DemoApi(account)
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, api_key=WRONG_KEY, backoff_factor=2.0)
    assert not run.success
    assert run.seconds < 10, "a 401 must not wait through backoffs"
    assert all(count == 1 for count in run.server["by_path"].values()), run.server
    assert set(run.server["by_status"]) == {"401"}
    message = run.failure()
    assert "SCHED_API_KEY" in message
    everything = "\n".join([message, *run.log_messages()])
    assert WRONG_KEY not in everything
    assert WRONG_KEY[-12:] not in everything
    record_outcome(
        "401 invalid API key (default backoff 2 s)",
        outcome="run failed fast, key not printed",
        tables="none written",
        requests=run.requests,
        retries=0,
        throttled_429=0,
        seconds=round(run.seconds, 1),
    )
