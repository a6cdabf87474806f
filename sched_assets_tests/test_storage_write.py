"""Write semantics of the plain storage layer: create, replace, merge, schema evolution, rollback."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sched_assets.storage import (
    InvalidWriteError,
    NullKeys,
    TableNotFoundError,
    TableWrite,
    Warehouse,
    WriteMode,
)
from sched_assets.storage import write as write_module

TABLE = "raw.things"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "nested" / "dir" / "test.duckdb", lock_timeout=10)


def rows(warehouse: Warehouse, table: str = TABLE, order: str = "id") -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def merge(frame: pl.DataFrame, **kwargs) -> TableWrite:
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

    monkeypatch.setattr(write_module, "_insert", explode)
    with pytest.raises(RuntimeError, match="injected"):
        warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [9], "name": ["z"], "more": [1]}), "replace"))

    assert rows(warehouse) == [(1, "a"), (2, "b")]
    assert warehouse.columns(TABLE) == [("id", "BIGINT"), ("name", "VARCHAR")]


def test_exception_before_commit_of_new_table_leaves_no_table(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_con: object) -> None:
        raise RuntimeError("injected failure before COMMIT")

    monkeypatch.setattr(write_module, "_commit", explode)
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


def test_lazyframe_and_other_data_are_refused_clearly() -> None:
    with pytest.raises(InvalidWriteError, match="collect it, or sink it to Parquet"):
        TableWrite(pl.LazyFrame({"id": [1]}), "replace")  # type: ignore[arg-type]
    with pytest.raises(InvalidWriteError, match="cannot write dict"):
        TableWrite({"id": [1]}, "replace")  # type: ignore[arg-type]


def test_columns_of_missing_table_or_database_is_clear(warehouse: Warehouse) -> None:
    assert not warehouse.table_exists(TABLE)
    with pytest.raises(TableNotFoundError, match="no DuckDB database"):
        warehouse.columns(TABLE)
    warehouse.write("raw.other", TableWrite(pl.DataFrame({"id": [1]}), "replace"))
    with pytest.raises(TableNotFoundError, match=r"raw\.things does not exist"):
        warehouse.columns(TABLE)


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


# -- named values and key rules ---------------------------------------------------------------------


def test_mode_and_null_keys_are_enums_also_accepted_as_strings(warehouse: Warehouse) -> None:
    by_string = TableWrite(pl.DataFrame({"id": [1]}), "merge", "id", null_keys="skip")  # type: ignore[arg-type]
    by_enum = TableWrite(pl.DataFrame({"id": [1]}), WriteMode.MERGE, ("id",), null_keys=NullKeys.SKIP)

    assert (by_string.mode, by_string.null_keys, by_string.primary_key) == (
        WriteMode.MERGE,
        NullKeys.SKIP,
        ("id",),
    )
    assert by_string.mode is WriteMode.MERGE and by_enum.null_keys is NullKeys.SKIP
    assert WriteMode.REPLACE == "replace" and f"{WriteMode.MERGE}" == "merge"
    assert TableWrite(pl.DataFrame({"id": [1]}), "replace").null_keys is NullKeys.REFUSE
    result = warehouse.write(TABLE, by_string)
    assert result.mode is WriteMode.MERGE
    with pytest.raises(InvalidWriteError, match=r"null_keys must be one of \('refuse', 'skip'\)"):
        TableWrite(pl.DataFrame({"id": [1]}), "merge", ("id",), null_keys="drop")  # type: ignore[arg-type]


def test_null_keys_refused_by_default_in_replace_too(warehouse: Warehouse, tmp_path: Path) -> None:
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1], "name": ["a"]}), "replace", ("id",)))
    part = tmp_path / "part.parquet"
    pl.DataFrame({"id": [2, None, None], "name": ["b", "c", "d"]}).write_parquet(part)

    with pytest.raises(InvalidWriteError, match=r"raw\.things: 2 row\(s\) have a null in primary key"):
        warehouse.write(TABLE, TableWrite([part], "replace", ("id",)))

    assert rows(warehouse) == [(1, "a")]


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_null_keys_skip_leaves_rows_out_and_counts_them(warehouse: Warehouse, mode: str) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1], "name": ["old"]})))
    incoming = pl.DataFrame({"id": [1, None, 2, None, 1], "name": ["x", "no key", "b", "none", "last"]})

    result = warehouse.write(TABLE, TableWrite(incoming, mode, ("id",), null_keys=NullKeys.SKIP))

    assert (result.rows_without_key, result.rows_deduplicated, result.rows_written) == (2, 1, 2)
    assert rows(warehouse) == [(1, "last"), (2, "b")]


def test_null_in_one_part_of_a_composite_key_counts_as_no_key(warehouse: Warehouse) -> None:
    key = ("credential_id", "external_id")
    frame = pl.DataFrame(
        {"credential_id": [1, None, 1, 2], "external_id": ["a", "a", None, "a"], "name": ["x", "y", "z", "w"]}
    )

    with pytest.raises(InvalidWriteError, match="2 row"):
        warehouse.write("raw.calendars", TableWrite(frame, "merge", key))
    result = warehouse.write("raw.calendars", TableWrite(frame, "merge", key, null_keys="skip"))  # type: ignore[arg-type]

    assert (result.rows_without_key, result.rows_inserted) == (2, 2)
    assert rows(warehouse, "raw.calendars", "credential_id") == [(1, "a", "x"), (2, "a", "w")]


def test_parquet_dedupe_with_null_keys_skipped_last_occurrence_wins(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """Spilled pages as they come from paging: repeats across parts, and records without a key."""
    parts = [tmp_path / f"part-{i}.parquet" for i in range(3)]
    pl.DataFrame({"id": [1, 2, None], "v": ["1a", "2a", "null-a"]}).write_parquet(parts[0])
    pl.DataFrame({"id": [3, 1, 2], "v": ["3b", "1b", "2b"]}).write_parquet(parts[1])
    pl.DataFrame({"id": [None, 1, 4], "v": ["null-c", "1c", "4c"]}).write_parquet(parts[2])

    for mode in ("replace", "merge"):
        result = warehouse.write(TABLE, TableWrite(parts, mode, ("id",), null_keys=NullKeys.SKIP))

        assert (result.rows_without_key, result.rows_deduplicated, result.rows_in_table) == (2, 3, 4)
        assert rows(warehouse) == [(1, "1c"), (2, "2b"), (3, "3b"), (4, "4c")]


def test_dedupe_ranks_the_cast_key_so_two_spellings_are_one_key(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1], "name": ["old"]})))  # id is BIGINT now

    result = warehouse.write(TABLE, merge(pl.DataFrame({"id": ["01", "1", "2"], "name": ["a", "b", "c"]})))

    assert (result.rows_deduplicated, result.rows_updated, result.rows_inserted) == (1, 1, 1)
    assert rows(warehouse) == [(1, "b"), (2, "c")]


def test_merge_with_fewer_columns_and_repeated_keys_keeps_other_columns(warehouse: Warehouse) -> None:
    """The UPDATE path of a merge (incoming data lacks a column) reads the deduplicated rows too."""
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1, 2], "name": ["a", "b"], "city": ["Oslo", "Rome"]})))

    result = warehouse.write(TABLE, merge(pl.DataFrame({"id": [2, 3, 2], "name": ["B1", "c", "B2"]})))

    assert (result.rows_updated, result.rows_inserted, result.rows_deduplicated) == (1, 1, 1)
    assert rows(warehouse) == [(1, "a", "Oslo"), (2, "B2", "Rome"), (3, "c", None)]


def test_merge_of_key_columns_only(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, merge(pl.DataFrame({"id": [1, 2], "name": ["a", "b"]})))

    result = warehouse.write(TABLE, merge(pl.DataFrame({"id": [2, 3, 3]})))

    assert (result.rows_updated, result.rows_inserted, result.rows_in_table) == (1, 1, 3)
    assert rows(warehouse) == [(1, "a"), (2, "b"), (3, None)]


def test_empty_parquet_parts_and_frames_with_skip(warehouse: Warehouse, tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pl.DataFrame(schema={"id": pl.Int64, "name": pl.String}).write_parquet(empty)

    result = warehouse.write(TABLE, TableWrite([empty], "merge", ("id",), null_keys=NullKeys.SKIP))

    assert (result.table_created, result.rows_in_table, result.rows_without_key) == (True, 0, 0)
    assert warehouse.columns(TABLE) == [("id", "BIGINT"), ("name", "VARCHAR")]


def test_repeated_keys_dedupe_within_a_small_memory_limit(tmp_path: Path) -> None:
    """Only positions are ranked; a window over whole wide rows would not fit `memory_limit`."""
    payload = "x" * 1_000
    parts = []
    for i in range(6):
        ids = range(i * 10_000, (i + 1) * 10_000) if i < 5 else range(10_000)  # the last part repeats part 0
        part = tmp_path / f"part-{i}.parquet"
        pl.DataFrame({"id": ids, "part": i, "payload": payload, "more": payload}).write_parquet(part)
        parts.append(part)
    warehouse = Warehouse(tmp_path / "small.duckdb", memory_limit="24MB", threads=1)

    result = warehouse.write(TABLE, TableWrite(parts, "replace", ("id",)))

    assert (result.rows_in_table, result.rows_deduplicated) == (50_000, 10_000)
    with warehouse.connect(read_only=True) as con:
        assert con.sql("SELECT DISTINCT part FROM raw.things WHERE id < 10000").fetchall() == [(5,)]


def test_small_writes_are_logged_and_a_large_one_is_written_into_the_file_at_commit(tmp_path: Path) -> None:
    """A run's many small writes share one checkpoint (at close); a large write skips the log."""
    warehouse = Warehouse(tmp_path / "w.duckdb", lock_timeout=10)
    wal = tmp_path / "w.duckdb.wal"
    large = tmp_path / "large.parquet"  # over 16 MB as uncompressed Parquet, estimated smaller by DuckDB
    duckdb.sql("SELECT range AS id, repeat('x', 200) || range AS name FROM range(100000)").write_parquet(
        str(large), compression="uncompressed"
    )
    assert large.stat().st_size > 16 << 20

    with warehouse.connect() as con:
        for n in range(3):
            write_module.execute_write(
                con, write_module.TableName("raw", f"small{n}"), merge(pl.DataFrame({"id": [n]}))
            )
        logged = wal.stat().st_size
        assert logged > 0  # the small writes wait in the log
        write_module.execute_write(
            con, write_module.TableName("raw", "large"), TableWrite([large], "replace", ("id",))
        )
        # Written at COMMIT with everything logged before it: the log was checkpointed, not grown by 20 MB.
        assert not wal.exists() or wal.stat().st_size < logged + (1 << 20)
        write_module.execute_write(
            con, write_module.TableName("raw", "small3"), merge(pl.DataFrame({"id": [3]}))
        )
        assert wal.exists() and wal.stat().st_size > 0  # small writes are logged again after it

    with warehouse.connect(read_only=True) as con:
        assert con.sql("SELECT count(*), max(name) FROM raw.large").fetchone() == (
            100000,
            "x" * 200 + "99999",
        )
        assert [con.sql(f"SELECT id FROM raw.small{n}").fetchone() for n in range(4)] == [
            (0,),
            (1,),
            (2,),
            (3,),
        ]


def test_writes_and_reads_in_a_writing_block_open_the_file_once(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or connect(*a, **k))

    with warehouse.writing():
        warehouse.write(TABLE, merge(pl.DataFrame({"id": [1], "name": ["a"]})))
        warehouse.write("raw.other", merge(pl.DataFrame({"id": [2], "name": ["b"]})))
        with pytest.raises(InvalidWriteError):  # refused and rolled back; the block goes on
            warehouse.write(TABLE, merge(pl.DataFrame({"id": [None, 3], "name": ["x", "c"]})))
        assert rows(warehouse) == [(1, "a")]
        assert warehouse.table_exists("raw.other")
    assert len(opened) == 1

    with pytest.raises(RuntimeError, match="boom"), warehouse.writing():
        warehouse.write(TABLE, merge(pl.DataFrame({"id": [4], "name": ["d"]})))
        raise RuntimeError("boom")  # committed writes stay; the file is closed and its lock released
    assert rows(warehouse) == [(1, "a"), (4, "d")]
    assert rows(warehouse, "raw.other") == [(2, "b")]


def test_a_large_write_is_stored_in_small_row_groups_readable_by_any_connection(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # Write connections attach the file with a smaller row group size, so a large insert writes its
    # full row groups as it goes; the file stays an ordinary DuckDB database for every reader.
    part = tmp_path / "part.parquet"
    duckdb.sql(f"COPY (SELECT range AS id, 'x' || range AS name FROM range(100000)) TO '{part}'")
    with warehouse.writing():
        warehouse.write(TABLE, TableWrite([part], "replace", primary_key=("id",)))
        with warehouse.connect() as con:  # a writing() session's cursor sees the same catalog
            assert con.sql(f"SELECT count(*) FROM {TABLE}").fetchone() == (100_000,)
            # Spills of the write's memory limit stay next to the database, as for a plain open.
            assert con.sql("SELECT current_setting('temp_directory')").fetchone() == (
                f"{warehouse.path}.tmp",
            )

    def row_groups() -> list[int]:
        with warehouse.connect(read_only=True) as con:
            return [
                size
                for (size,) in con.sql(
                    "SELECT max(count) FROM pragma_storage_info('raw.things') GROUP BY row_group_id ORDER BY ALL"
                ).fetchall()
            ]

    stored = row_groups()
    assert len(stored) == 9 and max(stored) == 12_288
    # A checkpoint merges every table's row groups smaller than its connection's size: every connection
    # of ours (a query's too) has the same size, so writing another table rewrites none of these.
    with warehouse.connect() as con:
        con.execute("CREATE TABLE raw.other AS SELECT 1 AS id")
        con.execute("CHECKPOINT")
    assert row_groups() == stored
    plain = duckdb.connect(str(warehouse.path), read_only=True)
    assert plain.sql(f"SELECT count(DISTINCT id), max(name) FROM {TABLE}").fetchone() == (100_000, "x99999")
    plain.close()
