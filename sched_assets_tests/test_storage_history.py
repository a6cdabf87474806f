"""The history table a write keeps in step with its table (`TableWrite(history=...)`): versions over a
sequence of writes, in the write's transaction, on a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sched_assets.storage import InvalidWriteError, TableWrite, Warehouse
from sched_assets.storage import write as write_module

TABLE, HISTORY = "raw.things", "history.things"
T1, T2, T3, T4 = (datetime(2026, 12, day, 6, tzinfo=UTC) for day in (1, 2, 3, 4))


@pytest.fixture(params=["duckdb-file", "ducklake-sqlite"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "duckdb-file":
        return Warehouse(tmp_path / "sched.duckdb", lock_timeout=10)
    # DuckLake: the same SQL (UPDATE ... FROM, hash, ALTER TABLE) on a lake catalog.
    (tmp_path / "catalog").mkdir()
    return Warehouse(
        f"ducklake:sqlite:{tmp_path / 'catalog' / 'lake.sqlite'}",
        lock_timeout=10,
        data_path=tmp_path / "data",
    )


def frame(synced_at: datetime, rows: list[tuple[int, str]], **extra: list) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [row[0] for row in rows],
            "status": [row[1] for row in rows],
            **extra,
            "_synced_at": [synced_at] * len(rows),
        },
        schema_overrides={"id": pl.Int64, "status": pl.String, "_synced_at": pl.Datetime("us", "UTC")},
    )


def write(warehouse: Warehouse, data: pl.DataFrame, mode: str = "merge", **kwargs):
    kwargs.setdefault("history", HISTORY)
    return warehouse.write(TABLE, TableWrite(data, mode, primary_key=("id",), **kwargs))


def versions(warehouse: Warehouse, columns: str = "id, status") -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.sql(
            f"SELECT {columns}, valid_from, valid_to FROM {HISTORY} ORDER BY {columns}, valid_from"
        ).fetchall()


def test_first_write_records_every_row_as_current(warehouse: Warehouse) -> None:
    result = write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")

    assert versions(warehouse) == [(1, "accepted", T1, None), (2, "pending", T1, None)]
    assert result.history is not None
    assert (result.history.versions_added, result.history.versions_closed) == (2, 0)
    assert (result.history.versions_in_table, result.history.current_versions) == (2, 2)
    with warehouse.connect(read_only=True) as con:
        columns = con.sql(f"DESCRIBE {HISTORY}").fetchall()
    assert [c[0] for c in columns] == ["id", "status", "_synced_at", "valid_from", "valid_to"]
    assert [c[1] for c in columns][-2:] == ["TIMESTAMP WITH TIME ZONE"] * 2


def test_a_change_closes_the_old_version_and_opens_a_new_one(warehouse: Warehouse) -> None:
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")

    result = write(warehouse, frame(T2, [(1, "cancelled")]))  # incremental: only the changed row

    assert versions(warehouse) == [
        (1, "accepted", T1, T2),
        (1, "cancelled", T2, None),
        (2, "pending", T1, None),
    ]
    assert (result.history.versions_added, result.history.versions_closed) == (1, 1)
    assert (result.history.versions_in_table, result.history.current_versions) == (3, 2)


def test_rereading_unchanged_rows_adds_no_version(warehouse: Warehouse) -> None:
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")

    merged = write(warehouse, frame(T2, [(1, "accepted"), (2, "pending")]))  # the lag window
    replaced = write(warehouse, frame(T3, [(1, "accepted"), (2, "pending")]), "replace")  # a full refresh

    assert versions(warehouse) == [(1, "accepted", T1, None), (2, "pending", T1, None)]
    assert merged.history.versions_added == replaced.history.versions_added == 0
    assert merged.history.versions_closed == replaced.history.versions_closed == 0


def test_a_full_refresh_closes_rows_deleted_upstream(warehouse: Warehouse) -> None:
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending"), (3, "accepted")]), "replace")

    result = write(warehouse, frame(T2, [(1, "accepted"), (3, "rescheduled")]), "replace")

    history = versions(warehouse)
    assert history[:3] == [
        (1, "accepted", T1, None),
        (2, "pending", T1, history[1][3]),
        (3, "accepted", T1, T2),
    ]
    assert history[1][3] is not None  # closed at the write's time
    assert history[3] == (3, "rescheduled", T2, None)
    assert (result.history.versions_added, result.history.versions_closed) == (1, 2)
    # A row that comes back later opens a new version.
    write(warehouse, frame(T3, [(2, "pending")]))
    assert versions(warehouse)[2] == (2, "pending", T3, None)


def test_rows_back_after_every_version_closed_open_new_versions(warehouse: Warehouse) -> None:
    # With no open version to compare with, every row is written as a first version without comparing.
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")
    emptied = write(warehouse, frame(T2, []), "replace")
    back = write(warehouse, frame(T3, [(2, "pending"), (3, "accepted")]), "replace")

    history = versions(warehouse)
    closed_at = history[0][3]
    assert closed_at is not None and history[1][3] == closed_at
    assert history == [
        (1, "accepted", T1, closed_at),
        (2, "pending", T1, closed_at),
        (2, "pending", T3, None),
        (3, "accepted", T3, None),
    ]
    assert (emptied.history.versions_added, emptied.history.versions_closed) == (0, 2)
    assert (back.history.versions_added, back.history.versions_closed) == (2, 0)
    assert (back.history.versions_in_table, back.history.current_versions) == (4, 2)


def test_a_failed_write_adds_nothing_to_either_table(warehouse: Warehouse, monkeypatch) -> None:
    write(warehouse, frame(T1, [(1, "accepted")]), "replace")
    before = versions(warehouse)

    def die(con) -> None:
        raise RuntimeError("the commit failed")

    monkeypatch.setattr(write_module, "_commit", die)
    with pytest.raises(RuntimeError, match="the commit failed"):
        write(warehouse, frame(T2, [(1, "cancelled"), (2, "pending")]))

    assert versions(warehouse) == before
    with warehouse.connect(read_only=True) as con:
        assert con.sql(f"SELECT id, status FROM {TABLE}").fetchall() == [(1, "accepted")]


def test_a_new_column_appears_in_history_and_a_value_in_it_is_a_change(warehouse: Warehouse) -> None:
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")

    write(warehouse, frame(T2, [(1, "accepted"), (2, "pending")], seats=[None, 3]))

    assert versions(warehouse, "id, status, seats") == [
        (1, "accepted", None, T1, None),
        (2, "pending", 3, T2, None),  # nulls sort last
        (2, "pending", None, T1, T2),
    ]


def test_history_is_per_scope(warehouse: Warehouse) -> None:
    """With many accounts, a write sees and closes only its account's versions."""
    write(warehouse, frame(T1, [(1, "accepted")]), "replace", scope={"account": "acme"})
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace", scope={"account": "globex"})

    write(warehouse, frame(T2, [(1, "cancelled")]), "replace", scope={"account": "acme"})

    assert versions(warehouse, "account, id, status") == [
        ("acme", 1, "accepted", T1, T2),
        ("acme", 1, "cancelled", T2, None),
        ("globex", 1, "accepted", T1, None),
        ("globex", 2, "pending", T1, None),
    ]


def test_a_merge_dates_rows_written_without_the_history(warehouse: Warehouse) -> None:
    """A merge looks up only the keys it stores, unless rows of its scope have no date yet."""
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")
    write(warehouse, frame(T1, [(3, "accepted")]), history=None)  # 3: a row without a date

    result = write(warehouse, frame(T2, [(1, "cancelled")]))

    assert (result.history.versions_added, result.history.versions_closed) == (2, 1)  # 1's new, 3's first
    with warehouse.connect(read_only=True) as con:
        assert con.sql("SELECT * FROM history._things_current ORDER BY id").fetchall() == [
            (1, T2),
            (2, T1),
            (3, T1),
        ]
    assert versions(warehouse) == [
        (1, "accepted", T1, T2),
        (1, "cancelled", T2, None),
        (2, "pending", T1, None),
        (3, "accepted", T1, None),
    ]


def test_history_needs_a_primary_key() -> None:
    with pytest.raises(InvalidWriteError, match="primary_key"):
        TableWrite(frame(T1, [(1, "a")]), "replace", history=HISTORY)


def test_a_current_version_is_stored_once_in_the_table(warehouse: Warehouse) -> None:
    """The history keeps keys and dates of current versions; their fields are the table's rows."""
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending")]), "replace")
    write(warehouse, frame(T2, [(1, "cancelled")]))

    with warehouse.connect(read_only=True) as con:
        assert con.sql("SELECT id, status, valid_from, valid_to FROM history._things_closed").fetchall() == [
            (1, "accepted", T1, T2)
        ]
        assert con.sql("SELECT * FROM history._things_current ORDER BY id").fetchall() == [(1, T2), (2, T1)]
        # The view's current version carries the date it began, as a stored version would.
        assert con.sql(f"SELECT _synced_at FROM {HISTORY} WHERE id = 1 AND valid_to IS NULL").fetchall() == [
            (T2,)
        ]


def test_the_earlier_layout_is_converted_by_the_next_write(warehouse: Warehouse) -> None:
    """`history.things` as a table of every version (the earlier layout) becomes the view, losing no
    version; an open version its row no longer equals (written without history since) is closed."""
    write(warehouse, frame(T1, [(1, "accepted"), (2, "pending"), (3, "accepted")]), "replace", history=None)
    with warehouse.connect() as con:
        con.execute(
            f"CREATE SCHEMA history; CREATE TABLE {HISTORY} (id BIGINT, status VARCHAR, "
            "_synced_at TIMESTAMPTZ, valid_from TIMESTAMPTZ NOT NULL, valid_to TIMESTAMPTZ)"
        )
        con.execute(
            f"INSERT INTO {HISTORY} VALUES (1, 'pending', ?, ?, ?), (1, 'accepted', ?, ?, NULL), "
            "(2, 'accepted', ?, ?, NULL), (3, 'accepted', ?, ?, NULL), (9, 'gone', ?, ?, NULL)",
            [T1 - (T2 - T1), T1 - (T2 - T1), T1, T1, T1, T1, T1, T1, T1, T1, T1],
        )

    result = write(warehouse, frame(T3, [(3, "cancelled")]))

    history = versions(warehouse)
    converted_at = history[2][3]  # when the conversion closed 2's stale version
    assert converted_at is not None and converted_at > T3
    assert history == [
        (1, "accepted", T1, None),
        (1, "pending", T1 - (T2 - T1), T1),
        (2, "accepted", T1, converted_at),  # the table says pending: closed, and pending opens now
        (2, "pending", T1, None),  # dated by its row's _synced_at, the best known
        (3, "accepted", T1, T3),
        (3, "cancelled", T3, None),
        (9, "gone", T1, converted_at),
    ]
    assert (result.history.versions_added, result.history.versions_closed) == (2, 1)
    with warehouse.connect(read_only=True) as con:
        kinds = con.sql(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'history' "
            "ORDER BY table_name"
        ).fetchall()
    assert kinds == [("_things_closed", "BASE TABLE"), ("_things_current", "BASE TABLE"), ("things", "VIEW")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["replace", "merge"]),
            st.dictionaries(st.integers(1, 6), st.sampled_from(["accepted", "pending", "cancelled"])),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_versions_follow_a_model_of_the_rules(tmp_path_factory, steps) -> None:
    """Any sequence of replaces and merges gives the versions of a plain model of the rules."""
    warehouse = Warehouse(tmp_path_factory.mktemp("model") / "sched.duckdb", lock_timeout=10)
    removed = "closed at the write's time"
    model: dict[int, list[list]] = {}  # id -> its versions as [status, valid_from, valid_to]
    for number, (mode, rows) in enumerate(steps):
        synced = datetime(2020, 1, 1 + number, tzinfo=UTC)
        write(warehouse, frame(synced, sorted(rows.items())), mode)
        current = {key: v[-1] for key, v in model.items() if v[-1][2] is None}
        for key in current.keys() - rows.keys() if mode == "replace" else ():
            current[key][2] = removed
        for key, status in rows.items():
            if key in current and current[key][0] == status:
                continue  # re-read unchanged
            if key in current:
                current[key][2] = synced
            model.setdefault(key, []).append([status, synced, None])

    got = [(i, s, f, removed if t is not None and t.year > 2020 else t) for i, s, f, t in versions(warehouse)]
    assert got == sorted((key, *version) for key, v in model.items() for version in map(tuple, v))
