"""Accounts as partitions: with SCHED_ACCOUNTS_FILE set, every asset is partitioned by account name.

The partitions are the names in the accounts file when the definitions load: a new entry is a partition
as soon as the code location loads again (every `dagster asset materialize`, every run process; in a
running `dagster dev` or code server, "Reload definitions"), with no code change and no sensor tick.

A backfill puts up to `ACCOUNTS_PER_RUN` accounts in one run (Dagster's start-up of a run costs ~4-5 s
here, more than syncing a small account): the run syncs them in parallel, each with its own client,
rate-limit budget, key lock and transactions (docs/accounts.md, "One run per account or batches").
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

ACCOUNTS_PER_RUN_ENV = "SCHED_ACCOUNTS_PER_RUN"
ACCOUNTS_PER_RUN = 25


def accounts_per_run(environ: os._Environ[str] | dict[str, str] = os.environ) -> int:
    """Accounts per backfill run (SCHED_ACCOUNTS_PER_RUN, default 25; 1 = one run per account)."""
    value = environ.get(ACCOUNTS_PER_RUN_ENV, "").strip()
    if not value:
        return ACCOUNTS_PER_RUN
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ACCOUNTS_PER_RUN_ENV} must be a whole number of at least 1; got {value!r}")
    return int(value)


def accounts_partitions(names: Sequence[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(names))


def partition_by_account(
    assets: Sequence[dg.AssetsDefinition], partitions: dg.PartitionsDefinition, per_run: int
) -> list[dg.AssetsDefinition]:
    """The same assets, partitioned by account, backfilled `per_run` accounts per run."""
    mapped = dg.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions), assets)
    policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=per_run)
    return [asset.with_attributes(backfill_policy=policy) for asset in mapped]


def run_accounts(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str] | None:
    """The accounts this run covers, or None outside the many-accounts mode."""
    op_context = (
        context.op_execution_context if isinstance(context, dg.AssetCheckExecutionContext) else context
    )
    if not (op_context.has_partition_key or op_context.has_partition_key_range):
        return None
    return list(op_context.partition_keys)
