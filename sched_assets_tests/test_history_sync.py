"""`history.bookings` over sequences of real syncs: the real assets and IO manager, the demo API on a local
socket, a real DuckDB file. Every version a sync sees, dated by the syncs; nothing from a failed sync."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sched_assets.defs.keys import history_key, raw_key
from sched_assets.demo import DemoAccount, DemoApi, Faults, serve
from sched_assets_tests.demo_helpers import account_booking_ids
from sched_assets_tests.sync_helpers import materialization_metadata, sync


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def versions_of(database: Path, booking_id: int) -> list[tuple]:
    return query(
        database,
        f"SELECT status, title, _synced_at, valid_from, valid_to FROM history.bookings WHERE id = {booking_id} "
        "ORDER BY valid_from",
    )


def synced_at(database: Path) -> object:
    [(latest,)] = query(database, "SELECT max(_synced_at) FROM raw.bookings")
    return latest


def history_metadata(result: dg.ExecuteInJobResult) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == history_key("bookings")]
    return {name: getattr(value, "value", value) for name, value in event.materialization.metadata.items()}


def test_history_over_first_incremental_lag_window_full_refresh_and_failed_syncs(
    tmp_path: Path, instance
) -> None:
    account = DemoAccount(bookings=400)
    database = tmp_path / "sched.duckdb"
    with serve(DemoApi(account)) as server:
        # First sync: one current version per booking, the same rows as raw.
        first = sync(server.url, database, instance)
        t1 = synced_at(database)
        assert query(
            database, "SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM history.bookings"
        ) == [(400, 400)]
        assert query(
            database,
            "SELECT count(*) FROM raw.bookings r JOIN history.bookings h USING (id) "
            "WHERE h.valid_from = r._synced_at AND h.status IS NOT DISTINCT FROM r.status",
        ) == [(400,)]
        meta = history_metadata(first)
        assert (meta["dagster/row_count"], meta["current_versions"], meta["superseded_versions"]) == (
            400,
            400,
            0,
        )
        raw_meta = materialization_metadata(first, "bookings")
        assert (raw_meta["history_versions_added"], raw_meta["history_versions_closed"]) == (400, 0)

        # Incremental with changes: the touched booking gets a second version; the lag window re-reads
        # unchanged bookings and adds nothing for them.
        ids = account_booking_ids(account)
        [touched] = account.touch([ids[7]])
        second = sync(server.url, database, instance)
        t2 = synced_at(database)
        assert materialization_metadata(second, "bookings")["sync_plan"].startswith("incremental")
        old, new = versions_of(database, touched)
        assert old[3] == t1 and old[4] == t2  # closed at the sync that saw the change
        assert new[3] == t2 and new[4] is None
        assert old[:2] != new[:2]
        assert query(database, "SELECT count(*) FROM history.bookings") == [(401,)]
        meta = materialization_metadata(second, "bookings")
        assert (meta["history_versions_added"], meta["history_versions_closed"]) == (1, 1)

        # The same incremental again (only the lag window's re-reads): no new version.
        third = materialization_metadata(sync(server.url, database, instance), "bookings")
        assert third["records_fetched"] > 0
        assert (third["history_versions_added"], third["history_versions_closed"]) == (0, 0)

        # Full refresh after a deletion upstream: the deleted booking's version is closed, nothing else.
        gone = ids[3]
        account.delete([gone])
        refresh = materialization_metadata(
            sync(server.url, database, instance, full_refresh=True), "bookings"
        )
        assert (refresh["history_versions_added"], refresh["history_versions_closed"]) == (0, 1)
        [(_, _, _, valid_from, valid_to)] = versions_of(database, gone)
        assert valid_from == t1 and valid_to is not None and valid_to >= t2
        assert query(database, "SELECT count(*) FROM history.bookings WHERE valid_to IS NULL") == [(399,)]

        # A failed sync (the bookings endpoint keeps failing) adds nothing to either table.
        account.touch([ids[8]])
        before = query(database, "SELECT * FROM history.bookings ORDER BY id, valid_from")
        raw_before = query(database, "SELECT * FROM raw.bookings ORDER BY id")
        server_api = server.api
        server_api.set_faults(Faults(fail_status={"bookings": 500}))
        failed = sync(server.url, database, instance, raise_on_error=False, max_retries=1)
        assert not failed.success
        server_api.set_faults(Faults())
        assert query(database, "SELECT * FROM history.bookings ORDER BY id, valid_from") == before
        assert query(database, "SELECT * FROM raw.bookings ORDER BY id") == raw_before


def test_history_alone_is_refused_with_what_to_select(tmp_path: Path, instance) -> None:
    from sched_assets.definitions import warehouse_resources
    from sched_assets.defs.resources import SchedApiResource
    from sched_assets.defs.sources import build_source_assets
    from sched_assets.demo import DEMO_API_KEY

    with serve(DemoApi(DemoAccount(bookings=20))) as server:
        result = dg.materialize(
            [build_source_assets()],
            selection=[history_key("bookings")],
            resources={
                "sched_api": SchedApiResource(base_url=server.url, api_key=DEMO_API_KEY),
                **warehouse_resources(str(tmp_path / "sched.duckdb")),
            },
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert "select both" in description and raw_key("bookings").to_user_string() in description
