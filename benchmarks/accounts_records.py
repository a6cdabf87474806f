"""What the runs of case (a) left behind (`benchmarks/accounts.py`): per run, from the run records and
Dagster's event log in the Postgres instance, its times, accounts, process id, steps, checks and the
sync step's split; and whether every asset is materialized for every account."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from benchmarks.accounts_deploy import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from benchmarks.cases import MATERIALIZATION, STEP_ENDS, STEP_START, step_timings

SYNC_STEP = "raw_sources"
CHECK_EVALUATION = "ASSET_CHECK_EVALUATION"
_PID = re.compile(r"in process \(pid: (\d+)\)")  # "Executing steps in process (pid: 18727)"


def sync_breakdown(entries: Sequence[Any], sync_step_s: float | None) -> dict[str, Any]:
    """The sync step split at its first materialization, from Dagster's structured events only.

    Before it: planning, fetching every account of the run (parallel threads) and writing them to the
    warehouse; `fetch_max_s` (the slowest account's read of the slowest resource) and `write_tx_s` (the
    warehouse transactions, summed over accounts and tables) come from the materializations' metadata
    (`fetch_seconds`, `write_seconds`: each table's metadata covers the run's accounts). After it:
    Dagster recording the materializations, one per account and table, in the instance's event log.
    """
    sync = sorted(
        (e for e in entries if e.step_key == SYNC_STEP and e.dagster_event), key=lambda e: e.timestamp
    )
    starts = [e.timestamp for e in sync if e.dagster_event.event_type_value == STEP_START]
    materialized = [e for e in sync if e.dagster_event.event_type_value == MATERIALIZATION]
    if not starts or not materialized or sync_step_s is None:
        return {}
    first_by_key: dict[Any, Any] = {}
    for entry in materialized:
        first_by_key.setdefault(entry.dagster_event.asset_key, entry.dagster_event.event_specific_data)
    write_tx = fetch_max = 0.0
    for data in first_by_key.values():
        metadata = data.materialization.metadata
        write_tx += float(getattr(metadata.get("write_seconds"), "value", 0.0) or 0.0)
        fetch_max = max(fetch_max, float(getattr(metadata.get("fetch_seconds"), "value", 0.0) or 0.0))
    before = materialized[0].timestamp - starts[0]
    return {
        "before_materializations_s": before,
        "recording_s": sync_step_s - before,
        "materializations": len(materialized),
        "fetch_max_s": fetch_max,
        "write_tx_s": write_tx,
    }


def run_summary(instance: Any, record: Any, names: Sequence[str]) -> dict[str, Any]:
    """One run: its times (epoch seconds), accounts, process id, step timings, check results and
    `sync_breakdown`."""
    run = record.dagster_run
    stats = instance.get_run_stats(run.run_id)
    tags = dict(run.tags)
    first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
    last = tags.get(RANGE_END_TAG) or first
    accounts = names.index(last) - names.index(first) + 1 if first in names and last in names else None
    entries = instance.all_logs(run.run_id)
    events = [e for e in entries if e.dagster_event is not None]
    kinds = {STEP_START, *STEP_ENDS, MATERIALIZATION}
    timings = step_timings(
        (e.step_key, e.dagster_event.event_type_value, e.timestamp)
        for e in events
        if e.dagster_event.event_type_value in kinds
    )
    checks = [
        e.dagster_event.event_specific_data
        for e in events
        if e.dagster_event.event_type_value == CHECK_EVALUATION
    ]
    step_starts = [e.timestamp for e in events if e.dagster_event.event_type_value == STEP_START]
    pid = next((int(m.group(1)) for e in events if (m := _PID.search(e.user_message or ""))), None)
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "range": [first, last],
        "accounts": accounts,
        "pid": pid,
        "created": record.create_timestamp.timestamp(),
        "launched": stats.launch_time,
        "started": stats.start_time,
        "first_step": min(step_starts) if step_starts else None,
        "ended": stats.end_time,
        "checks_passed": sum(bool(c.passed) for c in checks),
        # Failed at ERROR severity; a WARN is by design on the demo data (a booking of a deleted event type).
        "checks_failed": sum(not c.passed and c.severity.value == "ERROR" for c in checks),
        "checks_warned": sum(not c.passed and c.severity.value == "WARN" for c in checks),
        "failed_checks": sorted(
            {f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed}
        ),
        **sync_breakdown(entries, timings.get("sync_step_s")),
        **{k: v for k, v in timings.items() if k != "step_s"},
        "step_s": timings.get("step_s", {}),
    }


def materialized_everywhere(
    instance: Any, keys: Sequence[Sequence[str]], names: Sequence[str]
) -> dict[str, int]:
    """Per asset, how many accounts have no materialized partition (all zeros when complete)."""
    import dagster as dg

    missing = {}
    for key in keys:
        done = instance.get_materialized_partitions(dg.AssetKey(list(key)))
        missing["/".join(key)] = len(set(names) - set(done))
    return missing
