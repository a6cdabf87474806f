"""The client against the demo API over a real local socket: exact records, paging, faults, pacing."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sched_assets.api.client import ClientConfig, SchedApiClient, SyncStats
from sched_assets.api.errors import AuthenticationError
from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME
from sched_assets.demo import DEMO_API_KEY, DEMO_OAUTH_TOKEN, DemoAccount, DemoApi, Faults, RateLimit, serve
from sched_assets_tests.api_helpers import fetch_all
from sched_assets_tests.demo_helpers import account_booking_ids, all_records

BOOKINGS = ENDPOINTS_BY_NAME["bookings"]


def client_for(url: str, **overrides) -> SchedApiClient:
    api_key = overrides.pop("api_key", DEMO_API_KEY)
    config = {"backoff_factor": 0.01, "max_backoff_seconds": 0.05, **overrides}
    return SchedApiClient(ClientConfig(base_url=url, api_key=api_key, **config))


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(bookings=1234)


@pytest.fixture(scope="module")
def server(account):
    with serve(DemoApi(account)) as running:
        yield running


@pytest.mark.parametrize("spec", [s for s in ENDPOINTS if not s.paged], ids=lambda s: s.name)
def test_unpaged_endpoints_return_exactly_the_demo_records(server, account, spec):
    server.api.reset_stats()
    with client_for(server.url) as client:
        records = fetch_all(client, spec)
    expected = all_records(account, spec.name)
    if spec.name == "conferencing":
        assert any("key" in r for r in expected), "the demo must carry the OAuth token field"
        expected = [{k: v for k, v in r.items() if k != "key"} for r in expected]
        assert all("key" not in r for r in records)
    assert records == expected
    # Unpaged: one request; event types add the team listing and one request per team.
    teams = len(all_records(account, "teams")) if spec.fan_out else -1
    assert server.api.stats.requests == 1 + (1 + teams if spec.fan_out else 0)


def test_bookings_exact_over_socket(server, account):
    server.api.reset_stats()
    with client_for(server.url, page_size=100, concurrency=4) as client:
        stats = SyncStats()
        records = fetch_all(client, BOOKINGS, stats=stats)
    assert [r["id"] for r in sorted(records, key=lambda r: r["id"])] == sorted(account_booking_ids(account))
    by_id = {r["id"]: r for r in records}
    for booking_id in list(account_booking_ids(account))[::97]:
        assert by_id[booking_id] == account.booking(booking_id)
    pages = math.ceil(1234 / 100)
    assert stats.pages == pages
    assert pages <= server.api.stats.requests <= pages + 4


def test_calendar_quirks_keyed_on_credential_and_external_id(server):
    with client_for(server.url) as client:
        calendars = fetch_all(client, ENDPOINTS_BY_NAME["calendars"])
    keys = [(c["credentialId"], c["externalId"]) for c in calendars]
    assert len(keys) == len(set(keys))
    external = [c["externalId"] for c in calendars]
    assert len(external) > len(set(external)), "a shared calendar appears under two credentials"


def test_three_hundred_event_types_one_request_each_endpoint():
    account = DemoAccount(bookings=10, event_types=300)
    api = DemoApi(account)
    with serve(api) as running, client_for(running.url, page_size=100) as client:
        records = fetch_all(client, ENDPOINTS_BY_NAME["event_types"])
    assert len(records) == 300 and len({r["id"] for r in records}) == 300
    # /event-types, /teams, then one request per team, never paged.
    assert api.stats.requests == 2 + len(all_records(account, "teams"))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(bookings=st.integers(0, 700), take=st.integers(1, 250), concurrency=st.integers(1, 5))
def test_property_exact_set_finite_requests(bookings, take, concurrency):
    account = DemoAccount(bookings=bookings, seed=bookings)
    api = DemoApi(account)
    with serve(api) as running, client_for(running.url, page_size=take, concurrency=concurrency) as client:
        ids = [r["id"] for r in fetch_all(client, BOOKINGS)]
    assert sorted(ids) == sorted(account_booking_ids(account))
    needed = max(1, math.ceil(bookings / take))
    assert needed <= api.stats.requests <= needed + concurrency


def test_ignore_skip_ends_with_loop_guard():
    api = DemoApi(DemoAccount(bookings=500), faults=Faults(ignore_skip=True))
    with serve(api) as running, client_for(running.url, page_size=50, concurrency=1) as client:
        stats = SyncStats()
        records = fetch_all(client, BOOKINGS, stats=stats)
    assert len(records) == 50
    assert stats.stopped_by.startswith("loop guard")
    assert api.stats.requests == 2


def test_overstated_total_is_exact_and_finite():
    account = DemoAccount(bookings=430)
    api = DemoApi(account, faults=Faults(overstate_total=1000))
    with serve(api) as running, client_for(running.url, page_size=100, concurrency=3) as client:
        ids = {r["id"] for r in fetch_all(client, BOOKINGS)}
    assert ids == set(account_booking_ids(account))
    assert api.stats.requests <= 5 + 3


def test_5xx_storm_survived_exactly():
    account = DemoAccount(bookings=800)
    api = DemoApi(account, faults=Faults(seed=3, error_rate=0.3, html_fraction=0.5))
    with serve(api) as running, client_for(running.url, page_size=50, max_retries=8) as client:
        stats = SyncStats()
        ids = {r["id"] for r in fetch_all(client, BOOKINGS, stats=stats)}
    assert ids == set(account_booking_ids(account))
    assert stats.retries > 0
    assert api.stats.by_status[200] == 16 and sum(api.stats.by_status.values()) > 16


def test_pacing_avoids_429_under_enforced_limit():
    """20 requests per 2 s with a 2 s block: a 60-request sync gets no 429 and sends nothing while blocked."""
    account = DemoAccount(bookings=600)
    api = DemoApi(account, rate_limit=RateLimit(limit=20, window=2.0, block=2.0))
    with serve(api) as running, client_for(running.url, page_size=10, concurrency=4) as client:
        started = time.monotonic()
        ids = {r["id"] for r in fetch_all(client, BOOKINGS)}
        elapsed = time.monotonic() - started
    assert ids == set(account_booking_ids(account))
    assert api.stats.throttled == 0
    requests = api.stats.requests
    floor = (math.ceil(requests / 20) - 1) * 2.0
    assert elapsed >= floor * 0.9  # it really waited for the windows
    assert elapsed <= floor * 1.6 + 2


def test_block_in_progress_costs_one_429_and_nothing_sent_while_blocked():
    account = DemoAccount(bookings=100)
    api = DemoApi(account, rate_limit=RateLimit(limit=5, window=2.0, block=2.0))
    with serve(api) as running:
        # Someone else exhausted the key: the next request lands in a block.
        statuses = [
            httpx.get(f"{running.url}/me", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}).status_code
            for _ in range(6)
        ]
        assert statuses[-1] == 429
        api.reset_stats()
        with client_for(running.url, page_size=50, concurrency=1) as client:
            ids = {r["id"] for r in fetch_all(client, BOOKINGS)}
    assert ids == set(account_booking_ids(account))
    assert api.stats.throttled == 1
    assert len(api.stats.blocked_times) == 1  # only the first, which could not know


def test_401_fails_fast_without_retries_or_key():
    secret = "cal_" + "wrongkey" * 3
    api = DemoApi(DemoAccount(bookings=10))
    with serve(api) as running, client_for(running.url, api_key=secret) as client:
        started = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            fetch_all(client, BOOKINGS)
    assert time.monotonic() - started < 2
    assert api.stats.requests == 1
    message = str(info.value)
    assert "SCHED_API_KEY" in message and "UnauthorizedException" in message
    assert secret not in message and secret not in repr(info.value)


def test_oauth_token_never_leaves_the_client(server):
    with client_for(server.url) as client:
        records = fetch_all(client, ENDPOINTS_BY_NAME["conferencing"])
    assert DEMO_OAUTH_TOKEN not in repr(records)
