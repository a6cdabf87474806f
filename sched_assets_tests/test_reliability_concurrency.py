"""Concurrency on one DuckDB file: two runs of the main command at once, and the multiprocess executor.

Acceptable: both runs succeed, or one waits and then succeeds, or one fails with a clear message. Never
acceptable: a lock error from DuckDB, or a table that is corrupt or partial afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from sched_assets.defs.analytics import analytics_assets
from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi
from sched_assets_tests.reliability_helpers import (
    Snapshot,
    account_records,
    analytics_only,
    assert_raw_tables_exact,
    command_env,
    demo_server,
    diff_snapshots,
    finish,
    record_outcome,
    snapshot,
    start_main_command,
    sync,
)

BOOKINGS = 2000
LOCK_ERRORS = ("Could not set lock", "database is locked", "IO Error", "Conflicting lock")


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(bookings=BOOKINGS)


@pytest.fixture(scope="module")
def reference(account: DemoAccount, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """Analytics tables of a plain in-process sync of `account`, to compare concurrent runs with."""
    database = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    api = DemoApi(account)
    with dg.instance_for_test() as instance, demo_server(api) as server:
        run = sync(api, server.url, database, instance, page_size=250)
    assert run.success, run.failure()
    return analytics_only(snapshot(database))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_runs_of_the_main_command_at_once(
    account: DemoAccount, reference: Snapshot, tmp_path: Path
) -> None:
    """Two `dagster asset materialize --select '*'` processes, one database file, one DAGSTER_HOME."""
    database = tmp_path / "sched.duckdb"
    home = tmp_path / "dagster_home"
    home.mkdir()
    # A DAGSTER_HOME used before (its sqlite storage exists). Two *first-ever* runs on a fresh home race
    # in Dagster's own storage migrations ("table alembic_version already exists"): Dagster's, not ours.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs()
    api = DemoApi(account)
    with demo_server(api) as server:
        env = command_env(server.url, DEMO_API_KEY, database, home)
        started = time.perf_counter()
        procs = [start_main_command(env) for _ in range(2)]
        runs = [finish(proc, started, timeout=240) for proc in procs]
        requests = api.stats.requests

    outputs = "\n".join(run.output for run in runs)
    for run in runs:
        if run.returncode != 0:
            # The only acceptable failure: a clear "wait for the other run" message.
            assert "another process" in run.output and "Wait for the other run" in run.output, run.stderr[
                -3000:
            ]
    assert any(run.returncode == 0 for run in runs)
    assert not any(error in outputs for error in LOCK_ERRORS), outputs[-3000:]
    assert_raw_tables_exact(database, account_records(account))
    assert diff_snapshots(reference, analytics_only(snapshot(database))) == []
    record_outcome(
        f"two main-command runs at once on one DuckDB file ({BOOKINGS:,} bookings)",
        outcome=" / ".join("succeeded" if run.returncode == 0 else "failed clearly" for run in runs),
        tables="exact",
        requests=requests,
        retries=0,
        throttled_429=0,
        seconds=round(max(run.seconds for run in runs), 1),
    )


def multiprocess_job() -> dg.JobDefinition:
    """Every asset of the real definitions (resources from the environment) with Dagster's default
    multiprocess executor: one process per step. Module level, so `dg.reconstructable` finds it.

    Checks are left out: each would be one more process start (~3 s on 2 cores) and they only read.
    """
    from sched_assets.definitions import defs

    real = defs()
    job = dg.define_asset_job(
        "assets_multiprocess",
        selection=dg.AssetSelection.all().without_checks(),
        executor_def=dg.multiprocess_executor,
    )
    return dg.Definitions(
        assets=real.assets, asset_checks=real.asset_checks, resources=real.resources, jobs=[job]
    ).resolve_job_def(job.name)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_multiprocess_executor_runs_every_asset_without_lock_errors(
    account: DemoAccount, reference: Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source step, then the five analytics steps in their own processes (4 at once), one file."""
    database = tmp_path / "sched.duckdb"
    api = DemoApi(account)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with demo_server(api) as server, dg.instance_for_test(temp_dir=str(home)) as instance:
        monkeypatch.setenv("SCHED_API_BASE_URL", server.url)
        monkeypatch.setenv("SCHED_API_KEY", DEMO_API_KEY)
        monkeypatch.setenv("SCHED_DUCKDB_PATH", str(database))
        started = time.perf_counter()
        result = dg.execute_job(
            dg.reconstructable(multiprocess_job),
            instance=instance,
            run_config={"execution": {"config": {"max_concurrent": 4}}},
        )
        seconds = time.perf_counter() - started
        messages = [entry.user_message or "" for entry in instance.all_logs(result.run_id)]
        steps = {event.step_key for event in result.get_step_success_events()}
        failures = [event.event_specific_data for event in result.all_events if event.is_step_failure]

    assert result.success, failures
    assert len(steps) == 1 + len(analytics_assets)  # the source step and one step per analytics asset
    assert not any(error in message for message in messages for error in LOCK_ERRORS)
    assert_raw_tables_exact(database, account_records(account))
    assert diff_snapshots(reference, analytics_only(snapshot(database))) == []
    record_outcome(
        f"multiprocess executor, every asset its own process ({len(steps)} steps, 4 at once)",
        outcome="run succeeded, no lock errors",
        tables="exact",
        requests=api.stats.requests,
        retries=0,
        throttled_429=0,
        seconds=round(seconds, 1),
    )
