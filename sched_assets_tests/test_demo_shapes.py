"""The demo account's shapes: "standard" (unchanged, byte for byte) and "nested" (more nested data).

Benchmarks run on both so that speed ratios are not flattered by one data set. The nested shape must
stay a valid account (official schemas), share every slot rule with the standard one, and actually
carry much more nested data per booking.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from sched_assets.demo import SHAPES, DemoAccount, DemoApi
from sched_assets.demo.__main__ import build_parser
from sched_assets_tests import openapi
from sched_assets_tests.demo_helpers import V_BOOKINGS
from sched_assets_tests.processes import process_group
from sched_assets_tests.test_demo_contract import assert_account_valid

# Read from `DemoAccount(bookings=300)` before the shapes existed: the standard shape must not move.
STANDARD_300_SHA256 = "dc04f6eb3d2a54b91123501da73ab50f75c36515c5b3ad01664deca4dab9b724"
STANDARD_300_BYTES = 401_595
STANDARD_300_ATTENDEES = 437
STANDARD_EVENT_TYPES_SHA256 = "2f1a082d907d325bc2b04d3e802a93e054ba3f799cb6404cd52048efb25bdffe"
# What must agree booking by booking between the shapes (the slot rules).
SLOT_FIELDS = ("id", "uid", "status", "start", "end", "duration", "eventTypeId", "createdAt", "updatedAt")


@pytest.fixture(scope="module")
def standard() -> list[dict[str, Any]]:
    account = DemoAccount(bookings=2000)
    return [account.record(slot) for slot in account.live_slots()]


@pytest.fixture(scope="module")
def nested() -> list[dict[str, Any]]:
    account = DemoAccount(bookings=2000, shape="nested")
    return [account.record(slot) for slot in account.live_slots()]


def responses_of(booking: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `bookingFieldsResponses` of a booking: the top-level one, or one per seat."""
    top = [booking["bookingFieldsResponses"]] if "bookingFieldsResponses" in booking else []
    return top + [a["bookingFieldsResponses"] for a in booking["attendees"] if "bookingFieldsResponses" in a]


def mean(values: list[int]) -> float:
    return sum(values) / len(values)


def test_shapes_are_one_constant() -> None:
    assert SHAPES == ("standard", "nested")
    assert DemoAccount(10).shape == "standard"


@pytest.mark.parametrize("shape", ["flat", "Nested", ""])
def test_an_unknown_shape_is_refused(shape: str) -> None:
    with pytest.raises(ValueError, match="standard, nested"):
        DemoAccount(10, shape=shape)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--shape", shape])


def test_the_cli_defaults_to_standard() -> None:
    assert build_parser().parse_args([]).shape == "standard"
    assert build_parser().parse_args(["--shape", "nested"]).shape == "nested"


def test_the_standard_shape_is_byte_identical_to_before() -> None:
    account = DemoAccount(bookings=300)
    blob = b"\n".join(account.record_json(slot) for slot in account.live_slots())
    assert len(blob) == STANDARD_300_BYTES
    assert hashlib.sha256(blob).hexdigest() == STANDARD_300_SHA256
    assert sum(len(account.record(s)["attendees"]) for s in account.live_slots()) == STANDARD_300_ATTENDEES
    event_types = orjson.dumps([et.record for et in account.catalog.event_types])
    assert hashlib.sha256(event_types).hexdigest() == STANDARD_EVENT_TYPES_SHA256
    assert DemoAccount(bookings=300, shape="standard").record_json(7) == account.record_json(7)


def test_nested_is_deterministic() -> None:
    first = DemoAccount(bookings=500, seed=5, shape="nested")
    second = DemoAccount(bookings=500, seed=5, shape="nested")
    assert [first.record_json(s) for s in first.live_slots()] == [
        second.record_json(s) for s in second.live_slots()
    ]
    other_seed = DemoAccount(bookings=500, seed=6, shape="nested")
    assert first.record_json(0) != other_seed.record_json(0)


def test_both_shapes_share_every_slot_rule(standard: list[dict], nested: list[dict]) -> None:
    assert len(standard) == len(nested) == 2000
    for plain, rich in zip(standard, nested, strict=True):
        assert {k: plain[k] for k in SLOT_FIELDS} == {k: rich[k] for k in SLOT_FIELDS}
        assert plain.get("recurringBookingUid") == rich.get("recurringBookingUid")
    # Mutations and the maintained orders follow the same rules too.
    a, b = DemoAccount(400), DemoAccount(400, shape="nested")
    assert (
        a.touch(0.05) == b.touch(0.05) and a.add(3) == b.add(3) and a.delete([40_010]) == b.delete([40_010])
    )
    for field in ("start", "created", "updated"):
        assert a.ordered(field) == b.ordered(field)
    assert list(a.live_slots()) == list(b.live_slots())


def test_nested_carries_much_more_nested_data(standard: list[dict], nested: list[dict]) -> None:
    attendees = {
        name: mean([len(b["attendees"]) for b in rows]) for name, rows in [("s", standard), ("n", nested)]
    }
    answers = {
        name: mean([sum(len(r) for r in responses_of(b)) for b in rows])
        for name, rows in [("s", standard), ("n", nested)]
    }
    assert attendees["n"] > 3 * attendees["s"], attendees
    assert answers["n"] > 3 * answers["s"], answers
    seated = [b for b in nested if "bookingFieldsResponses" not in b]
    assert 0.35 < len(seated) / len(nested) < 0.6
    assert all(3 <= len(b["attendees"]) <= 12 for b in nested if "bookingFieldsResponses" in b)
    assert all(len(b["attendees"]) <= 12 for b in seated)
    for booking in seated:
        for seat in booking["attendees"]:
            assert seat["seatUid"] and "email" not in seat["bookingFieldsResponses"]
            assert seat["metadata"]["seatNumber"] >= 1
    assert mean([len(b["metadata"]) for b in nested]) > 5 > mean([len(b["metadata"]) for b in standard])


def test_nested_answers_mix_json_types(nested: list[dict]) -> None:
    kinds: Counter[str] = Counter()
    for booking in nested:
        for answers in responses_of(booking):
            for key, value in answers.items():
                kinds[f"{key}:{type(value).__name__}"] += 1
    for expected in (
        "jobTitle:str",
        "headcount:int",
        "headcount:str",
        "acceptTerms:bool",
        "interests:list",
        "contactMethod:dict",
        "contactMethod:str",
        "officeAddress:dict",
        "officeAddress:str",
        "location:dict",
    ):
        assert kinds[expected], expected
    address = next(
        a["officeAddress"]
        for b in nested
        for a in responses_of(b)
        if isinstance(a.get("officeAddress"), dict)
    )
    assert set(address["geo"]) == {"lat", "lng"}


@pytest.mark.parametrize(("seed", "event_types"), [(7, None), (3, 20), (11, 2)])
def test_nested_accounts_validate_against_the_official_schemas(seed: int, event_types: int | None) -> None:
    account = DemoAccount(600, event_types=event_types, seed=seed, shape="nested")
    assert_account_valid(DemoApi(account), take=250)


def test_nested_records_validate_one_by_one(nested: list[dict]) -> None:
    schema = openapi.booking_item_schema(deviations=True)
    errors = [(b["id"], e) for b in nested for e in openapi.record_errors(schema, b)]
    assert not errors, errors[:5]


def test_the_cli_serves_nested_bookings_over_a_socket() -> None:
    arguments = ["--port", "0", "--bookings", "300", "--shape", "nested"]
    command = [sys.executable, "-m", "sched_assets.demo", *arguments]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with process_group(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/v2", first)
        assert url, first
        assert "nested" in first
        response = httpx.get(url.group(0) + "/bookings", params={"take": 100}, headers=V_BOOKINGS, timeout=10)
    assert response.status_code == 200
    body = response.json()
    openapi.assert_valid("bookings", body)
    expected = DemoAccount(bookings=300, shape="nested")
    assert body["data"] == [expected.record(slot) for slot in range(100)]
    assert mean([len(b["attendees"]) for b in body["data"]]) > 4


def _demo_sync(tmp_path, monkeypatch, shape: str):
    """A demo-mode sync of the raw assets, the demo account's shape set in the resource config."""
    import dagster as dg

    from sched_assets.definitions import warehouse_resources
    from sched_assets.defs.resources import SchedApiResource
    from sched_assets.defs.sources import build_source_assets

    monkeypatch.delenv("SCHED_API_KEY", raising=False)
    monkeypatch.delenv("SCHED_API_BASE_URL", raising=False)
    database = tmp_path / "sched.duckdb"
    resources = {
        **warehouse_resources(str(database)),
        "sched_api": SchedApiResource(demo_bookings=200, demo_shape=shape),
    }
    result = dg.materialize(
        [build_source_assets()],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    return result, database


def test_demo_mode_syncs_the_nested_shape_when_configured(tmp_path, monkeypatch) -> None:
    import duckdb

    result, database = _demo_sync(tmp_path, monkeypatch, "nested")
    assert result.success
    with duckdb.connect(str(database), read_only=True) as con:
        rows, attendees = con.execute(
            "SELECT count(*), avg(json_array_length(attendees)) FROM raw.bookings"
        ).fetchall()[0]
    assert rows == 200
    assert attendees > 3  # standard accounts average about 1.4


def test_demo_mode_refuses_an_unknown_shape(tmp_path, monkeypatch) -> None:
    result, database = _demo_sync(tmp_path, monkeypatch, "flat")
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "demo_shape must be one of standard, nested; got 'flat'" in failure
    assert not database.exists()
