"""Fixtures shared across test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

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
