"""The demo's rendered-JSON cache serves exactly what rendering each record would."""

from __future__ import annotations

import orjson

from sched_assets.demo import DemoAccount, DemoApi
from sched_assets_tests.demo_helpers import account_booking_ids

HEADERS = {"authorization": "Bearer cal_demo_public_key", "cal-api-version": "2024-08-13"}


def test_cached_pages_equal_fresh_records_after_mutations():
    account = DemoAccount(bookings=300)
    account.prerender()
    api = DemoApi(account)
    touched = account.touch(0.1)
    account.delete(account_booking_ids(account)[:3])
    added = account.add(5)
    body = api.handle("GET", "/v2/bookings", {"take": "250", "skip": "0"}, HEADERS).json()
    body2 = api.handle("GET", "/v2/bookings", {"take": "250", "skip": "250"}, HEADERS).json()
    records = body["data"] + body2["data"]
    assert [r["id"] for r in records] == account_booking_ids(account)
    assert records == [orjson.loads(orjson.dumps(account.booking(i))) for i in account_booking_ids(account)]
    assert {r["id"] for r in records} >= set(touched[3:]) | set(added)
    assert body["pagination"]["totalItems"] == 302 and body2["pagination"]["hasNextPage"] is False
