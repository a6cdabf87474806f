"""Keyset reads of GET /bookings (after/before bounds, tie order, speed) and an account that changes
while it is read (the `edits_per_page`, `deletes_per_page`, `edit_targets`, `live_changes_after` knobs).
"""

from __future__ import annotations

import random
import time
from array import array
from bisect import bisect_left, bisect_right
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from sched_assets.demo import AS_OF, DemoAccount, DemoApi, Faults
from sched_assets.demo.__main__ import build_parser, faults_from_args
from sched_assets.demo.generator import BOOKING_ID_BASE
from sched_assets.demo.orders import Window
from sched_assets.demo.timefmt import iso
from sched_assets_tests.demo_helpers import V_BOOKINGS, all_records

X = "2026-01-01T00:00:00.000Z"  # the incremental reads' starting cursor
KEYSETS = {  # record field -> (sort param, after param, before param)
    "createdAt": ("sortCreated", "afterCreatedAt", "beforeCreatedAt"),
    "updatedAt": ("sortUpdatedAt", "afterUpdatedAt", "beforeUpdatedAt"),
}


def get(api: DemoApi, **query: object) -> Any:
    response = api.handle("GET", "/v2/bookings", {k: str(v) for k, v in query.items()}, V_BOOKINGS)
    assert response.status == 200, response.body[:300]
    return response.json()


def offset_read(api: DemoApi, take: int = 100, **query: object) -> dict[int, dict]:
    """The naive reader: skip += take until a short page."""
    seen: dict[int, dict] = {}
    skip = 0
    while True:
        data = get(api, take=take, skip=skip, **query)["data"]
        seen.update((b["id"], b) for b in data)
        if len(data) < take:
            return seen
        skip += take


def keyset_read(api: DemoApi, field: str, start: str | None = None, take: int = 100) -> dict[int, dict]:
    """after = the last row's timestamp (inclusive), skip = the rows already seen at exactly that timestamp."""
    sort, after_param, _ = KEYSETS[field]
    seen: dict[int, dict] = {}
    after, skip = start, 0
    while True:
        bound = {after_param: after} if after else {}
        data = get(api, take=take, skip=skip, **{sort: "asc"}, **bound)["data"]
        seen.update((b["id"], b) for b in data)
        if len(data) < take:
            return seen
        last = data[-1][field]
        at_last = sum(b[field] == last for b in data)
        skip, after = (skip + at_last if last == after else at_last), last


def current(account: DemoAccount) -> dict[int, dict]:
    """Every existing booking now, as JSON would carry it."""
    return {b["id"]: orjson.loads(orjson.dumps(b)) for b in all_records(account, "bookings")}


# ---- before/after filters -----------------------------------------------------------------


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(2000)


def _expected(
    records: list[dict], field: str, after: str | None, before: str | None, sort: str | None
) -> list:
    keep = [b for b in records if b[field] and (after is None or b[field] >= after)]
    keep = [b for b in keep if before is None or b[field] <= before]
    if sort is not None:
        keep.sort(key=lambda b: (b[field], b["id"]), reverse=sort == "desc")
    return [b["id"] for b in keep]


@pytest.mark.parametrize("field", ["createdAt", "updatedAt"])
@pytest.mark.parametrize("sort", [None, "asc", "desc"])
def test_before_and_after_are_inclusive_and_combine_with_sort_and_skip(
    account: DemoAccount, field: str, sort: str | None
) -> None:
    api = DemoApi(account)
    records = all_records(account, "bookings")
    stamps = sorted({b[field] for b in records if b[field]})
    sort_param, after_param, before_param = KEYSETS[field]
    for after, before in ((stamps[100], stamps[700]), (None, stamps[300]), (stamps[1500], None)):
        bounds = {after_param: after} if after else {}
        bounds |= {before_param: before} if before else {}
        query = {**bounds, **({sort_param: sort} if sort else {})}
        expected = _expected(records, field, after, before, sort)
        got = [b["id"] for b in offset_read(api, take=37, **query).values()]
        assert got == expected, (after, before)
        assert [b["id"] for b in get(api, take=5, skip=11, **query)["data"]] == expected[11:16]
        assert get(api, take=1, **query)["pagination"]["totalItems"] == len(expected)
    for edge in (stamps[0], stamps[-1]):  # both bounds inclusive: after = before = one instant
        one = [b["id"] for b in get(api, take=250, **{after_param: edge, before_param: edge})["data"]]
        assert one and one == [b["id"] for b in records if b[field] == edge]


def test_null_updated_at_never_matches_a_bound(account: DemoAccount) -> None:
    api = DemoApi(account)
    records = all_records(account, "bookings")
    nulls = {b["id"] for b in records if b["updatedAt"] is None}
    assert nulls
    for query in (
        {"beforeUpdatedAt": "2100-01-01"},
        {"afterUpdatedAt": "1970-01-01", "sortUpdatedAt": "desc"},
    ):
        got = offset_read(api, take=250, **query)
        assert not nulls & set(got) and len(got) == len(records) - len(nulls)


def test_bounds_combine_with_status(account: DemoAccount) -> None:
    api = DemoApi(account)
    records = all_records(account, "bookings")
    query = {"status": "cancelled", "afterCreatedAt": "2026-03-01", "beforeCreatedAt": "2026-08-01T00:00:00Z"}
    got = offset_read(api, take=50, sortCreated="desc", **query)
    expected = [
        b
        for b in records
        if b["status"] in ("cancelled", "rejected")
        and "2026-03-01" <= b["createdAt"] <= "2026-08-01T00:00:00.000Z"
    ]
    expected.sort(key=lambda b: (b["createdAt"], b["id"]), reverse=True)
    assert [b["id"] for b in got.values()] == [b["id"] for b in expected] and expected


@pytest.mark.parametrize("param", ["beforeUpdatedAt", "beforeCreatedAt"])
def test_bad_before_values_are_400(account: DemoAccount, param: str) -> None:
    response = DemoApi(account).handle("GET", "/v2/bookings", {param: "last week"}, V_BOOKINGS)
    assert response.status == 400
    assert response.json()["error"]["message"] == f"{param} must be a valid ISO 8601 date string"


def test_ties_come_in_id_order_so_skip_within_a_run_is_stable(account: DemoAccount) -> None:
    api = DemoApi(account)
    records = all_records(account, "bookings")
    runs: dict[str, list[int]] = {}
    for b in records:
        runs.setdefault(b["createdAt"], []).append(b["id"])
    stamp, run = max(runs.items(), key=lambda item: len(item[1]))
    assert len(run) >= 3
    one_by_one = [
        get(api, take=1, skip=k, sortCreated="asc", afterCreatedAt=stamp)["data"][0]["id"] for k in range(3)
    ]
    assert one_by_one == run[:3] == sorted(run[:3])
    desc = get(api, take=len(run), sortCreated="desc", beforeCreatedAt=stamp)["data"]
    assert [b["id"] for b in desc] == run[::-1]


def test_a_deleted_row_inside_a_tie_run_shifts_skip() -> None:
    """The real service has no tie-breaker either: when a row already read inside the run at the
    cursor disappears, `after=T&skip=k` passes over one unread row of that run. Readers must check."""
    account = DemoAccount(2000)
    api = DemoApi(account)
    runs: dict[str, list[int]] = {}
    for b in all_records(account, "bookings"):
        runs.setdefault(b["createdAt"], []).append(b["id"])
    stamp, run = next((s, r) for s, r in runs.items() if len(r) >= 3)
    first = get(api, take=2, sortCreated="asc", afterCreatedAt=stamp)["data"]
    assert [b["id"] for b in first] == run[:2]
    account.delete([run[0]])
    following = get(api, take=100, skip=2, sortCreated="asc", afterCreatedAt=stamp)["data"]
    assert run[2] not in {b["id"] for b in following}


# ---- maintained orders --------------------------------------------------------------------


def test_orders_and_windows_match_brute_force_across_mutations() -> None:
    a = DemoAccount(1500)
    for field in ("start", "end", "created", "updated"):
        a.field_order(field)
    rng = random.Random(5)
    ids = lambda: [BOOKING_ID_BASE + s for s in a.live_slots()]  # noqa: E731
    a.touch(rng.sample(ids(), 5))
    a.touch(rng.sample(ids(), 80), at=datetime(2026, 3, 1, tzinfo=UTC))  # older than most: mid-order
    a.touch(rng.sample(ids(), 3), at=datetime(2026, 3, 1, tzinfo=UTC))  # joins that tie run
    a.delete(rng.sample(ids(), 4))
    a.delete(rng.sample(ids(), 60))
    a.add(40, null_updated_at=True)
    a.add(3, at=datetime(2026, 3, 1, tzinfo=UTC))
    live = list(a.live_slots())
    assert live == sorted(set(live)) and len(live) == a.booking_count == 1500 - 64 + 43
    for field in ("start", "end", "created", "updated"):
        values = getattr(a, field)
        order, nulls = a.ordered(field)
        assert list(order) == sorted((s for s in live if values[s] >= 0), key=lambda s: (values[s], s)), field
        assert list(nulls) == [s for s in live if values[s] < 0], field
    order, nulls = a.ordered("updated")
    full = list(order) + list(nulls)
    for desc in (False, True):
        window = Window(order, 10, len(order) - 10, nulls, desc)
        expected = (
            (list(nulls) + full[10 : len(order) - 10][::-1])
            if desc
            else full[10 : len(order) - 10] + list(nulls)
        )
        assert len(window) == len(expected) and list(window) == expected
        for lo, hi in ((0, 7), (len(expected) - 60, len(expected) + 5), (30, 30), (5, len(expected))):
            assert list(window[lo:hi]) == expected[lo:hi]
        assert window[-1] == expected[-1] and window[3] == expected[3] and isinstance(window[0:2], array)
        whole = Window(order, nulls=nulls, descending=desc)
        assert all(whole[a.field_order("updated").position(s, desc)] == s for s in full[::37])


# ---- speed ----------------------------------------------------------------------------------


def test_keyset_pages_cost_log_n_plus_take_at_a_million() -> None:
    big = DemoAccount(1_000_000)
    api = DemoApi(big)
    timings: dict[str, float] = {}
    for field, (sort, after_param, before_param) in KEYSETS.items():
        values = big.created if field == "createdAt" else big.updated
        get(api, take=1, **{sort: "asc", after_param: X})  # builds the order once
        order = big.ordered("created" if field == "createdAt" else "updated")[0]
        key = values.__getitem__
        for bounded in (False, True):
            elapsed = 0.0
            for i in range(20):
                pos = 17 + i * 46_000 + bounded * 20_000  # rows not rendered before: a cold page
                query = {sort: "asc", after_param: iso(values[order[pos]]), "take": 100, "skip": i % 3}
                if bounded:
                    query[before_param] = iso(values[order[pos + 5_000]])
                started = time.perf_counter()
                body = get(api, **query)
                elapsed += time.perf_counter() - started
                stamps = [b[field] for b in body["data"]]
                assert len(stamps) == 100 and stamps == sorted(stamps) and stamps[0] >= query[after_param]
                lo = bisect_left(order, values[order[pos]], key=key)
                hi = bisect_right(order, values[order[pos + 5_000]], key=key) if bounded else len(order)
                assert body["pagination"]["totalItems"] == hi - lo
            timings[f"{field} {'bounded' if bounded else 'open'}"] = elapsed / 20 * 1000
    print({k: f"{v:.2f} ms" for k, v in timings.items()})
    assert all(ms < 60 for ms in timings.values()), timings


# ---- changes during a read ------------------------------------------------------------------


def test_deletes_make_offset_paging_skip_rows_but_not_a_keyset_read() -> None:
    offset_account = DemoAccount(2000)
    offset_api = DemoApi(offset_account, faults=Faults(seed=3, deletes_per_page=2))
    seen = offset_read(offset_api)
    never_seen = set(current(offset_account)) - set(seen)
    assert never_seen, "the naive offset read should have skipped live rows"
    assert offset_api.stats.deleted == 2000 - offset_account.booking_count > 0

    keyset_account = DemoAccount(2000)
    keyset_api = DemoApi(keyset_account, faults=Faults(seed=3, deletes_per_page=2))
    seen = keyset_read(keyset_api, "createdAt")
    assert keyset_api.stats.deleted == 2000 - keyset_account.booking_count > 10
    assert set(current(keyset_account)) <= set(seen)


def _changed_since(records: dict[int, dict], cursor: str) -> dict[int, dict]:
    return {i: b for i, b in records.items() if b["updatedAt"] and b["updatedAt"] >= cursor}


def test_edits_of_read_rows_make_an_offset_incremental_read_lose_rows() -> None:
    """Edits move rows already read to the end: the unread rows shift back one place each time, and an
    offset reader skips the row at its next page boundary. Rows it lost are older than the newest
    row it saw, so the next run (afterUpdatedAt = that newest row) loses them for good."""
    faults = Faults(seed=3, edits_per_page=3, edit_targets="any")
    offset_account = DemoAccount(2000)
    seen = offset_read(DemoApi(offset_account, faults=faults), afterUpdatedAt=X, sortUpdatedAt="asc")
    newest_seen = max(b["updatedAt"] for b in seen.values())
    lost = [b for i, b in _changed_since(current(offset_account), X).items() if i not in seen]
    assert [b for b in lost if b["updatedAt"] <= newest_seen]

    keyset_account = DemoAccount(2000)
    keyset_api = DemoApi(keyset_account, faults=faults)
    seen = keyset_read(keyset_api, "updatedAt", start=X)
    assert keyset_api.stats.edited > 50
    newest_seen = max(b["updatedAt"] for b in seen.values())
    for booking_id, booking in _changed_since(current(keyset_account), X).items():
        # the newest version was read, or it changed after the read passed by: the next run reads it
        assert seen.get(booking_id) == booking or booking["updatedAt"] > newest_seen, booking_id


@pytest.mark.parametrize("reader", ["keyset", "offset"])
def test_unread_edits_are_seen_again_at_the_end(reader: str) -> None:
    """`edit_targets="unread"` moves rows the reader has not reached to the end of updatedAt order:
    an ascending reader meets them there, at their newest version. The rows they jump over only move
    toward the reader, so neither reader loses a row this way (it is edits of rows already read that
    break offset paging); edits after the last page are the next run's, newer than anything read."""
    account = DemoAccount(2000)
    api = DemoApi(account, faults=Faults(seed=4, edits_per_page=3, edit_targets="unread"))
    if reader == "keyset":
        seen = keyset_read(api, "updatedAt", start=X)
    else:
        seen = offset_read(api, afterUpdatedAt=X, sortUpdatedAt="asc")
    assert api.stats.edited > 50
    newest_seen = max(b["updatedAt"] for b in seen.values())
    now = current(account)
    edited = {i for i, b in now.items() if "(updated)" in b["title"]}
    generated_until = iso(int(AS_OF.timestamp()))  # every generated updatedAt is at or before it
    assert edited and len(edited) <= api.stats.edited
    for booking_id in edited:
        booking = now[booking_id]
        assert booking["updatedAt"] > generated_until  # a new latest instant: the end of the order
        assert seen.get(booking_id) == booking or booking["updatedAt"] > newest_seen, booking_id
    assert sum(booking_id in seen for booking_id in edited) > len(edited) // 2
    lost = [b for i, b in _changed_since(now, X).items() if i not in seen and b["updatedAt"] <= newest_seen]
    assert lost == []


def test_live_changes_are_reproducible() -> None:
    def run() -> tuple[list[int], dict[str, Any]]:
        account = DemoAccount(800)
        api = DemoApi(account, faults=Faults(seed=9, edits_per_page=1.5, deletes_per_page=0.5))
        offset_read(api, take=50)
        keyset_read(api, "updatedAt", start=X, take=50)
        return [
            b["id"] for b in all_records(account, "bookings") if "(updated)" in b["title"]
        ], api.stats.snapshot()

    first, second = run(), run()
    assert first == second and first[1]["edited"] > 0 and first[1]["deleted"] > 0


def test_knobs_wait_for_live_changes_after_and_touch_only_200_bookings_pages() -> None:
    account = DemoAccount(500)
    api = DemoApi(account)
    setting = {
        "edits_per_page": "1",
        "deletes_per_page": "1",
        "edit_targets": "unread",
        "live_changes_after": "3",
    }
    answer = api.handle("POST", "/_demo/faults", setting, {}).json()
    assert answer["faults"]["edit_targets"] == "unread" and answer["faults"]["live_changes_after"] == 3
    for skip in (0, 100, 200):  # requests 1-3: served before the knobs start
        get(api, take=100, skip=skip)
    api.handle("GET", "/v2/me", {}, V_BOOKINGS)  # request 4: not a bookings page
    assert api.handle("GET", "/v2/bookings", {"take": "999"}, V_BOOKINGS).status == 400  # not a 200
    get(api, take=100, skip=10_000)  # a page without rows changes nothing
    stats = api.handle("GET", "/_demo/stats", {}, {}).json()
    assert (stats["edited"], stats["deleted"], stats["bookings"]) == (0, 0, 500)
    get(api, take=100, skip=300)
    stats = api.handle("GET", "/_demo/stats", {}, {}).json()
    assert (stats["edited"], stats["deleted"], stats["bookings"]) == (1, 1, 499)
    bad = api.handle("POST", "/_demo/faults", {"edit_targets": "read"}, {})
    assert bad.status == 400 and "edit_targets" in bad.json()["error"]
    assert api.handle("POST", "/_demo/faults", {"deletes_per_page": "-1"}, {}).status == 400


def test_cli_sets_the_live_change_knobs() -> None:
    args = ["--edits-per-page", "2.5", "--deletes-per-page", "1", "--edit-targets", "unread"]
    faults = faults_from_args(build_parser().parse_args([*args, "--live-changes-after", "40"]))
    assert (faults.edits_per_page, faults.deletes_per_page) == (2.5, 1.0)
    assert (faults.edit_targets, faults.live_changes_after) == ("unread", 40)
    assert faults_from_args(build_parser().parse_args([])) == Faults()
