"""Write semantics of the plain storage layer: create, replace, merge, schema evolution, rollback."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sched_assets.storage import InvalidWriteError, TableNotFoundError, TableWrite, Warehouse
from sched_assets.storage import write as write_module

TABLE = "raw.things"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "nested" / "dir" / "test.duckdb", lock_timeout=10)


def rows(warehouse: Warehouse, table: str = TABLE, order: str = "id") -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def merge(frame: pl.DataFrame | pl.LazyFrame, **kwargs) -> TableWrite:
    return TableWrite(frame, "merge", primary_key=("id",), **kwargs)


def test_create_makes_parent_directories_and_table(warehouse: Warehouse) -> None:
    result = warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}), "replace"))

    assert warehouse.path.exists()
    assert result.table_created
    assert (result.rows_in_table, result.rows_inserted, result.rows_deleted) == (2, 2, 0)
    assert result.columns == [("id", "BIGINT"), ("name", "VARCHAR")]
    assert rows(warehouse) == [(1, "a"), (2, "b")]


def test_merge_counts_inserted_and_updated_and_keeps_others(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})))

    result = warehouse.write(TABLE, merge(pl.DataFrame({"id": [2, 4], "name": ["B", "d"]})))

    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (1, 1, 0)
    assert (result.rows_written, result.rows_in_table) == (2, 4)
    assert rows(warehouse) == [(1, "a"), (2, "B"), (3, "c"), (4, "d")]


def test_merge_dedupes_incoming_rows_last_occurrence_wins(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1], "name": ["old"]})))
    incoming = pl.DataFrame({"id": [1, 2, 1, 2, 1], "name": ["x", "y", "z", "last2", "last1"]})

    result = warehouse.write(TABLE, merge(incoming))

    assert (result.rows_inserted, result.rows_updated, result.rows_in_table) == (1, 1, 2)
    assert rows(warehouse) == [(1, "last1"), (2, "last2")]


def test_merge_on_composite_key(warehouse: Warehouse) -> None:
    key = ("credential_id", "external_id")
    first = pl.DataFrame({"credential_id": [1, 1], "external_id": ["a", "b"], "name": ["x", "y"]})
    warehouse.write("raw.calendars", TableWrite(first, "merge", key))

    second = pl.DataFrame({"credential_id": [1, 2], "external_id": ["b", "b"], "name": ["Y", "z"]})
    result = warehouse.write("raw.calendars", TableWrite(second, "merge", key))

    assert (result.rows_inserted, result.rows_updated) == (1, 1)
    assert rows(warehouse, "raw.calendars", "credential_id, external_id") == [
        (1, "a", "x"),
        (1, "b", "Y"),
        (2, "b", "z"),
    ]


def test_replace_makes_rows_exactly_the_new_data(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}), "replace"))

    result = warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [7], "name": ["z"]}), "replace"))

    assert (result.rows_deleted, result.rows_inserted, result.rows_in_table) == (3, 1, 1)
    assert rows(warehouse) == [(7, "z")]


def test_replace_with_primary_key_dedupes(warehouse: Warehouse) -> None:
    frame = pl.DataFrame({"id": [1, 1, 2], "name": ["first", "second", "b"]})

    result = warehouse.write(TABLE, TableWrite(frame, "replace", ("id",)))

    assert result.rows_in_table == 2
    assert rows(warehouse) == [(1, "second"), (2, "b")]


def test_columns_are_matched_by_name_not_position(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1], "name": ["a"], "city": ["Oslo"]})))

    warehouse.write(TABLE, merge(pl.DataFrame({"city": ["Rome"], "id": [2], "name": ["b"]})))
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"name": ["c"], "city": ["Lima"], "id": [3]}), "replace"))

    assert warehouse.columns(TABLE) == [("id", "BIGINT"), ("name", "VARCHAR"), ("city", "VARCHAR")]
    assert rows(warehouse) == [(3, "c", "Lima")]


def test_new_column_is_added_and_missing_columns_stay_null_or_kept(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1, 2], "name": ["a", "b"]})))

    result = warehouse.write(TABLE, merge(pl.DataFrame({"id": [2, 3], "score": [0.5, 1.5]})))

    assert result.columns_added == ["score"]
    assert ("score", "DOUBLE") in result.columns
    # Updated row 2 keeps its name (the data had no name column); new row 3 has none.
    assert rows(warehouse) == [(1, "a", None), (2, "b", 0.5), (3, None, 1.5)]


def test_empty_frame_creates_empty_table_with_columns(warehouse: Warehouse) -> None:
    empty = pl.DataFrame(schema={"id": pl.Int64, "start": pl.String, "tags": pl.List(pl.String)})

    result = warehouse.write(TABLE, merge(empty, column_types={"start": "TIMESTAMPTZ"}))

    assert result.rows_in_table == 0
    assert warehouse.columns(TABLE) == [
        ("id", "BIGINT"),
        ("start", "TIMESTAMP WITH TIME ZONE"),
        ("tags", "JSON"),
    ]


def test_empty_frame_merge_loses_nothing(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1, 2], "name": ["a", "b"]})))

    result = warehouse.write(TABLE, merge(pl.DataFrame(schema={"id": pl.Int64, "name": pl.String})))

    assert (result.rows_written, result.rows_in_table) == (0, 2)
    assert rows(warehouse) == [(1, "a"), (2, "b")]


def test_empty_frame_replace_empties_table_but_keeps_columns(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1, 2], "name": ["a", "b"], "extra": [True, False]})))

    result = warehouse.write(TABLE, TableWrite(pl.DataFrame(schema={"id": pl.Int64}), "replace"))

    assert (result.rows_deleted, result.rows_in_table) == (2, 0)
    assert [name for name, _ in warehouse.columns(TABLE)] == ["id", "name", "extra"]


def test_json_and_timestamptz_land_with_the_right_types(warehouse: Warehouse) -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "attendees": ['[{"name": "Ann"}]', '{"nested": {"a": 1}}'],
            "start": ["2024-05-01T09:00:00+02:00", "2024-05-01T07:00:00Z"],
            "created": [datetime(2024, 1, 1, tzinfo=UTC)] * 2,
            "naive": [datetime(2024, 1, 1, 12)] * 2,
            "hosts": [[{"id": 1}], []],
            "nothing": [None, None],
        }
    )

    warehouse.write(TABLE, merge(frame, column_types={"attendees": "JSON", "start": "TIMESTAMPTZ"}))

    with warehouse.connect(read_only=True) as con:
        types = con.execute(
            "SELECT typeof(attendees), typeof(start), typeof(created), typeof(naive), typeof(hosts), "
            "typeof(nothing) FROM raw.things LIMIT 1"
        ).fetchall()[0]
        starts = con.execute("SELECT DISTINCT epoch(start) FROM raw.things").fetchall()
        hosts = con.execute("SELECT hosts->>'$[0].id' FROM raw.things WHERE id = 1").fetchall()[0]
    assert types == (
        "JSON",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP",
        "JSON",
        "VARCHAR",
    )
    assert len(starts) == 1  # 09:00+02:00 and 07:00Z are the same instant
    assert hosts == ("1",)


def test_dtype_mapping(warehouse: Warehouse) -> None:
    frame = pl.DataFrame(
        {
            "i64": pl.Series([1], dtype=pl.Int64),
            "i32": pl.Series([1], dtype=pl.Int32),
            "i8": pl.Series([1], dtype=pl.Int8),
            "f": pl.Series([1.5], dtype=pl.Float32),
            "b": [True],
            "d": [date(2024, 1, 1)],
            "dur": [timedelta(minutes=30)],
            "cat": pl.Series(["x"], dtype=pl.Categorical),
            "st": [{"a": 1}],
        }
    )

    result = warehouse.write(TABLE, TableWrite(frame, "replace"))

    assert dict(result.columns) == {
        "i64": "BIGINT",
        "i32": "INTEGER",
        "i8": "INTEGER",
        "f": "DOUBLE",
        "b": "BOOLEAN",
        "d": "DATE",
        "dur": "INTERVAL",
        "cat": "VARCHAR",
        "st": "JSON",
    }


def test_cast_error_half_way_leaves_table_exactly_as_before(warehouse: Warehouse) -> None:
    warehouse.write(
        TABLE,
        merge(pl.DataFrame({"id": [1, 2], "payload": ['{"a": 1}', "[]"]}), column_types={"payload": "JSON"}),
    )
    before_rows, before_columns = rows(warehouse), warehouse.columns(TABLE)
    bad = pl.DataFrame({"id": [3, 4], "payload": ['{"ok": true}', "not json {"], "new_col": ["x", "y"]})

    for mode in ("replace", "merge"):
        with pytest.raises(duckdb.ConversionException):
            warehouse.write(TABLE, TableWrite(bad, mode, ("id",)))

        assert rows(warehouse) == before_rows
        assert warehouse.columns(TABLE) == before_columns


def test_exception_after_delete_leaves_table_exactly_as_before(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}), "replace"))

    def explode(*_args: object) -> int:
        raise RuntimeError("injected failure after DELETE")

    monkeypatch.setattr(write_module, "_insert_select", explode)
    with pytest.raises(RuntimeError, match="injected"):
        warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [9], "name": ["z"], "more": [1]}), "replace"))

    assert rows(warehouse) == [(1, "a"), (2, "b")]
    assert warehouse.columns(TABLE) == [("id", "BIGINT"), ("name", "VARCHAR")]


def test_exception_before_commit_of_new_table_leaves_no_table(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode() -> None:
        raise RuntimeError("injected failure before COMMIT")

    monkeypatch.setattr(write_module, "_pause_if_testing", explode)
    with pytest.raises(RuntimeError, match="injected"):
        warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1]}), "replace"))

    assert not warehouse.table_exists(TABLE)


def test_merge_without_primary_key_is_refused() -> None:
    with pytest.raises(InvalidWriteError, match="primary_key"):
        TableWrite(pl.DataFrame({"id": [1]}), "merge")


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(InvalidWriteError, match="write mode"):
        TableWrite(pl.DataFrame({"id": [1]}), "append")  # type: ignore[arg-type]


def test_merge_with_null_key_is_refused_and_nothing_written(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1], "name": ["a"]})))

    with pytest.raises(InvalidWriteError, match="null"):
        warehouse.write(TABLE, merge(pl.DataFrame({"id": [2, None], "name": ["b", "c"], "new": [1, 2]})))

    assert rows(warehouse) == [(1, "a")]
    assert warehouse.columns(TABLE) == [("id", "BIGINT"), ("name", "VARCHAR")]


def test_key_column_missing_from_data_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidWriteError, match="not in the data"):
        warehouse.write(TABLE, merge(pl.DataFrame({"name": ["a"]})))
    assert not warehouse.table_exists(TABLE)


def test_parquet_files_are_ingested_by_name(warehouse: Warehouse, tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.DataFrame({"id": [1, 2, 1], "name": ["a", "b", "a2"]}).write_parquet(first)
    pl.DataFrame({"name": ["b2", "c"], "id": [2, 3]}).write_parquet(second)  # other column order

    result = warehouse.write(TABLE, TableWrite([first, str(second)], "merge", ("id",)))

    assert result.rows_inserted == 3
    assert rows(warehouse) == [(1, "a2"), (2, "b2"), (3, "c")]  # last occurrence across files wins


def test_parquet_files_with_different_columns_are_refused(warehouse: Warehouse, tmp_path: Path) -> None:
    pl.DataFrame({"id": [1]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"id": [2], "x": [1]}).write_parquet(tmp_path / "b.parquet")

    with pytest.raises(InvalidWriteError, match="share their columns"):
        warehouse.write(TABLE, TableWrite([tmp_path / "a.parquet", tmp_path / "b.parquet"], "replace"))


def test_lazyframe_is_ingested(warehouse: Warehouse) -> None:
    lazy = pl.LazyFrame({"id": [1, 2, 2], "name": ["a", "b", "b2"]}).with_columns(
        tags=pl.concat_list(pl.col("name"))
    )

    result = warehouse.write(TABLE, merge(lazy))

    assert (result.rows_inserted, dict(result.columns)["tags"]) == (2, "JSON")
    assert rows(warehouse) == [(1, "a", '["a"]'), (2, "b2", '["b2"]')]
    assert not list(warehouse.path.parent.glob("sched-staging-*"))  # the spilled file is cleaned up


def test_read_frame_round_trips_types(warehouse: Warehouse) -> None:
    frame = pl.DataFrame(
        {
            "id": [1],
            "payload": ['{"a": 1}'],
            "start": ["2024-05-01T09:00:00+02:00"],
            "dur": [timedelta(seconds=90)],
            "day": [date(2024, 5, 1)],
        }
    )
    warehouse.write(TABLE, merge(frame, column_types={"payload": "JSON", "start": "TIMESTAMPTZ"}))

    loaded = warehouse.read_frame(TABLE)

    assert loaded.schema == pl.Schema(
        {
            "id": pl.Int64,
            "payload": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "dur": pl.Duration("us"),
            "day": pl.Date,
        }
    )
    assert loaded.row(0) == (
        1,
        '{"a": 1}',
        datetime(2024, 5, 1, 7, tzinfo=UTC),
        timedelta(seconds=90),
        date(2024, 5, 1),
    )


def test_read_of_missing_table_or_database_is_clear(warehouse: Warehouse) -> None:
    assert not warehouse.table_exists(TABLE)
    with pytest.raises(TableNotFoundError, match="no DuckDB database"):
        warehouse.read_frame(TABLE)
    warehouse.write("raw.other", TableWrite(pl.DataFrame({"id": [1]}), "replace"))
    with pytest.raises(TableNotFoundError, match=r"raw\.things does not exist"):
        warehouse.read_frame(TABLE)


def test_memory_limit_and_threads_are_applied(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "x.duckdb", memory_limit="512MB", threads=1)
    with warehouse.connect() as con:
        settings = dict(
            con.sql(
                "SELECT name, value FROM duckdb_settings() "
                "WHERE name IN ('threads', 'preserve_insertion_order', 'TimeZone')"
            ).fetchall()
        )
        memory = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert settings == {"threads": "1", "preserve_insertion_order": "false", "TimeZone": "UTC"}
    assert memory.startswith("488")  # 512MB in MiB, as DuckDB reports it
