"""The demo API against the official response schemas (../shared/openapi/), and the service facts they miss.

Every 200 body the demo serves in a documented shape validates (quirks of the generated document
repaired by `openapi.py`); the only allowed deviations are asserted explicitly below.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sched_assets.demo import (
    AS_OF,
    BOOKING_ID_BASE,
    DemoAccount,
    DemoApi,
    DemoResponse,
    Faults,
    RateLimit,
)
from sched_assets.demo.bookings import HIDDEN_SEATS_OFFSET, HIDDEN_SEATS_PERIOD, UNKNOWN_EVENT_TYPE_ID
from sched_assets_tests import openapi
from sched_assets_tests.demo_helpers import AUTH, V_BOOKINGS, V_EVENT_TYPES, V_SCHEDULES

HOST_KEYS = {"id", "name", "email", "displayEmail", "username", "timeZone"}
NOW = AS_OF.timestamp()


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(2000)


@pytest.fixture
def api(account: DemoAccount) -> DemoApi:
    return DemoApi(account)


@pytest.fixture(scope="module")
def bookings(account: DemoAccount) -> list[dict]:
    return all_bookings(DemoApi(account))


def get(api: DemoApi, path: str, headers: dict[str, str] = AUTH, **query: object) -> DemoResponse:
    return api.handle("GET", "/v2" + path, {k: str(v) for k, v in query.items()}, headers)


def ok(api: DemoApi, path: str, headers: dict[str, str] = AUTH, **query: object) -> dict:
    response = get(api, path, headers, **query)
    assert response.status == 200, response.body[:500]
    return response.json()


def booking_pages(api: DemoApi, take: int = 250, **query: object) -> list[dict]:
    pages, skip = [], 0
    while True:
        body = ok(api, "/bookings", V_BOOKINGS, take=take, skip=skip, **query)
        pages.append(body)
        if not body["pagination"]["hasNextPage"]:
            return pages
        skip += body["pagination"]["returnedItems"]


def all_bookings(api: DemoApi, **query: object) -> list[dict]:
    return [b for body in booking_pages(api, **query) for b in body["data"]]


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def event_type_ids(api: DemoApi) -> tuple[set[int], set[int]]:
    """(own, team) event type ids, as the documented endpoints list them."""
    own = {et["id"] for et in ok(api, "/event-types", V_EVENT_TYPES)["data"]}
    team = {
        et["id"] for t in ok(api, "/teams")["data"] for et in ok(api, f"/teams/{t['id']}/event-types")["data"]
    }
    return own, team


# ---- every documented shape validates ----------------------------------------------------------


def assert_bookings_valid(body: dict) -> None:
    """Valid against the booking schema plus the two service deviations, and nothing else deviates."""
    openapi.assert_valid("bookings", body)
    strict = openapi.booking_item_schema(deviations=False)
    for booking in body["data"]:
        if not openapi.record_errors(strict, booking):
            continue
        # Allowed only for exactly the two documented deviations: repairing them must make it valid.
        assert booking["status"] == "awaiting_host" or booking["updatedAt"] is None, booking["id"]
        repaired = {**booking, "status": "pending", "updatedAt": booking["createdAt"]}
        assert openapi.record_errors(strict, repaired) == [], booking["id"]


def assert_account_valid(api: DemoApi, take: int) -> None:
    openapi.assert_valid("event_types", ok(api, "/event-types", V_EVENT_TYPES))
    teams = ok(api, "/teams")
    openapi.assert_valid("teams", teams)
    for team in teams["data"]:
        openapi.assert_valid("team_event_types", ok(api, f"/teams/{team['id']}/event-types"))
    openapi.assert_valid("me", ok(api, "/me"))
    openapi.assert_valid("schedules", ok(api, "/schedules", V_SCHEDULES))
    openapi.assert_valid("calendars", ok(api, "/calendars"))
    openapi.assert_valid("conferencing", ok(api, "/conferencing"))
    filters: list[dict[str, str]] = [
        {},
        {"status": "upcoming,past"},
        {"status": "cancelled"},
        {"status": "unconfirmed", "sortStart": "desc"},
        {"status": "recurring"},
        {"afterUpdatedAt": "2026-06-01T00:00:00Z", "sortUpdatedAt": "asc"},
    ]
    for query in filters:
        for body in booking_pages(api, take=take, **query):
            assert_bookings_valid(body)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 50),
    bookings=st.integers(0, 300),
    event_types=st.one_of(st.none(), st.integers(0, 30)),
    take=st.integers(20, 250),
)
def test_every_documented_response_validates(
    seed: int, bookings: int, event_types: int | None, take: int
) -> None:
    assert_account_valid(DemoApi(DemoAccount(bookings, event_types=event_types, seed=seed)), take)


def test_default_account_validates_with_every_quirk_present(api: DemoApi, bookings: list[dict]) -> None:
    assert_account_valid(api, take=250)
    statuses = Counter(b["status"] for b in bookings)
    assert statuses["awaiting_host"] and statuses["cancelled"]
    assert any(b["updatedAt"] is None for b in bookings)
    assert any("seatUid" in a for b in bookings for a in b["attendees"])


def test_the_deviations_are_exactly_the_documented_ones(bookings: list[dict]) -> None:
    strict = openapi.booking_item_schema(deviations=False)
    failing = [b for b in bookings if openapi.record_errors(strict, b)]
    assert failing, "the demo must still serve awaiting_host rows and null updatedAt"
    assert {b["id"] for b in failing} == {
        b["id"] for b in bookings if b["status"] == "awaiting_host" or b["updatedAt"] is None
    }
    # Calendars need no deviation: the schema does not require an `id`, and the demo sends none.
    calendar = openapi.raw_schema("calendars")["properties"]["data"]["properties"]["connectedCalendars"]
    assert "id" not in calendar["items"]["properties"]["calendars"]["items"]["required"]


@pytest.mark.parametrize(
    ("name", "path", "headers", "break_it"),
    [
        ("bookings", "/bookings", V_BOOKINGS, lambda b: b["data"][0].update(meetingUrl=None)),
        ("bookings", "/bookings", V_BOOKINGS, lambda b: b["data"][0].update(status="done")),
        ("conferencing", "/conferencing", AUTH, lambda b: b["data"][0].update(userId=None)),
        ("event_types", "/event-types", V_EVENT_TYPES, lambda b: b["data"][0].pop("users")),
        ("event_types", "/event-types", V_EVENT_TYPES, lambda b: b["data"][0].update(lengthInMinutes="30")),
        ("team_event_types", "/teams/91/event-types", AUTH, lambda b: b["data"][0].update(hosts=["4211"])),
        (
            "schedules",
            "/schedules",
            V_SCHEDULES,
            lambda b: b["data"][0]["availability"][0].update(days=["Mon"]),
        ),
        (
            "schedules",
            "/schedules",
            V_SCHEDULES,
            lambda b: b["data"][0]["overrides"][0].update(startTime="9"),
        ),
        (
            "calendars",
            "/calendars",
            AUTH,
            lambda b: b["data"]["connectedCalendars"][0]["integration"].pop("url"),
        ),
        ("teams", "/teams", AUTH, lambda b: b["data"][0].pop("isOrganization")),
        ("me", "/me", AUTH, lambda b: b["data"].update(timeFormat="24")),
    ],
)
def test_the_repaired_schemas_still_reject_wrong_shapes(api, name, path, headers, break_it) -> None:
    body = ok(api, path, headers)
    assert openapi.schema_errors(name, body) == []
    break_it(body)
    assert openapi.schema_errors(name, body)


def test_helper_repairs_only_the_listed_quirks() -> None:
    fixed = openapi.documented_schema("schedules")
    window = fixed["properties"]["data"]["items"]["properties"]["availability"]["items"]["properties"]
    assert "enum" not in window["days"] and window["days"]["items"]["enum"][0] == "Monday"
    assert window["startTime"]["pattern"] == openapi.HH_MM
    me = openapi.documented_schema("me")["properties"]["data"]["properties"]
    assert me["name"]["type"] == ["string", "null"] and me["timeFormat"]["type"] == "number"
    assert '"oneOf"' not in str(openapi.documented_schema("bookings")).replace("'", '"')
    assert openapi.raw_schema("bookings")["properties"]["data"]["items"].keys() == {"oneOf"}


def test_missing_schema_directory_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(openapi, "SCHEMA_DIR", tmp_path / "nowhere")
    with pytest.raises(openapi.SchemaDirMissing, match=r"shared/openapi.*CI has them"):
        openapi.schema_file("bookings")


# ---- bookings: the fixed behaviours ----------------------------------------------------------------


def test_hosts_is_exactly_the_organizer(account: DemoAccount, bookings: list[dict]) -> None:
    members = {p.id: p.host() for p in (account.catalog.owner, *account.catalog.members)}
    for b in bookings:
        assert len(b["hosts"]) == 1, b["id"]
        (host,) = b["hosts"]
        assert set(host) == HOST_KEYS and host == members[host["id"]]
    # Round-robin events are spread over their hosts; collective ones are organised by the first host.
    legacy = {et.id: et for et in account.catalog.event_types}
    organizers: dict[int, set[int]] = {}
    for b in bookings:
        if b["eventTypeId"] in legacy:
            organizers.setdefault(b["eventTypeId"], set()).add(b["hosts"][0]["id"])
    for et_id, hosts in organizers.items():
        et = legacy[et_id]
        expected = {et.hosts[0].id} if et.collective else {p.id for p in et.hosts}
        assert hosts <= expected, et_id
    assert any(len(hosts) > 1 for hosts in organizers.values())


def test_seated_bookings_shape(account: DemoAccount, bookings: list[dict]) -> None:
    seated_ids = {et.id for et in account.catalog.event_types if et.seated}
    seated = [b for b in bookings if b["eventTypeId"] in seated_ids]
    assert seated
    for b in seated:
        assert "guests" not in b and "bookingFieldsResponses" not in b
        for attendee in b["attendees"]:
            assert attendee["seatUid"] and isinstance(attendee["metadata"], dict)
            answers = attendee["bookingFieldsResponses"]
            assert "email" not in answers and "name" in answers
    hidden = [b for b in seated if b["attendees"] == []]
    assert 0 < len(hidden) < len(seated) / 2  # a deterministic share: the key may not see the seats
    slot = lambda b: b["id"] - BOOKING_ID_BASE  # noqa: E731
    assert hidden == [b for b in seated if slot(b) % HIDDEN_SEATS_PERIOD == HIDDEN_SEATS_OFFSET]
    others = [b for b in bookings if b["eventTypeId"] not in seated_ids]
    assert all("guests" in b and "bookingFieldsResponses" in b for b in others)
    assert all("seatUid" not in a for b in others for a in b["attendees"])


def test_meeting_url_is_a_copy_of_location(bookings: list[dict]) -> None:
    assert all(b["meetingUrl"] == b["location"] and isinstance(b["location"], str) for b in bookings)
    assert any(not b["location"].startswith("http") for b in bookings)  # phone and in-person too


def test_cancellation_fields_are_strings_never_null(account: DemoAccount, bookings: list[dict]) -> None:
    seated_ids = {et.id for et in account.catalog.event_types if et.seated}
    for b in bookings:
        cancelled = b["status"] == "cancelled"
        if b["eventTypeId"] not in seated_ids:
            assert isinstance(b["cancellationReason"], str) and isinstance(b["cancelledByEmail"], str)
        elif not cancelled:
            assert "cancellationReason" not in b and "cancelledByEmail" not in b
        if cancelled and b["attendees"]:  # (hidden seats may have cancelled: then only "not empty")
            assert b["cancelledByEmail"] in (b["hosts"][0]["email"], *(a["email"] for a in b["attendees"]))
        elif cancelled:
            assert b["cancelledByEmail"]
        else:
            assert not b.get("cancelledByEmail") and not b.get("cancellationReason")
    reasons = Counter(b["cancellationReason"] for b in bookings if b["status"] == "cancelled")
    assert reasons[""] and len(reasons) > 2  # some cancelled without a reason: "" then, not null


def status_views(b: dict) -> set[str]:
    """What the service's `status` filter values mean, computed from the record alone."""
    end, st_ = epoch(b["end"]), b["status"]
    live = st_ not in ("cancelled", "rejected")
    views = {
        "upcoming": live and end > NOW,
        "past": live and end <= NOW,
        "cancelled": not live,
        "unconfirmed": st_ in ("pending", "awaiting_host"),
        "recurring": "recurringBookingUid" in b,
    }
    return {name for name, hit in views.items() if hit}


@pytest.mark.parametrize(
    "value",
    ["upcoming", "past", "cancelled", "unconfirmed", "recurring", "upcoming,past", "cancelled,unconfirmed"],
)
def test_status_filter_matches_the_services_meaning(api: DemoApi, bookings: list[dict], value: str) -> None:
    wanted = set(value.split(","))
    expected = [b["id"] for b in bookings if status_views(b) & wanted]
    got = all_bookings(api, status=value)
    assert [b["id"] for b in got] == expected and expected
    assert ok(api, "/bookings", V_BOOKINGS, take=1, status=value)["pagination"]["totalItems"] == len(expected)


def test_status_filter_covers_every_booking_and_rejects_booking_statuses(api: DemoApi, bookings) -> None:
    everything = all_bookings(api, status="upcoming,past,cancelled")
    assert len(everything) == len(bookings)  # upcoming/past/cancelled partition the account
    assert {b["status"] for b in all_bookings(api, status="unconfirmed")} == {"pending", "awaiting_host"}
    for bad in ("accepted", "awaiting_host", "pending", "done", "upcoming,bogus", "UPCOMING"):
        response = get(api, "/bookings", V_BOOKINGS, status=bad)
        assert response.status == 400, bad
        error = response.json()["error"]
        assert error["code"] == "BadRequestException"
        assert "upcoming, recurring, past, cancelled, unconfirmed" in error["message"]


def test_booking_event_type_ids_refer_to_own_and_team_event_types(api: DemoApi, bookings: list[dict]) -> None:
    own, team = event_type_ids(api)
    used = Counter(b["eventTypeId"] for b in bookings)
    assert set(used) <= own | team | {UNKNOWN_EVENT_TYPE_ID}
    assert set(used) & own and set(used) & team
    assert all(b["eventType"]["id"] == b["eventTypeId"] for b in bookings)


# ---- event types: documented vs legacy ---------------------------------------------------------------


def flatten_legacy(api: DemoApi, headers: dict[str, str] = AUTH) -> list[dict]:
    groups = ok(api, "/event-types", headers)["data"]["eventTypeGroups"]
    return [et for group in groups for et in group["eventTypes"]]


def same_attributes(legacy: dict, documented: dict) -> None:
    pairs = {
        "id": "id",
        "title": "title",
        "slug": "slug",
        "length": "lengthInMinutes",
        "scheduleId": "scheduleId",
        "beforeEventBuffer": "beforeEventBuffer",
        "afterEventBuffer": "afterEventBuffer",
        "price": "price",
        "currency": "currency",
        "hidden": "hidden",
        "minimumBookingNotice": "minimumBookingNotice",
        "successRedirectUrl": "successRedirectUrl",
    }
    for old, new in pairs.items():
        assert legacy[old] == documented[new], (legacy["id"], old)
    assert (legacy["description"] or "") == documented["description"]
    assert (legacy["metadata"] or {}) == documented["metadata"]
    assert legacy["seatsPerTimeSlot"] == documented["seatsPerTimeSlot"]
    assert legacy["seatsPerTimeSlot"] == (documented.get("seats") or {}).get("seatsPerTimeSlot")
    assert len(legacy["locations"]) == len(documented["locations"])
    custom = {f["name"] for f in legacy["bookingFields"] or () if f["editable"] == "user"}
    assert custom <= {f["slug"] for f in documented["bookingFields"]}


@pytest.mark.parametrize("event_types", [None, 0, 1, 40])
def test_both_event_type_shapes_describe_the_same_account(event_types: int | None) -> None:
    api = DemoApi(DemoAccount(50, event_types=event_types, seed=3))
    legacy = flatten_legacy(api)
    own = ok(api, "/event-types", V_EVENT_TYPES)["data"]
    teams = ok(api, "/teams")["data"]
    team_ets = {t["id"]: ok(api, f"/teams/{t['id']}/event-types")["data"] for t in teams}
    documented = own + [et for ets in team_ets.values() for et in ets]
    assert sorted(et["id"] for et in legacy) == sorted(et["id"] for et in documented)
    by_id = {et["id"]: et for et in documented}
    for old in legacy:
        new = by_id[old["id"]]
        same_attributes(old, new)
        if old["teamId"] is None:
            assert new["ownerId"] == old["userId"] and "teamId" not in new
            assert new in own
        else:
            assert new in team_ets[old["teamId"]] and new["teamId"] == old["teamId"]
            assert new["team"]["id"] == old["teamId"] and new["ownerId"] is None
            lower = {"ROUND_ROBIN": "roundRobin", "COLLECTIVE": "collective", "MANAGED": "managed"}
            assert new["schedulingType"] == lower[old["schedulingType"]]
            assert [h["userId"] for h in new["hosts"]] == [h["userId"] for h in old["hosts"]]
            assert new["assignAllTeamMembers"] == old["assignAllTeamMembers"]
    legacy_teams = [g["teamId"] for g in ok(api, "/event-types")["data"]["eventTypeGroups"][1:]]
    assert legacy_teams == [t["id"] for t in teams]


def test_event_types_shape_follows_header_and_knob(account: DemoAccount) -> None:
    api = DemoApi(account)
    catalog = account.catalog
    documented = {"status": "success", "data": catalog.event_types_documented()}
    legacy = {"status": "success", "data": catalog.event_types_data()}
    assert ok(api, "/event-types", V_EVENT_TYPES) == documented
    for version in (None, "2024-06-11", '"2024-06-14"', "2024-06-14 ", "2024-08-13"):
        headers = AUTH if version is None else {**AUTH, "cal-api-version": version}
        assert ok(api, "/event-types", headers) == legacy, version
    assert {g["teamId"] for g in legacy["data"]["eventTypeGroups"]} == {None, *catalog.teams}
    api.faults = Faults(legacy_event_types=False)
    for headers in (AUTH, V_EVENT_TYPES, {**AUTH, "cal-api-version": "2024-04-15"}):
        assert ok(api, "/event-types", headers) == documented


def test_documented_event_types_fields(account: DemoAccount) -> None:
    own = account.catalog.event_types_documented()
    assert own and all(et["ownerId"] == account.catalog.owner.id for et in own)
    assert any(et["scheduleId"] is None for et in own) and any(et["scheduleId"] for et in own)
    assert any(et.get("seats") for et in own) and any(et["recurrence"] for et in own)
    types = {loc["type"] for et in own for loc in et["locations"]}
    assert {"integration", "address", "attendeePhone"} <= types
    assert all(isinstance(f["isDefault"], bool) for et in own for f in et["bookingFields"])
    team = account.catalog.team_event_types(91)
    assert {et["schedulingType"] for et in team} == {"roundRobin", "collective"}
    assert all(h.keys() >= {"userId", "name", "username"} for et in team for h in et["hosts"])
    with pytest.raises(KeyError):
        account.catalog.team_event_types(999)


# ---- teams routes -----------------------------------------------------------------------------------


def test_teams_routes(api: DemoApi, account: DemoAccount) -> None:
    teams = ok(api, "/teams")
    assert teams == {"status": "success", "data": account.catalog.teams_data()}
    assert [t["id"] for t in teams["data"]] == list(account.catalog.teams)
    for team in teams["data"]:
        body = ok(api, f"/teams/{team['id']}/event-types")
        assert body == {"status": "success", "data": account.catalog.team_event_types(team["id"])}
        assert ok(api, f"/teams/{team['id']}/event-types/", skip=5, take=1) == body  # no paging
        assert ok(api, f"/teams/{team['id']}/event-types", V_EVENT_TYPES) == body  # no version header
    missing = get(api, "/teams/999/event-types")
    assert missing.status == 404 and missing.json()["error"]["code"] == "NotFoundException"
    assert missing.json()["path"] == "/v2/teams/999/event-types"
    for bad in ("abc", "1.5", "91x", "%20"):
        response = get(api, f"/teams/{bad}/event-types")
        assert response.status == 400, bad
        assert response.json()["error"]["code"] == "BadRequestException"
    for nowhere in ("/teams/91", "/teams/91/event-types/5002", "/teams//event-types"):
        assert get(api, nowhere).status == 404, nowhere
    assert get(api, "/teams/91/event-types", {}).status == 401
    assert get(api, "/teams", {}).status == 401
    assert api.handle("POST", "/v2/teams/91/event-types", {}, AUTH).status == 404


def test_teams_routes_exist_without_any_spec(account: DemoAccount) -> None:
    api = DemoApi(account, resources=())
    assert ok(api, "/teams")["data"] == account.catalog.teams_data()
    assert ok(api, "/teams/92/event-types")["data"] == account.catalog.team_event_types(92)
    assert get(api, "/bookings", V_BOOKINGS).status == 404


def test_teams_routes_count_and_fail_like_other_endpoints(account: DemoAccount) -> None:
    api = DemoApi(account)
    ok(api, "/teams")
    ok(api, "/teams/91/event-types")
    get(api, "/teams/999/event-types")
    assert api.stats.requests == 3 and api.stats.by_status == {200: 2, 404: 1}
    assert api.stats.by_path["/v2/teams/91/event-types"] == 1

    api.faults = Faults(fail_status={"team_event_types": 503, "teams": 403})
    assert get(api, "/teams/91/event-types").status == 503
    assert get(api, "/teams").status == 403
    assert get(api, "/me").status == 200

    api.faults = Faults(fail_team_ids=frozenset({92}))
    assert get(api, "/teams/91/event-types").status == 200
    failed = get(api, "/teams/92/event-types")
    assert failed.status == 500 and failed.json()["error"]["code"] == "INTERNAL_SERVER_ERROR"
    assert get(api, "/teams").status == 200

    api.faults = Faults(error_rate=1.0, html_fraction=0.0, resources=frozenset({"team_event_types"}))
    assert get(api, "/teams/91/event-types").status >= 500
    assert get(api, "/teams").status == 200 and get(api, "/event-types").status == 200

    limited = DemoApi(account, rate_limit=RateLimit(limit=2, window=60, block=60))
    assert [get(limited, "/teams/91/event-types").status for _ in range(3)] == [200, 200, 429]
    assert "X-RateLimit-Reset-Default" in get(limited, "/teams").headers


# ---- paging and rate-limit knobs -------------------------------------------------------------------


def test_max_take_serves_smaller_pages_and_says_so(account: DemoAccount) -> None:
    api = DemoApi(account, faults=Faults(max_take=30))
    first = ok(api, "/bookings", V_BOOKINGS, take=100)
    assert len(first["data"]) == 30
    assert first["pagination"] == {
        "totalItems": 2000,
        "remainingItems": 1970,
        "returnedItems": 30,
        "itemsPerPage": 30,
        "currentPage": 1,
        "totalPages": math.ceil(2000 / 30),
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    assert_bookings_valid(first)
    assert len(ok(api, "/bookings", V_BOOKINGS, take=10)["data"]) == 10  # smaller asks are honoured
    assert get(api, "/bookings", V_BOOKINGS, take=251).status == 400  # still validated first
    # Advancing by what came back reaches every booking; the page flags stay true until the end.
    pages = booking_pages(api, take=100)
    ids = [b["id"] for body in pages for b in body["data"]]
    assert ids == sorted(set(ids)) and len(ids) == 2000 and len(pages) == math.ceil(2000 / 30)
    assert all(p["pagination"]["hasNextPage"] for p in pages[:-1])
    assert [p["pagination"]["currentPage"] for p in pages] == list(range(1, len(pages) + 1))
    assert pages[-1]["pagination"]["remainingItems"] == 0
    # Advancing by the requested `take` silently skips 70 of every 100 bookings.
    naive = [
        b["id"]
        for skip in range(0, 2000, 100)
        for b in ok(api, "/bookings", V_BOOKINGS, take=100, skip=skip)["data"]
    ]
    assert len(naive) == 600
    legacy = ok(api, "/bookings", AUTH, take=100)["data"]
    assert len(legacy["bookings"]) == 30 and legacy["nextCursor"] == 30


class Clocks:
    def __init__(self) -> None:
        self.now, self.wall = 1000.0, 1_790_000_000.25

    def monotonic(self) -> float:
        return self.now

    def epoch(self) -> float:
        return self.wall


def test_reset_header_as_epoch_or_seconds(account: DemoAccount) -> None:
    clocks = Clocks()
    api = DemoApi(account, rate_limit=RateLimit(5, 10, 30), clock=clocks.monotonic, wall_clock=clocks.epoch)
    assert get(api, "/me").headers["X-RateLimit-Reset-Default"] == "10"
    api.faults = Faults(reset_header="epoch")
    clocks.now += 4
    response = get(api, "/me")
    assert response.headers["X-RateLimit-Reset-Default"] == str(1_790_000_001 + 6)
    assert int(response.headers["X-RateLimit-Reset-Default"]) > 1e9
    for _ in range(3):
        get(api, "/me")
    blocked = get(api, "/me")
    assert blocked.status == 429 and blocked.headers["X-RateLimit-Reset-Default"] == str(1_790_000_001 + 30)
    api.faults = Faults()
    assert get(api, "/me").headers["X-RateLimit-Reset-Default"] == "30"
    with pytest.raises(ValueError):
        Faults(reset_header="minutes")


def test_new_knobs_are_admin_parameters(account: DemoAccount) -> None:
    api = DemoApi(account)
    params = {"legacy_event_types": "0", "max_take": "50", "fail_team_ids": "91", "reset_header": "epoch"}
    response = api.handle("POST", "/_demo/faults", params, {})
    assert response.status == 200
    knobs = response.json()["faults"]
    assert (
        knobs["legacy_event_types"],
        knobs["max_take"],
        knobs["fail_team_ids"],
        knobs["reset_header"],
    ) == (
        False,
        50,
        [91],
        "epoch",
    )
    assert api.faults == Faults(
        legacy_event_types=False, max_take=50, fail_team_ids=frozenset({91}), reset_header="epoch"
    )
    assert "data" in ok(api, "/event-types") and isinstance(ok(api, "/event-types")["data"], list)
    assert get(api, "/teams/91/event-types").status == 500
    assert int(get(api, "/me").headers["X-RateLimit-Reset-Default"]) > 1e9
    for bad in ({"reset_header": "minutes"}, {"max_take": "0"}, {"fail_team_ids": "x"}):
        assert api.handle("POST", "/_demo/faults", bad, {}).status == 400, bad
    assert api.handle("POST", "/_demo/faults", {}, {}).json()["faults"]["legacy_event_types"] is True


# ---- conferencing -------------------------------------------------------------------------------------


def test_conferencing_user_id_never_null_and_tokens_still_leak(api: DemoApi, account: DemoAccount) -> None:
    rows = ok(api, "/conferencing")["data"]
    assert all(r["userId"] == account.catalog.owner.id for r in rows)
    assert any(r["teamId"] for r in rows)  # a team-level install still names its user
    assert 0 < sum("key" in r for r in rows) < len(rows)
