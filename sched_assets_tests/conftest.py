"""Fixtures shared across test modules."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sched_assets.analytics.testing import seed_sample_account


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A DuckDB file holding the hand-built sample account in its raw tables (analytics and check tests)."""
    path = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(path) as con:
        seed_sample_account(con)
    return path
