"""Typing of API records into frames: explicit columns, lossless conversion, misfits kept in `_extra`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets.frames.build import FrameStats, build_frame, empty_frame
from sched_assets.frames.columns import column_types, snake_case
from sched_assets.frames.spill import PageSpill

BOOKINGS = ENDPOINTS_BY_NAME["bookings"]
CALENDARS = ENDPOINTS_BY_NAME["calendars"]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_snake_case():
    assert snake_case("eventTypeId") == "event_type_id"
    assert snake_case("bookingFieldsResponses") == "booking_fields_responses"
    assert snake_case("id") == "id"
    assert snake_case("icsUid") == "ics_uid"


def test_columns_fixed_whatever_the_records():
    frame = build_frame(BOOKINGS, [{"id": 1}], NOW)
    assert frame.columns == list(column_types(BOOKINGS))
    assert frame.columns == empty_frame(BOOKINGS).columns
    assert frame.schema == empty_frame(BOOKINGS).schema
    assert frame["start"].dtype == pl.Datetime("us", "UTC")


def test_lossless_conversions_and_misfits():
    stats = FrameStats()
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
    frame = build_frame(BOOKINGS, records, NOW, stats)
    rows = frame.to_dicts()
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(st.sampled_from([*BOOKINGS.columns, "x", "yY"]), json_values, max_size=8),
        max_size=6,
    )
)
def test_nothing_is_lost(records):
    """Every non-null value the API sent is either in its column or verbatim in `_extra`."""
    records = [{**r, "id": i} for i, r in enumerate(records)]
    frame = build_frame(BOOKINGS, records, NOW)
    for record, row in zip(records, frame.to_dicts(), strict=True):
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
    spill = PageSpill(tmp_path, batch_rows=2)
    spill.add(build_frame(BOOKINGS, [{"id": 1, "title": "old"}, {"id": 2, "title": "b"}], NOW))
    spill.add(build_frame(BOOKINGS, [{"id": 1, "title": "new"}, {"id": 3, "title": "c"}], NOW))
    paths = spill.finish()
    assert len(paths) == 2
    frame = pl.read_parquet(paths)
    assert frame["id"].to_list() == [1, 2, 1, 3]
    assert frame["title"].to_list() == ["old", "b", "new", "c"]
    assert spill.rows == 4


def test_unusable_keys_become_null_and_are_kept_in_extra():
    # Such rows are left out (and counted) by storage's null-key rule, not here.
    stats = FrameStats()
    frame = build_frame(BOOKINGS, [{"id": 1}, {"title": "no id"}, {"id": "abc"}, {"id": None}], NOW, stats)
    assert frame["id"].to_list() == [1, None, None, None]
    assert json.loads(frame["_extra"][2]) == {"id": "abc"}


def test_integers_beyond_bigint_are_kept_verbatim():
    stats = FrameStats()
    frame = build_frame(BOOKINGS, [{"id": 1, "duration": 2**63, "eventTypeId": -(2**63)}], NOW, stats)
    row = frame.to_dicts()[0]
    assert row["duration"] is None and row["event_type_id"] == -(2**63)
    assert json.loads(row["_extra"]) == {"duration": 2**63}
    assert stats.kept_in_extra == 1
