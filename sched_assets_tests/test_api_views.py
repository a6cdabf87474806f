"""Pages decoded as views (`api.views`): the values the dict path reads, the pages it must leave to
that path, and the same tables from a sync either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from sched_assets.api.client import ClientConfig, SchedApiClient, SyncStats, record_key
from sched_assets.api.keyset import _KeysetRead, _span
from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets.api.views import RecordView, encode, page_decoder
from sched_assets.demo import DemoAccount, DemoApi, Faults, serve
from sched_assets.frames.spill import RecordSpill
from sched_assets_tests.sync_helpers import RAW_TABLES, table_rows
from sched_assets_tests.sync_helpers import sync as run_sync

BOOKINGS = ENDPOINTS_BY_NAME["bookings"]
ORDER_FIELDS = ("updatedAt", "createdAt")
RECORDS = [
    {
        "id": 1,
        "uid": "a",
        "title": "caf\u00e9",
        "rating": 4,
        "attendees": [{"name": "A", "email": "a@x.test"}],
        "metadata": {},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-02T00:00:00.000Z",
    },
    {"id": 2, "duration": "30", "location": {"type": "zoom"}, "hosts": None, "updatedAt": None},
    {"id": 123456789012345678901234567890, "rating": 1e300, "duration": -(2**70) - 1},
]


def decode(body: bytes):
    decoder = page_decoder(BOOKINGS, values=ORDER_FIELDS)
    assert decoder is not None
    return decoder(body)


def page_body(records: list[dict[str, Any]], **members: Any) -> bytes:
    return json.dumps({"status": "success", "data": records, **members}).encode()


def test_views_read_like_the_records_and_encode_them_verbatim():
    page = decode(page_body(RECORDS, pagination={"totalItems": 3, "hasNextPage": False}))
    assert page is not None and page.pagination == {"totalItems": 3, "hasNextPage": False}
    assert all(isinstance(view, RecordView) for view in page.records)
    for view, record in zip(page.records, RECORDS, strict=True):
        for name in BOOKINGS.columns:
            assert view.get(name, "absent") == record.get(name, "absent"), name
        assert view.get("notDeclared") is None
    # The key and the keyset fields are Python values; the rest stays JSON text until asked for.
    first = page.records[0]
    assert first.get("id") == 1 and first.get("updatedAt") == "2026-01-02T00:00:00.000Z"
    assert json.loads(encode(page.records)) == RECORDS  # absent fields stay absent, null stays null
    # Views compare field by field, so a repeated row is recognized.
    again = decode(page_body(RECORDS))
    assert again is not None and again.records == page.records
    edited = decode(page_body([{**RECORDS[0], "title": "new"}]))
    assert edited is not None and edited.records[0] != page.records[0]


def test_a_pretty_printed_page_is_spilled_compact_at_the_top_level():
    """`typed_sql`'s scan for odd values reads `"field":value` with nothing between: views are encoded
    so, whatever spacing the server used; values inside keep theirs (DuckDB re-serializes JSON)."""
    body = json.dumps({"data": RECORDS}, indent=2).encode()
    page = decode(body)
    assert page is not None
    spilled = encode(page.records)
    assert b'"rating":4,' in spilled and b'"duration":"30"' in spilled
    assert json.loads(spilled) == RECORDS


@pytest.mark.parametrize(
    "body",
    [
        page_body([{"id": 1, "brandNew": 2}]),  # an undeclared field: marked by the dict path
        page_body([{"id": 1}, 5]),  # an item that is not a record
        b'{"data": null}',
        b'{"data": {"eventTypeGroups": []}}',  # another shape (legacy, or not ours)
        b'{"status": "success"}',
        b'{"data": [{"id": 1, "title": "\xff"}]}',  # not UTF-8
        b'{"data": [{"id": 1, "title": "\xed\xa0\x80"}]}',  # an encoded surrogate: not UTF-8 either
        b'{"data": [{"id": 1, "title": "\\ud800"}]}',  # a lone surrogate escape
        b'{"data": [{"id": 1, "metadata": {"a": [1,]}}]}',  # malformed inside a value
        b'{"data": [{"id": 1, "rating": NaN}]}',
        b'{"data": []} trailing',
    ],
)
def test_pages_the_views_do_not_fit_go_the_general_way(body):
    assert decode(body) is None


def test_only_resources_without_secrets_and_with_a_data_list_have_views():
    assert page_decoder(ENDPOINTS_BY_NAME["conferencing"]) is None  # its OAuth key is stripped from dicts
    assert page_decoder(ENDPOINTS_BY_NAME["my_profile"]) is None  # one object under `data`
    assert page_decoder(BOOKINGS) is not None


def client_on(handler, *, record_views: bool = True) -> SchedApiClient:
    config = ClientConfig(base_url="http://api.test/v2", api_key="cal_test_key", backoff_factor=0.0)
    return SchedApiClient(config, transport=httpx.MockTransport(handler), record_views=record_views)


def test_the_client_gives_views_and_falls_back_to_dicts_page_by_page():
    pages = {
        "0": {"status": "success", "data": RECORDS[:2], "pagination": {"totalItems": 3}},
        "2": {
            "status": "success",
            "data": [{**RECORDS[2], "brandNew": True}],
            "pagination": {"totalItems": 3},
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        body = pages[request.url.params["skip"]]
        return httpx.Response(200, content=json.dumps(body).encode())

    with client_on(handler) as client:
        stats = SyncStats()
        fitting = client.fetch_page(BOOKINGS, {"take": "2", "skip": "0"}, 1, stats)
        drifted = client.fetch_page(BOOKINGS, {"take": "2", "skip": "2"}, 2, stats)
    assert all(isinstance(record, RecordView) for record in fitting.records)
    assert fitting.pagination == {"totalItems": 3} and fitting.skip == 0
    assert [type(record) for record in drifted.records] == [dict]
    assert drifted.records[0]["brandNew"] is True
    assert [shape.value for shape in stats.shapes] == ["documented"]
    with client_on(handler, record_views=False) as client:
        plain = client.fetch_page(BOOKINGS, {"take": "2", "skip": "0"}, 1, SyncStats())
    assert plain.records == RECORDS[:2]


def test_the_client_retries_a_truncated_body_on_the_views_path():
    answers = [b'{"data": [{"id": 1', page_body(RECORDS[:1])]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answers.pop(0))

    with client_on(handler) as client:
        stats = SyncStats()
        page = client.fetch_page(BOOKINGS, {"take": "1", "skip": "0"}, 1, stats)
    assert stats.retries == 1 and [record.get("id") for record in page.records] == [1]


def test_keyset_drops_unchanged_repeats_of_views_and_keeps_edits():
    read = _KeysetRead(
        client_on(lambda r: httpx.Response(500)), BOOKINGS, BOOKINGS.full_order, SyncStats(), False
    )

    def views(*rows: tuple[int, str, str]) -> list[RecordView]:
        page = decode(page_body([{"id": i, "createdAt": at, "title": title} for i, at, title in rows]))
        assert page is not None
        return page.records

    def fresh(records: list[RecordView], previous: list[RecordView]) -> list[RecordView]:
        return read._fresh(records, previous, _span(records, "createdAt"), _span(previous, "createdAt"))

    previous = views((1, "2026-01-01T00:00:00.000Z", "t"), (2, "2026-01-02T00:00:00.000Z", "t"))
    later = views((3, "2026-01-03T00:00:00.000Z", "t"))
    assert fresh(later, previous) is later
    again = views((2, "2026-01-02T00:00:00.000Z", "t"), (3, "2026-01-03T00:00:00.000Z", "t"))
    assert [r.get("id") for r in fresh(again, previous)] == [3]
    edited = views((2, "2026-01-02T00:00:00.000Z", "new"), (3, "2026-01-03T00:00:00.000Z", "t"))
    assert [r.get("id") for r in fresh(edited, previous)] == [2, 3]


@pytest.mark.parametrize("shape", ["standard", "nested"])
def test_a_sync_with_views_stores_the_same_tables_as_with_dicts(shape, tmp_path: Path, monkeypatch):
    """The demo account (seated bookings, custom answers; drift in half the bookings: undeclared
    fields, changed types) synced with views and with dicts only: every raw table the same. Pages of
    5, so some pages fit the views and the others go the dict path."""
    account = DemoAccount(bookings=1_200, seed=4, shape=shape)
    kinds: list[type] = []
    add = RecordSpill.add

    def recording_add(self: RecordSpill, records: list[Any]) -> None:
        kinds.append(type(records[0]) if records else type(None))
        add(self, records)

    monkeypatch.setattr(RecordSpill, "add", recording_add)
    with serve(DemoApi(account, faults=Faults(drift=True))) as server, dg.instance_for_test() as instance:
        run_sync(server.url, tmp_path / "views.duckdb", instance, page_size=5)
        used = list(kinds)
        init = SchedApiClient.__init__

        def dicts_only(self: SchedApiClient, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **{**kwargs, "record_views": False})

        monkeypatch.setattr(SchedApiClient, "__init__", dicts_only)
        kinds.clear()
        run_sync(server.url, tmp_path / "dicts.duckdb", instance, page_size=5)
    assert any(issubclass(kind, RecordView) for kind in used) and dict in used  # both kinds of page
    assert not any(issubclass(kind, RecordView) for kind in kinds)
    for table in RAW_TABLES:
        assert table_rows(tmp_path / "views.duckdb", table) == table_rows(tmp_path / "dicts.duckdb", table), (
            table
        )


@pytest.mark.parametrize("record_views", [True, False])
def test_integers_beyond_64_bits_stay_exact_on_every_path(record_views):
    """A page of views, and a page of dicts (an undeclared field, or a client without views): such an
    integer arrives exactly, not as the float orjson would make of it."""
    big = -(2**70) - 1
    body = page_body([{"id": 1, "duration": big}, {"id": 2, "duration": big, "brandNew": big}])

    def handler(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        return httpx.Response(
            200, content=json.dumps({"data": json.loads(body)["data"][skip : skip + 1]}).encode()
        )

    with client_on(handler, record_views=record_views) as client:
        first, second = (
            client.fetch_page(BOOKINGS, {"take": "1", "skip": str(i)}, i, SyncStats()) for i in (0, 1)
        )
    assert first.records[0].get("duration") == big
    assert second.records[0]["duration"] == big and second.records[0]["brandNew"] == big


def test_a_key_holding_an_integer_beyond_64_bits_can_still_be_compared():
    record = {"id": [2**70 + 1], "title": "t"}
    assert record_key(BOOKINGS, record) == record_key(BOOKINGS, {"id": [2**70 + 1]})
    assert record_key(BOOKINGS, record) != record_key(BOOKINGS, {"id": [2**70 + 2]})
