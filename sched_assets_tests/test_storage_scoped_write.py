"""Scoped writes (`TableWrite(..., scope={"account": name})`): many accounts share one table.

On a real DuckDB file: `account` leads every row and every key, a replace or merge of one account
never touches another's rows, schema evolution and every failure behave as for unscoped writes (one
transaction: a failed write leaves every account's rows exactly as they were), and what cannot be
scoped safely is refused with a clear `InvalidWriteError`. Inputs are Parquet files written by Polars
(as the sync writes them) and Polars DataFrames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import count
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from sched_assets.storage import InvalidWriteError, NullKeys, TableWrite, Warehouse, WriteMode
from sched_assets.storage.write import TableWrites

TABLE = "raw.things"
ACME, GLOBEX = "acme", "globex"

_files = count()
Spill = Callable[..., list[str]]  # the `parquet` fixture: frames -> Parquet paths


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb", lock_timeout=10)


@pytest.fixture
def parquet(tmp_path: Path) -> Spill:
    """Write frames to Parquet files, as the sync spills its pages; returns their paths."""

    def write(*frames: pl.DataFrame) -> list[str]:
        paths = []
        for frame in frames:
            path = tmp_path / "spill" / f"part-{next(_files):04d}.parquet"
            path.parent.mkdir(exist_ok=True)
            frame.write_parquet(path)
            paths.append(str(path))
        return paths

    return write


def scoped(
    data: pl.DataFrame | Sequence[str],
    mode: str,
    account: str,
    key: Sequence[str] = ("id",),
    **options: Any,
) -> TableWrite:
    return TableWrite(data, mode, primary_key=tuple(key), scope={"account": account}, **options)


def table_rows(warehouse: Warehouse, table: str = TABLE, where: str = "") -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} {where} ORDER BY ALL").fetchall()


def account_rows(warehouse: Warehouse, account: str, table: str = TABLE) -> list[tuple]:
    """The account's rows without the account column."""
    with warehouse.connect(read_only=True) as con:
        return con.execute(
            f"SELECT * EXCLUDE (account) FROM {table} WHERE account = ? ORDER BY ALL", [account]
        ).fetchall()


def snapshot(warehouse: Warehouse, table: str = TABLE) -> tuple[list[tuple[str, str]], list[tuple]]:
    return warehouse.columns(table), table_rows(warehouse, table)


def frame(ids: Sequence[int | None], names: Sequence[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"id": list(ids), "name": list(names)}, schema={"id": pl.Int64, "name": pl.String})


def two_accounts(warehouse: Warehouse, parquet: Spill, mode: str = "replace") -> None:
    warehouse.write(TABLE, scoped(parquet(frame([1, 2], ["a1", "a2"])), mode, ACME))
    warehouse.write(TABLE, scoped(parquet(frame([1, 3], ["g1", "g3"])), mode, GLOBEX))


# ---- layout --------------------------------------------------------------------------------------


def test_account_is_the_first_column_and_part_of_the_key(warehouse: Warehouse, parquet: Spill) -> None:
    result = warehouse.write(TABLE, scoped(parquet(frame([1, 2], ["a1", "a2"])), "merge", ACME))

    assert result.table_created
    assert result.columns == [("account", "VARCHAR"), ("id", "BIGINT"), ("name", "VARCHAR")]

    # The same id in another account is another row, not an update.
    result = warehouse.write(TABLE, scoped(parquet(frame([1, 2], ["g1", "g2"])), "merge", GLOBEX))

    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (2, 0, 0)
    assert table_rows(warehouse) == [
        (ACME, 1, "a1"),
        (ACME, 2, "a2"),
        (GLOBEX, 1, "g1"),
        (GLOBEX, 2, "g2"),
    ]
    with warehouse.connect(read_only=True) as con:
        assert con.sql(f"SELECT count(DISTINCT (account, id)) FROM {TABLE}").fetchone() == (4,)


def test_account_column_of_a_dataframe_write_leads_too(warehouse: Warehouse) -> None:
    data = pl.DataFrame({"name": ["x"], "id": [7]})  # key not first either

    warehouse.write(TABLE, scoped(data, "replace", ACME))

    assert [name for name, _ in warehouse.columns(TABLE)] == ["account", "name", "id"]
    assert table_rows(warehouse) == [(ACME, "x", 7)]


def test_composite_key_is_led_by_the_account(warehouse: Warehouse, parquet: Spill) -> None:
    key = ("credential_id", "external_id")
    data = pl.DataFrame({"credential_id": [1, 1], "external_id": ["a", "b"], "name": ["x", "y"]})
    warehouse.write("raw.calendars", scoped(parquet(data), "merge", ACME, key))
    warehouse.write("raw.calendars", scoped(parquet(data), "merge", GLOBEX, key))

    update = pl.DataFrame({"credential_id": [1], "external_id": ["b"], "name": ["Y"]})
    result = warehouse.write("raw.calendars", scoped(parquet(update), "merge", GLOBEX, key))

    assert (result.rows_updated, result.rows_inserted, result.rows_in_table) == (1, 0, 2)
    assert table_rows(warehouse, "raw.calendars") == [
        (ACME, 1, "a", "x"),
        (ACME, 1, "b", "y"),
        (GLOBEX, 1, "a", "x"),
        (GLOBEX, 1, "b", "Y"),
    ]


def test_a_scope_value_with_a_quote_is_stored_as_it_is(warehouse: Warehouse) -> None:
    odd = "o'brien"

    warehouse.write(TABLE, scoped(frame([1], ["x"]), "replace", odd))
    warehouse.write(TABLE, scoped(frame([1], ["y"]), "replace", ACME))
    warehouse.write(TABLE, scoped(frame([2], ["z"]), "replace", odd))

    assert table_rows(warehouse) == [(ACME, 1, "y"), (odd, 2, "z")]


# ---- replace and merge of two accounts ----------------------------------------------------------


def test_replace_of_one_account_keeps_the_others_rows(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet)

    result = warehouse.write(TABLE, scoped(parquet(frame([2, 5], ["A2", "a5"])), "replace", ACME))

    assert (result.rows_deleted, result.rows_inserted, result.rows_in_table) == (2, 2, 2)
    assert account_rows(warehouse, ACME) == [(2, "A2"), (5, "a5")]
    assert account_rows(warehouse, GLOBEX) == [(1, "g1"), (3, "g3")]


def test_merge_of_one_account_keeps_the_others_rows(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet, "merge")

    result = warehouse.write(TABLE, scoped(parquet(frame([1, 4], ["G1", "g4"])), "merge", GLOBEX))

    assert (result.rows_updated, result.rows_inserted, result.rows_deleted) == (1, 1, 0)
    assert (result.rows_written, result.rows_in_table) == (2, 3)
    assert account_rows(warehouse, ACME) == [(1, "a1"), (2, "a2")]
    assert account_rows(warehouse, GLOBEX) == [(1, "G1"), (3, "g3"), (4, "g4")]


def test_merge_of_only_some_columns_updates_only_the_accounts_row(
    warehouse: Warehouse, parquet: Spill
) -> None:
    # The incoming data lacks a column of the table: the UPDATE path (not delete and re-insert).
    wide = pl.DataFrame({"id": [1], "name": ["n"], "extra": ["e"]})
    warehouse.write(TABLE, scoped(parquet(wide), "merge", ACME))
    warehouse.write(TABLE, scoped(parquet(wide), "merge", GLOBEX))

    result = warehouse.write(TABLE, scoped(parquet(pl.DataFrame({"id": [1], "name": ["N"]})), "merge", ACME))

    assert (result.rows_updated, result.rows_inserted) == (1, 0)
    assert table_rows(warehouse) == [(ACME, 1, "N", "e"), (GLOBEX, 1, "n", "e")]


def test_merge_of_only_key_columns_changes_nothing_of_the_other_account(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, scoped(frame([1], ["a"]), "merge", ACME))
    warehouse.write(TABLE, scoped(frame([1], ["g"]), "merge", GLOBEX))

    result = warehouse.write(TABLE, scoped(pl.DataFrame({"id": [1, 2]}), "merge", GLOBEX))

    assert (result.rows_updated, result.rows_inserted, result.rows_in_table) == (1, 1, 2)
    assert table_rows(warehouse) == [(ACME, 1, "a"), (GLOBEX, 1, "g"), (GLOBEX, 2, None)]


def test_replace_with_an_empty_write_empties_only_that_account(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet)

    result = warehouse.write(TABLE, scoped(parquet(frame([], [])), "replace", ACME))

    assert (result.rows_deleted, result.rows_inserted, result.rows_in_table) == (2, 0, 0)
    assert account_rows(warehouse, ACME) == []
    assert account_rows(warehouse, GLOBEX) == [(1, "g1"), (3, "g3")]

    # An empty DataFrame does the same for the other account; the columns stay.
    result = warehouse.write(TABLE, scoped(frame([], []), "replace", GLOBEX))

    assert (result.rows_deleted, result.rows_in_table) == (2, 0)
    assert table_rows(warehouse) == []
    assert [name for name, _ in warehouse.columns(TABLE)] == ["account", "id", "name"]


def test_empty_merge_of_one_account_loses_nothing(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet, "merge")
    before = snapshot(warehouse)

    result = warehouse.write(TABLE, scoped(parquet(frame([], [])), "merge", ACME))

    assert (result.rows_written, result.rows_in_table) == (0, 2)
    assert snapshot(warehouse) == before


def test_empty_first_write_creates_the_table_with_the_account_column(
    warehouse: Warehouse, parquet: Spill
) -> None:
    result = warehouse.write(TABLE, scoped(parquet(frame([], [])), "replace", ACME))

    assert result.table_created and result.rows_in_table == 0
    assert warehouse.columns(TABLE) == [("account", "VARCHAR"), ("id", "BIGINT"), ("name", "VARCHAR")]


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_dedupe_within_an_account_last_occurrence_wins(
    warehouse: Warehouse, parquet: Spill, mode: str
) -> None:
    warehouse.write(TABLE, scoped(parquet(frame([1, 2], ["g1", "g2"])), mode, GLOBEX))
    warehouse.write(TABLE, scoped(frame([1], ["old"]), "merge", ACME))
    # Over two files: the second file's rows come later in input order.
    parts = parquet(frame([1, 2, 1], ["x", "y", "z"]), frame([2, 1], ["last2", "last1"]))

    result = warehouse.write(TABLE, scoped(parts, mode, ACME))

    assert result.rows_deduplicated == 3
    assert result.rows_in_table == 2
    assert account_rows(warehouse, ACME) == [(1, "last1"), (2, "last2")]
    assert account_rows(warehouse, GLOBEX) == [(1, "g1"), (2, "g2")]  # same ids, untouched


def test_dedupe_of_a_dataframe_within_an_account(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, scoped(frame([1], ["g"]), "merge", GLOBEX))

    result = warehouse.write(TABLE, scoped(frame([1, 1, 1], ["a", "b", "c"]), "merge", ACME))

    assert (result.rows_deduplicated, result.rows_inserted, result.rows_in_table) == (2, 1, 1)
    assert table_rows(warehouse) == [(ACME, 1, "c"), (GLOBEX, 1, "g")]


def test_version_column_wins_within_an_account(warehouse: Warehouse, parquet: Spill) -> None:
    data = pl.DataFrame({"id": [1, 1, 1], "version": [3, 5, 4], "name": ["v3", "v5", "v4"]})

    warehouse.write(TABLE, scoped(parquet(data), "merge", ACME, version_column="version"))
    warehouse.write(TABLE, scoped(parquet(data.reverse()), "merge", GLOBEX, version_column="version"))

    assert table_rows(warehouse) == [(ACME, 1, 5, "v5"), (GLOBEX, 1, 5, "v5")]


def test_rows_in_table_counts_only_the_accounts_rows(warehouse: Warehouse, parquet: Spill) -> None:
    ids = list(range(10))
    warehouse.write(TABLE, scoped(parquet(frame(ids, [str(i) for i in ids])), "replace", GLOBEX))

    first = warehouse.write(TABLE, scoped(parquet(frame([1, 2, 3], ["a", "b", "c"])), "replace", ACME))
    merged = warehouse.write(TABLE, scoped(parquet(frame([3, 4], ["C", "d"])), "merge", ACME))
    replaced = warehouse.write(TABLE, scoped(parquet(frame([9], ["z"])), "replace", ACME))

    assert (first.rows_in_table, merged.rows_in_table, replaced.rows_in_table) == (3, 4, 1)
    assert replaced.rows_deleted == 4  # only the account's rows
    assert len(table_rows(warehouse)) == 11


# ---- schema evolution ----------------------------------------------------------------------------


def test_a_column_added_by_one_account_is_null_for_the_others(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet, "merge")
    wider = pl.DataFrame({"id": [1, 7], "name": ["A1", "a7"], "rating": [4.5, None]})

    result = warehouse.write(TABLE, scoped(parquet(wider), "merge", ACME))

    assert result.columns_added == ["rating"]
    assert warehouse.columns(TABLE) == [
        ("account", "VARCHAR"),
        ("id", "BIGINT"),
        ("name", "VARCHAR"),
        ("rating", "DOUBLE"),
    ]
    assert table_rows(warehouse) == [
        (ACME, 1, "A1", 4.5),
        (ACME, 2, "a2", None),
        (ACME, 7, "a7", None),
        (GLOBEX, 1, "g1", None),
        (GLOBEX, 3, "g3", None),
    ]

    # The other account's next write without the column: its rows stay null there, acme's keep theirs.
    result = warehouse.write(TABLE, scoped(parquet(frame([1, 3], ["G1", "G3"])), "replace", GLOBEX))

    assert result.columns_added == []
    assert table_rows(warehouse, where="WHERE account = 'globex'") == [
        (GLOBEX, 1, "G1", None),
        (GLOBEX, 3, "G3", None),
    ]
    assert account_rows(warehouse, ACME) == [(1, "A1", 4.5), (2, "a2", None), (7, "a7", None)]


def test_existing_column_types_win_for_every_account(warehouse: Warehouse, parquet: Spill) -> None:
    raw = pl.DataFrame(
        {"id": [1], "start": ["2026-05-04T08:00:00Z"], "attendees": [[{"name": "Ann"}]]},
        schema={"id": pl.Int64, "start": pl.String, "attendees": pl.List(pl.Struct({"name": pl.String}))},
    )
    types = {"start": "TIMESTAMPTZ", "attendees": "JSON"}
    warehouse.write("raw.bookings", scoped(parquet(raw), "merge", ACME, column_types=types))
    # The second account's data has the id as text: cast to the table's BIGINT.
    other = raw.with_columns(pl.col("id").cast(pl.String))
    warehouse.write("raw.bookings", scoped(parquet(other), "merge", GLOBEX, column_types=types))

    assert warehouse.columns("raw.bookings") == [
        ("account", "VARCHAR"),
        ("id", "BIGINT"),
        ("start", "TIMESTAMP WITH TIME ZONE"),
        ("attendees", "JSON"),
    ]
    with warehouse.connect(read_only=True) as con:
        rows = con.sql(
            "SELECT account, id, epoch(start), attendees->>'$[0].name' FROM raw.bookings ORDER BY ALL"
        ).fetchall()
    assert rows == [(ACME, 1, 1777881600.0, "Ann"), (GLOBEX, 1, 1777881600.0, "Ann")]


# ---- failures leave every account's rows as they were -------------------------------------------


def test_null_key_refused_leaves_every_account_as_before(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet)
    before = snapshot(warehouse)

    for mode in ("replace", "merge"):
        bad = parquet(frame([5, None], ["x", "y"]))
        with pytest.raises(InvalidWriteError, match="null in primary key"):
            warehouse.write(TABLE, scoped(bad, mode, ACME, null_keys=NullKeys.REFUSE))
        assert snapshot(warehouse) == before


def test_null_keys_skipped_within_an_account(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet)

    result = warehouse.write(
        TABLE, scoped(parquet(frame([5, None], ["x", "y"])), "replace", ACME, null_keys=NullKeys.SKIP)
    )

    assert (result.rows_without_key, result.rows_in_table) == (1, 1)
    assert account_rows(warehouse, ACME) == [(5, "x")]
    assert account_rows(warehouse, GLOBEX) == [(1, "g1"), (3, "g3")]


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_bad_cast_leaves_every_account_as_before(warehouse: Warehouse, parquet: Spill, mode: str) -> None:
    two_accounts(warehouse, parquet)
    before = snapshot(warehouse)
    # Text into the BIGINT key, valid for the first rows and not for the last: fails half way.
    bad = pl.DataFrame({"id": ["10", "11", "twelve"], "name": ["p", "q", "r"]})

    with pytest.raises(duckdb.ConversionException):
        warehouse.write(TABLE, scoped(parquet(bad), mode, ACME))

    assert snapshot(warehouse) == before


def test_bad_cast_in_a_new_column_adds_no_column(warehouse: Warehouse, parquet: Spill) -> None:
    two_accounts(warehouse, parquet)
    before = snapshot(warehouse)
    bad = pl.DataFrame({"id": [1], "name": ["n"], "start": ["not a time"]})

    with pytest.raises(duckdb.ConversionException):
        warehouse.write(TABLE, scoped(parquet(bad), "replace", GLOBEX, column_types={"start": "TIMESTAMPTZ"}))

    assert snapshot(warehouse) == before


def test_error_after_the_delete_leaves_every_account_as_before(
    warehouse: Warehouse,
    parquet: Spill,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sched_assets.storage import write as write_module

    two_accounts(warehouse, parquet)
    before = snapshot(warehouse)

    def fail_after_insert(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(write_module, "_insert", fail_after_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        warehouse.write(TABLE, scoped(parquet(frame([9], ["z"])), "replace", ACME))

    assert snapshot(warehouse) == before


def test_failed_first_write_of_an_account_leaves_the_table_as_before(
    warehouse: Warehouse, parquet: Spill
) -> None:
    warehouse.write(TABLE, scoped(parquet(frame([1], ["a"])), "replace", ACME))
    before = snapshot(warehouse)

    with pytest.raises(InvalidWriteError):
        warehouse.write(TABLE, scoped(parquet(frame([None], ["x"])), "merge", "new-account"))

    assert snapshot(warehouse) == before


# ---- refused ---------------------------------------------------------------------------------------


def test_scoped_write_into_an_unscoped_table_with_rows_is_refused(
    warehouse: Warehouse, parquet: Spill
) -> None:
    warehouse.write(TABLE, TableWrite(parquet(frame([1, 2], ["a", "b"])), "replace", primary_key=("id",)))
    before = snapshot(warehouse)

    for mode in ("replace", "merge"):
        with pytest.raises(InvalidWriteError) as info:
            warehouse.write(TABLE, scoped(parquet(frame([3], ["c"])), mode, ACME))
        message = str(info.value)
        assert TABLE in message
        assert "['account']" in message
        assert "single-account" in message
        assert "SCHED_DUCKDB_PATH" in message and "drop the table" in message
        assert snapshot(warehouse) == before


def test_scoped_write_into_an_empty_unscoped_table_is_refused(
    warehouse: Warehouse,
    parquet: Spill,
) -> None:
    # Even an empty table of the single-account mode is refused: adopting it would put `account`
    # last instead of leading the table, unlike every other table of this mode.
    warehouse.write(TABLE, TableWrite(parquet(frame([], [])), "replace", primary_key=("id",)))
    before = snapshot(warehouse)

    with pytest.raises(InvalidWriteError, match="single-account mode"):
        warehouse.write(TABLE, scoped(parquet(frame([1], ["a"])), "merge", ACME))

    assert snapshot(warehouse) == before


@pytest.mark.parametrize("column", ["account", "Account", "ACCOUNT"])
def test_data_with_an_account_column_is_refused(warehouse: Warehouse, parquet: Spill, column: str) -> None:
    data = pl.DataFrame({"id": [1], column: ["other"]})

    with pytest.raises(InvalidWriteError, match="which this write sets for its scope") as info:
        warehouse.write(TABLE, scoped(parquet(data), "replace", ACME))

    assert "['account']" in str(info.value)
    assert not warehouse.table_exists(TABLE)

    # Nor into an existing table of the account.
    warehouse.write(TABLE, scoped(frame([1], ["a"]), "replace", ACME))
    before = snapshot(warehouse)
    with pytest.raises(InvalidWriteError, match="which this write sets for its scope"):
        warehouse.write(TABLE, scoped(data, "merge", GLOBEX))
    assert snapshot(warehouse) == before


def test_key_column_missing_from_the_data_is_refused_for_a_scoped_write(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, scoped(frame([1], ["a"]), "replace", ACME))
    before = snapshot(warehouse)

    with pytest.raises(InvalidWriteError, match="primary key column"):
        warehouse.write(TABLE, scoped(pl.DataFrame({"name": ["x"]}), "merge", ACME))

    assert snapshot(warehouse) == before


def test_merge_needs_a_key_besides_the_scope() -> None:
    with pytest.raises(InvalidWriteError, match="needs a primary_key"):
        TableWrite(frame([1], ["a"]), "merge", scope={"account": ACME})


def test_scoped_replace_without_a_primary_key(warehouse: Warehouse) -> None:
    warehouse.write(TABLE, TableWrite(frame([1, 1], ["a", "b"]), "replace", scope={"account": ACME}))
    warehouse.write(TABLE, TableWrite(frame([1], ["g"]), "replace", scope={"account": GLOBEX}))
    warehouse.write(TABLE, TableWrite(frame([2], ["c"]), "replace", scope={"account": ACME}))

    assert table_rows(warehouse) == [(ACME, 2, "c"), (GLOBEX, 1, "g")]


# ---- TableWrites ------------------------------------------------------------------------------------


def test_table_writes_need_a_scope_on_every_write() -> None:
    a = scoped(frame([1], ["a"]), "replace", ACME)
    g = scoped(frame([1], ["g"]), "replace", GLOBEX)

    assert TableWrites((a, g)).writes == (a, g)
    with pytest.raises(InvalidWriteError, match="needs a scope"):
        TableWrites((a, TableWrite(frame([1], ["x"]), "replace")))
    with pytest.raises(InvalidWriteError, match="needs a scope"):
        TableWrites((TableWrite(frame([1], ["x"]), WriteMode.REPLACE, scope={}),))


def test_io_manager_stores_table_writes_one_transaction_per_account(tmp_path: Path, parquet: Spill) -> None:
    # The real path: an asset returns TableWrites (one per account of its run) to the IO manager.
    import dagster as dg

    from sched_assets.storage import WarehouseIOManager, WarehouseResource

    database = tmp_path / "warehouse.duckdb"
    resource = WarehouseResource(database=str(database))
    resources = {"warehouse": resource, "io_manager": WarehouseIOManager(warehouse=resource)}
    batches = {
        "good": (parquet(frame([1, 2], ["a1", "a2"])), parquet(frame([1], ["g1"]))),
        "globex fails": (parquet(frame([8], ["A8"])), parquet(frame([None], ["bad"]))),
    }
    batch = "good"

    @dg.asset(key=["raw", "things"])
    def things() -> TableWrites:
        acme, globex = batches[batch]
        return TableWrites((scoped(acme, "replace", ACME), scoped(globex, "replace", GLOBEX)))

    result = dg.materialize([things], resources=resources)

    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["dagster/row_count"] == 3  # summed over the accounts
    assert metadata["rows_inserted"] == 3
    warehouse = Warehouse(database)
    assert account_rows(warehouse, ACME) == [(1, "a1"), (2, "a2")]
    assert account_rows(warehouse, GLOBEX) == [(1, "g1")]

    batch = "globex fails"
    result = dg.materialize([things], resources=resources, raise_on_error=False)

    assert not result.success
    assert account_rows(warehouse, ACME) == [(8, "A8")]  # written in its own transaction
    assert account_rows(warehouse, GLOBEX) == [(1, "g1")]  # kept exactly


def test_scope_mapping_is_kept_on_the_write() -> None:
    write = scoped(frame([1], ["a"]), "replace", ACME)

    assert isinstance(write.scope, Mapping)
    assert dict(write.scope) == {"account": ACME}
