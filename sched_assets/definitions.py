"""The single entry point: `dagster dev -m sched_assets.definitions` (or `-w workspace.yaml`)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import dagster as dg

from sched_assets.accounts import accounts_file_from_env, load_accounts
from sched_assets.defs.analytics import analytics_assets
from sched_assets.defs.checks import analytics_checks, raw_checks
from sched_assets.defs.freshness import freshness_checks, freshness_sensor, freshness_window, with_freshness
from sched_assets.defs.jobs import (
    account_schedule,
    daily_sync,
    full_refresh_everything,
    sync_everything,
    weekly_full_refresh,
)
from sched_assets.defs.partitions import accounts_partitions, accounts_per_run, partition_by_account
from sched_assets.defs.resources import SchedApiResource, database_path_from_env
from sched_assets.defs.sources import build_source_assets
from sched_assets.heap import skip_final_collection
from sched_assets.storage import WarehouseIOManager, WarehouseResource

# Writes ingest small Parquet row groups one thread at a time: a million bookings load within this
# budget (measured: 1M rows in ~8 s), instead of DuckDB's default 80 % of RAM.
WRITE_MEMORY_LIMIT = "96MB"
# Checks and derived tables: the same bound (DuckDB spills joins and aggregates to disk), so a
# `--select '*'` run peaks no higher than the sync alone (1M bookings: 413 MB vs 417 MB; 256MB gave 571).
QUERY_MEMORY_LIMIT = "96MB"

skip_final_collection()  # every process that loads these definitions exits ~0.5-0.8 s sooner


def warehouse_resources(database: str, **settings: Any) -> dict[str, Any]:
    """The warehouse resource and the IO manager built on it: one configuration for readers and writers."""
    warehouse = WarehouseResource(
        database=database,
        **{
            "memory_limit": QUERY_MEMORY_LIMIT,
            "write_memory_limit": WRITE_MEMORY_LIMIT,
            "write_threads": 1,
            **settings,
        },
    )
    return {"warehouse": warehouse, "io_manager": WarehouseIOManager(warehouse=warehouse)}


def _env_or_none(name: str) -> dg.EnvVar | None:
    # EnvVar keeps the value out of the run config the UI shows; unset means "not configured".
    return dg.EnvVar(name) if os.environ.get(name) else None


def _code_references(assets: list) -> list:
    """Link every asset to its source file in the UI ("Open in editor" on the asset page)."""
    with warnings.catch_warnings():
        # Code references are a beta API; the warning would repeat on every code-location load.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.with_source_code_references(assets)


@dg.definitions
def defs() -> dg.Definitions:
    window = freshness_window()
    assets = with_freshness(_code_references([build_source_assets(), *analytics_assets]), window)
    stale = freshness_checks(assets, window)
    schedules = [daily_sync, weekly_full_refresh]
    accounts_file = accounts_file_from_env()
    if accounts_file is not None:
        # Many accounts (docs/accounts.md): every asset partitioned by account name, as the file is now.
        names = load_accounts(accounts_file).names
        per_run = accounts_per_run()
        assets = partition_by_account(assets, accounts_partitions(names), per_run)
        schedules = [account_schedule(schedule, names, per_run) for schedule in schedules]
    return dg.Definitions(
        assets=assets,
        asset_checks=[*raw_checks, *analytics_checks, *stale],
        jobs=[sync_everything, full_refresh_everything],
        schedules=schedules,
        sensors=[freshness_sensor(stale)],
        resources={
            "sched_api": SchedApiResource(
                api_key=_env_or_none("SCHED_API_KEY"),
                base_url=_env_or_none("SCHED_API_BASE_URL"),
                accounts_file=str(accounts_file) if accounts_file else None,
            ),
            **warehouse_resources(
                database_path_from_env(),
                ducklake_data_path=os.environ.get("SCHED_DUCKLAKE_DATA_PATH") or None,
            ),
        },
        # One process for the whole run: Dagster's per-step processes cost ~5 s each on 2 cores, and
        # concurrency already happens inside the fetch step. The multiprocess executor works too.
        executor=dg.in_process_executor,
    )
