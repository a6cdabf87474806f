"""The sync job and its schedules (stopped by default, as Dagster does: turn them on in the UI)."""

from __future__ import annotations

import dagster as dg

sync_everything = dg.define_asset_job(
    name="sync_everything",
    selection=dg.AssetSelection.all(),
    description="Incremental sync of every API resource, then every derived analytics table and check.",
)

full_refresh_everything = dg.define_asset_job(
    name="full_refresh_everything",
    selection=dg.AssetSelection.all(),
    description="Re-reads every booking (removes bookings deleted upstream, catches rows with null updatedAt), "
    "then rebuilds the analytics tables.",
    config={"ops": {"raw_sources": {"config": {"full_refresh": True}}}},
)

daily_sync = dg.ScheduleDefinition(
    name="daily_sync",
    job=sync_everything,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every day at 06:00 UTC: incremental sync and analytics.",
)

weekly_full_refresh = dg.ScheduleDefinition(
    name="weekly_full_refresh",
    job=full_refresh_everything,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Sundays at 03:00 UTC: full refresh of bookings, so deletions upstream reach the warehouse.",
)


def _batches(names: list[str], per_run: int) -> list[list[str]]:
    return [names[start : start + per_run] for start in range(0, len(names), per_run)]


def account_schedule(
    schedule: dg.ScheduleDefinition, names: list[str], per_run: int
) -> dg.ScheduleDefinition:
    """`schedule` for account partitions: each tick requests every account, `per_run` accounts per run.

    A run covering several accounts is a partition range (the tags a backfill run carries), so the run
    queue's per-range limit and the per-key lock keep two runs off one account.
    """
    batches = _batches(names, per_run)

    @dg.schedule(
        name=schedule.name,
        job=schedule.job,
        cron_schedule=schedule.cron_schedule,
        execution_timezone=schedule.execution_timezone,
        default_status=schedule.default_status,
        description=f"{schedule.description} Every account in the accounts file, {per_run} per run.",
    )
    def _every_account(context: dg.ScheduleEvaluationContext):
        # A schedule's run keys are unique within a tick: one run per batch per tick.
        for batch in batches:
            if len(batch) == 1:
                yield dg.RunRequest(run_key=batch[0], partition_key=batch[0])
            else:
                yield dg.RunRequest(
                    run_key=f"{batch[0]}..{batch[-1]}",
                    tags={
                        "dagster/asset_partition_range_start": batch[0],
                        "dagster/asset_partition_range_end": batch[-1],
                    },
                )

    return _every_account
