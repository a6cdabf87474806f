"""The client reads what the server says: capped pages, response shapes, team event types."""

from __future__ import annotations

import logging

import httpx
import pytest

from sched_assets.api.client import SyncStats
from sched_assets.api.errors import RetriesExhaustedError, UnexpectedResponseError
from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets_tests.api_helpers import fetch_all
from sched_assets_tests.test_api_units import json_response, make_client

BOOKINGS = ENDPOINTS_BY_NAME["bookings"]
EVENT_TYPES = ENDPOINTS_BY_NAME["event_types"]


def capped_handler(total: int, cap: int):
    """A server that serves at most `cap` records a page whatever `take` asks, and says so."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        skip, take = int(request.url.params["skip"]), int(request.url.params["take"])
        served = min(take, cap)
        ids = list(range(skip + 1, min(total, skip + served) + 1))
        pagination = {
            "totalItems": total,
            "itemsPerPage": served,
            "returnedItems": len(ids),
            "hasNextPage": skip + len(ids) < total,
        }
        return json_response(
            {"status": "success", "data": [{"id": i} for i in ids], "pagination": pagination}
        )

    return handler, requests


@pytest.mark.parametrize("take", [100, 250])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_server_capping_take_is_paged_by_what_it_returns(take, concurrency, caplog):
    handler, requests = capped_handler(3000, cap=40)
    client, _ = make_client(handler, page_size=take, concurrency=concurrency)
    stats = SyncStats()
    with caplog.at_level(logging.WARNING):
        records = fetch_all(client, BOOKINGS, stats=stats)
    assert sorted(r["id"] for r in records) == list(range(1, 3001))
    assert stats.stopped_by in ("hasNextPage is false", "skip reached totalItems")
    assert caplog.text.count("serves at most 40 records a page") == 1
    # Sized by the real page: no more than a window of wasted requests.
    assert len(requests) <= 3000 // 40 + concurrency


def test_uneven_pages_leave_no_gap():
    # Page sizes vary from request to request (a proxy in front of several servers): no record is lost.
    requests: list[httpx.Request] = []
    sizes = [100, 37, 100, 12, 55, 100]

    def handler(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        served = sizes[len(requests) % len(sizes)]
        requests.append(request)
        ids = list(range(skip + 1, min(1000, skip + served) + 1))
        pagination = {"totalItems": 1000, "hasNextPage": skip + len(ids) < 1000}
        return json_response({"data": [{"id": i} for i in ids], "pagination": pagination})

    client, _ = make_client(handler, page_size=100, concurrency=3)
    assert sorted(r["id"] for r in fetch_all(client, BOOKINGS)) == list(range(1, 1001))


def test_short_page_with_more_announced_does_not_stop():
    handler, requests = capped_handler(95, cap=30)
    client, _ = make_client(handler, page_size=50, concurrency=1)
    assert [r["id"] for r in fetch_all(client, BOOKINGS)] == list(range(1, 96))
    assert [r.url.params["skip"] for r in requests] == ["0", "30", "60", "90"]


DOCUMENTED = [{"id": 1, "lengthInMinutes": 30, "ownerId": 7, "title": "Intro"}]
GROUPED = {
    "eventTypeGroups": [
        {
            "teamId": None,
            "eventTypes": [{"id": 1, "length": 30, "userId": 7, "title": "Intro", "position": 0}],
        },
        {"teamId": 5, "eventTypes": [{"id": 2, "length": 60, "teamId": 5, "schedulingType": "ROUND_ROBIN"}]},
    ],
    "profiles": [],
}


def event_types_handler(event_types_body, teams=(), team_event_types=None, fail_team=None):
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        path = request.url.path
        if path == "/v2/event-types":
            return json_response({"status": "success", "data": event_types_body})
        if path == "/v2/teams":
            return json_response({"status": "success", "data": [{"id": t, "name": f"t{t}"} for t in teams]})
        team = int(path.split("/")[3])
        if team == fail_team:
            return json_response({"status": "error", "error": {"code": "INTERNAL_SERVER_ERROR"}}, 500)
        return json_response({"status": "success", "data": (team_event_types or {}).get(team, [])})

    return handler, requests


def test_event_types_documented_shape_with_header_and_team_fan_out():
    team_types = {5: [{"id": 2, "lengthInMinutes": 60, "teamId": 5}], 6: [{"id": 3, "lengthInMinutes": 15}]}
    handler, requests = event_types_handler(DOCUMENTED, teams=(5, 6), team_event_types=team_types)
    client, _ = make_client(handler, concurrency=2)
    stats = SyncStats()
    records = fetch_all(client, EVENT_TYPES, stats=stats)
    assert requests[0].headers["cal-api-version"] == "2024-06-14"
    assert {r.url.path for r in requests} == {
        "/v2/event-types",
        "/v2/teams",
        "/v2/teams/5/event-types",
        "/v2/teams/6/event-types",
    }
    assert {r["id"]: r.get("teamId") for r in records} == {1: None, 2: 5, 3: 6}  # team id stamped when absent
    assert stats.shapes == {"documented"}
    assert stats.requests == 4


def test_event_types_legacy_grouped_shape_is_read_and_renamed(caplog):
    handler, _ = event_types_handler(GROUPED)
    client, _ = make_client(handler)
    stats = SyncStats()
    with caplog.at_level(logging.WARNING):
        records = fetch_all(client, EVENT_TYPES, stats=stats)
    assert records == [
        {"id": 1, "lengthInMinutes": 30, "ownerId": 7, "title": "Intro", "position": 0},
        {"id": 2, "lengthInMinutes": 60, "teamId": 5, "schedulingType": "roundRobin"},
    ]
    assert stats.shapes == {"legacy"}
    assert "grouped (legacy, undocumented) shape" in caplog.text


def test_event_types_in_neither_shape_is_an_error_naming_endpoint_and_header():
    handler, _ = event_types_handler({"somethingElse": []})
    client, _ = make_client(handler)
    with pytest.raises(
        UnexpectedResponseError, match=r"GET /event-types with header `cal-api-version: 2024-06-14`"
    ):
        fetch_all(client, EVENT_TYPES)


def test_one_failing_team_fails_the_read_naming_the_team():
    handler, _ = event_types_handler(DOCUMENTED, teams=(5, 6, 7), fail_team=6)
    client, _ = make_client(handler, max_retries=1)
    with pytest.raises(RetriesExhaustedError, match=r"teams id=6 failed"):
        fetch_all(client, EVENT_TYPES)
