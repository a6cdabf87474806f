"""Pure client logic: selection, stop rules, retries, pacing and errors, with scripted responses."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from sched_assets.api.client import ClientConfig, SchedApiClient, SyncStats
from sched_assets.api.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    RetriesExhaustedError,
)
from sched_assets.api.ratelimit import RateLimitPacer, retry_after_seconds, seconds_until_reset
from sched_assets.api.selector import select_records
from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets_tests.api_helpers import fetch_all

KEY = "cal_test_SECRETKEY_123456"
BOOKINGS = ENDPOINTS_BY_NAME["bookings"]


def make_client(handler, **overrides) -> tuple[SchedApiClient, list[float]]:
    """A client on scripted responses whose sleeps advance a fake clock (and are recorded)."""
    clock = FakeClock()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    config = ClientConfig(base_url="http://api.test/v2", api_key=KEY, **{"backoff_factor": 0.0, **overrides})
    client = SchedApiClient(config, transport=httpx.MockTransport(handler), sleep=sleep, clock=clock)
    return client, sleeps


def json_response(body, status: int = 200, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": "application/json", **(headers or {})}
    )


def bookings_handler(total: int, *, page_limit: int | None = None, pagination: bool = True, has_next=None):
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        take = int(request.url.params["take"])
        skip = int(request.url.params["skip"])
        ids = list(range(skip + 1, min(total, skip + take) + 1))
        if page_limit is not None:
            ids = ids[:page_limit]
        body: dict = {"status": "success", "data": [{"id": i} for i in ids]}
        if pagination:
            body["pagination"] = {
                "totalItems": total,
                "hasNextPage": skip + take < total if has_next is None else has_next,
            }
        return json_response(body)

    return handler, requests


def test_selector_guide_syntax():
    body = {
        "data": {
            "connectedCalendars": [
                {"credentialId": 1, "calendars": [{"externalId": "a"}, {"externalId": "b"}]},
                {"credentialId": 2},  # broken credential: no calendars list
                {"credentialId": 3, "calendars": None},
            ]
        }
    }
    assert select_records(body, "data.connectedCalendars.*.calendars.*") == [
        {"externalId": "a"},
        {"externalId": "b"},
    ]
    assert select_records({"data": {"id": 1}}, "data") == [{"id": 1}]
    assert select_records({"data": [{"id": 1}, {"id": 2}]}, "data") == [{"id": 1}, {"id": 2}]
    assert select_records({"data": [{"id": 1}]}, "data.*") == [{"id": 1}]
    assert select_records({}, "data.*") == []
    assert select_records({"data": None}, "data") == []


@pytest.mark.parametrize(
    ("total", "take", "expected_requests"),
    [(0, 10, 1), (5, 10, 1), (10, 10, 1), (25, 10, 3), (30, 10, 3), (250, 100, 3)],
)
def test_paging_stops_at_total(total, take, expected_requests):
    handler, requests = bookings_handler(total)
    client, _ = make_client(handler, page_size=take, concurrency=1)
    records = fetch_all(client, BOOKINGS)
    assert [r["id"] for r in records] == list(range(1, total + 1))
    assert len(requests) == expected_requests
    assert {r.url.params["take"] for r in requests} == {str(take)}


def test_short_page_stops_without_pagination():
    handler, requests = bookings_handler(1000, page_limit=7, pagination=False)
    client, _ = make_client(handler, page_size=10)
    stats = SyncStats()
    assert len(fetch_all(client, BOOKINGS, stats=stats)) == 7
    assert len(requests) == 1 and stats.stopped_by == "short page"


def test_has_next_page_false_stops():
    handler, requests = bookings_handler(1000, has_next=False)
    client, _ = make_client(handler, page_size=10)
    stats = SyncStats()
    assert len(fetch_all(client, BOOKINGS, stats=stats)) == 10
    assert len(requests) == 1 and stats.stopped_by == "hasNextPage is false"


def test_empty_page_stops_when_total_overstated():
    # The server claims 100 items but has 35: paging ends on the empty page, never loops.
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        skip, take = int(request.url.params["skip"]), int(request.url.params["take"])
        ids = [i for i in range(skip + 1, skip + take + 1) if i <= 35]
        ids = ids if len(ids) == take else []  # a lying server: full pages, then nothing
        return json_response(
            {"data": [{"id": i} for i in ids], "pagination": {"totalItems": 100, "hasNextPage": True}}
        )

    client, _ = make_client(handler, page_size=5, concurrency=3)
    stats = SyncStats()
    assert [r["id"] for r in fetch_all(client, BOOKINGS, stats=stats)] == list(range(1, 36))
    assert stats.stopped_by == "empty page"
    assert len(requests) <= 8 + 3


def test_loop_guard_when_skip_ignored(caplog):
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return json_response({"data": [{"id": i} for i in range(1, 11)]})

    client, _ = make_client(handler, page_size=10, concurrency=1)
    stats = SyncStats()
    with caplog.at_level(logging.WARNING):
        records = fetch_all(client, BOOKINGS, stats=stats)
    assert len(records) == 10 and len(requests) == 2
    assert stats.stopped_by.startswith("loop guard")
    assert "ignore `skip`" in caplog.text


def test_unpaged_requested_once_and_key_stripped():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return json_response({"data": [{"id": 1, "type": "zoom_video", "key": {"access_token": "tok"}}]})

    client, _ = make_client(handler)
    records = fetch_all(client, ENDPOINTS_BY_NAME["conferencing"])
    assert records == [{"id": 1, "type": "zoom_video"}]
    assert len(requests) == 1
    assert "take" not in requests[0].url.params and "skip" not in requests[0].url.params


def test_headers_auth_version_and_user_agent():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response({"data": []})

    client, _ = make_client(handler)
    fetch_all(client, BOOKINGS)
    fetch_all(client, ENDPOINTS_BY_NAME["event_types"])  # documented shape, then /teams (no teams)
    fetch_all(client, ENDPOINTS_BY_NAME["conferencing"])
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert seen[0].headers["cal-api-version"] == "2024-08-13"
    assert seen[1].headers["cal-api-version"] == "2024-06-14"
    assert [r.url.path for r in seen[1:]] == ["/v2/event-types", "/v2/teams", "/v2/conferencing"]
    assert "cal-api-version" not in seen[2].headers and "cal-api-version" not in seen[3].headers
    assert seen[0].headers["user-agent"].startswith("sched_assets/")
    assert seen[0].url.path == "/v2/bookings"
    assert KEY not in repr(client) and KEY not in repr(client.config)


def test_dedupe_last_seen_wins():
    pages = [[{"id": 1, "v": "a"}, {"id": 2, "v": "a"}], [{"id": 2, "v": "b"}, {"id": 3, "v": "b"}], []]

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response({"data": pages[int(request.url.params["skip"]) // 2]})

    client, _ = make_client(handler, page_size=2, concurrency=1)
    assert fetch_all(client, BOOKINGS) == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "b"}]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(
            500, content=b'{"status":"error","error":{"code":"INTERNAL_SERVER_ERROR","message":"x"}}'
        ),
        httpx.Response(
            502, content=b"<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(503),
        httpx.Response(504),
        httpx.Response(200, content=b'{"data": [{"id": 1'),
        httpx.ConnectError("reset"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_retryable_failures_then_success(failure):
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            if isinstance(failure, Exception):
                raise failure
            return failure
        return json_response({"data": {"id": 7}})

    client, sleeps = make_client(handler)
    stats = SyncStats()
    assert fetch_all(client, ENDPOINTS_BY_NAME["my_profile"], stats=stats) == [{"id": 7}]
    assert stats.retries == 2 and stats.requests == 3 and len(sleeps) == 2


def test_backoff_grows_with_factor_two_and_jitter():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    client, sleeps = make_client(handler, backoff_factor=2.0, max_retries=3)
    with pytest.raises(RetriesExhaustedError) as info:
        fetch_all(client, ENDPOINTS_BY_NAME["my_profile"])
    assert len(sleeps) == 3
    for wait, base in zip(sleeps, (2, 4, 8), strict=True):
        assert base <= wait <= base * 1.5
    assert "after 3 retries" in str(info.value) and "HTTP 503" in str(info.value)


def test_429_waits_for_reset_header_not_backoff():
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return json_response(
                {"status": "error", "error": {"code": "ThrottlerException", "message": "Too many requests."}},
                429,
                {"x-ratelimit-reset-default": "37", "x-ratelimit-remaining-default": "0"},
            )
        return json_response({"data": {"id": 1}})

    client, sleeps = make_client(handler)
    stats = SyncStats()
    fetch_all(client, ENDPOINTS_BY_NAME["my_profile"], stats=stats)
    assert stats.throttled == 1
    assert 37 <= sum(sleeps) <= 39


def test_retry_after_preferred_and_bounded():
    assert retry_after_seconds(
        {"retry-after": "5", "x-ratelimit-reset-default": "50"}, 60, 180
    ) == pytest.approx(5.5)
    assert retry_after_seconds({"x-ratelimit-reset-default": "50"}, 60, 180) == pytest.approx(50.5)
    assert retry_after_seconds({}, 60, 180) == pytest.approx(60.5)
    assert retry_after_seconds({"retry-after": "999"}, 60, 90) == 90
    assert seconds_until_reset({"x-ratelimit-reset-default": "2000000010"}, lambda: 2000000000.0) == 10


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [
        (400, BadRequestError, "page_size"),
        (401, AuthenticationError, "SCHED_API_KEY"),
        (403, ForbiddenError, "not allowed"),
        (404, NotFoundError, "SCHED_API_BASE_URL"),
    ],
)
def test_non_retryable_errors_fail_fast(status, cls, words):
    calls = {"n": 0}
    codes = {
        400: "BadRequestException",
        401: "UnauthorizedException",
        403: "ForbiddenException",
        404: "NotFoundException",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return json_response(
            {"status": "error", "error": {"code": codes[status], "message": f"server says {KEY}"[:14]}},
            status,
        )

    client, sleeps = make_client(handler)
    with pytest.raises(cls) as info:
        fetch_all(client, BOOKINGS)
    assert calls["n"] == 1 and sleeps == []
    message = str(info.value)
    assert words in message and codes[status] in message and KEY not in message


def test_config_validation_before_any_request():
    for bad in (
        {"base_url": "not a url"},
        {"base_url": "ftp://x/v2"},
        {"page_size": 0},
        {"page_size": 251},
        {"api_key": ""},
        {"concurrency": 0},
    ):
        values = {"base_url": "http://api.test/v2", "api_key": KEY, **bad}
        with pytest.raises(ConfigError):
            SchedApiClient(
                ClientConfig(**values), transport=httpx.MockTransport(lambda r: pytest.fail("sent"))
            )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_waits_for_reset_when_budget_spent():
    clock = FakeClock()
    pacer = RateLimitPacer(reserve=1, clock=clock, sleep=clock.sleep)
    sent_at: list[float] = []
    window_start, used = 0.0, 0
    for _ in range(25):
        pacer.acquire()
        if clock.now >= window_start + 10:
            window_start, used = clock.now, 0
        used += 1
        assert used <= 10, "a request would have exceeded the server's budget"
        sent_at.append(clock.now)
        reset = window_start + 10 - clock.now
        pacer.release(
            {
                "x-ratelimit-limit-default": "10",
                "x-ratelimit-remaining-default": str(10 - used),
                "x-ratelimit-reset-default": str(int(reset + 0.999)),
            }
        )
        clock.now += 0.01
    assert pacer.waits >= 2


def test_pacer_caps_absurd_reset_values():
    clock = FakeClock()
    pacer = RateLimitPacer(reserve=1, max_wait=30, clock=clock, sleep=clock.sleep)
    pacer.acquire()
    pacer.release({"x-ratelimit-remaining-default": "0", "x-ratelimit-reset-default": "60000"})  # ms?
    pacer.acquire()
    assert clock.now <= 31


def test_503_with_retry_after_waits_that_long():
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(503, headers={"retry-after": "20"}, content=b"<html>maintenance</html>")
        return json_response({"data": {"id": 1}})

    client, sleeps = make_client(handler)
    assert fetch_all(client, ENDPOINTS_BY_NAME["my_profile"]) == [{"id": 1}]
    assert sleeps == [pytest.approx(20.5)]


def test_clients_share_one_tls_context_that_still_verifies() -> None:
    """A run of many accounts builds a client per account: they share one TLS context (building one
    costs ~20 ms of CPU), and sharing it does not weaken certificate checks."""
    import ssl

    from sched_assets.api.client import _tls_context

    configs = [ClientConfig(base_url=f"https://{name}.example/v2", api_key=KEY) for name in ("a", "b")]
    with SchedApiClient(configs[0]) as first, SchedApiClient(configs[1]) as second:
        pools = [client._http._transport._pool for client in (first, second)]  # httpcore's pool
        assert pools[0]._ssl_context is pools[1]._ssl_context is _tls_context()
    context = _tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_keyset_pages_drop_only_unchanged_repeats_of_the_previous_page() -> None:
    from sched_assets.api.keyset import _KeysetRead, _span

    client, _ = make_client(lambda request: httpx.Response(500))
    read = _KeysetRead(client, BOOKINGS, BOOKINGS.full_order, SyncStats(), check_total=False)

    def row(i: int, at: str | None, title: str = "t") -> dict:
        return {"id": i, "createdAt": at, "title": title}

    def fresh(records: list[dict], previous: list[dict]) -> list[dict]:
        span, before = _span(records, "createdAt"), _span(previous, "createdAt")
        return read._fresh(records, previous, span, before)

    previous = [row(1, "2026-01-01T00:00:00.000Z"), row(2, "2026-01-02T00:00:00.000Z")]
    later = [row(3, "2026-01-03T00:00:00.000Z"), row(4, "2026-01-04T00:00:00.000Z")]
    assert fresh(later, previous) is later  # starts after the previous page: nothing compared
    # A re-read of the previous page's last value: its unchanged row goes, a changed one stays.
    again = [row(2, "2026-01-02T00:00:00.000Z"), *later]
    assert fresh(again, previous) == later
    edited = [row(2, "2026-01-02T00:00:00.000Z", "new"), *later]
    assert fresh(edited, previous) == edited
    # Values that are not all text (no order to trust) are compared key by key.
    assert fresh([row(1, None), *later], [row(1, None)]) == later
    assert _span([row(1, None)], "createdAt") is None and _span([], "createdAt") is None
