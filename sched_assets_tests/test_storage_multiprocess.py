"""Dagster's default multiprocess executor: several step processes writing one DuckDB file.

Without the cross-process lock (and with DuckDB's lock error not retried), this test fails with
"Could not set lock on file": concurrent steps collide on DuckDB's single-writer rule.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from sched_assets.storage import TableWrite, Warehouse, WarehouseIOManager, WarehouseResource

DB_ENV_VAR = "SCHED_TEST_STORAGE_MULTIPROCESS_DB"
ROWS = 300_000  # big enough that unlocked concurrent steps do collide on DuckDB's lock


def _table_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, key_prefix=["raw"])
    def _table() -> TableWrite:
        return TableWrite(pl.DataFrame({"id": range(ROWS), "source": [name] * ROWS}), "merge", ("id",))

    return _table


ASSETS = [_table_asset(name) for name in ("alpha", "beta", "gamma", "delta")]


@dg.asset(key_prefix=["analytics"], deps=[a.key for a in ASSETS])
def combined(warehouse: WarehouseResource) -> None:
    """Built inside DuckDB from two stored tables, as the derived assets are (writes under the same lock)."""
    with warehouse.get_connection() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        con.execute("CREATE OR REPLACE TABLE analytics.combined AS FROM raw.alpha UNION ALL FROM raw.beta")


def multiprocess_job() -> dg.JobDefinition:
    """Module-level factory, so `dg.reconstructable` can rebuild the job in each step process."""
    warehouse = WarehouseResource(database=dg.EnvVar(DB_ENV_VAR), write_memory_limit="96MB", write_threads=1)
    defs = dg.Definitions(
        assets=[*ASSETS, combined],
        jobs=[dg.define_asset_job("all_tables")],
        resources={"warehouse": warehouse, "io_manager": WarehouseIOManager(warehouse=warehouse)},
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
    with Warehouse(db).connect(read_only=True) as con:
        for name in ("alpha", "beta", "gamma", "delta"):
            assert con.sql(f"SELECT count(DISTINCT id), min(source) FROM raw.{name}").fetchall() == [
                (ROWS, name)
            ]
        assert con.sql("SELECT count(*) FROM analytics.combined").fetchall() == [(2 * ROWS,)]
