"""The demo account's data: deterministic, every quirk of ../shared/api-notes.md present, mutations, scale."""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import psutil
import pytest

from sched_assets.demo import (
    AS_OF,
    BOOKING_ID_BASE,
    DEMO_API_KEY,
    DEMO_OAUTH_TOKEN,
    RESOURCES,
    DemoAccount,
    DemoApi,
)
from sched_assets_tests.demo_helpers import account_booking_ids, all_records, expected_count

SMALL = ("event_types", "my_profile", "schedules", "calendars", "conferencing")
_DIGEST = (
    "import hashlib, orjson; from sched_assets.demo import RESOURCES, DemoAccount; "
    "from sched_assets_tests.demo_helpers import all_records; a = DemoAccount(1500, seed=11); "
    "h = hashlib.sha256(); [h.update(orjson.dumps(all_records(a, n))) for n in RESOURCES]; "
    "h.update(orjson.dumps(a.catalog.event_types_data())); print(h.hexdigest())"
)


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(2000)


@pytest.fixture(scope="module")
def bookings(account: DemoAccount) -> list[dict]:
    return all_records(account, "bookings")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


# ---- determinism ----------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_data() -> None:
    a, b = DemoAccount(800, seed=3), DemoAccount(800, seed=3)
    for name in RESOURCES:
        assert orjson.dumps(all_records(a, name)) == orjson.dumps(all_records(b, name))
    assert orjson.dumps(a.catalog.event_types_data()) == orjson.dumps(b.catalog.event_types_data())
    other = DemoAccount(800, seed=4)
    assert orjson.dumps(all_records(other, "bookings")) != orjson.dumps(all_records(a, "bookings"))


def test_determinism_does_not_depend_on_hash_seed() -> None:
    """Two interpreters with different PYTHONHASHSEED produce the same bytes (and so does this one)."""
    here = DemoAccount(1500, seed=11)
    digest = hashlib.sha256()
    for name in RESOURCES:
        digest.update(orjson.dumps(all_records(here, name)))
    digest.update(orjson.dumps(here.catalog.event_types_data()))  # the legacy shape too
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", _DIGEST], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(run.stdout.strip())
    assert outputs == {digest.hexdigest()}


# ---- the small resources --------------------------------------------------------------------


def test_profile_fields(account: DemoAccount) -> None:
    (me,) = all_records(account, "my_profile")
    expected = {
        "id",
        "email",
        "name",
        "username",
        "timeFormat",
        "defaultScheduleId",
        "weekStart",
        "timeZone",
        "organizationId",
        "avatarUrl",
        "bio",
    }
    assert expected <= me.keys()
    assert me["timeFormat"] in (12, 24)
    assert me["defaultScheduleId"] in {s["id"] for s in all_records(account, "schedules")}


def test_schedules_two_zones_overlaps_and_overrides(account: DemoAccount) -> None:
    schedules = all_records(account, "schedules")
    assert len(schedules) >= 3
    assert {s["timeZone"] for s in schedules} >= {"Europe/Berlin", "America/New_York"}
    assert sum(s["isDefault"] for s in schedules) == 1
    for s in schedules:
        assert {"id", "ownerId", "name", "timeZone", "isDefault", "availability", "overrides"} <= s.keys()

    def overlaps(s: dict) -> bool:
        windows = [(d, w["startTime"], w["endTime"]) for w in s["availability"] for d in w["days"]]
        return any(
            a[0] == b[0] and a[1] < b[2] and b[1] < a[2]
            for i, a in enumerate(windows)
            for b in windows[i + 1 :]
        )

    assert any(overlaps(s) for s in schedules)
    overrides = [o for s in schedules for o in s["overrides"]]
    assert any(o["date"] == "2026-12-24" for o in overrides)
    assert any(o["startTime"] == o["endTime"] == "00:00" for o in overrides)  # a day off


def legacy_event_types(account: DemoAccount) -> list[dict]:
    """The legacy grouped shape (no version header), flattened: personal group first, then teams."""
    return [et for g in account.catalog.event_types_data()["eventTypeGroups"] for et in g["eventTypes"]]


def test_event_types_groups_and_fields(account: DemoAccount) -> None:
    data = account.catalog.event_types_data()
    groups = data["eventTypeGroups"]
    assert groups[0]["teamId"] is None and any(g["teamId"] for g in groups[1:])
    assert len(data["profiles"]) == len(groups)
    records = legacy_event_types(account)
    assert len(records) == 8 == expected_count(account, "event_types")
    assert sorted(et["id"] for et in records) == sorted(r["id"] for r in all_records(account, "event_types"))
    fields = {
        "id",
        "title",
        "slug",
        "length",
        "description",
        "hidden",
        "position",
        "metadata",
        "afterEventBuffer",
        "beforeEventBuffer",
        "assignAllTeamMembers",
        "schedulingType",
        "scheduleId",
        "teamId",
        "userId",
        "price",
        "currency",
        "locations",
        "bookingFields",
        "hosts",
        "seatsPerTimeSlot",
    }
    for et in records:
        assert fields <= et.keys()
    assert any(et["scheduleId"] is None for et in records)
    assert any(et["scheduleId"] is not None for et in records)
    assert any(et["metadata"] is None for et in records) and any(et["metadata"] for et in records)
    assert any(et["bookingFields"] is None for et in records)
    assert any(et["seatsPerTimeSlot"] for et in records)
    assert {et["schedulingType"] for et in records} == {None, "ROUND_ROBIN", "COLLECTIVE"}
    assert len({et["id"] for et in records}) == len(records)
    # The documented shape: own event types at /event-types, team ones at /teams/{id}/event-types.
    own = account.catalog.event_types_documented()
    team = [et for t in account.catalog.teams for et in account.catalog.team_event_types(t)]
    assert [et["id"] for et in own] == [et["id"] for et in groups[0]["eventTypes"]]
    assert [et["id"] for et in team] == [et["id"] for g in groups[1:] for et in g["eventTypes"]]
    documented = {
        "id",
        "title",
        "slug",
        "lengthInMinutes",
        "description",
        "locations",
        "bookingFields",
        "scheduleId",
        "beforeEventBuffer",
        "afterEventBuffer",
        "metadata",
        "price",
        "currency",
        "hidden",
        "ownerId",
    }
    assert all(documented | {"users", "bookingUrl"} <= et.keys() for et in own)
    assert all(documented | {"teamId", "hosts", "schedulingType", "team"} <= et.keys() for et in team)


def test_three_hundred_event_types_spread_over_groups() -> None:
    big = DemoAccount(100, event_types=300)
    groups = big.catalog.event_types_data()["eventTypeGroups"]
    assert sum(len(g["eventTypes"]) for g in groups) == 300 == expected_count(big, "event_types")
    assert all(len(g["eventTypes"]) >= 30 for g in groups)
    assert len({et["id"] for g in groups for et in g["eventTypes"]}) == 300
    own = big.catalog.event_types_documented()
    team = [et for t in big.catalog.teams for et in big.catalog.team_event_types(t)]
    assert len(own) == len(groups[0]["eventTypes"]) and len(own) + len(team) == 300


def test_calendars_shared_external_id_and_broken_credential(account: DemoAccount) -> None:
    data = account.response_data("calendars")
    connected = data["connectedCalendars"]
    assert any("calendars" not in c for c in connected)  # broken credential: no list at all
    rows = all_records(account, "calendars")
    keys = {
        "externalId",
        "integration",
        "name",
        "primary",
        "readOnly",
        "email",
        "isSelected",
        "credentialId",
        "delegationCredentialId",
    }
    assert all(keys <= r.keys() and "id" not in r for r in rows)
    by_external = Counter(r["externalId"] for r in rows)
    shared = [ext for ext, n in by_external.items() if n > 1]
    assert shared
    assert len({r["credentialId"] for r in rows if r["externalId"] == shared[0]}) == 2
    assert len({(r["credentialId"], r["externalId"]) for r in rows}) == len(rows)
    assert "destinationCalendar" in data


def test_conferencing_leaks_a_recognisable_token(account: DemoAccount) -> None:
    rows = all_records(account, "conferencing")
    keys = {
        "id",
        "type",
        "userId",
        "teamId",
        "appId",
        "invalid",
        "subscriptionId",
        "paymentStatus",
        "billingCycleStart",
        "delegationCredentialId",
    }
    assert all(keys <= r.keys() for r in rows)
    with_key = [r for r in rows if "key" in r]
    assert len(with_key) == 1 and with_key[0]["key"]["access_token"] == DEMO_OAUTH_TOKEN
    assert DEMO_OAUTH_TOKEN.encode() in account_bytes(account)
    assert {"google_video", "zoom_video"} <= {r["type"] for r in rows}
    assert not DEMO_API_KEY.startswith("cal_live_")


def account_bytes(account: DemoAccount) -> bytes:
    return b"".join(orjson.dumps(all_records(account, n)) for n in SMALL)


# ---- bookings -------------------------------------------------------------------------------


def test_booking_ids_unique_positive_and_ascending(account: DemoAccount, bookings: list[dict]) -> None:
    ids = [b["id"] for b in bookings]
    assert ids == sorted(set(ids)) == account_booking_ids(account)
    assert ids[0] > 0 and len(ids) == 2000 == expected_count(account, "bookings")
    assert len({b["uid"] for b in bookings}) == len(bookings)


def test_every_status_present_accepted_most_common(bookings: list[dict]) -> None:
    counts = Counter(b["status"] for b in bookings)
    assert set(counts) == {"accepted", "cancelled", "rejected", "pending", "awaiting_host"}
    assert counts.most_common(1)[0][0] == "accepted"
    for b in bookings:
        # Present as "" when there is none (always on non-seated bookings), never null.
        if b["status"] == "cancelled":
            assert isinstance(b["cancellationReason"], str) and b["cancelledByEmail"]
        else:
            assert b.get("cancellationReason", "") == "" and b.get("cancelledByEmail", "") == ""
    reasons = {b["cancellationReason"] for b in bookings if b["status"] == "cancelled"}
    assert "" in reasons and "Rescheduled" in reasons and len(reasons) > 3


def test_times_are_consistent(bookings: list[dict]) -> None:
    for b in bookings:
        start, end, created = parse(b["start"]), parse(b["end"]), parse(b["createdAt"])
        assert b["start"].endswith(".000Z") and start.year == 2026
        assert b["duration"] == (end - start).total_seconds() / 60 > 0
        assert created < start
        if b["updatedAt"] is not None:
            assert created <= parse(b["updatedAt"]) <= AS_OF
    nulls = sum(b["updatedAt"] is None for b in bookings) / len(bookings)
    assert 0.03 <= nulls <= 0.08
    assert len({parse(b["start"]).month for b in bookings}) == 12


def test_starts_follow_the_schedule_time_zone(account: DemoAccount, bookings: list[dict]) -> None:
    ets = {et["id"]: et for et in legacy_event_types(account)}
    zones = {s["id"]: s["timeZone"] for s in all_records(account, "schedules")}
    in_hours = late = total = 0
    for b in bookings:
        et = ets.get(b["eventTypeId"])
        if et is None or et["teamId"] or et["scheduleId"] not in (701, 702):
            continue
        local = parse(b["start"]).astimezone(ZoneInfo(zones[et["scheduleId"]]))
        total += 1
        in_hours += 8 <= local.hour < 17 and local.weekday() < 5
        late += local.hour >= 19
    assert total > 100 and in_hours / total > 0.9 and late > 0


def test_seated_bookings_answer_per_seat(account: DemoAccount, bookings: list[dict]) -> None:
    seated_ids = {et["id"] for et in legacy_event_types(account) if et["seatsPerTimeSlot"]}
    seated = [b for b in bookings if b["eventTypeId"] in seated_ids]
    assert seated
    for b in seated:
        assert "bookingFieldsResponses" not in b and "guests" not in b
        assert all("seatUid" in a and "bookingFieldsResponses" in a for a in b["attendees"])
        assert all("email" not in a["bookingFieldsResponses"] and "metadata" in a for a in b["attendees"])
    assert any(b["attendees"] == [] for b in seated) and any(b["attendees"] for b in seated)
    others = [b for b in bookings if b["eventTypeId"] not in seated_ids]
    assert all("bookingFieldsResponses" in b for b in others)
    assert all("seatUid" not in a for b in others for a in b["attendees"])


def test_booking_field_responses_vary_in_type(bookings: list[dict]) -> None:
    responses = [b["bookingFieldsResponses"] for b in bookings if "bookingFieldsResponses" in b]
    name_types = {type(r["name"]) for r in responses}
    assert name_types == {str, dict}
    assert all(set(r["name"]) == {"firstName", "lastName"} for r in responses if isinstance(r["name"], dict))
    assert all(set(r["location"]) == {"value", "optionValue"} for r in responses)
    custom_types: dict[str, set[type]] = {}
    for r in responses:
        for key, value in r.items():
            custom_types.setdefault(key, set()).add(type(value))
    varied = {k for k, types in custom_types.items() if len(types) >= 2 and k != "name"}
    assert len(varied) >= 3, custom_types
    attendees = [a for b in bookings for a in b["attendees"]]
    assert any("phoneNumber" in a for a in attendees) and any("phoneNumber" not in a for a in attendees)


def test_late_fields_appear_only_deep_into_the_stream(bookings: list[dict]) -> None:
    cut = int(len(bookings) * 0.6)
    for field in ("rating", "recurringBookingUid"):
        assert not any(field in b for b in bookings[:cut]), field
        assert any(field in b for b in bookings[cut:]), field


def test_unknown_event_types_and_reschedules(account: DemoAccount, bookings: list[dict]) -> None:
    known = {et["id"] for et in all_records(account, "event_types")}
    assert 0 < sum(b["eventTypeId"] not in known for b in bookings) < 20
    by_uid = {b["uid"]: b for b in bookings}
    moved = [b for b in bookings if "rescheduledToUid" in b]
    assert moved
    for old in moved:
        new = by_uid[old["rescheduledToUid"]]
        assert old["status"] == "cancelled" and new["rescheduledFromUid"] == old["uid"]
        assert "reschedulingReason" in new


# ---- mutations ------------------------------------------------------------------------------


def test_touch_fraction_is_deterministic_and_bumps_updated_at() -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    a, b = DemoAccount(3000), DemoAccount(3000)
    before = {x["id"]: x for x in all_records(a, "bookings")}
    ids = a.touch(0.01, at=at)
    assert ids == b.touch(0.01, at=at) and len(ids) == 30
    for booking_id in ids:
        now = a.booking(booking_id)
        assert now["updatedAt"] == "2026-11-20T12:00:00.000Z"
        assert now["title"] != before[booking_id]["title"]
        assert now["uid"] == before[booking_id]["uid"]
    untouched = next(i for i in before if i not in ids)
    assert a.booking(untouched) == before[untouched]
    # Without `at`, mutations happen after every existing timestamp, one minute apart.
    later = a.touch([ids[0]])
    assert parse(a.booking(later[0])["updatedAt"]) == at + timedelta(minutes=1)


def test_delete_and_add() -> None:
    a = DemoAccount(500)
    gone = account_booking_ids(a)[10:13]
    assert a.delete([*gone, 999_999_999]) == 3
    assert expected_count(a, "bookings") == 497
    with pytest.raises(KeyError):
        a.booking(gone[0])
    assert not set(gone) & set(account_booking_ids(a))
    at = datetime(2026, 11, 25, 8, tzinfo=UTC)
    new = a.add(5, at=at)
    assert new == list(range(BOOKING_ID_BASE + 500, BOOKING_ID_BASE + 505))
    assert account_booking_ids(a)[-5:] == new and expected_count(a, "bookings") == 502
    for booking_id in new:
        rec = a.booking(booking_id)
        assert rec["createdAt"] == rec["updatedAt"] == "2026-11-25T08:00:00.000Z"
        assert parse(rec["start"]) > at


def test_cached_order_stays_correct_across_mutations() -> None:
    a = DemoAccount(1000)
    a.ordered("updated")
    a.touch(0.05)
    a.delete(account_booking_ids(a)[::50])
    a.add(7)
    a.touch(account_booking_ids(a)[:3], at=datetime(2026, 1, 1, tzinfo=UTC))  # older than the rest: rebuild
    a.touch(0.02)
    order, nulls = a.ordered("updated")
    live = list(a.live_slots())
    expected = sorted((s for s in live if a.updated[s] >= 0), key=lambda s: (a.updated[s], s))
    assert list(order) == expected
    assert sorted(nulls) == [s for s in live if a.updated[s] < 0]


# ---- scale ----------------------------------------------------------------------------------


def test_a_million_bookings_build_fast_in_little_memory() -> None:
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    big = DemoAccount(1_000_000)
    build_s = time.perf_counter() - started
    api = DemoApi(big)
    headers = {"Authorization": f"Bearer {DEMO_API_KEY}", "cal-api-version": "2024-08-13"}
    api.handle("GET", "/v2/bookings", {"take": "250"}, headers)  # warm-up
    started = time.perf_counter()
    for skip in range(0, 1_000_000, 100_000):
        response = api.handle("GET", "/v2/bookings", {"take": "250", "skip": str(skip + 7)}, headers)
        assert response.status == 200
    page_ms = (time.perf_counter() - started) / 10 * 1000
    last = api.handle("GET", "/v2/bookings", {"take": "250", "skip": "999900"}, headers).json()
    grown_mb = (process.memory_info().rss - rss_before) / 2**20

    assert expected_count(big, "bookings") == 1_000_000
    assert [b["id"] for b in last["data"]][-1] == BOOKING_ID_BASE + 999_999
    assert last["pagination"]["hasNextPage"] is False
    assert build_s < 15, f"building took {build_s:.1f}s"
    assert page_ms < 60, f"a 250-booking page took {page_ms:.1f} ms"
    assert grown_mb < 250, f"the account grew the process by {grown_mb:.0f} MB"
