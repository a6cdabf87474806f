"""`deploy/dagster.yaml` against a real PostgreSQL and a real `dagster-daemon` (nothing mocked).

- The instance the file describes keeps runs and event logs in Postgres (checked with SQL).
- Its `scheme: postgresql+psycopg2` is needed: the default plain `postgresql://` URL makes SQLAlchemy
  2.1 pick psycopg 3, which is not installed.
- Its run queue: `dagster-daemon run` with a copy of the file (only `max_concurrent_runs` lowered to 2)
  and a small code location (`sched_assets_tests/deploy_jobs.py`, partitions a, b, c standing in for
  accounts). Runs are submitted the way the UI does, through GraphQL: single-partition runs
  (`launchPipelineExecution`, tag `dagster/partition`), several for the same partition, and two
  overlapping backfills of an asset with a backfill policy (`launchPartitionBackfill`; their runs carry
  `dagster/asset_partition_range_start` instead). From the run records in Postgres: no two runs of
  one partition ever overlapped, under either tag, and never more than 2 runs were in progress.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import itertools
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy
import yaml
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from sched_assets_tests import deploy_jobs
from sched_assets_tests.postgres import PostgresCluster
from sched_assets_tests.processes import process_group

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_YAML = PROJECT_ROOT / "deploy" / "dagster.yaml"
LOCATION = "deploy_jobs"
REPOSITORY = "__repository__"  # the repository Dagster makes of a Definitions object
ASSET_JOB = "__ASSET_JOB"  # the implicit job the UI launches assets with

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_TAG = "dagster/backfill"

TEST_MAX_CONCURRENT_RUNS = 2  # lowered from the file's 4 so that the global cap binds with few runs
SLEEP_SECONDS = 1.5  # each materialization's body (deploy_jobs.DEPLOY_JOBS_SLEEP_SECONDS)
# Few runs: each costs a run-worker start-up (4-5 s on an idle 2-core box, far more when it is busy).
SINGLE_RUNS = ["a", "a", "b"]  # account_sync, one run each, launched like the UI's launchpad
BACKFILLS = 2  # overlapping backfills of account_sync_batched ...
BACKFILL_PARTITIONS = ["a", "b"]  # ... over the same accounts
RUNS_TIMEOUT = 360.0  # until every run is finished (about 40 s idle; 2 min with a load average of 14)

LAUNCH_BACKFILL_MUTATION = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""


# ---- the instance described by deploy/dagster.yaml ----------------------------------------------


def deploy_config(max_concurrent_runs: int | None = None) -> dict[str, Any]:
    """deploy/dagster.yaml as a dict; optionally with only the global run cap changed."""
    config = yaml.safe_load(DEPLOY_YAML.read_text())
    if max_concurrent_runs is not None:
        config["concurrency"]["runs"]["max_concurrent_runs"] = max_concurrent_runs
    return config


def write_home(directory: Path, config: Mapping[str, Any]) -> Path:
    """A DAGSTER_HOME holding `config` as its dagster.yaml."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dagster.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return directory


# As deploy/docker-compose.yaml and deploy/helm-values.yaml set it.
EVENT_BATCH_SIZE = "100"


def instance_env(cluster: PostgresCluster, dbname: str, home: Path) -> dict[str, str]:
    """The environment deploy/dagster.yaml reads (the test cluster trusts local clients: no password),
    and the event batching every process of the deployment gets (deploy/README.md)."""
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
        "DAGSTER_PG_HOST": cluster.host,
        "DAGSTER_PG_PORT": str(cluster.port),
        "DAGSTER_PG_USER": cluster.user,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": dbname,
    }


def query(cluster: PostgresCluster, dbname: str, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    connection = cluster.connect(dbname)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_deploy_yaml_instance_keeps_runs_and_events_in_postgres(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = write_home(tmp_path / "dagster_home", deploy_config())
    for name, value in instance_env(postgres, postgres_db, home).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEPLOY_JOBS_SLEEP_SECONDS", "0")

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        # Stored events share one kept connection (dagster-postgres alone opens one per event).
        connects = []
        sqlalchemy.event.listen(instance.event_log_storage._engine, "connect", lambda *_: connects.append(1))
        for _ in range(20):
            instance.report_runless_asset_event(dg.AssetMaterialization("pooled_check"))
        assert len(connects) <= 2, f"{len(connects)} connections for 20 events"  # kept + one nested
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 4
        assert [(limit["key"], limit["value"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [
            (PARTITION_TAG, {"applyLimitPerUniqueValue": True}, 1),
            (RANGE_START_TAG, {"applyLimitPerUniqueValue": True}, 1),
        ]
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled

        result = dg.materialize([deploy_jobs.account_sync], partition_key="b", instance=instance)
        assert result.success
        run_id = result.run_id

    # Straight from Postgres: Dagster's tables (run, event-log and schedule storage, migrations
    # stamped), the run, its partition tag and its materialization event.
    tables = {
        row[0]
        for row in query(postgres, postgres_db, "select tablename from pg_tables where schemaname = 'public'")
    }
    assert {
        "runs",
        "run_tags",
        "event_logs",
        "asset_keys",
        "instigators",
        "jobs",
        "alembic_version",
    } <= tables
    assert query(postgres, postgres_db, "select status from runs where run_id = %s", [run_id]) == [
        ("SUCCESS",)
    ]
    assert query(
        postgres,
        postgres_db,
        "select value from run_tags where run_id = %s and key = %s",
        [run_id, PARTITION_TAG],
    ) == [("b",)]
    materializations = query(
        postgres,
        postgres_db,
        "select asset_key, partition from event_logs where run_id = %s and dagster_event_type = %s",
        [run_id, "ASSET_MATERIALIZATION"],
    )
    assert materializations == [('["account_sync"]', "b")]

    # Another process with the same dagster.yaml sees the same history.
    with dg.DagsterInstance.get() as other:
        record = other.get_run_record_by_id(run_id)
        assert record is not None and record.dagster_run.status == dg.DagsterRunStatus.SUCCESS


def test_plain_postgresql_scheme_fails_without_psycopg3(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the file sets `scheme: postgresql+psycopg2`: without it nothing can open the instance."""
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg 3 is installed in this environment: the plain URL would load it")
    config = deploy_config()
    del config["storage"]["custom"]["config"]["postgres_db"]["scheme"]  # back to the default `postgresql://`
    home = write_home(tmp_path / "dagster_home", config)
    for name, value in instance_env(postgres, postgres_db, home).items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ModuleNotFoundError, match=r"^No module named 'psycopg'$"), dg.DagsterInstance.get():
        pass


# ---- the run queue, with dagster-daemon -----------------------------------------------------------


@dataclass(frozen=True)
class RunSpan:
    """One finished run as stored in Postgres: its tags and when it ran (epoch seconds)."""

    run_id: str
    status: dg.DagsterRunStatus
    tags: Mapping[str, str]
    launched: float  # STARTING (dequeued and handed to the launcher)
    start: float  # STARTED (the run worker is up)
    end: float  # SUCCESS / FAILURE
    body: tuple[float, float] | None  # the asset body's own start and end (materialization metadata)

    @property
    def account(self) -> str:
        return self.tags.get(PARTITION_TAG) or self.tags[RANGE_START_TAG]


@dataclass(frozen=True)
class QueueScenario:
    single: list[RunSpan]  # launchPipelineExecution runs of account_sync
    backfill: dict[str, list[RunSpan]]  # backfill id -> its runs of account_sync_batched
    wall_seconds: float
    daemon_log: Path

    @property
    def all_runs(self) -> list[RunSpan]:
        return self.single + [span for spans in self.backfill.values() for span in spans]


def workspace_file(directory: Path) -> Path:
    path = directory / "workspace.yaml"
    entry = {"module_name": "sched_assets_tests.deploy_jobs", "working_directory": str(PROJECT_ROOT)}
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": {**entry, "location_name": LOCATION}}]}))
    return path


def graphql(context: Any, mutation: str, variables: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    result = execute_dagster_graphql(context, mutation, variables=dict(variables))
    return result.data[field]


def launch_partition_run(context: Any, asset: str, partition: str) -> str:
    """What the UI's "Materialize" of one partition sends: the implicit asset job, a partition tag."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": ASSET_JOB,
            "assetSelection": [{"path": [asset]}],
        },
        "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": partition}]},
    }
    launched = graphql(
        context, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params}, "launchPipelineExecution"
    )
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def launch_backfill(context: Any, asset: str, partitions: Sequence[str], title: str) -> str:
    """What the UI's "Materialize selected partitions" (a backfill) sends."""
    params = {"assetSelection": [{"path": [asset]}], "partitionNames": list(partitions), "title": title}
    launched = graphql(
        context, LAUNCH_BACKFILL_MUTATION, {"backfillParams": params}, "launchPartitionBackfill"
    )
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def body_times(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float] | None:
    """When the run's asset body started and ended, from its materialization event."""
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = event.asset_materialization
        if materialization is not None:
            return (
                float(materialization.metadata["started"].value),
                float(materialization.metadata["ended"].value),
            )
    return None


def run_span(instance: dg.DagsterInstance, record: dg.RunRecord) -> RunSpan:
    run = record.dagster_run
    stats = instance.get_run_stats(run.run_id)
    assert record.start_time is not None and record.end_time is not None, (run.run_id, run.status)
    return RunSpan(
        run_id=run.run_id,
        status=run.status,
        tags=dict(run.tags),
        launched=stats.launch_time or record.start_time,
        start=record.start_time,
        end=record.end_time,
        body=body_times(instance, run.run_id),
    )


def wait_for_runs(
    instance: dg.DagsterInstance, single_ids: Sequence[str], backfill_ids: Sequence[str], daemon_log: Path
) -> tuple[list[dg.RunRecord], dict[str, list[dg.RunRecord]]]:
    """Poll the run storage until every single run and every run of each backfill has finished."""
    deadline = time.monotonic() + RUNS_TIMEOUT
    while True:
        single = list(instance.get_run_records(dg.RunsFilter(run_ids=list(single_ids))))
        backfill = {
            backfill_id: list(instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id})))
            for backfill_id in backfill_ids
        }
        records = single + [record for records in backfill.values() for record in records]
        done = (
            len(single) == len(single_ids)
            and all(len(records) == len(BACKFILL_PARTITIONS) for records in backfill.values())
            and all(record.dagster_run.is_finished for record in records)
        )
        if done:
            return single, backfill
        if time.monotonic() > deadline:
            statuses = sorted(
                f"{record.dagster_run.run_id[:8]} {record.dagster_run.status.value}" for record in records
            )
            log = daemon_log.read_text(errors="replace")[-4000:] if daemon_log.exists() else ""
            pytest.fail(
                f"runs not finished after {RUNS_TIMEOUT:.0f} s: {statuses}\n--- daemon log ---\n{log}"
            )
        time.sleep(0.5)


@pytest.fixture(scope="module")
def queue_scenario(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueueScenario]:
    """Run the whole scenario once for the module; the tests check different properties of it."""
    directory = tmp_path_factory.mktemp("deploy_queue")
    postgres.start()  # a no-op unless an earlier test left the server stopped
    dbname = postgres.create_database(f"deploy_queue_{uuid.uuid4().hex[:8]}")
    home = write_home(directory / "dagster_home", deploy_config(TEST_MAX_CONCURRENT_RUNS))
    workspace = workspace_file(directory)
    daemon_log = directory / "daemon.log"
    env = {**instance_env(postgres, dbname, home), "DEPLOY_JOBS_SLEEP_SECONDS": str(SLEEP_SECONDS)}

    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in env.items():
            patch.setenv(name, value)
        # Every run is a fresh Python process that imports dagster. Where PYTHONDONTWRITEBYTECODE is
        # set (as on the dev box), each one compiles dagster from source again: about half its start-up
        # CPU. Let the daemon, code servers and run workers share compiled bytecode in a private
        # directory (nothing is written next to the sources).
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        patch.setenv("PYTHONPYCACHEPREFIX", str(directory / "pycache"))
        instance = stack.enter_context(dg.DagsterInstance.get())
        # The test's own GraphQL context, like a webserver's: it loads the code location in a code server.
        process_context = stack.enter_context(
            WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)]))
        )
        context = process_context.create_request_context()
        started = time.monotonic()

        # Backfills first: the daemon's backfill loop turns them into runs on its first pass (it runs
        # every 30 s), then the queue starts them under the limits.
        backfill_ids = [
            launch_backfill(
                context, "account_sync_batched", BACKFILL_PARTITIONS, f"overlapping backfill {number}"
            )
            for number in range(BACKFILLS)
        ]
        log_file = stack.enter_context(daemon_log.open("wb"))
        daemon = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)]
        stack.enter_context(
            process_group(daemon, cwd=PROJECT_ROOT, stdout=log_file, stderr=log_file, grace=10.0)
        )
        # Single-partition runs while the daemon works, as a user clicking in the UI would.
        single_ids = [launch_partition_run(context, "account_sync", partition) for partition in SINGLE_RUNS]
        single, backfill = wait_for_runs(instance, single_ids, backfill_ids, daemon_log)
        wall = time.monotonic() - started

        scenario = QueueScenario(
            single=[run_span(instance, record) for record in single],
            backfill={
                key: [run_span(instance, record) for record in records] for key, records in backfill.items()
            },
            wall_seconds=wall,
            daemon_log=daemon_log,
        )
    launches = [span.start - span.launched for span in scenario.all_runs]
    print(
        f"\n{len(scenario.all_runs)} runs in {scenario.wall_seconds:.1f} s; launch (STARTING -> STARTED) "
        f"median {statistics.median(launches):.1f} s, max {max(launches):.1f} s; "
        f"run (STARTED -> end) median {statistics.median(span.end - span.start for span in scenario.all_runs):.1f} s"
    )
    yield scenario
    with contextlib.suppress(Exception):
        postgres.drop_database(dbname)


def overlaps_within_account(spans: Sequence[RunSpan]) -> list[tuple[str, str, str]]:
    """Pairs of runs of the same account whose [launched, end] intervals overlap."""
    by_account: dict[str, list[RunSpan]] = defaultdict(list)
    for span in spans:
        by_account[span.account].append(span)
    found = []
    for account, runs in by_account.items():
        runs.sort(key=lambda span: span.launched)
        for before, after in itertools.pairwise(runs):
            if after.launched < before.end:
                found.append((account, before.run_id, after.run_id))
    return found


def peak_in_progress(spans: Sequence[RunSpan]) -> int:
    """The most runs in progress at one moment (launched .. end; an end at the same instant goes first)."""
    events = sorted([(span.launched, 1) for span in spans] + [(span.end, -1) for span in spans])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.slow
def test_single_partition_runs_of_one_account_never_overlap(queue_scenario: QueueScenario) -> None:
    runs = queue_scenario.single
    assert [span.status for span in runs] == [dg.DagsterRunStatus.SUCCESS] * len(SINGLE_RUNS)
    assert sorted(span.tags[PARTITION_TAG] for span in runs) == sorted(SINGLE_RUNS)
    assert not any(RANGE_START_TAG in span.tags for span in runs)
    assert overlaps_within_account(runs) == []
    # The runs of "a" ran one after another, each body inside its own run.
    a_runs = sorted((span for span in runs if span.account == "a"), key=lambda span: span.start)
    for before, after in itertools.pairwise(a_runs):
        assert after.start > before.end
    for span in runs:
        assert span.body is not None and span.start <= span.body[0] < span.body[1] <= span.end


@pytest.mark.slow
def test_backfill_runs_of_one_account_never_overlap(queue_scenario: QueueScenario) -> None:
    assert len(queue_scenario.backfill) == BACKFILLS
    runs = [span for spans in queue_scenario.backfill.values() for span in spans]
    assert [span.status for span in runs] == [dg.DagsterRunStatus.SUCCESS] * (
        BACKFILLS * len(BACKFILL_PARTITIONS)
    )
    for spans in queue_scenario.backfill.values():
        # A backfill policy's runs carry the range tags, not dagster/partition: hence the second limit.
        assert sorted(span.tags[RANGE_START_TAG] for span in spans) == BACKFILL_PARTITIONS
        assert all(span.tags[RANGE_END_TAG] == span.tags[RANGE_START_TAG] for span in spans)
        assert not any(PARTITION_TAG in span.tags for span in spans)
    # The two backfills both ran every account, never the same account at the same time.
    assert overlaps_within_account(runs) == []
    for span in runs:
        assert span.body is not None and span.start <= span.body[0] < span.body[1] <= span.end


@pytest.mark.slow
def test_never_more_runs_in_progress_than_the_global_cap(queue_scenario: QueueScenario) -> None:
    runs = queue_scenario.all_runs
    assert len(runs) == len(SINGLE_RUNS) + BACKFILLS * len(BACKFILL_PARTITIONS)
    # The cap binds (2 at once happened) and holds (never 3), over single and backfill runs together.
    assert peak_in_progress(runs) == TEST_MAX_CONCURRENT_RUNS


def test_deploy_yaml_limits_every_account_under_both_partition_tags() -> None:
    """The file itself: both per-account limits, exactly (the daemon test copies them unchanged)."""
    config = deploy_config()
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [
        {"key": PARTITION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
        {"key": RANGE_START_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    ]
    patched = deploy_config(TEST_MAX_CONCURRENT_RUNS)
    assert patched["concurrency"]["runs"]["tag_concurrency_limits"] == limits
    expected = copy.deepcopy(config)
    expected["concurrency"]["runs"]["max_concurrent_runs"] = TEST_MAX_CONCURRENT_RUNS
    assert patched == expected
    postgres_db = config["storage"]["custom"]["config"]["postgres_db"]
    assert postgres_db["scheme"] == "postgresql+psycopg2"
    assert {
        field: postgres_db[field] for field in ("hostname", "port", "username", "password", "db_name")
    } == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
