"""DemoApi behaviour: auth, versions, paging, filters, rate limiting and every fault knob."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sched_assets.demo import (
    DEMO_API_KEY,
    DEMO_BASE_URL,
    DemoAccount,
    DemoApi,
    DemoResponse,
    Faults,
    RateLimit,
    demo_transport,
)
from sched_assets_tests.demo_helpers import (
    AUTH,
    V_BOOKINGS,
    V_EVENT_TYPES,
    V_SCHEDULES,
    account_booking_ids,
    all_records,
)

RATE_HEADERS = ("X-RateLimit-Limit-Default", "X-RateLimit-Remaining-Default", "X-RateLimit-Reset-Default")


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(2000)


@pytest.fixture
def api(account: DemoAccount) -> DemoApi:
    return DemoApi(account)


def get(api: DemoApi, path: str, headers: dict[str, str] = V_BOOKINGS, **query: object) -> DemoResponse:
    return api.handle("GET", "/v2" + path, {k: str(v) for k, v in query.items()}, headers)


def page(api: DemoApi, **query: object) -> dict:
    response = get(api, "/bookings", **query)
    assert response.status == 200, response.body
    return response.json()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- routing, auth, versions ----------------------------------------------------------------


def test_auth_missing_or_wrong_key_is_401_with_envelope(api: DemoApi) -> None:
    for headers in ({}, {"Authorization": "Bearer cal_live_wrong"}, {"Authorization": DEMO_API_KEY}):
        response = get(api, "/me", headers)
        assert response.status == 401
        body = response.json()
        assert body["status"] == "error" and body["path"] == "/v2/me" and "timestamp" in body
        assert body["error"] == {
            "code": "UnauthorizedException",
            "message": "ApiAuthStrategy - api key - Your api key is not valid",
        }
        assert all(h in response.headers for h in RATE_HEADERS)
    assert not DEMO_API_KEY.startswith("cal_live_")


def test_unknown_paths_are_404(api: DemoApi) -> None:
    for path in ("/v2/nope", "/v1/bookings", "/bookings", "/v2"):
        response = api.handle("GET", path, {}, AUTH)
        assert response.status == 404
        assert response.json()["error"]["code"] == "NotFoundException"
    assert api.handle("POST", "/v2/bookings", {}, AUTH).status == 404
    assert get(api, "/bookings/").status == 200  # trailing slash is fine


def test_custom_root(account: DemoAccount) -> None:
    api = DemoApi(account, root="/v1")
    assert api.handle("GET", "/v1/me", {}, AUTH).status == 200
    assert api.handle("GET", "/v2/me", {}, AUTH).status == 404


def test_small_resources_return_their_records(api: DemoApi, account: DemoAccount) -> None:
    assert get(api, "/me", AUTH).json() == {
        "status": "success",
        "data": all_records(account, "my_profile")[0],
    }
    assert get(api, "/conferencing", AUTH).json()["data"] == all_records(account, "conferencing")
    catalog = account.catalog
    assert get(api, "/event-types", V_EVENT_TYPES).json()["data"] == catalog.event_types_documented()
    teams = get(api, "/teams", AUTH).json()["data"]
    assert teams == catalog.teams_data()
    team_ets = [et for t in teams for et in get(api, f"/teams/{t['id']}/event-types", AUTH).json()["data"]]
    assert team_ets == [et for t in catalog.teams for et in catalog.team_event_types(t)]
    # Without the header: the legacy groups, holding the same event types (own and team).
    groups = get(api, "/event-types", AUTH).json()["data"]["eventTypeGroups"]
    assert groups == catalog.event_types_data()["eventTypeGroups"]
    legacy_ids = sorted(et["id"] for g in groups for et in g["eventTypes"])
    documented_ids = sorted(et["id"] for et in catalog.event_types_documented() + team_ets)
    assert legacy_ids == documented_ids == sorted(r["id"] for r in all_records(account, "event_types"))
    connected = get(api, "/calendars", AUTH).json()["data"]["connectedCalendars"]
    assert [c for conn in connected for c in conn.get("calendars", [])] == all_records(account, "calendars")
    assert get(api, "/schedules", V_SCHEDULES).json()["data"] == all_records(account, "schedules")


def test_unpaginated_endpoints_ignore_paging_params(api: DemoApi) -> None:
    for path in ("/event-types", "/me", "/calendars", "/conferencing", "/teams", "/teams/91/event-types"):
        first = get(api, path, AUTH).body
        assert get(api, path, AUTH, skip=100, take=5, limit=1).body == first
    assert (
        get(api, "/event-types", V_EVENT_TYPES, skip=3).body == get(api, "/event-types", V_EVENT_TYPES).body
    )
    assert get(api, "/schedules", V_SCHEDULES, skip=3).body == get(api, "/schedules", V_SCHEDULES).body


@pytest.mark.parametrize("version", [None, "2024-04-15", '"2024-08-13"', "2024-08-13 "])
def test_bookings_without_exact_version_fall_back_to_legacy_shape(api: DemoApi, version: str | None) -> None:
    headers = dict(AUTH) if version is None else {**AUTH, "cal-api-version": version}
    body = get(api, "/bookings", headers, take=3).json()
    assert set(body["data"]) == {"bookings", "recurringInfo", "nextCursor"}
    assert "pagination" not in body
    first = body["data"]["bookings"][0]
    assert "startTime" in first and "endTime" in first and "start" not in first
    assert first["status"].isupper()


def test_schedules_without_version_fall_back_to_legacy_shape(api: DemoApi) -> None:
    legacy = get(api, "/schedules", {**AUTH, "cal-api-version": "'2024-06-11'"}).json()["data"]
    assert "workingHours" in legacy[0] and "overrides" not in legacy[0]
    current = get(api, "/schedules", V_SCHEDULES).json()["data"]
    assert "overrides" in current[0] and "workingHours" not in current[0]


# ---- paging ---------------------------------------------------------------------------------


def test_pagination_fields(api: DemoApi) -> None:
    first = page(api)
    assert len(first["data"]) == 100  # default take
    assert first["pagination"] == {
        "totalItems": 2000,
        "remainingItems": 1900,
        "returnedItems": 100,
        "itemsPerPage": 100,
        "currentPage": 1,
        "totalPages": 20,
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    last = page(api, take=150, skip=1950)["pagination"]
    assert last["returnedItems"] == 50 and last["remainingItems"] == 0
    assert last["currentPage"] == 14 and last["totalPages"] == math.ceil(2000 / 150)
    assert last["hasNextPage"] is False and last["hasPreviousPage"] is True
    past = page(api, take=100, skip=2000)
    assert past["data"] == [] and past["pagination"]["hasNextPage"] is False


def test_walking_all_pages_returns_every_booking_once(api: DemoApi, account: DemoAccount) -> None:
    ids, skip = [], 0
    while True:
        body = page(api, take=250, skip=skip)
        ids += [b["id"] for b in body["data"]]
        if not body["pagination"]["hasNextPage"]:
            break
        skip += 250
    assert ids == account_booking_ids(account)
    assert page(api, take=250, skip=0)["data"][:3] == all_records(account, "bookings")[:3]


def test_limit_is_ignored_and_take_is_validated(api: DemoApi) -> None:
    assert len(page(api, limit=5)["data"]) == 100
    assert len(page(api, take=250)["data"]) == 250
    for bad in (
        {"take": 251},
        {"take": 0},
        {"take": "ten"},
        {"skip": -1},
        {"afterUpdatedAt": "yesterday"},
        {"status": "done"},
        {"status": "accepted"},  # a booking status, not one of the filter's values
        {"sortUpdatedAt": "up"},
    ):
        response = get(api, "/bookings", **bad)
        assert response.status == 400, bad
        assert response.json()["error"]["code"] == "BadRequestException"
    assert "250" in get(api, "/bookings", take=251).json()["error"]["message"]


# ---- filters --------------------------------------------------------------------------------


def _iso_epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def all_pages(api: DemoApi, **query: object) -> list[dict]:
    out, skip = [], 0
    while True:
        body = page(api, take=250, skip=skip, **query)
        out += body["data"]
        if not body["data"]:
            return out
        skip += 250


@settings(max_examples=15, deadline=None)
@given(day=st.integers(min_value=0, max_value=340), sort=st.sampled_from([None, "asc", "desc"]))
def test_after_updated_at_matches_brute_force(account: DemoAccount, day: int, sort: str | None) -> None:
    api = DemoApi(account)
    cutoff = 1_767_225_600 + day * 86_400 + 3_600 * (day % 24)  # 2026-01-01 + day, varying hour
    value = datetime.fromtimestamp(cutoff).astimezone().isoformat()
    query = {"afterUpdatedAt": value} if sort is None else {"afterUpdatedAt": value, "sortUpdatedAt": sort}
    got = all_pages(api, **query)
    expected = [
        b for b in all_records(account, "bookings") if b["updatedAt"] and _iso_epoch(b["updatedAt"]) >= cutoff
    ]
    assert sorted(b["id"] for b in got) == sorted(b["id"] for b in expected)
    stamps = [b["updatedAt"] for b in got]
    if sort is None:
        assert [b["id"] for b in got] == sorted(b["id"] for b in got)
    else:
        assert stamps == sorted(stamps, reverse=sort == "desc")
    assert page(api, take=1, **query)["pagination"]["totalItems"] == len(expected)


def test_after_updated_at_is_inclusive_and_skips_nulls(api: DemoApi, account: DemoAccount) -> None:
    some = next(b for b in all_records(account, "bookings")[500:] if b["updatedAt"])
    got = all_pages(api, afterUpdatedAt=some["updatedAt"])
    assert some["id"] in {b["id"] for b in got}
    assert all(b["updatedAt"] is not None for b in got)


def test_sort_updated_at_puts_nulls_last_ascending_first_descending(api: DemoApi) -> None:
    asc = page(api, take=250, skip=1900, sortUpdatedAt="asc")["data"]
    assert asc[-1]["updatedAt"] is None
    desc = page(api, take=5, sortUpdatedAt="desc")["data"]
    assert desc[0]["updatedAt"] is None
    full = all_pages(api, sortUpdatedAt="desc")
    stamps = [b["updatedAt"] for b in full if b["updatedAt"]]
    assert len(full) == 2000 and stamps == sorted(stamps, reverse=True)


def test_other_filters_match_brute_force(api: DemoApi, account: DemoAccount) -> None:
    records = all_records(account, "bookings")
    cases = {
        "afterCreatedAt": ("2026-06-01T00:00:00.000Z", lambda b, t: _iso_epoch(b["createdAt"]) >= t),
        "afterStart": ("2026-09-15T00:00:00Z", lambda b, t: _iso_epoch(b["start"]) >= t),
        "beforeEnd": ("2026-03-01", lambda b, t: _iso_epoch(b["end"]) <= t),
    }
    for name, (value, keep) in cases.items():
        cutoff = _iso_epoch(value if "T" in value else value + "T00:00:00+00:00")
        got = [b["id"] for b in all_pages(api, **{name: value})]
        assert got == [b["id"] for b in records if keep(b, cutoff)], name
    statuses = [b["status"] for b in all_pages(api, status="unconfirmed")]
    assert set(statuses) == {"awaiting_host", "pending"}
    assert len(statuses) == sum(b["status"] in ("awaiting_host", "pending") for b in records)
    combined = all_pages(api, status="cancelled", afterStart="2026-07-01T00:00:00Z", sortStart="asc")
    starts = [b["start"] for b in combined]
    assert starts == sorted(starts) and {b["status"] for b in combined} == {"cancelled", "rejected"}
    cutoff = _iso_epoch("2026-07-01T00:00:00Z")
    assert len(combined) == sum(
        b["status"] in ("cancelled", "rejected") and _iso_epoch(b["start"]) >= cutoff for b in records
    )


def test_mutations_show_up_in_responses() -> None:
    account = DemoAccount(300)
    api = DemoApi(account)
    ids = account.touch(0.1)
    got = all_pages(api, afterUpdatedAt="2026-11-01T00:00:30Z", sortUpdatedAt="asc")
    assert [b["id"] for b in got] == ids
    account.delete(ids[:5])
    new = account.add(3)
    body = page(api, take=250, skip=250)
    assert body["pagination"]["totalItems"] == 298
    assert [b["id"] for b in body["data"]][-3:] == new


# ---- rate limiting --------------------------------------------------------------------------


def test_rate_limit_blocks_for_the_block_duration() -> None:
    clock = FakeClock()
    api = DemoApi(DemoAccount(50), rate_limit=RateLimit(limit=5, window=10, block=30), clock=clock)
    seen = []
    for i in range(5):
        clock.now = 1000 + i
        response = get(api, "/me", AUTH)
        assert response.status == 200
        seen.append(
            (response.headers["X-RateLimit-Remaining-Default"], response.headers["X-RateLimit-Reset-Default"])
        )
    assert seen == [("4", "10"), ("3", "9"), ("2", "8"), ("1", "7"), ("0", "6")]
    assert response.headers["X-RateLimit-Limit-Default"] == "5"

    clock.now = 1004.5
    blocked = get(api, "/me", AUTH)
    assert blocked.status == 429
    body = blocked.json()
    assert body["status"] == "error" and body["path"] == "/v2/me"
    assert body["error"] == {
        "code": "ThrottlerException",
        "message": "Too many requests. Please try again later.",
    }
    assert "retry-after" not in {k.lower() for k in blocked.headers}
    assert blocked.headers["X-RateLimit-Remaining-Default"] == "0"
    assert blocked.headers["X-RateLimit-Reset-Default"] == "30"
    assert api.stats.blocked_times == []  # the request that tripped the limit is not "during" the block

    # The window would have ended at 1010, but the block lasts until 1034.5.
    for t in (1011.0, 1030.0, 1034.4):
        clock.now = t
        response = get(api, "/me", AUTH)
        assert response.status == 429
        assert response.headers["X-RateLimit-Reset-Default"] == str(math.ceil(1034.5 - t))
    assert api.stats.blocked_times == [1011.0, 1030.0, 1034.4]
    assert api.stats.throttled == 4 and api.stats.by_status[429] == 4

    clock.now = 1034.5
    fresh = get(api, "/me", AUTH)
    assert fresh.status == 200 and fresh.headers["X-RateLimit-Remaining-Default"] == "4"


def test_rate_limit_counts_per_key_and_includes_401s() -> None:
    clock = FakeClock()
    api = DemoApi(DemoAccount(10), rate_limit=RateLimit(limit=2, window=60, block=60), clock=clock)
    assert get(api, "/me", {"Authorization": "Bearer other"}).status == 401
    assert get(api, "/me", {"Authorization": "Bearer other"}).status == 401
    assert get(api, "/me", {"Authorization": "Bearer other"}).status == 429
    assert get(api, "/me", AUTH).status == 200  # a different key has its own budget
    clock.now += 59
    assert get(api, "/me", {"Authorization": "Bearer other"}).status == 429  # still blocked
    clock.now += 1
    assert get(api, "/me", {"Authorization": "Bearer other"}).status == 401  # block over, fresh window
    assert [get(api, "/me", AUTH).status for _ in range(3)] == [200, 200, 429]  # its window restarted too
    api.reset_limits()
    assert get(api, "/me", AUTH).status == 200


def test_window_resets_without_a_block() -> None:
    clock = FakeClock()
    api = DemoApi(DemoAccount(10), rate_limit=RateLimit(limit=3, window=60, block=60), clock=clock)
    for _ in range(3):
        assert get(api, "/me", AUTH).status == 200
    clock.now += 60
    assert get(api, "/me", AUTH).headers["X-RateLimit-Remaining-Default"] == "2"


def test_headers_present_without_rate_limit(api: DemoApi) -> None:
    response = get(api, "/me", AUTH)
    assert int(response.headers["X-RateLimit-Limit-Default"]) >= 100_000
    assert int(response.headers["X-RateLimit-Remaining-Default"]) > 0
    assert RateLimit.parse("120/60/60") == RateLimit(120, 60.0, 60.0)
    assert RateLimit.parse("none") is None


# ---- faults ---------------------------------------------------------------------------------


def statuses(api: DemoApi, n: int, path: str = "/me") -> list[int]:
    return [get(api, path, AUTH).status for _ in range(n)]


def test_error_rate_is_deterministic_and_mixes_json_and_html(account: DemoAccount) -> None:
    faults = Faults(seed=5, error_rate=0.3, html_fraction=0.5)
    a, b = DemoApi(account, faults=faults), DemoApi(account, faults=Faults(seed=5, error_rate=0.3))
    seq = statuses(a, 200)
    assert seq == statuses(b, 200)
    errors = [s for s in seq if s != 200]
    assert set(errors) <= {500, 502, 503, 504} and 40 <= len(errors) <= 80
    assert seq != statuses(DemoApi(account, faults=Faults(seed=6, error_rate=0.3)), 200)

    html = get(DemoApi(account, faults=Faults(error_rate=1.0, html_fraction=1.0)), "/me", AUTH)
    assert html.status in (500, 502, 503, 504) and html.headers["Content-Type"] == "text/html"
    assert html.body.startswith(b"<html>")
    plain = get(DemoApi(account, faults=Faults(error_rate=1.0, html_fraction=0.0)), "/me", AUTH)
    assert plain.json()["status"] == "error" and plain.json()["error"]["code"]


def test_latency_and_spikes(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(latency=0.05, spike_rate=0.5, spike_latency=1.0))
    delays = Counter(round(get(api, "/me", AUTH).delay, 3) for _ in range(100))
    assert set(delays) == {0.05, 1.05} and 25 <= delays[1.05] <= 75


def test_truncate_reset_timeout_actions(account: DemoAccount) -> None:
    truncated = get(DemoApi(account, faults=Faults(truncate_rate=1.0)), "/bookings")
    assert truncated.status == 200 and truncated.action == "truncate"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated.body)
    assert get(DemoApi(account, faults=Faults(reset_rate=1.0)), "/me", AUTH).action == "reset"
    timeout = get(DemoApi(account, faults=Faults(timeout_rate=1.0)), "/me", AUTH)
    assert timeout.action == "timeout" and timeout.status == 200


def test_transport_maps_actions_to_httpx_errors(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(reset_rate=1.0))
    with httpx.Client(base_url=DEMO_BASE_URL, transport=demo_transport(api), headers=AUTH) as client:
        with pytest.raises(httpx.ConnectError):
            client.get("/me")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/me")
        api.faults = Faults(timeout_rate=1.0)
        with pytest.raises(httpx.ReadTimeout):
            client.get("/me")
        api.faults = Faults(truncate_rate=1.0)
        with pytest.raises(ValueError):
            client.get("/me").json()
        api.faults = Faults()
        response = client.get("/bookings", params={"take": 2}, headers={"cal-api-version": "2024-08-13"})
        assert response.status_code == 200 and len(response.json()["data"]) == 2
        slept: list[float] = []
        api.faults = Faults(latency=0.25)
        with httpx.Client(base_url=DEMO_BASE_URL, transport=demo_transport(api, sleep=slept.append)) as slow:
            assert slow.get("/me", headers=AUTH).status_code == 200
        assert slept == [0.25]


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "ForbiddenException"), (404, "NotFoundException"), (400, "BadRequestException")],
)
def test_fail_status_per_resource(account: DemoAccount, status: int, code: str) -> None:
    api = DemoApi(account, faults=Faults(fail_status={"bookings": status}))
    response = get(api, "/bookings")
    assert response.status == status and response.json()["error"]["code"] == code
    assert get(api, "/me", AUTH).status == 200


def test_fail_after_n_successes(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(fail_after=3))
    assert statuses(api, 6) == [200, 200, 200, 503, 503, 503]
    assert get(api, "/bookings").json()["error"]["code"] == "ServiceUnavailableException"


def test_random_faults_can_target_one_resource(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(error_rate=1.0, resources=frozenset({"bookings"})))
    assert statuses(api, 5) == [200] * 5
    assert get(api, "/bookings").status >= 500


def test_ignore_skip_returns_the_first_page_forever(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(ignore_skip=True))
    first = page(api, take=50)
    again = page(api, take=50, skip=1000)
    assert again["data"] == first["data"] and again["pagination"]["hasNextPage"] is True


def test_overstated_total_keeps_promising_pages(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(overstate_total=500))
    body = page(api, take=100, skip=2000)
    assert body["data"] == []
    assert body["pagination"]["totalItems"] == 2500 and body["pagination"]["hasNextPage"] is True


def test_drift_changes_shapes_midstream(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(drift=True))
    early = page(api, take=250, skip=0)["data"]
    late = page(api, take=250, skip=1500)["data"]
    plain = page(DemoApi(account), take=250, skip=1500)["data"]
    assert early == page(DemoApi(account), take=250, skip=0)["data"]
    assert {type(b["duration"]) for b in late} == {int, str}
    assert {type(b["location"]) for b in late} >= {str, dict}
    assert set(late[0]) - set(plain[0]) == {"bookingRefs", "attendeeCount"}
    languages = {type(a["language"]) for b in late for a in b["attendees"]}
    assert languages == {str, dict}


# ---- stats ----------------------------------------------------------------------------------


def test_stats_count_paths_statuses_and_actions(account: DemoAccount) -> None:
    api = DemoApi(account)
    get(api, "/me", AUTH)
    get(api, "/me", {})
    get(api, "/bookings")
    get(api, "/nope", AUTH)
    stats = api.stats
    assert stats.requests == 4
    assert stats.by_path == {"/v2/me": 2, "/v2/bookings": 1, "/v2/nope": 1}
    assert stats.by_status == {200: 2, 401: 1, 404: 1}
    snap = api.stats.snapshot()
    assert snap["by_status"] == {"200": 2, "401": 1, "404": 1} and snap["throttled"] == 0
    assert len(stats.log) == 4
    api.reset_stats()
    assert api.stats.requests == 0
