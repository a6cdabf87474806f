"""The Dagster layer: DuckDBIOManager and WarehouseResource against a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sched_assets.storage import DuckDBIOManager, TableWrite, Warehouse, WarehouseError, WarehouseResource

BOOKING_TYPES = {"attendees": "JSON", "start": "TIMESTAMPTZ"}


def bookings_frame(ids: list[int], title: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ids,
            "title": [title] * len(ids),
            "attendees": ['[{"email": "a@example.com"}]'] * len(ids),
            "start": ["2024-05-01T09:00:00+02:00"] * len(ids),
        }
    )


@dg.asset(
    key_prefix=["raw"],
    metadata={"write_mode": "merge", "primary_key": ["id"], "column_types": BOOKING_TYPES},
)
def bookings() -> pl.DataFrame:
    return bookings_frame([1, 2, 2], "meeting")


@dg.asset(key_prefix=["analytics"])
def booking_counts(bookings: pl.DataFrame) -> pl.DataFrame:
    # The input round-trips with its DuckDB types mapped back to Polars.
    assert bookings.schema["attendees"] == pl.String
    assert bookings.schema["start"] == pl.Datetime("us", "UTC")
    assert bookings.schema["id"] == pl.Int64
    assert bookings["start"].to_list() == [datetime(2024, 5, 1, 7, tzinfo=UTC)] * 2
    return bookings.group_by("title").len()


def materialize(assets: list, db: Path, **resources: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, resources={"io_manager": DuckDBIOManager(database=str(db)), **resources})


def metadata_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_materialize_writes_tables_and_emits_metadata(tmp_path: Path) -> None:
    db = tmp_path / "dagster.duckdb"

    result = materialize([bookings, booking_counts], db)

    assert result.success
    meta = metadata_of(result, dg.AssetKey(["raw", "bookings"]))
    assert meta["dagster/row_count"] == 2
    assert meta["dagster/table_name"] == "raw.bookings"
    schema = meta["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    assert [(c.name, c.type) for c in schema.columns] == [
        ("id", "BIGINT"),
        ("title", "VARCHAR"),
        ("attendees", "JSON"),
        ("start", "TIMESTAMP WITH TIME ZONE"),
    ]
    assert meta["write_mode"] == "merge"
    assert (meta["rows_written"], meta["rows_inserted"], meta["rows_updated"], meta["rows_deleted"]) == (
        2,
        2,
        0,
        0,
    )
    assert meta["columns_added"] == []
    assert isinstance(meta["write_seconds"], float)
    assert metadata_of(result, dg.AssetKey(["analytics", "booking_counts"]))["write_mode"] == "replace"
    assert Warehouse(db).read_frame("analytics.booking_counts").rows() == [("meeting", 2)]


def test_second_materialization_merges(tmp_path: Path) -> None:
    db = tmp_path / "dagster.duckdb"
    materialize([bookings], db)

    @dg.asset(
        key=["raw", "bookings"],
        metadata={"write_mode": "merge", "primary_key": ["id"], "column_types": BOOKING_TYPES},
    )
    def bookings_again() -> pl.DataFrame:
        return bookings_frame([2, 3], "moved").with_columns(rating=pl.lit(4.5))

    meta = metadata_of(materialize([bookings_again], db), dg.AssetKey(["raw", "bookings"]))

    assert (meta["rows_inserted"], meta["rows_updated"], meta["dagster/row_count"]) == (1, 1, 3)
    assert meta["columns_added"] == ["rating"]


def test_table_write_output_and_table_overrides(tmp_path: Path) -> None:
    @dg.asset(metadata={"schema": "custom", "table": "renamed"})
    def widgets() -> TableWrite:
        return TableWrite(pl.LazyFrame({"id": [1, 1], "v": ["a", "b"]}), "merge", ("id",))

    @dg.asset
    def gadgets() -> pl.DataFrame:
        return pl.DataFrame({"id": [1]})

    result = materialize([widgets, gadgets], tmp_path / "t.duckdb")

    assert metadata_of(result, widgets.key)["dagster/table_name"] == "custom.renamed"
    assert metadata_of(result, gadgets.key)["dagster/table_name"] == "public.gadgets"  # one-part key
    assert Warehouse(tmp_path / "t.duckdb").read_frame("custom.renamed").rows() == [(1, "b")]


def test_none_output_writes_nothing(tmp_path: Path) -> None:
    @dg.asset
    def nothing() -> None:
        return None

    result = materialize([nothing], tmp_path / "n.duckdb")

    assert result.success
    assert not Warehouse(tmp_path / "n.duckdb").table_exists("public.nothing")


def test_lazyframe_input(tmp_path: Path) -> None:
    @dg.asset
    def source_rows() -> pl.DataFrame:
        return pl.DataFrame({"id": [1, 2]})

    @dg.asset
    def lazy_user(source_rows: pl.LazyFrame) -> pl.DataFrame:
        assert isinstance(source_rows, pl.LazyFrame)
        return source_rows.collect()

    assert materialize([source_rows, lazy_user], tmp_path / "l.duckdb").success


def test_load_input_of_unmaterialized_asset_says_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "fresh.duckdb"
    materialize([bookings], db)

    with pytest.raises(
        Exception, match=r"analytics\.missing does not exist .*materialize analytics/missing first"
    ):
        materialize([dg.AssetSpec(["analytics", "missing"]), reads_missing], db)


@dg.asset(ins={"missing": dg.AssetIn(key=["analytics", "missing"])})
def reads_missing(missing: pl.DataFrame) -> None:
    return None


def test_bad_write_mode_metadata_fails_clearly(tmp_path: Path) -> None:
    @dg.asset(metadata={"write_mode": "upsert"})
    def odd() -> pl.DataFrame:
        return pl.DataFrame({"id": [1]})

    with pytest.raises(Exception, match="write mode must be one of"):
        materialize([odd], tmp_path / "o.duckdb")


def test_unwritable_database_fails_at_setup(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(dg.DagsterResourceFunctionError) as caught:
        materialize([bookings], blocker / "x.duckdb")
    assert isinstance(caught.value.__cause__, WarehouseError)
    assert "SCHED_DUCKDB_PATH" in str(caught.value.__cause__)


def test_warehouse_resource_runs_sql(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"

    @dg.asset_check(asset=bookings)
    def ids_unique(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.get_warehouse().connect(read_only=True) as con:
            dupes = con.execute("SELECT count(*) - count(DISTINCT id) FROM raw.bookings").fetchall()[0][0]
        return dg.AssetCheckResult(passed=dupes == 0, metadata={"duplicates": dupes})

    result = materialize([bookings, ids_unique], db, warehouse=WarehouseResource(database=str(db)))

    [check] = result.get_asset_check_evaluations()
    assert check.passed
