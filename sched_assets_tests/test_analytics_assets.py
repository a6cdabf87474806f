"""The analytics assets through Dagster: definitions, and `dg.materialize` with the real IO manager."""

from datetime import date

import dagster as dg
import duckdb
import pytest

from sched_assets.defs.analytics import analytics_assets, raw_key
from sched_assets.defs.checks import checks
from sched_assets.storage import DuckDBIOManager, WarehouseResource
from sched_assets_tests.analytics_helpers import raw_stand_in

ANALYTICS_KEYS = {
    dg.AssetKey(["analytics", name])
    for name in (
        "booking_attendees",
        "schedule_windows",
        "schedule_overrides",
        "booking_utilization_daily",
        "event_type_stats",
    )
}


def materialize(database: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_stand_in, *analytics_assets, *checks],
        resources={
            "io_manager": DuckDBIOManager(database=database),
            "warehouse": WarehouseResource(database=database),
        },
        raise_on_error=False,
    )


def materialization_metadata(
    result: dg.ExecuteInProcessResult, key: dg.AssetKey
) -> dict[str, dg.MetadataValue]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return dict(event.materialization.metadata)


def test_asset_definitions() -> None:
    by_key = {asset.key: asset for asset in analytics_assets}
    assert set(by_key) == ANALYTICS_KEYS
    for key, asset in by_key.items():
        assert asset.group_names_by_key[key] == "analytics"
        assert asset.specs_by_key[key].kinds == {"duckdb", "polars"}
        assert asset.owners_by_key[key] == ["team:data"]
        metadata = asset.specs_by_key[key].metadata
        assert metadata["write_mode"] == "replace"
        assert metadata["primary_key"]
        assert "Grain" in (asset.descriptions_by_key[key] or "")
    utilization = by_key[dg.AssetKey(["analytics", "booking_utilization_daily"])]
    assert {dep.asset_key for dep in utilization.specs_by_key[utilization.key].deps} == {
        raw_key(name) for name in ("bookings", "event_types", "schedules", "my_profile")
    }
    assert by_key[dg.AssetKey(["analytics", "booking_utilization_daily"])].specs_by_key[
        utilization.key
    ].metadata["primary_key"] == ["schedule_id", "date"]


def test_definitions_load_together() -> None:
    defs = dg.Definitions(
        assets=[raw_stand_in, *analytics_assets],
        asset_checks=checks,
        resources={
            "io_manager": DuckDBIOManager(database="unused.duckdb"),
            "warehouse": WarehouseResource(database="unused.duckdb"),
        },
    )
    defs.resolve_all_asset_specs()
    assert len(defs.resolve_asset_graph().asset_check_keys) == sum(len(c.check_keys) for c in checks)


def test_materialize_writes_analytics_tables(database: str) -> None:
    result = materialize(database)
    assert result.success

    with duckdb.connect(database, read_only=True) as con:
        counts = {
            name: con.execute(f"SELECT count(*) FROM analytics.{name}").fetchall()[0][0]
            for name in (
                "booking_attendees",
                "schedule_windows",
                "schedule_overrides",
                "booking_utilization_daily",
                "event_type_stats",
            )
        }
        utilization = con.execute(
            "SELECT schedule_id, date, available_minutes, booked_minutes, buffer_minutes, utilization, no_shows "
            "FROM analytics.booking_utilization_daily ORDER BY date"
        ).fetchall()
        [(date_type,)] = con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = 'analytics' AND table_name = 'booking_utilization_daily' AND column_name = 'date'"
        ).fetchall()
    assert counts == {
        "booking_attendees": 4,
        "schedule_windows": 5,
        "schedule_overrides": 1,
        "booking_utilization_daily": 2,
        "event_type_stats": 3,
    }
    assert date_type == "DATE"
    # Monday: 60 + 30 booked of 480, buffers 5 + 10 (type 100) + 0 (type 300), host absent on booking 2.
    # Tuesday: 30 booked (unknown type 999, no buffer), both attendees absent on booking 4.
    assert utilization == [
        (10, date(2026, 5, 4), 480, 90, 15, pytest.approx(90 / 480), 1),
        (10, date(2026, 5, 5), 480, 30, 0, pytest.approx(30 / 480), 1),
    ]

    busiest = materialization_metadata(result, dg.AssetKey(["analytics", "booking_utilization_daily"]))
    preview = busiest["preview"].value
    assert isinstance(preview, str)
    assert preview.index("2026-05-04") < preview.index("2026-05-05")
    assert busiest["dagster/row_count"].value == 2

    stats = materialization_metadata(result, dg.AssetKey(["analytics", "event_type_stats"]))
    assert "Intro call" in str(stats["preview"].value)
    assert stats["unknown_event_types"].value == 1


def test_rematerialize_replaces_rows(database: str) -> None:
    assert materialize(database).success
    with duckdb.connect(database) as con:
        con.execute("DELETE FROM raw.bookings WHERE id = 4")
    assert materialize(database).success
    with duckdb.connect(database, read_only=True) as con:
        [(rows,)] = con.execute("SELECT count(*) FROM analytics.booking_attendees").fetchall()
        [(stats,)] = con.execute("SELECT count(*) FROM analytics.event_type_stats").fetchall()
    assert (rows, stats) == (2, 2)
