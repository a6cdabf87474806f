"""The derived tables built per account (`build_table(..., scope=Scope("account", name))`).

The oracle: for every account, its rows of a shared analytics table (built from raw tables holding two
accounts, written with scoped `TableWrite`s as the sync writes them) equal the ordinary unscoped build
over a warehouse holding only that account's raw rows. Rebuilding one account never changes another's
rows, and a failing build leaves every account's rows (and the table's columns) exactly as they were.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from sched_assets.analytics import SELECTS
from sched_assets.analytics.build import BuiltTable, Scope, ScopedRows, build_table, scoped_select
from sched_assets.analytics.specs import EVENT_TYPE_STATS, SCHEDULE_WINDOWS, TABLES, TableSpec
from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME
from sched_assets.frames.columns import column_types, key_columns
from sched_assets.storage import TableWrite, Warehouse
from sched_assets.storage.naming import RAW_SCHEMA, TableName, quote_ident
from sched_assets_tests.raw_tables import SAMPLE_ACCOUNT, create_raw_tables, insert_rows

ACME, GLOBEX, INITECH = "acme", "globex", "initech"
SYNCED = "2026-11-30 12:00:00+00"
TABLE_IDS = [table.name for table in TABLES]

Account = Mapping[str, list[dict[str, Any]]]


def _globex() -> dict[str, list[dict[str, Any]]]:
    """A second account: the same ids as the sample account where it can (so a leak shows), other data.

    New York profile whose default schedule 20 (Tokyo) differs from the sample's; schedule 10 reuses the
    sample's id with other windows and no zone of its own (the profile's applies); bookings 1-4 reuse
    the sample's ids, a day and two hours later, with other statuses; booking 5 is of a new event type.
    """
    data = copy.deepcopy(SAMPLE_ACCOUNT)
    data["my_profile"] = [
        {"id": 1, "username": "bo", "default_schedule_id": 20, "time_zone": "America/New_York"}
    ]
    data["schedules"] = [
        {
            "id": 10,
            "name": "Mornings",
            "time_zone": None,
            "is_default": False,
            "availability": [
                {"days": ["Monday", "Tuesday", "Wednesday"], "startTime": "08:00", "endTime": "12:00"}
            ],
            "overrides": [{"date": "2026-05-06", "startTime": "13:00", "endTime": "15:00"}],
        },
        {
            "id": 20,
            "name": "Weekends",
            "time_zone": "Asia/Tokyo",
            "is_default": True,
            "availability": [
                {"days": ["Saturday", "Sunday"], "startTime": "10:00", "endTime": "14:00"},
                {"days": ["Tuesday"], "startTime": "09:00", "endTime": "24:00"},
            ],
            "overrides": [],
        },
    ]
    data["event_types"] = [
        {
            "id": 100,
            "title": "Intro call (globex)",
            "slug": "intro",
            "length_in_minutes": 45,
            "schedule_id": 10,
        },
        {
            "id": 200,
            "title": "Workshop",
            "slug": "workshop",
            "length_in_minutes": 120,
            "schedule_id": None,
            "before_event_buffer": 30,
        },
    ]
    statuses = ["cancelled", "accepted", "accepted", "pending"]
    bookings = []
    for booking, status in zip(data["bookings"], statuses, strict=True):
        shifted = dict(booking)
        shifted["status"] = status
        for field in ("start", "end", "created_at"):
            day, time = booking[field].split("T")
            shifted[field] = f"{day[:8]}{int(day[8:]) + 1:02d}T{int(time[:2]) + 2:02d}{time[2:]}"
        shifted["uid"] = "g" + booking["uid"]
        shifted["rating"] = 4.0 + booking["id"] / 4
        shifted["attendees"] = [{**a, "name": f"{a['name']} G"} for a in booking["attendees"]]
        bookings.append(shifted)
    bookings.append(
        {
            "id": 5,
            "uid": "g5",
            "status": "accepted",
            "start": "2026-05-09T01:00:00Z",
            "end": "2026-05-09T03:00:00Z",
            "duration": 120,
            "event_type_id": 200,
            "created_at": "2026-04-01T00:00:00Z",
            "attendees": [{"name": "Eve", "email": "eve@g.test", "absent": False}],
        }
    )
    data["bookings"] = bookings
    data["calendars"] = data["calendars"][:1]
    data["conferencing"] = [{"id": 5, "type": "google_meet", "app_id": "google-meet"}]
    return data


ACCOUNTS: dict[str, Account] = {ACME: SAMPLE_ACCOUNT, GLOBEX: _globex()}


# ---- warehouses ------------------------------------------------------------------------------------


def seed_single(path: Path, account: Account) -> Path:
    """A one-account warehouse, as the single-account mode has it: raw tables without `account`."""
    with duckdb.connect(str(path)) as con:
        create_raw_tables(con)
        for table, rows in account.items():
            insert_rows(con, table, rows)
        # As two syncs leave them: every row written at the second; every booking's version from then,
        # and for the booking with the lowest id an earlier version (another status, an hour later).
        for spec in ENDPOINTS:
            con.execute(
                f"UPDATE {TableName(RAW_SCHEMA, spec.name).sql} SET _synced_at = TIMESTAMPTZ '{SYNCED}'"
            )
        con.execute("INSERT INTO history.bookings SELECT *, _synced_at, NULL FROM raw.bookings")
        con.execute(
            "INSERT INTO history.bookings SELECT * REPLACE (CASE WHEN status = 'pending' THEN 'accepted' "
            "ELSE 'pending' END AS status, start + INTERVAL 1 HOUR AS start, _synced_at - INTERVAL 1 DAY "
            "AS _synced_at, _synced_at - INTERVAL 1 DAY AS valid_from, _synced_at AS valid_to) "
            "FROM history.bookings WHERE id = (SELECT min(id) FROM raw.bookings)"
        )
    return path


def build_unscoped(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        for table in TABLES:
            build_table(con, table, SELECTS[table.name])


def write_account_raw(warehouse: Warehouse, single: Path, account: str, spill: Path) -> None:
    """Copy a one-account warehouse's raw tables into the shared one, as the sync writes them.

    Each table is read into Polars (JSON as text, as the client delivers it), spilled to Parquet with
    `write_parquet`, and written with a scoped replace on the resource's key and declared column types.
    """
    spill.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(single), read_only=True) as con:
        frames = {}
        for spec in ENDPOINTS:
            types = column_types(spec)
            select = ", ".join(
                f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" if t == "JSON" else quote_ident(c)
                for c, t in types.items()
            )
            frames[spec.name] = con.sql(f"SELECT {select} FROM {TableName(RAW_SCHEMA, spec.name).sql}").pl()
    for name, frame in frames.items():
        spec = ENDPOINTS_BY_NAME[name]
        path = spill / f"{account}-{name}.parquet"
        frame.write_parquet(path)
        warehouse.write(
            str(TableName(RAW_SCHEMA, name)),
            TableWrite(
                [path],
                "replace",
                primary_key=key_columns(spec),
                column_types=column_types(spec),
                scope={"account": account},
            ),
        )
    # The single's history as it is (versions from two syncs), with the account leading its key.
    path = spill / f"{account}-history.parquet"
    with duckdb.connect(str(single), read_only=True) as con:
        con.execute(f"COPY (SELECT * FROM history.bookings) TO '{path}' (FORMAT parquet)")
    warehouse.write(
        "history.bookings",
        TableWrite(
            [path],
            "replace",
            primary_key=(*key_columns(ENDPOINTS_BY_NAME["bookings"]), "valid_from"),
            column_types=column_types(ENDPOINTS_BY_NAME["bookings"]),
            scope={"account": account},
        ),
    )


def build_scoped(
    warehouse: Warehouse, account: str, tables: tuple[TableSpec, ...] = TABLES
) -> dict[str, BuiltTable]:
    with warehouse.connect() as con:
        return {
            table.name: build_table(con, table, SELECTS[table.name], scope=Scope("account", account))
            for table in tables
        }


@dataclass(frozen=True)
class Result:
    columns: list[tuple[str, str]]
    rows: list[tuple]


def unscoped_result(path: Path, table: TableSpec) -> Result:
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
            "ORDER BY column_index",
            [table.table_name.schema, table.name],
        ).fetchall()
        rows = con.sql(f"SELECT * FROM {table.table_name.sql} ORDER BY ALL").fetchall()
    return Result(columns, rows)


def account_result(warehouse: Warehouse, table: TableSpec, account: str) -> Result:
    """The account's rows of a shared table and its columns, both without the `account` column."""
    columns = warehouse.columns(table.qualified_name)
    assert columns[0] == ("account", "VARCHAR"), columns
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            f"SELECT * EXCLUDE (account) FROM {table.table_name.sql} WHERE account = ? ORDER BY ALL",
            [account],
        ).fetchall()
    return Result(columns[1:], rows)


def analytics_snapshot(warehouse: Warehouse) -> dict[str, tuple[list[tuple[str, str]], list[tuple]]]:
    """Columns and rows of every analytics table that exists."""
    snapshot = {}
    with warehouse.connect(read_only=True) as con:
        for table in TABLES:
            columns = con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "ORDER BY column_index",
                [table.table_name.schema, table.name],
            ).fetchall()
            if columns:
                snapshot[table.name] = (
                    columns,
                    con.sql(f"SELECT * FROM {table.table_name.sql} ORDER BY ALL").fetchall(),
                )
    return snapshot


@pytest.fixture(scope="module")
def singles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """For every account, a one-account warehouse with its raw rows and its unscoped (oracle) build."""
    directory = tmp_path_factory.mktemp("single")
    paths = {}
    for account, data in ACCOUNTS.items():
        paths[account] = seed_single(directory / f"{account}.duckdb", data)
        build_unscoped(paths[account])
    return paths


@pytest.fixture(scope="module")
def shared_template(tmp_path_factory: pytest.TempPathFactory, singles: dict[str, Path]) -> Path:
    """The shared warehouse's raw tables, written once per module: both accounts, scoped."""
    directory = tmp_path_factory.mktemp("shared")
    warehouse = Warehouse(directory / "shared.duckdb", lock_timeout=10)
    for account, single in singles.items():
        write_account_raw(warehouse, single, account, directory / "spill")
    return warehouse.path


@pytest.fixture
def shared(tmp_path: Path, shared_template: Path) -> Iterator[Warehouse]:
    """A fresh copy of the shared warehouse (raw tables of both accounts, no analytics yet)."""
    path = tmp_path / "shared.duckdb"
    shutil.copy(shared_template, path)
    yield Warehouse(path, lock_timeout=10)


# ---- the setup is what it claims to be -----------------------------------------------------------


def test_shared_raw_tables_hold_both_accounts_with_the_single_account_columns(
    shared: Warehouse, singles: dict[str, Path]
) -> None:
    with duckdb.connect(str(singles[ACME]), read_only=True) as con:
        single_columns = {
            spec.name: con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'raw' AND "
                "table_name = ? ORDER BY column_index",
                [spec.name],
            ).fetchall()
            for spec in ENDPOINTS
        }
    for spec in ENDPOINTS:
        table = TableName(RAW_SCHEMA, spec.name)
        assert shared.columns(str(table)) == [("account", "VARCHAR"), *single_columns[spec.name]]
    with shared.connect(read_only=True) as con:
        for spec in ENDPOINTS:
            table = TableName(RAW_SCHEMA, spec.name)
            counts = dict(con.sql(f"SELECT account, count(*) FROM {table.sql} GROUP BY ALL").fetchall())
            expected = {a: len(data.get(spec.name, [])) for a, data in ACCOUNTS.items()}
            assert counts == {a: n for a, n in expected.items() if n}, spec.name


# ---- the oracle ------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES, ids=TABLE_IDS)
def test_each_accounts_rows_equal_the_build_over_only_its_raw_rows(
    shared: Warehouse, singles: dict[str, Path], table: TableSpec
) -> None:
    built = {account: build_scoped(shared, account, (table,))[table.name] for account in ACCOUNTS}

    oracles = {account: unscoped_result(singles[account], table) for account in ACCOUNTS}
    for account in ACCOUNTS:
        assert oracles[account].rows, f"the oracle of {account} is empty: the comparison would prove little"
        assert account_result(shared, table, account) == oracles[account], account
        assert built[account].row_count == len(oracles[account].rows)
    assert oracles[ACME].rows != oracles[GLOBEX].rows, "the accounts' data should differ"
    # Readable across accounts: exactly the two accounts' rows, nothing else.
    with shared.connect(read_only=True) as con:
        counts = dict(
            con.sql(f"SELECT account, count(*) FROM {table.table_name.sql} GROUP BY ALL").fetchall()
        )
    assert counts == {account: len(oracle.rows) for account, oracle in oracles.items()}


def test_build_order_does_not_matter(shared: Warehouse, singles: dict[str, Path]) -> None:
    build_scoped(shared, GLOBEX)
    build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)

    for table in TABLES:
        for account in ACCOUNTS:
            assert account_result(shared, table, account) == unscoped_result(singles[account], table)


def test_an_account_without_raw_rows_gets_the_empty_build(shared: Warehouse, tmp_path: Path) -> None:
    empty = seed_single(tmp_path / "empty.duckdb", {})
    build_unscoped(empty)
    build_scoped(shared, ACME)
    acme_before = {table.name: account_result(shared, table, ACME) for table in TABLES}

    built = build_scoped(shared, INITECH)

    for table in TABLES:
        assert account_result(shared, table, INITECH) == unscoped_result(empty, table)
        assert built[table.name].row_count == len(unscoped_result(empty, table).rows)
        assert account_result(shared, table, ACME) == acme_before[table.name]


# ---- what a build reports --------------------------------------------------------------------------


def test_built_table_reports_the_accounts_rows(shared: Warehouse) -> None:
    built = build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)

    for table in TABLES:
        assert list(built[table.name].columns) == shared.columns(table.qualified_name)
    with shared.connect(read_only=True) as con:
        for table in TABLES:
            result = built[table.name]
            assert result.table == table.table_name
            assert result.rows == ScopedRows(table.table_name, "account", (ACME,))
            assert result.columns[0] == ("account", "VARCHAR")
            rows = con.sql(f"SELECT * FROM {result.rows.sql} ORDER BY ALL").fetchall()
            assert len(rows) == result.row_count
            assert {row[0] for row in rows} == {ACME}


def test_a_build_of_several_accounts_equals_their_separate_builds(shared: Warehouse) -> None:
    separate = {account: build_scoped(shared, account) for account in (ACME, GLOBEX)}
    before = {(table.name, a): account_result(shared, table, a) for table in TABLES for a in (ACME, GLOBEX)}

    with shared.connect() as con:
        both = {
            table.name: build_table(
                con, table, SELECTS[table.name], [Scope("account", ACME), Scope("account", GLOBEX)]
            )
            for table in TABLES
        }

    for table in TABLES:
        built = both[table.name]
        assert built.rows == ScopedRows(table.table_name, "account", (ACME, GLOBEX))
        assert (
            built.row_count == separate[ACME][table.name].row_count + separate[GLOBEX][table.name].row_count
        )
        for account in (ACME, GLOBEX):
            assert account_result(shared, table, account) == before[(table.name, account)]
        with shared.connect(read_only=True) as con:
            assert con.sql(f"SELECT count(*) FROM {built.rows.sql}").fetchone() == (built.row_count,)


def test_a_build_of_several_accounts_is_one_transaction(shared: Warehouse) -> None:
    """The second account's SELECT fails: the first account's new rows are rolled back with it."""
    build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)
    before = {a: account_result(shared, EVENT_TYPE_STATS, a) for a in (ACME, GLOBEX, INITECH)}
    with shared.connect(read_only=True) as con:
        [(globex_only,)] = con.sql(
            "SELECT min(id) FROM raw.bookings WHERE account = 'globex' AND id NOT IN "
            "(SELECT id FROM raw.bookings WHERE account = 'acme')"
        ).fetchall()
    # A SELECT of the table's shape that changes every count, and fails on the globex rows.
    failing = (
        f"SELECT * REPLACE (CASE WHEN EXISTS (SELECT 1 FROM raw.bookings WHERE id = {globex_only}) "
        "THEN error('globex data is bad') ELSE bookings_total + 1000 END AS bookings_total) "
        f"FROM ({SELECTS[EVENT_TYPE_STATS.name]})"
    )

    with shared.connect() as con, pytest.raises(duckdb.Error, match="globex data is bad"):
        build_table(
            con,
            EVENT_TYPE_STATS,
            failing,
            [Scope("account", INITECH), Scope("account", ACME), Scope("account", GLOBEX)],
        )

    for account in (ACME, GLOBEX, INITECH):
        assert account_result(shared, EVENT_TYPE_STATS, account) == before[account]


def test_a_build_needs_a_scope_or_none(shared: Warehouse) -> None:
    with shared.connect() as con, pytest.raises(ValueError, match="at least one scope"):
        build_table(con, EVENT_TYPE_STATS, SELECTS[EVENT_TYPE_STATS.name], [])


def test_scoped_rows_sql_quotes_its_values() -> None:
    rows = ScopedRows(TableName("analytics", "x"), "account", ("o'brien", "acme"))

    assert rows.sql == """(SELECT * FROM "analytics"."x" WHERE "account" IN ('o''brien', 'acme'))"""
    assert Scope("account", "o'brien").where == """"account" = 'o''brien'"""


# ---- scoped_select ---------------------------------------------------------------------------------


def test_scoped_select_narrows_every_raw_read_and_nothing_else() -> None:
    sql = (
        "WITH p AS (SELECT * FROM raw.my_profile) "
        "SELECT * FROM raw.bookings AS b JOIN raw.event_types et ON true "
        "LEFT JOIN p ON true join RAW.schedules s ON true "
        "JOIN analytics.raw_things ON true JOIN myraw.bookings ON true JOIN raw_x.y ON true "
        "JOIN History.bookings h ON true"
    )

    narrowed = scoped_select(sql, Scope("account", "acme"))

    read = '(SELECT * EXCLUDE ("account") FROM raw.{} WHERE "account" = \'acme\')'
    assert f"FROM {read.format('my_profile')}) " in narrowed
    assert f"FROM {read.format('bookings')} AS b" in narrowed
    assert f"JOIN {read.format('event_types')} et" in narrowed
    assert f"join {read.format('schedules')} s" in narrowed
    assert "JOIN analytics.raw_things" in narrowed
    assert "JOIN myraw.bookings" in narrowed
    assert "JOIN raw_x.y" in narrowed
    history = '(SELECT * EXCLUDE ("account") FROM history.bookings WHERE "account" = \'acme\')'
    assert f"JOIN {history} h" in narrowed
    assert narrowed.count("EXCLUDE") == 5


def test_every_raw_read_of_the_analytics_sql_is_narrowed() -> None:
    # The SQL may read a raw or history table only in a way scoped_select rewrites (else one account
    # reads all).
    for name, sql in SELECTS.items():
        narrowed = scoped_select(sql, Scope("account", "acme"))
        for schema in ("raw.", "history."):
            leftover = narrowed.replace(f"FROM {schema}", "").count(schema)
            assert leftover == 0, f"{name}: a {schema} table read without a scope"
        assert narrowed.count("EXCLUDE") == sql.count("raw.") + sql.count("history."), name


# ---- rebuilding and failing --------------------------------------------------------------------------


def test_rebuilding_one_account_changes_only_its_rows(
    shared: Warehouse, singles: dict[str, Path], tmp_path: Path
) -> None:
    build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)
    globex_before = {table.name: account_result(shared, table, GLOBEX) for table in TABLES}

    # Acme's next sync: fewer bookings, one new one, another profile zone, one schedule window more.
    changed = copy.deepcopy(dict(SAMPLE_ACCOUNT))
    changed["my_profile"][0]["time_zone"] = "Europe/Lisbon"
    changed["schedules"][0]["availability"].append(
        {"days": ["Saturday"], "startTime": "10:00", "endTime": "13:00"}
    )
    changed["bookings"] = [
        changed["bookings"][0],
        {
            "id": 9,
            "uid": "b9",
            "status": "accepted",
            "start": "2026-05-09T09:00:00Z",
            "end": "2026-05-09T10:00:00Z",
            "duration": 60,
            "event_type_id": 100,
            "created_at": "2026-05-08T09:00:00Z",
            "attendees": [{"name": "Flo", "absent": True}],
        },
    ]
    acme_now = seed_single(tmp_path / "acme-now.duckdb", changed)
    build_unscoped(acme_now)
    write_account_raw(shared, acme_now, ACME, tmp_path / "spill")

    build_scoped(shared, ACME)

    for table in TABLES:
        assert account_result(shared, table, ACME) == unscoped_result(acme_now, table), table.name
        assert account_result(shared, table, GLOBEX) == globex_before[table.name], table.name
    assert account_result(shared, SCHEDULE_WINDOWS, ACME) != unscoped_result(singles[ACME], SCHEDULE_WINDOWS)


def _fails_after_the_delete(table: TableSpec) -> str:
    """The table's SELECT, failing on its first row (so only once the account's rows are deleted)."""
    column = quote_ident(table.primary_key[0])
    return f"SELECT * FROM ({SELECTS[table.name]}) WHERE error('injected: ' || CAST({column} AS VARCHAR)) IS NULL"


def _fails_after_adding_a_column(table: TableSpec) -> str:
    return (
        f"SELECT *, 1 AS new_column FROM ({SELECTS[table.name]}) "
        f"WHERE error('injected: ' || CAST({quote_ident(table.primary_key[0])} AS VARCHAR)) IS NULL"
    )


def _reads_a_missing_raw_table(table: TableSpec) -> str:
    return SELECTS[table.name] + " UNION ALL BY NAME SELECT * FROM raw.missing"


FAILURES: dict[str, Callable[[TableSpec], str]] = {
    "runtime-error": _fails_after_the_delete,
    "new-column-then-error": _fails_after_adding_a_column,
    "missing-raw-table": _reads_a_missing_raw_table,
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_build_leaves_every_account_unchanged(
    shared: Warehouse, singles: dict[str, Path], failure: str
) -> None:
    build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)
    before = analytics_snapshot(shared)
    assert set(before) == set(TABLE_IDS)

    for table in TABLES:
        with shared.connect() as con, pytest.raises(duckdb.Error):
            build_table(con, table, FAILURES[failure](table), scope=Scope("account", ACME))

    assert analytics_snapshot(shared) == before
    for table in TABLES:  # and still what the oracle says
        for account in ACCOUNTS:
            assert account_result(shared, table, account) == unscoped_result(singles[account], table)


def test_a_dropped_raw_table_fails_the_build_and_changes_nothing(shared: Warehouse) -> None:
    build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)
    before = analytics_snapshot(shared)
    with shared.connect() as con:
        con.execute("DROP TABLE raw.schedules")

    for table in TABLES:
        if "raw.schedules" not in SELECTS[table.name]:
            continue
        with shared.connect() as con, pytest.raises(duckdb.CatalogException, match="schedules"):
            build_table(con, table, SELECTS[table.name], scope=Scope("account", GLOBEX))

    assert analytics_snapshot(shared) == before


def test_a_failing_first_build_creates_no_table(shared: Warehouse) -> None:
    for table in TABLES:
        with shared.connect() as con, pytest.raises(duckdb.Error):
            build_table(con, table, _fails_after_the_delete(table), scope=Scope("account", ACME))

    assert analytics_snapshot(shared) == {}


def test_one_accounts_failure_does_not_stop_the_others_build(
    shared: Warehouse, singles: dict[str, Path]
) -> None:
    # As a run of several accounts does it: each account's build is its own transaction.
    with shared.connect() as con:
        for account in (ACME, GLOBEX):
            for table in TABLES:
                select = _fails_after_the_delete(table) if account == ACME else SELECTS[table.name]
                try:
                    build_table(con, table, select, scope=Scope("account", account))
                except duckdb.Error:
                    assert account == ACME

    for table in TABLES:
        assert account_result(shared, table, ACME).rows == []
        assert account_result(shared, table, GLOBEX) == unscoped_result(singles[GLOBEX], table)


def test_a_scoped_build_never_mixes_with_rows_of_an_unscoped_table(shared: Warehouse) -> None:
    # A derived table left by the single-account mode (no `account` column, rows of its own): a scoped
    # build must either refuse it and leave it as it is (as a scoped raw write does), or replace it,
    # but never leave old rows without an account next to the account's new ones.
    table = EVENT_TYPE_STATS
    with shared.connect() as con:
        build_table(con, table, SELECTS[table.name])  # unscoped, over both accounts' raw rows
    before = analytics_snapshot(shared)[table.name]
    assert before[1], "the unscoped table has rows"

    try:
        build_scoped(shared, ACME, (table,))
    except Exception:
        assert analytics_snapshot(shared)[table.name] == before
        return
    with shared.connect(read_only=True) as con:
        stale = con.sql(f"SELECT count(*) FROM {table.table_name.sql} WHERE account IS NULL").fetchone()
    assert stale == (0,), "rows of the single-account build were kept next to the account's rows"
    assert shared.columns(table.qualified_name)[0] == ("account", "VARCHAR")


def test_frames_of_shared_tables_read_per_account(shared: Warehouse, singles: dict[str, Path]) -> None:
    # What a reader of `analytics.<table>` does: filter on `account`.
    build_scoped(shared, ACME)
    build_scoped(shared, GLOBEX)

    with shared.connect(read_only=True) as con:
        frame = con.sql(f"SELECT * FROM {EVENT_TYPE_STATS.table_name.sql}").pl()
    acme = frame.filter(pl.col("account") == ACME).drop("account").sort("event_type_id")
    with duckdb.connect(str(singles[ACME]), read_only=True) as con:
        oracle = con.sql(f"SELECT * FROM {EVENT_TYPE_STATS.table_name.sql}").pl().sort("event_type_id")
    assert acme.equals(oracle)
