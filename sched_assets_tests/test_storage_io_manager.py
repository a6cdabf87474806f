"""The Dagster layer: WarehouseIOManager on a WarehouseResource, against a real DuckDB file."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sched_assets.storage import (
    NullKeys,
    TableWrite,
    Warehouse,
    WarehouseError,
    WarehouseIOManager,
    WarehouseResource,
    WriteMode,
)

BOOKING_TYPES = {"attendees": "JSON", "start": "TIMESTAMPTZ"}


def bookings_frame(ids: list[int | None], title: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ids,
            "title": [title] * len(ids),
            "attendees": ['[{"email": "a@example.com"}]'] * len(ids),
            "start": ["2024-05-01T09:00:00+02:00"] * len(ids),
        },
        schema_overrides={"id": pl.Int64},
    )


def bookings_write(ids: list[int | None], title: str, **kwargs: object) -> TableWrite:
    return TableWrite(bookings_frame(ids, title), WriteMode.MERGE, ("id",), BOOKING_TYPES, **kwargs)  # type: ignore[arg-type]


@dg.asset(key_prefix=["raw"])
def bookings() -> TableWrite:
    return bookings_write([1, 2, 2], "meeting")


def resources(db: Path, **settings: object) -> dict[str, object]:
    """One warehouse configuration, shared by the SQL resource and the IO manager (as definitions.py does)."""
    warehouse = WarehouseResource(database=str(db), **settings)
    return {"warehouse": warehouse, "io_manager": WarehouseIOManager(warehouse=warehouse)}


def materialize(assets: list, db: Path, **kwargs: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, resources=resources(db), **kwargs)


def metadata_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def table_rows(db: Path, table: str) -> list[tuple]:
    with Warehouse(db).connect(read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def test_materialize_writes_tables_and_emits_metadata(tmp_path: Path) -> None:
    db = tmp_path / "dagster.duckdb"

    result = materialize([bookings], db)

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
    assert (meta["rows_without_key"], meta["rows_deduplicated"]) == (0, 1)
    assert meta["columns_added"] == []
    assert isinstance(meta["write_seconds"], float)
    assert [row[:2] for row in table_rows(db, "raw.bookings")] == [(1, "meeting"), (2, "meeting")]


def test_second_materialization_merges(tmp_path: Path) -> None:
    db = tmp_path / "dagster.duckdb"
    materialize([bookings], db)

    @dg.asset(key=["raw", "bookings"])
    def bookings_again() -> TableWrite:
        frame = bookings_frame([2, 3], "moved").with_columns(rating=pl.lit(4.5))
        return TableWrite(frame, "merge", ("id",), BOOKING_TYPES)

    meta = metadata_of(materialize([bookings_again], db), dg.AssetKey(["raw", "bookings"]))

    assert (meta["rows_inserted"], meta["rows_updated"], meta["dagster/row_count"]) == (1, 1, 3)
    assert meta["columns_added"] == ["rating"]


def test_rows_without_key_are_skipped_with_a_warning_and_metadata(tmp_path: Path) -> None:
    db = tmp_path / "nulls.duckdb"

    @dg.asset(key=["raw", "bookings"])
    def with_nulls() -> TableWrite:
        return bookings_write([1, None, 2, None], "meeting", null_keys=NullKeys.SKIP)

    instance = dg.DagsterInstance.ephemeral()
    result = materialize([with_nulls], db, instance=instance)

    meta = metadata_of(result, dg.AssetKey(["raw", "bookings"]))
    assert (meta["rows_without_key"], meta["rows_inserted"], meta["dagster/row_count"]) == (2, 2, 2)
    warnings = [
        entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == logging.WARNING
    ]
    assert any("raw.bookings: 2 row(s) had a null in primary key (id)" in w for w in warnings), warnings


def test_rows_without_key_are_refused_by_default(tmp_path: Path) -> None:
    @dg.asset(key=["raw", "bookings"])
    def with_nulls() -> TableWrite:
        return bookings_write([1, None], "meeting")

    with pytest.raises(
        Exception, match=r"1 row\(s\) have a null in primary key \['id'\]; nothing was written"
    ):
        materialize([with_nulls], tmp_path / "refused.duckdb")


def test_table_name_is_the_last_two_key_parts_and_main_for_one_part(tmp_path: Path) -> None:
    @dg.asset(key=["lake", "raw", "widgets"])
    def widgets() -> TableWrite:
        return TableWrite(pl.DataFrame({"id": [1, 1], "v": ["a", "b"]}), "merge", ("id",))

    @dg.asset
    def gadgets() -> TableWrite:
        return TableWrite(pl.DataFrame({"id": [1]}), "replace")

    db = tmp_path / "t.duckdb"
    result = materialize([widgets, gadgets], db)

    assert metadata_of(result, widgets.key)["dagster/table_name"] == "raw.widgets"
    assert metadata_of(result, gadgets.key)["dagster/table_name"] == "main.gadgets"  # one-part key
    assert table_rows(db, "raw.widgets") == [(1, "b")]
    assert table_rows(db, "gadgets") == [(1,)]  # DuckDB's own default schema: the same table


def test_none_output_writes_nothing(tmp_path: Path) -> None:
    @dg.asset
    def nothing() -> None:
        return None

    result = materialize([nothing], tmp_path / "n.duckdb")

    assert result.success
    assert not Warehouse(tmp_path / "n.duckdb").table_exists("main.nothing")


def test_a_bare_dataframe_output_is_refused_clearly(tmp_path: Path) -> None:
    @dg.asset(key_prefix=["raw"])
    def frame_only() -> pl.DataFrame:
        return pl.DataFrame({"id": [1]})

    with pytest.raises(Exception, match=r"stores TableWrite outputs only; raw/frame_only returned DataFrame"):
        materialize([frame_only], tmp_path / "o.duckdb")
    assert not Warehouse(tmp_path / "o.duckdb").table_exists("raw.frame_only")


def test_loading_an_input_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    @dg.asset(key_prefix=["analytics"])
    def reads_bookings(bookings: pl.DataFrame) -> None:
        raise AssertionError("never called: the input cannot be loaded")

    with pytest.raises(Exception, match=r"does not load inputs .*raw\.bookings.*deps=\[\.\.\.\]") as caught:
        materialize([bookings, reads_bookings], tmp_path / "i.duckdb")
    assert "get_connection(read_only=True)" in str(caught.value.__cause__ or caught.value)


def test_writes_use_the_write_limits_and_sql_uses_the_query_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "limits.duckdb"
    seen: list[tuple[str | None, int | None]] = []
    write = Warehouse.write

    def spying_write(self: Warehouse, table: str, data: TableWrite):  # type: ignore[no-untyped-def]
        seen.append((self.memory_limit, self.threads))
        return write(self, table, data)

    monkeypatch.setattr(Warehouse, "write", spying_write)

    @dg.asset_check(asset=bookings)
    def limits(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.get_connection(read_only=True) as con:
            [(memory, threads, order)] = con.sql(
                "SELECT current_setting('memory_limit'), current_setting('threads'), "
                "current_setting('default_order')"
            ).fetchall()
        return dg.AssetCheckResult(
            passed=True, metadata={"memory": memory, "threads": threads, "order": order}
        )

    settings = {
        "memory_limit": "256MB",
        "threads": 2,
        "write_memory_limit": "96MB",
        "write_threads": 1,
        "connection_config": {"default_order": "DESC"},  # DuckDBResource's own field, honoured too
    }
    result = dg.materialize([bookings, limits], resources=resources(db, **settings))

    assert seen == [("96MB", 1)]
    [check] = result.get_asset_check_evaluations()
    assert str(check.metadata["memory"].value).startswith("244")  # 256MB in MiB, as DuckDB reports it
    assert check.metadata["threads"].value == 2
    assert check.metadata["order"].value == "DESC"


def test_unwritable_database_fails_at_setup(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(dg.DagsterResourceFunctionError) as caught:
        materialize([bookings], blocker / "x.duckdb")
    assert isinstance(caught.value.__cause__, WarehouseError)
    assert "SCHED_DUCKDB_PATH" in str(caught.value.__cause__)


def test_warehouse_resource_runs_sql_on_what_the_io_manager_wrote(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"

    @dg.asset_check(asset=bookings)
    def ids_unique(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.get_connection(read_only=True) as con:
            dupes = con.execute("SELECT count(*) - count(DISTINCT id) FROM raw.bookings").fetchall()[0][0]
        return dg.AssetCheckResult(passed=dupes == 0, metadata={"duplicates": dupes})

    @dg.asset(key_prefix=["analytics"], deps=[bookings])
    def booking_titles(warehouse: WarehouseResource) -> dg.MaterializeResult:
        # Derived tables are built inside DuckDB from the stored tables, never loaded as inputs.
        with warehouse.get_connection() as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
            con.execute(
                "CREATE OR REPLACE TABLE analytics.booking_titles AS "
                "SELECT title, count(*) AS n FROM raw.bookings GROUP BY title"
            )
        return dg.MaterializeResult()

    result = materialize([bookings, booking_titles, ids_unique], db)

    [check] = result.get_asset_check_evaluations()
    assert check.passed
    assert table_rows(db, "analytics.booking_titles") == [("meeting", 2)]
