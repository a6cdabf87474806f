"""Fixtures shared across test modules."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sched_assets_tests.postgres import PostgresCluster, PostgresUnavailable
from sched_assets_tests.raw_tables import seed_sample_account
from sched_assets_tests.reliability_helpers import temporary_instance


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A DuckDB file holding the hand-built sample account in its raw tables (analytics and check tests)."""
    path = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(path) as con:
        seed_sample_account(con)
    return path


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.DagsterInstance]:
    """One Dagster instance per module (each reliability test has its own server, hence its own cursor).

    Modules that need a fresh instance per test define their own `instance` fixture, which wins.
    """
    with temporary_instance(tmp_path_factory.mktemp("dagster_home")) as instance:
        yield instance


# ---- a real PostgreSQL (the many-accounts mode: Dagster instance and DuckLake catalog) ---------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the whole session (Debian server binaries, ~1-3 s to start).

    Without the binaries the tests that use it are skipped, except under CI (`CI` set), where that is
    an error: `.ci/run` installs the `postgresql` package.
    """
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as error:
        missing = str(error)
    else:
        missing = None
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL is not usable: {missing}", pytrace=False)
        pytest.skip(missing)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def postgres_db(postgres: PostgresCluster) -> Iterator[str]:
    """A fresh, uniquely named database in the session cluster; dropped afterwards (best effort)."""
    postgres.start()  # a no-op unless an earlier test left the server stopped
    name = postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")
    yield name
    with contextlib.suppress(Exception):
        postgres.drop_database(name)
