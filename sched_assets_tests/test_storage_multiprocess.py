"""Dagster's default multiprocess executor: several step processes writing one DuckDB file.

Without the cross-process lock (and with DuckDB's lock error not retried), this test fails with
"Could not set lock on file": concurrent steps collide on DuckDB's single-writer rule.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sched_assets.storage import DuckDBIOManager, Warehouse

DB_ENV_VAR = "SCHED_TEST_STORAGE_MULTIPROCESS_DB"
ROWS = 300_000  # big enough that unlocked concurrent steps do collide on DuckDB's lock


def _table_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, key_prefix=["raw"], metadata={"write_mode": "merge", "primary_key": ["id"]})
    def _table() -> pl.DataFrame:
        return pl.DataFrame({"id": range(ROWS), "source": [name] * ROWS})

    return _table


ASSETS = [_table_asset(name) for name in ("alpha", "beta", "gamma", "delta")]


@dg.asset(key_prefix=["analytics"], deps=[a.key for a in ASSETS])
def combined(alpha: pl.DataFrame, beta: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([alpha, beta])


def multiprocess_job() -> dg.JobDefinition:
    """Module-level factory, so `dg.reconstructable` can rebuild the job in each step process."""
    defs = dg.Definitions(
        assets=[*ASSETS, combined],
        jobs=[dg.define_asset_job("all_tables")],
        resources={"io_manager": DuckDBIOManager(database=dg.EnvVar(DB_ENV_VAR))},
    )
    return defs.resolve_job_def("all_tables")


@pytest.mark.slow
def test_multiprocess_executor_writes_one_file_from_many_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "multi.duckdb"
    monkeypatch.setenv(DB_ENV_VAR, str(db))
    (tmp_path / "dagster_home").mkdir()

    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        # Four step processes at once, each writing enough rows that their writes overlap.
        run_config = {"execution": {"config": {"multiprocess": {"max_concurrent": 4}}}}
        result = dg.execute_job(
            dg.reconstructable(multiprocess_job), instance=instance, run_config=run_config
        )
        assert result.success
        step_pids = {
            event.pid for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_START
        }

    assert len(step_pids) == 5  # one process per step
    warehouse = Warehouse(db)
    for name in ("alpha", "beta", "gamma", "delta"):
        assert warehouse.read_frame(f"raw.{name}").height == ROWS
    assert warehouse.read_frame("analytics.combined").height == 2 * ROWS
