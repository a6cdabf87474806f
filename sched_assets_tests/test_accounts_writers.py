"""Several processes syncing different accounts into one warehouse at once, through the real command
(`dagster asset materialize --partition ...`): a DuckLake catalog on a real PostgreSQL, one in SQLite,
and the plain DuckDB file (writers take turns). Every account's tables come out exact, no commit is
lost, and conflicting commits are retried within the bound."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sched_assets.defs.keys import raw_key
from sched_assets.demo import DemoApi, DemoServer, serve
from sched_assets.demo.accounts import DemoAccountKey, demo_accounts, write_accounts_file
from sched_assets.storage.warehouse import Warehouse
from sched_assets_tests.postgres import PostgresCluster
from sched_assets_tests.sync_helpers import RAW_TABLES

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
ACCOUNTS = 3
MATERIALIZE = [
    sys.executable,
    "-m",
    "dagster",
    "asset",
    "materialize",
    "-m",
    "sched_assets.definitions",
    "--select",
    "*",
]


@pytest.fixture(scope="module")
def keys() -> list[DemoAccountKey]:
    return demo_accounts(ACCOUNTS, bookings=200)


@pytest.fixture(scope="module")
def server(keys: list[DemoAccountKey]) -> Iterator[DemoServer]:
    with serve(DemoApi(accounts=keys)) as running:
        yield running


def _warehouse(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(SCHED_DUCKDB_PATH, SCHED_DUCKLAKE_DATA_PATH) of a new, empty warehouse of `kind`."""
    if kind == "file":
        return str(tmp_path / "warehouse.duckdb"), None
    data = str(tmp_path / "lake_data")
    if kind == "ducklake-sqlite":
        return f"ducklake:sqlite:{tmp_path / 'catalog.sqlite'}", data
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    database = request.getfixturevalue("postgres_db")
    return f"ducklake:postgres:{cluster.dsn(database)}", data


def _materialize(env: dict[str, str], account: str, home: Path) -> subprocess.Popen[str]:
    home.mkdir()
    return subprocess.Popen(
        [*MATERIALIZE, "--partition", account],
        cwd=PROJECT,
        env={**env, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("kind", ["ducklake-postgres", "ducklake-sqlite", "file"])
def test_processes_sync_different_accounts_into_one_warehouse_at_once(
    kind: str,
    tmp_path: Path,
    keys: list[DemoAccountKey],
    server: DemoServer,
    request: pytest.FixtureRequest,
) -> None:
    database, data_path = _warehouse(kind, tmp_path, request)
    write_accounts_file(keys, tmp_path / "accounts.yaml", base_url=server.url)
    env = {
        **os.environ,
        "SCHED_ACCOUNTS_FILE": str(tmp_path / "accounts.yaml"),
        "SCHED_DUCKDB_PATH": database,
        **{key.api_key_env: key.api_key for key in keys},
    }
    if data_path:
        env["SCHED_DUCKLAKE_DATA_PATH"] = data_path
    processes = [_materialize(env, key.name, tmp_path / f"home_{key.name}") for key in keys]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for key, process, output in zip(keys, processes, outputs, strict=True):
        assert process.returncode == 0, f"{key.name}:\n{output[-3000:]}"
        assert key.api_key not in output

    warehouse = Warehouse(database, data_path=data_path)
    with warehouse.connect(read_only=True) as con:
        bookings = dict(con.execute("SELECT account, count(*) FROM raw.bookings GROUP BY ALL").fetchall())
        ids = {
            account: (low, high)
            for account, low, high in con.execute(
                "SELECT account, min(id), max(id) FROM raw.bookings GROUP BY ALL"
            ).fetchall()
        }
        stats = dict(
            con.execute("SELECT account, count(*) FROM analytics.event_type_stats GROUP BY ALL").fetchall()
        )
    assert bookings == {key.name: key.bookings for key in keys}
    for key in keys:
        assert ids[key.name] == (key.booking_ids[0], key.booking_ids[-1])
        assert stats[key.name] > 0
    # Conflicting commits were re-run within the bound (the writes report how often); a file never conflicts.
    retries = [retry for key in keys for retry in _commit_retries(tmp_path / f"home_{key.name}")]
    assert len(retries) == ACCOUNTS * len(RAW_TABLES)
    assert max(retries) < warehouse.retry_policy.attempts
    if kind == "file":
        assert sum(retries) == 0


def _commit_retries(home: Path) -> list[int]:
    """`commit_retries` of every raw table materialized in the instance at `home`."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        found = []
        for table in RAW_TABLES:
            for record in instance.fetch_materializations(raw_key(table), limit=10).records:
                found.append(int(record.asset_materialization.metadata["commit_retries"].value))
    return found
