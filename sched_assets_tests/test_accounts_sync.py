"""Many accounts end to end: the real assets partitioned by account, a multi-account demo server on a
real socket, a real DuckDB file. Each account's tables equal a single-account sync of it; batches of
accounts in one run; one account's failure keeps the others' writes; keys never leak."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sched_assets.accounts import ACCOUNT_COLUMN
from sched_assets.definitions import warehouse_resources
from sched_assets.defs.analytics import analytics_assets
from sched_assets.defs.checks import analytics_checks, raw_checks
from sched_assets.defs.keys import raw_key
from sched_assets.defs.partitions import accounts_partitions, partition_by_account
from sched_assets.defs.resources import SchedApiResource
from sched_assets.defs.sources import build_source_assets
from sched_assets.demo import DemoApi, DemoServer, serve
from sched_assets.demo.accounts import DemoAccountKey, demo_accounts, write_accounts_file
from sched_assets_tests.sync_helpers import FROM_HISTORY, RAW_TABLES, sync

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture(scope="module")
def keys() -> list[DemoAccountKey]:
    return demo_accounts(3, bookings=150)


@pytest.fixture(scope="module")
def server(keys: list[DemoAccountKey]) -> Iterator[DemoServer]:
    with serve(DemoApi(accounts=keys)) as running:
        yield running


@pytest.fixture
def accounts_file(
    tmp_path: Path, keys: list[DemoAccountKey], server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = tmp_path / "accounts.yaml"
    write_accounts_file(keys, path, base_url=server.url)
    for key in keys:
        monkeypatch.setenv(key.api_key_env, key.api_key)
    return path


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def materialize(
    accounts_file: Path,
    names: list[str],
    database: Path,
    instance: dg.DagsterInstance,
    run: list[str],
    *,
    analytics: bool = True,
) -> dg.ExecuteInJobResult:
    """One run over the accounts `run` (a partition, or a range as a backfill run has it)."""
    assets = [build_source_assets(), *(analytics_assets if analytics else [])]
    partitioned = partition_by_account(assets, accounts_partitions(names), per_run=25)
    tags = {RANGE_START: run[0], RANGE_END: run[-1]} if len(run) > 1 else {}
    return dg.materialize(
        partitioned,
        resources={
            "sched_api": SchedApiResource(
                accounts_file=str(accounts_file), backoff_factor=0.01, max_backoff_seconds=0.05
            ),
            **warehouse_resources(str(database)),
        },
        instance=instance,
        partition_key=run[0] if len(run) == 1 else None,
        tags=tags,
        raise_on_error=False,
    )


def rows(database: Path, table: str, account: str | None = None) -> list[tuple]:
    """The table's rows without `_synced_at` (and without `account`, filtered to it when given)."""
    with duckdb.connect(str(database), read_only=True) as con:
        schema, name = table.split(".")
        columns = [
            column
            for (column,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "ORDER BY column_index",
                [schema, name],
            ).fetchall()
            if column not in ("_synced_at", ACCOUNT_COLUMN)
        ]
        where = f" WHERE {ACCOUNT_COLUMN} = '{account}'" if account else ""
        quoted = ", ".join(f'"{column}"' for column in columns)
        return sorted(con.execute(f"SELECT {quoted} FROM {table}{where}").fetchall(), key=repr)


def drop_from_history(table: str, found: list[tuple]) -> list[tuple]:
    """Without the columns computed from history.bookings (`FROM_HISTORY`): two syncs of one account
    date them differently."""
    dated = FROM_HISTORY.get(f"analytics.{table}") or set()
    assert dated <= {"avg_cancellation_lead_hours", "cancellations_seen", "reschedules"}  # the last three
    return [row[: len(row) - len(dated)] for row in found]


def account_counts(database: Path, table: str) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as con:
        return dict(con.execute(f"SELECT account, count(*) FROM {table} GROUP BY ALL").fetchall())


def test_batch_run_equals_single_account_syncs(
    tmp_path: Path, keys: list[DemoAccountKey], server: DemoServer, accounts_file: Path, instance
) -> None:
    names = [key.name for key in keys]
    database = tmp_path / "many.duckdb"
    result = materialize(accounts_file, names, database, instance, names)
    assert result.success

    with duckdb.connect(str(database), read_only=True) as con:
        [(first_column,)] = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw' AND table_name = 'bookings' "
            "AND column_index = 1"
        ).fetchall()
    assert first_column == ACCOUNT_COLUMN
    assert account_counts(database, "raw.bookings") == {key.name: key.bookings for key in keys}
    # Each account's bookings have one (current) version in the history, written in the same transaction.
    assert account_counts(database, "history.bookings") == {key.name: key.bookings for key in keys}

    for key in keys:  # the oracle: the same account synced alone, in the single-account mode
        alone = tmp_path / f"{key.name}.duckdb"
        with dg.DagsterInstance.ephemeral() as own:
            sync(server.url, alone, own, api_key=key.api_key, with_analytics=True)
        for table in RAW_TABLES:
            assert rows(database, f"raw.{table}", key.name) == rows(alone, f"raw.{table}"), (key.name, table)
        for table in ("booking_utilization_daily", "event_type_stats", "booking_attendees"):
            assert drop_from_history(
                table, rows(database, f"analytics.{table}", key.name)
            ) == drop_from_history(table, rows(alone, f"analytics.{table}")), (key.name, table)

    statuses = instance.get_status_by_partition(raw_key("bookings"), names, accounts_partitions(names))
    assert set(statuses.values()) == {dg.AssetPartitionStatus.MATERIALIZED}


def test_each_account_keeps_its_own_cursor(
    tmp_path: Path, keys: list[DemoAccountKey], accounts_file: Path, instance
) -> None:
    names = [key.name for key in keys]
    database = tmp_path / "many.duckdb"
    assert materialize(accounts_file, names, database, instance, names[:1], analytics=False).success
    second = materialize(accounts_file, names, database, instance, names, analytics=False)
    assert second.success
    [bookings] = [
        event.materialization.metadata
        for event in second.get_asset_materialization_events()
        if event.asset_key == raw_key("bookings") and event.materialization.partition == names[0]
    ]
    cursors = bookings["account_cursors"].value
    assert set(cursors) == set(names)
    assert all(entry["cursor"] for entry in cursors.values())
    # Only the account synced before reads incrementally; the others are new here.
    plans = {
        event.materialization.partition: event.materialization.metadata["sync_plan"].value
        for event in second.get_asset_materialization_events()
        if event.asset_key == raw_key("bookings")
    }
    assert len(set(plans.values())) == 1  # one materialization metadata covers the run's range
    third = materialize(accounts_file, names, database, instance, names[1:2], analytics=False)
    [plan] = {
        event.materialization.metadata["sync_plan"].value
        for event in third.get_asset_materialization_events()
        if event.asset_key == raw_key("bookings")
    }
    assert plan.startswith("incremental")
    assert account_counts(database, "raw.bookings") == {key.name: key.bookings for key in keys}


def test_failed_account_keeps_its_rows_and_the_others_are_written(
    tmp_path: Path,
    keys: list[DemoAccountKey],
    accounts_file: Path,
    instance,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = [key.name for key in keys]
    database = tmp_path / "many.duckdb"
    assert materialize(accounts_file, names, database, instance, names).success
    before = rows(database, "raw.bookings", names[1])

    bad_key = "cal_live_not_a_real_key_0123456789"
    monkeypatch.setenv(keys[1].api_key_env, bad_key)  # the server answers 401 for it
    with caplog.at_level(logging.DEBUG):
        failed = materialize(accounts_file, names, database, instance, names, analytics=False)
    assert not failed.success
    [failure] = [event for event in failed.all_events if event.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert names[1] in message and "401" in message
    assert bad_key not in caplog.text and bad_key not in message
    for key in keys:
        assert key.api_key not in caplog.text

    assert rows(database, "raw.bookings", names[1]) == before
    statuses = instance.get_status_by_partition(raw_key("bookings"), names, accounts_partitions(names))
    assert statuses[names[1]] == dg.AssetPartitionStatus.FAILED
    for name in (names[0], names[2]):  # written by this run, each its own partition
        assert statuses[name] == dg.AssetPartitionStatus.MATERIALIZED
        for table in RAW_TABLES:
            [record] = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=raw_key(table), asset_partitions=[name]), limit=1
            ).records
            assert record.run_id == failed.run_id


def test_missing_key_variable_fails_before_any_request(
    tmp_path: Path,
    keys: list[DemoAccountKey],
    server: DemoServer,
    accounts_file: Path,
    instance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = [key.name for key in keys]
    monkeypatch.delenv(keys[2].api_key_env)
    before = server.api.account_stats(keys[2].api_key).requests
    result = materialize(accounts_file, names, tmp_path / "many.duckdb", instance, names[2:], analytics=False)
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert keys[2].api_key_env in failure.step_failure_data.error.message
    assert server.api.account_stats(keys[2].api_key).requests == before


def test_definitions_partition_every_asset_by_account(
    accounts_file: Path, keys: list[DemoAccountKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sched_assets.definitions import defs

    monkeypatch.setenv("SCHED_ACCOUNTS_FILE", str(accounts_file))
    monkeypatch.setenv("SCHED_ACCOUNTS_PER_RUN", "2")
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        assert partitions is not None and partitions.get_partition_keys() == [k.name for k in keys]
    assert len(raw_checks) + len(analytics_checks) > 0

    schedule = definitions.resolve_schedule_def("daily_sync")
    with dg.build_schedule_context(repository_def=definitions.get_repository_def()) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [(r.tags.get(RANGE_START), r.tags.get(RANGE_END), r.partition_key) for r in requests] == [
        (keys[0].name, keys[1].name, None),
        (None, None, keys[2].name),
    ]


def test_two_accounts_with_one_key_in_a_run_fail_the_later_one_at_once(
    tmp_path: Path,
    keys: list[DemoAccountKey],
    accounts_file: Path,
    instance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both would take the same key lock: the later one fails before any request, the run does not hang.
    names = [key.name for key in keys]
    monkeypatch.setenv(keys[1].api_key_env, keys[0].api_key)
    database = tmp_path / "many.duckdb"
    result = materialize(accounts_file, names, database, instance, names[:2], analytics=False)
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert f"is the key of account {names[0]!r} too" in message and keys[0].api_key not in message
    assert account_counts(database, "raw.bookings") == {names[0]: keys[0].bookings}


def test_previous_cursors_are_each_accounts_latest_in_two_queries_per_table() -> None:
    """The run's cursors come from each account's own latest materialization, however old it is, and
    only when it was read from the same source."""
    from types import SimpleNamespace

    from sched_assets.accounts import Account
    from sched_assets.api.specs import ENDPOINTS
    from sched_assets.defs.account_sync import ACCOUNT_CURSORS, ReadyAccount, _previous_cursors

    bookings = next(spec for spec in ENDPOINTS if spec.name == "bookings")
    accounts = {name: Account(name, f"SCHED_API_KEY__{name.upper()}", None) for name in ("a", "b", "c")}
    api = SimpleNamespace(account_source=lambda account: f"https://api.example/{account.name}")

    def record(
        instance: dg.DagsterInstance, partition: str, cursors: dict[str, str], source: str = ""
    ) -> None:
        value = {
            name: {"source": source or f"https://api.example/{name}", "cursor": cursor}
            for name, cursor in cursors.items()
        }
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                raw_key("bookings"),
                partition=partition,
                metadata={ACCOUNT_CURSORS: dg.MetadataValue.json(value)},
            )
        )

    with dg.DagsterInstance.ephemeral() as instance:
        ready = {name: ReadyAccount(account, None) for name, account in accounts.items()}  # type: ignore[arg-type]
        assert _previous_cursors(instance, [bookings], ready, api) == {"a": {}, "b": {}, "c": {}}
        for name in ("a", "b", "c"):  # one run over all three: each partition carries the run's cursors
            record(instance, name, {"a": "a1", "b": "b1", "c": "c1"})
        for _ in range(30):  # later runs of "b" alone bury the others' records deep in the history
            record(instance, "b", {"b": "b2"})
        record(instance, "c", {"c": "c2"}, source="https://other.example")  # another server: no cursor

        found = _previous_cursors(instance, [bookings], ready, api)

    assert found == {"a": {"bookings": "a1"}, "b": {"bookings": "b2"}, "c": {}}


def test_charts_are_drawn_for_a_run_of_one_account_only(
    tmp_path: Path, keys: list[DemoAccountKey], accounts_file: Path, instance
) -> None:
    """A batch's materializations would each store the same image: only a run of one account has it."""
    names = [key.name for key in keys]
    database = tmp_path / "many.duckdb"

    def chart_partitions(result: dg.ExecuteInJobResult) -> dict[str, bool]:
        return {
            event.materialization.partition: "utilization_chart" in event.materialization.metadata
            for event in result.get_asset_materialization_events()
            if event.asset_key == dg.AssetKey(["analytics", "booking_utilization_daily"])
        }

    batch = materialize(accounts_file, names, database, instance, names)
    assert chart_partitions(batch) == {name: False for name in names}
    single = materialize(accounts_file, names, database, instance, names[:1])
    assert chart_partitions(single) == {names[0]: True}
