"""Schema drift and empty resources, end to end: no crash, nothing the API sent is lost.

Every served value must end up in its typed column (equal, or losslessly converted) or verbatim in
`_extra` (see `reliability_helpers.record_problems`).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import orjson

from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets.demo import BOOKING_ID_BASE, DemoAccount, DemoApi, Faults
from sched_assets.frames.columns import column_types
from sched_assets_tests.demo_helpers import account_booking_ids
from sched_assets_tests.reliability_helpers import (
    FULL_REFRESH,
    RESOURCES,
    account_records,
    assert_raw_tables_exact,
    demo_server,
    read_table,
    record_outcome,
    served_records,
    snapshot,
    sync,
)


def test_drift_mid_stream_loses_nothing(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """From the middle of the bookings stream on: new top-level fields, int -> string, string -> object,
    reshaped nested objects. The sync succeeds and every value is in its column or in `_extra`; an
    incremental sync over drifted bookings (merge) keeps it that way."""
    database = tmp_path / "sched.duckdb"
    account = DemoAccount(bookings=400)
    api = DemoApi(account, faults=Faults(drift=True))
    midpoint = BOOKING_ID_BASE + account.initial // 2
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=50)
        assert run.success, run.failure()
        served = {name: served_records(api, name) for name in RESOURCES}
        assert_raw_tables_exact(database, served)

        metadata = run.source_metadata()["bookings"]
        assert metadata["unknown_fields"] == "attendeeCount, bookingRefs"
        assert metadata["values_kept_in_extra"] > 0  # string -> object `location`
        assert metadata["values_converted"] > 0  # int -> string `duration`

        rows = {row["id"]: row for row in read_table(database, "raw.bookings")}
        drifted = [row for booking_id, row in rows.items() if booking_id >= midpoint]
        assert drifted and all(orjson.loads(row["_extra"])["bookingRefs"] for row in drifted)
        moved = [row for row in drifted if row["id"] % 11 == 0 and row["id"] % 7 != 0]
        assert moved and all(
            row["location"] is None and isinstance(orjson.loads(row["_extra"])["location"], dict)
            for row in moved
        )
        assert all(isinstance(row["duration"], int) for row in rows.values())
        assert all(row["_extra"] is None for booking_id, row in rows.items() if booking_id < midpoint)

        # Touch a tenth of the bookings (drifted ones among them) and sync incrementally: a merge.
        account.touch(0.1)
        second = sync(api, server.url, database, instance, page_size=50)
        assert second.success, second.failure()
        assert second.source_metadata()["bookings"]["sync_plan"].startswith("incremental")
        assert_raw_tables_exact(database, {name: served_records(api, name) for name in RESOURCES})
    record_outcome(
        "schema drift mid-stream (new fields, int->str, str->object, nested reshapes) + incremental merge",
        outcome="run succeeded",
        tables="exact; misfits verbatim in _extra",
        requests=run.requests,
        retries=run.total("retries"),
        throttled_429=run.throttled,
        seconds=round(run.seconds, 1),
    )


def test_resource_with_zero_records(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """An account without bookings: empty `raw.bookings` with its full schema, analytics still build.
    Later every booking is deleted upstream: a full refresh empties the table rather than failing."""
    database = tmp_path / "sched.duckdb"
    empty = DemoAccount(bookings=0)
    api = DemoApi(empty)
    with demo_server(api) as server:
        run = sync(api, server.url, database, instance)
    assert run.success, run.failure()
    assert_raw_tables_exact(database, account_records(empty))
    columns, rows = snapshot(database)["raw.bookings"]
    assert rows == []
    assert {name for name, _ in columns} == set(column_types(ENDPOINTS_BY_NAME["bookings"]))
    assert run.source_metadata()["bookings"]["stopped_by"] == "empty page"

    database = tmp_path / "deleted.duckdb"
    account = DemoAccount(bookings=30)
    api = DemoApi(account)
    with demo_server(api) as server:
        assert sync(api, server.url, database, instance).success
        account.delete(account_booking_ids(account))
        incremental = sync(api, server.url, database, instance)
        assert incremental.success, incremental.failure()
        assert len(snapshot(database)["raw.bookings"][1]) == 30  # incremental syncs cannot see deletions
        refresh = sync(api, server.url, database, instance, run_config=FULL_REFRESH)
    assert refresh.success, refresh.failure()
    assert snapshot(database)["raw.bookings"][1] == []
    assert_raw_tables_exact(database, account_records(account))
    record_outcome(
        "a resource with zero records (new account; all bookings deleted, then full refresh)",
        outcome="run succeeded",
        tables="exact (empty table, full schema)",
        requests=run.requests,
        retries=0,
        throttled_429=0,
        seconds=round(run.seconds, 1),
    )
