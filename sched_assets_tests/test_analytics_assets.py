"""The analytics assets through Dagster: definitions, direct calls, and `dg.materialize` on a DuckDB file.

The assets build their tables in place; the IO manager in `resources()` fails any step that uses it.
"""

from datetime import date

import dagster as dg
import duckdb
import pytest

from sched_assets.analytics import SELECTS
from sched_assets.api.specs import ENDPOINTS
from sched_assets.defs.analytics import (
    SOURCES,
    analytics_assets,
    booking_attendees,
    booking_utilization_daily,
)
from sched_assets.defs.checks import checks
from sched_assets.defs.keys import raw_key
from sched_assets.storage import WarehouseResource
from sched_assets_tests.analytics_helpers import raw_stand_in, resources
from sched_assets_tests.raw_tables import create_raw_tables

ANALYTICS_KEYS = {
    dg.AssetKey(["analytics", name])
    for name in (
        "booking_attendees",
        "schedule_windows",
        "schedule_overrides",
        "booking_utilization_daily",
        "event_type_stats",
        "booking_changes",
    )
}


def materialize(database: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_stand_in, *analytics_assets, *checks],
        resources=resources(database),
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
        assert asset.specs_by_key[key].kinds == {"duckdb"}
        assert asset.owners_by_key[key] == ["team:data"]
        metadata = asset.specs_by_key[key].metadata
        assert "write_mode" not in metadata  # nothing for an IO manager: the asset writes its own table
        assert metadata["primary_key"]
        assert metadata["dagster/table_name"] == ".".join(key.path)
        assert "Grain" in (asset.descriptions_by_key[key] or "")
    utilization = by_key[dg.AssetKey(["analytics", "booking_utilization_daily"])]
    assert {dep.asset_key for dep in utilization.specs_by_key[utilization.key].deps} == {
        raw_key(name) for name in ("bookings", "event_types", "schedules", "my_profile")
    }
    assert by_key[dg.AssetKey(["analytics", "booking_utilization_daily"])].specs_by_key[
        utilization.key
    ].metadata["primary_key"] == ["schedule_id", "date"]


def test_declared_sources_are_exactly_the_raw_tables_the_sql_reads() -> None:
    """A raw table is read when dropping it makes the SELECT fail to bind."""
    assert set(SOURCES) == set(SELECTS)
    with duckdb.connect() as con:
        create_raw_tables(con)
        for name, sql in SELECTS.items():
            read = set()
            tables = [f"raw.{spec.name}" for spec in ENDPOINTS]
            tables += [f"history.{spec.name}" for spec in ENDPOINTS if spec.history]
            for table in tables:
                con.execute("BEGIN")
                con.execute(f"DROP TABLE {table}")
                try:
                    con.execute(sql).fetchall()
                except duckdb.CatalogException:
                    read.add(table)
                finally:
                    con.execute("ROLLBACK")
            assert read == set(SOURCES[name]), name


def test_definitions_load_together() -> None:
    defs = dg.Definitions(
        assets=[raw_stand_in, *analytics_assets],
        asset_checks=checks,
        resources=resources("unused.duckdb"),
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


def test_metadata_matches_what_duckdb_holds(database: str) -> None:
    result = materialize(database)
    assert result.success
    with duckdb.connect(database, read_only=True) as con:
        for key in ANALYTICS_KEYS:
            metadata = materialization_metadata(result, key)
            table = ".".join(key.path)
            [(rows,)] = con.execute(f"SELECT count(*) FROM {table}").fetchall()
            described = [(name, type_) for name, type_, *_ in con.execute(f"DESCRIBE {table}").fetchall()]
            assert metadata["dagster/row_count"].value == rows, table
            schema = metadata["dagster/column_schema"].value
            assert isinstance(schema, dg.TableSchema)
            assert [(column.name, column.type) for column in schema.columns] == described, table
            assert metadata["dagster/table_name"].value == table
    attendees = materialization_metadata(result, dg.AssetKey(["analytics", "booking_attendees"]))
    # Bookings 1, 2 and 4 have attendees; both of booking 4's are absent.
    assert (attendees["bookings_with_attendees"].value, attendees["absent_attendees"].value) == (3, 2)
    assert "Europe/Paris" in str(attendees["preview"].value)
    utilization = materialization_metadata(result, dg.AssetKey(["analytics", "booking_utilization_daily"]))
    assert utilization["overall_utilization"].value == pytest.approx(120 / 960)
    assert (utilization["days_over_capacity"].value, utilization["schedules"].value) == (0, 1)
    windows = materialization_metadata(result, dg.AssetKey(["analytics", "schedule_windows"]))
    assert "| 10 | 2400 |" in str(windows["preview"].value)


def test_direct_call_returns_materialize_result_without_a_value(database: str) -> None:
    result = booking_utilization_daily(
        context=dg.build_asset_context(), warehouse=WarehouseResource(database=database)
    )
    assert isinstance(result, dg.MaterializeResult)
    # No output value, so Dagster does not call an IO manager (`materialize()` above proves it too).
    assert result.value is dg.MaterializeResult().value
    assert result.metadata["dagster/row_count"].value == 2


def test_missing_raw_table_fails_with_a_clear_message_and_keeps_the_table(database: str) -> None:
    warehouse = WarehouseResource(database=database)
    booking_attendees(context=dg.build_asset_context(), warehouse=warehouse)
    with duckdb.connect(database) as con:
        before = con.execute("SELECT * FROM analytics.booking_attendees").fetchall()
        con.execute("DROP TABLE raw.bookings")
    with pytest.raises(dg.Failure) as failure:
        booking_attendees(context=dg.build_asset_context(), warehouse=warehouse)
    assert "raw.bookings" in str(failure.value.description)
    assert "materialize raw/bookings first" in str(failure.value.description)
    with duckdb.connect(database, read_only=True) as con:
        assert con.execute("SELECT * FROM analytics.booking_attendees").fetchall() == before
