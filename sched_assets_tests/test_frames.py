"""Typing of API records in DuckDB (`frames.typed_sql`, `frames.spill`): the rules, nothing lost, and
the same tables as the Python typing it replaced (`reference_typing`)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME, EndpointSpec
from sched_assets.api.views import RecordView, page_decoder
from sched_assets.demo.generator import BOOKING_ID_BASE, DemoAccount
from sched_assets.demo.shapes import drift_booking
from sched_assets.frames.columns import column_types, snake_case
from sched_assets.frames.spill import RecordSpill, SecretInSpillError, TypingStats
from sched_assets_tests.demo_helpers import all_records
from sched_assets_tests.reference_typing import FrameStats, build_frame

BOOKINGS = ENDPOINTS_BY_NAME["bookings"]
CALENDARS = ENDPOINTS_BY_NAME["calendars"]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def as_views(spec: EndpointSpec, page: list[dict[str, Any]]) -> list[Any]:
    """A page as the client hands it over with `record_views`: views when the page fits, else dicts."""
    decode = page_decoder(spec, values=("updatedAt", "createdAt"))
    if decode is None:  # a resource the views do not fit (secret fields)
        return page
    body = json.dumps({"status": "success", "data": page}, ensure_ascii=False).encode()
    decoded = decode(body)
    return page if decoded is None else decoded.records


def typed(
    spec: EndpointSpec,
    records: list[dict[str, Any]],
    directory: Path,
    page_size: int | None = None,
    views: bool = False,
    **spill_args: Any,
) -> tuple[list[dict[str, Any]], RecordSpill]:
    """Records through the spill (pages of `page_size`, one page by default), read back from its
    Parquet parts. `views`: pages given as the sync's client gives them (`as_views`)."""
    directory.mkdir(parents=True, exist_ok=True)
    spill = RecordSpill(spec, directory, NOW, **spill_args)
    step = page_size or max(1, len(records))
    for start in range(0, len(records), step):
        page = records[start : start + step]
        spill.add(as_views(spec, page) if views and page else page)
    paths = spill.finish()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = ", ".join(f"'{path}'" for path in paths)
    cursor = con.execute(f"SELECT * FROM read_parquet([{files}]) ORDER BY file_index, file_row_number")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()], spill


def typed_rows(spec: EndpointSpec, records: list[dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    return typed(spec, records, directory)[0]


def test_snake_case():
    assert snake_case("eventTypeId") == "event_type_id"
    assert snake_case("bookingFieldsResponses") == "booking_fields_responses"
    assert snake_case("id") == "id"
    assert snake_case("icsUid") == "ics_uid"


def test_columns_fixed_whatever_the_records(tmp_path):
    one, _ = typed(BOOKINGS, [{"id": 1}], tmp_path / "one")
    assert list(one[0]) == list(column_types(BOOKINGS))
    # No records: one empty part that still carries every column, with its type.
    _, spill = typed(BOOKINGS, [], tmp_path / "none")
    schema = pl.read_parquet_schema(spill.paths[0])
    assert list(schema) == list(column_types(BOOKINGS))
    assert schema["start"] == pl.Datetime("us", "UTC") and schema["id"] == pl.Int64
    assert pl.read_parquet(spill.paths[0]).height == 0


def test_lossless_conversions_and_misfits(tmp_path):
    records = [
        {
            "id": "2",
            "duration": 30.0,
            "rating": "4.5",
            "absentHost": "true",
            "uid": 17,
            "start": "2026-03-29T09:30:00+02:00",
        },
        {
            "id": 3,
            "duration": "thirty",
            "location": {"type": "zoom"},
            "eventTypeId": True,
            "end": "not a time",
        },
        {"id": 4, "brandNewField": [1, 2], "attendees": [{"name": "A", "absent": False}]},
    ]
    rows, spill = typed(BOOKINGS, records, tmp_path)
    stats = spill.stats
    assert [r["id"] for r in rows] == [2, 3, 4]
    assert rows[0]["duration"] == 30 and rows[0]["rating"] == 4.5 and rows[0]["absent_host"] is True
    assert rows[0]["uid"] == "17"
    assert rows[0]["start"] == datetime(2026, 3, 29, 7, 30, tzinfo=UTC)
    assert rows[0]["_extra"] is None
    assert rows[1]["duration"] is None and rows[1]["location"] is None and rows[1]["event_type_id"] is None
    assert orjson.loads(rows[1]["_extra"]) == {
        "duration": "thirty",
        "location": {"type": "zoom"},
        "eventTypeId": True,
        "end": "not a time",
    }
    assert orjson.loads(rows[2]["_extra"]) == {"brandNewField": [1, 2]}
    assert orjson.loads(rows[2]["attendees"]) == [{"name": "A", "absent": False}]
    assert rows[2]["hosts"] is None  # absent stays SQL NULL, not JSON null
    assert stats.kept_in_extra == 4 and stats.unknown_fields == {"brandNewField"}
    assert stats.converted == 5


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(st.sampled_from([*BOOKINGS.columns, "x", "yY"]), json_values, max_size=8),
        max_size=6,
    )
)
def test_nothing_is_lost(tmp_path_factory, records):
    """Every non-null value the API sent is either in its column or verbatim in `_extra`."""
    records = [{**r, "id": i} for i, r in enumerate(records)]
    rows = typed_rows(BOOKINGS, records, tmp_path_factory.mktemp("spill"))
    for record, row in zip(records, rows, strict=True):
        extra = json.loads(row["_extra"]) if row["_extra"] else {}
        for name, value in record.items():
            if value is None:
                continue
            column = snake_case(name)
            if name in extra:
                assert extra[name] == json.loads(json.dumps(value))
            else:
                assert row[column] is not None, (name, value)


def test_spill_keeps_every_row_in_page_order(tmp_path):
    # Repeated keys stay: storage dedupes them (last wins) in the one pass that loads the parts.
    spill = RecordSpill(BOOKINGS, tmp_path, NOW, batch_rows=2)
    spill.add([{"id": 1, "title": "old"}, {"id": 2, "title": "b"}])
    spill.add([{"id": 1, "title": "new"}, {"id": 3, "title": "c"}])
    paths = spill.finish()
    assert len(paths) == 2
    frame = pl.read_parquet(paths)
    assert frame["id"].to_list() == [1, 2, 1, 3]
    assert frame["title"].to_list() == ["old", "b", "new", "c"]
    assert spill.stats.rows == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]  # no JSON lines left


def test_wide_records_make_smaller_batches(tmp_path):
    # A batch closes at `batch_rows` records or `batch_bytes` of JSON, whichever comes first.
    spill = RecordSpill(BOOKINGS, tmp_path, NOW, batch_rows=1_000, batch_bytes=2_000)
    for page in range(5):
        spill.add([{"id": page * 2 + i, "title": "w" * 500} for i in range(2)])
    paths = spill.finish()
    assert len(paths) == 3  # pages of ~1,050 bytes: two pages per batch
    assert pl.read_parquet(paths)["id"].to_list() == list(range(10))


def test_records_of_several_megabytes_are_typed_whole(tmp_path):
    # The JSON reader is sized to each batch's longest record, above its 1 MiB floor.
    huge = {"id": 1, "title": "t" * 3_000_000, "metadata": {"note": "n" * 2_500_000}, "unknownField": "u" * 5}
    rows, spill = typed(BOOKINGS, [huge, {"id": 2, "title": "small"}], tmp_path, batch_rows=1)
    assert [row["id"] for row in rows] == [1, 2]
    assert len(rows[0]["title"]) == 3_000_000
    assert json.loads(rows[0]["metadata"]) == {"note": "n" * 2_500_000}
    assert json.loads(rows[0]["_extra"]) == {"unknownField": "uuuuu"}
    assert spill.stats.rows == 2


def test_unusable_keys_become_null_and_are_kept_in_extra(tmp_path):
    # Such rows are left out (and counted) by storage's null-key rule, not here.
    rows = typed_rows(BOOKINGS, [{"id": 1}, {"title": "no id"}, {"id": "abc"}, {"id": None}], tmp_path)
    assert [row["id"] for row in rows] == [1, None, None, None]
    assert json.loads(rows[2]["_extra"]) == {"id": "abc"}


def test_integers_beyond_bigint_are_kept_verbatim(tmp_path):
    records = [{"id": 1, "duration": 2**63, "eventTypeId": -(2**63), "rating": 2**70, "uid": -(2**64)}]
    rows, spill = typed(BOOKINGS, records, tmp_path)
    row = rows[0]
    assert row["duration"] is None and row["event_type_id"] == -(2**63)
    assert row["uid"] == str(-(2**64)) and row["rating"] is None
    assert json.loads(row["_extra"]) == {"duration": 2**63, "rating": 2**70}
    assert spill.stats.kept_in_extra == 2


def test_cursor_and_preview_are_collected_while_typing(tmp_path):
    spill = RecordSpill(BOOKINGS, tmp_path, NOW, cursor_column="updated_at", batch_rows=2)
    spill.add(
        [{"id": 1, "status": "accepted", "updatedAt": "2026-01-02T00:00:00Z"}, {"id": 2, "updatedAt": None}]
    )
    spill.add([{"id": 3, "updatedAt": "2026-03-04T05:06:07.250Z"}])
    assert len(spill.finish()) == 2
    assert spill.newest_cursor == datetime(2026, 3, 4, 5, 6, 7, 250_000, tzinfo=UTC)
    assert spill.without_cursor == 1
    assert spill.preview is not None and spill.preview.columns == list(BOOKINGS.preview_columns)
    assert [row[:2] for row in spill.preview.rows] == [(1, "accepted"), (2, None)]  # the first batch's rows


def test_a_secret_that_reached_the_spill_is_refused_and_its_file_deleted(tmp_path):
    conferencing = ENDPOINTS_BY_NAME["conferencing"]
    (secret,) = conferencing.secret_fields
    value = "tok_" + "S" * 20
    with pytest.raises(SecretInSpillError, match="secret field"):
        typed(conferencing, [{"id": 1, "app": "zoom", secret: value}], tmp_path)
    leftovers = [p for p in tmp_path.iterdir() if value.encode() in p.read_bytes()]
    assert leftovers == []


def test_spill_files_are_readable_by_the_owner_only(tmp_path):
    spill = RecordSpill(BOOKINGS, tmp_path, NOW)
    spill.add([{"id": 1}])
    (batch,) = list(tmp_path.iterdir())
    assert stat.S_IMODE(os.stat(batch).st_mode) == 0o600
    spill.close()


# ---- the same tables as the Python typing it replaced ----------------------------------------------


def reference_rows(
    spec: EndpointSpec, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], FrameStats]:
    stats = FrameStats()
    return build_frame(spec, records, NOW, stats).to_dicts(), stats


def assert_same_rows(spec: EndpointSpec, ours: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    json_columns = {snake_case(name) for name, kind in spec.columns.items() if kind == "json"} | {"_extra"}
    assert len(ours) == len(reference)
    for number, (row, expected) in enumerate(zip(ours, reference, strict=True)):
        assert list(row) == list(expected)
        for column, value in expected.items():
            got = row[column]
            if column in json_columns and value is not None and got is not None:
                assert orjson.loads(got) == orjson.loads(value), (spec.name, number, column)
            else:
                assert got == value, (spec.name, number, column, got, value)


MISFITS = [
    {"id": "7", "duration": 45.0, "rating": "4.25", "absentHost": "FALSE", "uid": 12, "title": True},
    {"id": 8, "duration": "forty", "rating": "4.50", "absentHost": 1, "start": "2026-02-30T10:00:00Z"},
    {"id": 9, "eventTypeId": 3.5, "status": ["accepted"], "end": 1700000000, "location": 2.5},
    {
        "id": 10,
        "description": {"nested": {"deep": [None, 1.5, "x"]}},
        "hosts": None,
        "updatedAt": "2026-01-01",
    },
    {"id": 11, "start": "2026-03-29T09:30:00+02:00", "end": "2026-03-29T10:00:00.123456", "rating": 3},
    {"id": 12, "brandNew": None, "another_one": {"a": None}, "createdAt": "  2026-01-01T00:00:00Z "},
]


@pytest.mark.parametrize("views", [False, True], ids=["dicts", "views"])
@pytest.mark.parametrize("spec", ENDPOINTS, ids=lambda spec: spec.name)
def test_same_tables_as_the_python_typing_on_the_demo_account_with_drift(spec, views, tmp_path):
    """Demo records (seated bookings with per-seat answers, teams' event types, ...) and, for bookings,
    schema drift and hand-made misfits: the same typed values, `_extra` and counts as before, from
    dicts and from views."""
    assert_same_as_reference(spec, DemoAccount(bookings=1_500, seed=11), tmp_path, page_size=100, views=views)


def test_same_tables_as_the_python_typing_on_the_nested_account(tmp_path):
    """The nested shape: many attendees, per-seat answers, custom answers of mixed types."""
    assert_same_as_reference(BOOKINGS, DemoAccount(bookings=1_000, seed=5, shape="nested"), tmp_path)


@pytest.mark.parametrize("views", [False, True], ids=["dicts", "views"])
@pytest.mark.parametrize("shape", ["standard", "nested"])
def test_trusted_batches_give_the_same_tables(shape, views, tmp_path):
    """Small batches without undeclared fields are typed by the JSON reader (the fast path), with the
    same values and counts as the reference; the drifted and misfit batches are checked. With views
    (the sync's pages), the same: pages with undeclared fields come as dicts and are marked."""
    account = DemoAccount(bookings=1_500, seed=3, shape=shape)
    spill = assert_same_as_reference(
        BOOKINGS, account, tmp_path, page_size=50, misfits_first=True, batch_rows=100, views=views
    )
    assert spill.trusted_batches >= 2
    if views:  # the account's pages before the drift do come as views
        assert isinstance(as_views(BOOKINGS, all_records(account, "bookings")[:50])[0], RecordView)


def test_odd_fields_of_earlier_batches_stay_checked_and_new_ones_are_found(tmp_path):
    """A batch looks only for fields not yet found odd in the resource's earlier batches: those stay
    checked (the same values), and a field first odd in a later batch is still found."""
    records = [{"id": i, "rating": 4 if i == 0 else 4.5, "title": f"t{i}"} for i in range(6)]
    records[4].update(rating=5, duration="45")  # rating odd again, duration first odd, in the third batch
    ours, spill = typed(BOOKINGS, records, tmp_path, page_size=2, batch_rows=2)
    reference, stats = reference_rows(BOOKINGS, records)
    assert_same_rows(BOOKINGS, ours, reference)
    assert spill.stats.converted == stats.converted == 3  # 4 -> 4.0, 5 -> 5.0, "45" -> 45
    assert spill.trusted_batches == 3


declared_records = st.lists(
    st.dictionaries(st.sampled_from(list(BOOKINGS.columns)), json_values, max_size=8), max_size=6
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declared_records, st.booleans())
def test_any_values_of_declared_fields_type_as_the_reference(tmp_path_factory, records, views):
    """Batches with declared fields only take the fast path whatever their values are: every value
    of another type than its column's is found and checked, exactly as the reference types it; the
    same when the page comes as views (values as JSON text, re-encoded by msgspec)."""
    records = [{**r, "id": i} for i, r in enumerate(records)]
    ours, spill = typed(BOOKINGS, records, tmp_path_factory.mktemp("spill"), views=views)
    reference, stats = reference_rows(BOOKINGS, records)
    assert_same_rows(BOOKINGS, ours, reference)
    assert (spill.stats.converted, spill.stats.kept_in_extra) == (stats.converted, stats.kept_in_extra)
    assert spill.stats.misfit_fields == stats.misfit_fields


def test_a_timestamp_that_does_not_parse_is_kept_by_the_checked_path(tmp_path):
    rows, spill = typed(BOOKINGS, [{"id": 1, "start": "2026-02-30T10:00:00Z", "title": "t"}], tmp_path)
    assert spill.trusted_batches == 0
    assert rows[0]["start"] is None and orjson.loads(rows[0]["_extra"]) == {"start": "2026-02-30T10:00:00Z"}


def assert_same_as_reference(
    spec: EndpointSpec,
    account: DemoAccount,
    tmp_path: Path,
    page_size: int | None = None,
    misfits_first: bool = False,
    batch_rows: int = 400,
    views: bool = False,
) -> RecordSpill:
    records = [
        {k: v for k, v in r.items() if k not in spec.secret_fields} for r in all_records(account, spec.name)
    ]
    if spec.name == "bookings":
        midpoint = BOOKING_ID_BASE + 700
        drifted = [drift_booking(record, midpoint) for record in records]
        records = MISFITS + drifted if misfits_first else drifted + MISFITS
        assert any(r.get("seatsShowAttendees") is not None or "seatUid" in json.dumps(r) for r in records)
    assert records
    ours, spill = typed(spec, records, tmp_path, page_size, views=views, batch_rows=batch_rows)
    reference, stats = reference_rows(spec, records)
    assert_same_rows(spec, ours, reference)
    assert spill.stats == TypingStats(
        rows=stats.rows,
        converted=stats.converted,
        kept_in_extra=stats.kept_in_extra,
        unknown_fields=stats.unknown_fields,
        misfit_fields=stats.misfit_fields,
    )
    return spill
