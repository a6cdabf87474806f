"""A tiny code location for testing `deploy/dagster.yaml`'s run queue (test-only, no API, no DuckDB).

Two assets over the static partitions a, b, c (standing in for accounts). Each materialization sleeps
`DEPLOY_JOBS_SLEEP_SECONDS` (default 1.5) and records when its body started and ended (wall-clock
epoch seconds) in its materialization metadata, so a test can check from the event log which runs
overlapped:

- `account_sync`: no backfill policy; single-partition runs and its backfill runs carry `dagster/partition`.
- `account_sync_batched`: `BackfillPolicy.multi_run(1)`: its backfill runs carry
  `dagster/asset_partition_range_start` / `_end` instead (one partition per run here).

Runs execute in process (no step subprocess) to keep each run's start-up short.
Load it with `-m sched_assets_tests.deploy_jobs` or a workspace `python_module` entry. (No
`from __future__ import annotations` here: Dagster checks the `context` annotation at runtime.)
"""

import os
import time
import warnings

import dagster as dg

PARTITIONS = dg.StaticPartitionsDefinition(["a", "b", "c"])


def _work(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    started = time.time()
    time.sleep(float(os.environ.get("DEPLOY_JOBS_SLEEP_SECONDS", "1.5")))
    return dg.MaterializeResult(
        metadata={
            "started": started,
            "ended": time.time(),
            "partitions": ",".join(context.partition_keys),
        }
    )


@dg.asset(partitions_def=PARTITIONS, group_name="deploy_test", kinds={"python"})
def account_sync(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One account's sync, one partition per run."""
    return _work(context)


with warnings.catch_warnings():
    # `backfill_policy` is a beta parameter; the warning would repeat on every code-location load.
    warnings.simplefilter("ignore", dg.BetaWarning)

    @dg.asset(
        partitions_def=PARTITIONS,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
        group_name="deploy_test",
        kinds={"python"},
    )
    def account_sync_batched(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One account's sync, launched by backfills as partition-range runs."""
        return _work(context)


defs = dg.Definitions(assets=[account_sync, account_sync_batched], executor=dg.in_process_executor)
