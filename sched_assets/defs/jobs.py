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
