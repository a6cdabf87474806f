"""Many accounts deployed for real: `sched_assets.definitions` on a Postgres instance run by `dagster-daemon`.

Nothing is mocked. The deployment is what docs/accounts.md and deploy/dagster.yaml describe:

- the real code location (`dagster api grpc -m sched_assets.definitions`, the one user-code server the
  daemon, its run workers and the test's GraphQL context all use), with `SCHED_ACCOUNTS_FILE` naming an
  accounts file for a multi-account demo server on a real socket (each key in its own variable, each key
  limited to 120 requests per minute), `SCHED_DUCKDB_PATH` a DuckDB file, `SCHED_ACCOUNTS_PER_RUN=2`;
- `deploy/dagster.yaml` as the instance on a private PostgreSQL cluster, only `max_concurrent_runs`
  lowered to 2 (the per-account tag limits unchanged), and `dagster-daemon run` as a subprocess.

One scenario for the module, in two phases the tests check from the run records (Postgres), the
runs' event logs, the demo server's request log and the warehouse:

1. A backfill of every asset over every account (GraphQL `launchPartitionBackfill`, as the UI sends
   it: runs [demo-001, demo-002] and [demo-003]). While its batch run is in the middle of syncing
   demo-001 (its requests held at the demo server's gate), two single-partition runs of demo-001 are
   launched (`launchPipelineExecution`, tag `dagster/partition`). The tag limit keeps the two apart,
   but cannot stop the first next to the batch (which carries `dagster/asset_partition_range_start`
   instead): the two are in progress at once, and only the key lock (a Postgres advisory lock) keeps
   their syncs of demo-001 apart, as the runs' event logs and the demo server's request log show.
2. The accounts change (edited and new bookings), the warehouse is snapshotted, and a second backfill
   starts. With demo-001's batch held in the middle of its fetch and demo-003's batch just past its
   first table write, PostgreSQL restarts (`PostgresCluster.restart()`). Every table of every account
   is then exactly as before or exactly complete; the partitions that did not complete are re-run by
   a third backfill, which leaves every account exact.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.tags import AUTO_RETRY_RUN_ID_TAG, WILL_RETRY_TAG
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_postgres import PostgresRunStorage

from sched_assets.demo import serve
from sched_assets.demo.accounts import DemoAccountKey, demo_accounts, write_accounts_file
from sched_assets.demo.ratelimit import RateLimit
from sched_assets_tests.deployment_helpers import (
    ApiRequest,
    CodeServer,
    Gate,
    GatedDemoApi,
    RunWindow,
    Snapshot,
    account_tables,
    asset_keys,
    bookings_fingerprint,
    covered_accounts,
    files_containing,
    launch_backfill,
    launch_partition_run,
    peak_in_progress,
    postgres_rows_containing,
    raw_materialization_times,
    raw_materializations,
    run_window,
    served_fingerprint,
    shared_account_overlaps,
    snapshot,
    step_failure_messages,
    step_started,
    summarize,
    sync_shape,
    synced_at,
    timed,
    wait_until,
    waited_events,
)
from sched_assets_tests.postgres import PostgresCluster
from sched_assets_tests.processes import process_group
from sched_assets_tests.test_deploy_instance import (
    BACKFILL_TAG,
    PARTITION_TAG,
    RANGE_START_TAG,
    deploy_config,
    instance_env,
    write_home,
)

ACCOUNTS = 3
BOOKINGS = 200  # mean per account (demo_accounts spreads them: 200 +- up to 50)
PER_RUN = 2  # SCHED_ACCOUNTS_PER_RUN: backfill runs [demo-001, demo-002] and [demo-003]
MAX_RUNS = (
    2  # max_concurrent_runs, lowered from the file's 4 so that the global cap binds (4 runs in phase 1)
)
HELD = "demo-001"  # the account whose sync the test holds in flight (its requests wait at the gate)
OTHER = "demo-003"  # the account of the other batch
RATE_LIMIT = RateLimit(120, 60.0)  # per key, as the real service
GATE_MAX_HOLD = 50.0  # a held request is let through after this (the client's read timeout is 60 s)
STARTUP_TIMEOUT = 240.0  # code server up, first run syncing (a run worker starts in 5-20 s on 2 busy cores)
RUNS_TIMEOUT = 300.0


# ---- the deployment ------------------------------------------------------------------------------


@dataclass
class Deployment:
    keys: list[DemoAccountKey]
    api: GatedDemoApi
    postgres: PostgresCluster
    dbname: str
    instance: dg.DagsterInstance
    process_context: WorkspaceProcessContext
    workspace: Path
    database: Path
    directory: Path
    stack: contextlib.ExitStack
    t0: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    asset_keys: list[list[str]] = field(default_factory=list)
    daemon_log: Path | None = None

    @property
    def names(self) -> list[str]:
        return [key.name for key in self.keys]

    def context(self) -> Any:
        return self.process_context.create_request_context()

    def start_daemon(self) -> None:
        self.daemon_log = self.directory / "daemon.log"
        log = self.stack.enter_context(self.daemon_log.open("wb"))
        daemon = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(self.workspace)]
        self.stack.enter_context(process_group(daemon, stdout=log, stderr=log, grace=10.0))

    def windows(self, records: list[dg.RunRecord]) -> list[RunWindow]:
        return [run_window(self.instance, record, self.names) for record in records]

    def diagnostics(self) -> str:
        records = self.instance.get_run_records(
            dg.RunsFilter(created_after=datetime.fromtimestamp(self.t0, UTC))
        )
        runs = "\n".join(
            f"  {r.dagster_run.run_id[:8]} {r.dagster_run.status.value} "
            f"{ {k: v for k, v in r.dagster_run.tags.items() if k.startswith('dagster/')} }"
            for r in records
        )
        log = self.daemon_log.read_text(errors="replace")[-4000:] if self.daemon_log else ""
        return f"runs:\n{runs}\n--- daemon log (tail) ---\n{log}"

    def finished_runs(self, runs_filter: dg.RunsFilter, expected: int) -> list[dg.RunRecord] | None:
        """The runs of the filter once `expected` exist, all have finished and none waits for a retry."""
        records = list(self.instance.get_run_records(runs_filter))
        if len(records) < expected or not all(r.dagster_run.is_finished for r in records):
            return None
        for record in records:
            run = record.dagster_run
            if run.status == dg.DagsterRunStatus.FAILURE and (
                WILL_RETRY_TAG not in run.tags  # the failure is being recorded
                or (run.tags[WILL_RETRY_TAG] == "true" and AUTO_RETRY_RUN_ID_TAG not in run.tags)
            ):
                return None
        return records


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("accounts_deploy")
    postgres.start()  # a no-op unless an earlier test left the server stopped
    dbname = postgres.create_database(f"accounts_deploy_{uuid.uuid4().hex[:8]}")
    home = write_home(directory / "dagster_home", deploy_config(MAX_RUNS))
    keys = demo_accounts(ACCOUNTS, bookings=BOOKINGS)
    api = GatedDemoApi(keys, rate_limit=RATE_LIMIT)
    database = directory / "warehouse.duckdb"
    # Every run is a fresh Python process. Where PYTHONDONTWRITEBYTECODE is set (this machine), each
    # would compile Dagster again: share one bytecode cache, kept across sessions in pytest's cache.
    cache = request.config.cache
    pycache = cache.mkdir("sched-pycache") if cache is not None else directory / "pycache"

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serve(api))
        files = write_accounts_file(keys, directory / "accounts.yaml", base_url=server.url)
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name in [n for n in os.environ if n.startswith(("SCHED_", "DAGSTER_"))]:
            patch.delenv(name)
        env = {
            **instance_env(postgres, dbname, home),
            "SCHED_ACCOUNTS_FILE": str(files.accounts),
            "SCHED_DUCKDB_PATH": str(database),
            "SCHED_ACCOUNTS_PER_RUN": str(PER_RUN),
            **{key.api_key_env: key.api_key for key in keys},
            "PYTHONPYCACHEPREFIX": str(pycache),
            "PYTHONUNBUFFERED": "1",
        }
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)

        deployment_t0 = time.monotonic()
        code_server = CodeServer(dict(os.environ), directory / "code_server.log")
        stack.callback(code_server.stop)
        instance = stack.enter_context(dg.DagsterInstance.get())
        assert isinstance(instance.run_storage, PostgresRunStorage)
        code_server.wait_ready(STARTUP_TIMEOUT)
        workspace = code_server.workspace(directory)
        process_context = stack.enter_context(
            WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)]))
        )
        deployment = Deployment(
            keys=keys,
            api=api,
            postgres=postgres,
            dbname=dbname,
            instance=instance,
            process_context=process_context,
            workspace=workspace,
            database=database,
            directory=directory,
            stack=stack,
        )
        deployment.asset_keys = asset_keys(deployment.context())
        deployment.timings["code server up"] = time.monotonic() - deployment_t0
        yield deployment
        print("\n" + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in deployment.timings.items()))
    with contextlib.suppress(Exception):
        postgres.drop_database(dbname)


# ---- phase 1: a backfill over every account, and single runs of an account a batch is syncing ----


@dataclass
class FirstPhase:
    backfill_id: str
    backfill: list[RunWindow]
    singles: list[RunWindow]  # two single-partition runs of HELD, launched together
    gate: Gate
    requests: list[ApiRequest]  # every API request of the phase
    tables: Snapshot

    @property
    def all_runs(self) -> list[RunWindow]:
        return [*self.backfill, *self.singles]


@pytest.fixture(scope="module")
def first_phase(deployment: Deployment) -> FirstPhase:
    d = deployment
    with timed(d.timings, "phase 1"):
        gate = d.api.close_gate(HELD, GATE_MAX_HOLD)
        started = time.time()
        # Launched before the daemon starts: its first backfill pass turns it into runs at once.
        backfill_id = launch_backfill(d.context(), d.asset_keys, d.names, "every account")
        d.start_daemon()
        wait_until(gate.arrived.is_set, STARTUP_TIMEOUT, f"a batch run syncing {HELD}", d.diagnostics)
        # The batch run holds demo-001's key lock and waits for its API answers. Now a user materializes
        # demo-001 alone, twice. The first run waits in the queue for a slot (the other batch's), then
        # for the key lock; the second, for the first (same `dagster/partition` value).
        single_ids = [launch_partition_run(d.context(), d.asset_keys, HELD) for _ in range(2)]
        remaining = GATE_MAX_HOLD - (time.time() - (gate.first_arrival or time.time())) - 6
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: step_started(d.instance, single_ids[0]), max(remaining, 1), "single run's step"
            )
        time.sleep(2.0)  # its sync is now polling for the key lock (it logs the wait from 1 s on)
        gate.open()

        expected = math.ceil(ACCOUNTS / PER_RUN)
        backfill = wait_until(
            lambda: d.finished_runs(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}), expected),
            RUNS_TIMEOUT,
            "the first backfill's runs finished",
            d.diagnostics,
        )
        singles = wait_until(
            lambda: d.finished_runs(dg.RunsFilter(run_ids=single_ids), len(single_ids)),
            RUNS_TIMEOUT,
            "the single-partition runs finished",
            d.diagnostics,
        )
        by_id = {record.dagster_run.run_id: record for record in singles}
        phase = FirstPhase(
            backfill_id=backfill_id,
            backfill=d.windows(backfill),
            singles=d.windows([by_id[run_id] for run_id in single_ids]),
            gate=gate,
            requests=[r for r in d.api.requests() if r.arrived >= started],
            tables=snapshot(d.database),
        )
    print(f"\nphase 1 runs:\n{summarize(phase.all_runs, d.t0)}")
    for window in phase.all_runs:
        plans = bookings_plans(d.instance, window.run_id)
        print(f"  {window.run_id[:8]} raw/bookings sync_plan: {plans}")
    return phase


def bookings_plans(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """partition -> the `sync_plan` of the run's raw/bookings materialization (how it read)."""
    plans = {}
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = event.asset_materialization
        if materialization is not None and materialization.asset_key == dg.AssetKey(["raw", "bookings"]):
            plans[str(materialization.partition)] = str(materialization.metadata["sync_plan"].value)
    return plans


@pytest.mark.slow
def test_backfill_over_all_accounts_completes_exactly(
    deployment: Deployment, first_phase: FirstPhase
) -> None:
    d = deployment
    runs = first_phase.all_runs
    assert [w.status for w in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs), d.diagnostics()
    # The backfill cut the accounts into batches of SCHED_ACCOUNTS_PER_RUN, in partition order.
    assert sorted(w.accounts for w in first_phase.backfill) == [("demo-001", "demo-002"), ("demo-003",)]
    assert all(PARTITION_TAG not in w.tags for w in first_phase.backfill)

    # Every partition of every asset is materialized.
    for key in d.asset_keys:
        done = d.instance.get_materialized_partitions(dg.AssetKey(key))
        assert done >= set(d.names), (key, sorted(done))

    # Each account's tables are all there, its bookings exactly what its demo account serves.
    tables_of_assets = {".".join(key) for key in d.asset_keys}
    for key in d.keys:
        tables = account_tables(first_phase.tables, key.name)
        assert len(tables["raw.bookings"]) == key.bookings, key.name
        assert bookings_fingerprint(d.database, key.name) == served_fingerprint(d.api, key.name)
        assert set(tables) == tables_of_assets, (key.name, tables_of_assets ^ set(tables))

    # Each key kept to its own budget: not one 429, no request while blocked.
    for name in d.names:
        stats = d.api.account_stats(name)
        assert stats.throttled == 0 and stats.blocked_times == [], (name, dict(stats.by_status))


@pytest.mark.slow
def test_runs_obey_the_per_account_and_global_limits(deployment: Deployment, first_phase: FirstPhase) -> None:
    """From the run records in Postgres: the queue's limits held, and where they cannot see, the lock did."""
    d = deployment
    queue = d.instance.get_concurrency_config().run_queue_config
    assert queue is not None and queue.max_concurrent_runs == MAX_RUNS
    # The per-account limits are the file's, unchanged.
    assert [dict(limit) for limit in queue.tag_concurrency_limits] == deploy_config()["concurrency"]["runs"][
        "tag_concurrency_limits"
    ]
    runs = first_phase.all_runs
    context = summarize(runs, d.t0)
    # Global cap: never more than MAX_RUNS in progress, and the cap did bind (4 runs wanted to run).
    assert peak_in_progress(runs) == MAX_RUNS, context
    # Per-account tag limits (both tags, per unique value): runs with the same value never overlapped;
    # here the two single runs of demo-001.
    same_tag = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :] if a.limit_tag == b.limit_tag]
    assert [(a.run_id, b.run_id) for a, b in same_tag] == [tuple(w.run_id for w in first_phase.singles)]
    for a, b in same_tag:
        assert not a.overlaps(b), context
    # Runs covering a common account that were in progress together: only what the tag limits cannot
    # see (a single-partition run next to the batch that covers the account) ...
    overlaps = shared_account_overlaps(runs)
    assert overlaps, f"no single run overlapped the batch covering {HELD}:\n{context}"
    for a, b, common in overlaps:
        assert {a.limit_tag[0], b.limit_tag[0]} == {PARTITION_TAG, RANGE_START_TAG}, context
        assert common == {HELD}, context
    # Whether the key lock made one of them wait depends on timing (under load the batch may be done
    # with its raw step before the single run's begins); the forced case, with the batch held mid-sync,
    # is test_a_single_run_never_syncs_an_account_a_batch_is_syncing.


def unpaged(shape: Counter[str]) -> dict[str, int]:
    """A sync's requests per path, bookings left out (their page count depends on the account's size)."""
    return {path: count for path, count in shape.items() if not path.endswith("/bookings")}


@pytest.mark.slow
def test_a_single_run_never_syncs_an_account_a_batch_is_syncing(
    deployment: Deployment, first_phase: FirstPhase
) -> None:
    d = deployment
    single = first_phase.singles[0]
    [batch] = [w for w in first_phase.backfill if HELD in w.accounts]
    context = summarize(first_phase.all_runs, d.t0)
    assert not first_phase.gate.timed_out, f"the gate let {HELD} through before the single run started"
    # The queue let both runs be in progress together (different tags) ...
    assert single.overlaps(batch), context
    # ... and the single run's sync of demo-001 waited for the batch's key lock.
    waits = waited_events(d.instance, single.run_id)
    assert HELD in waits, (waits, context)
    seconds, acquired = waits[HELD]
    assert seconds >= 1.0
    # The batch had written all of demo-001's raw tables before the single run got the lock.
    batch_writes = raw_materialization_times(d.instance, batch.run_id, HELD)
    assert len(batch_writes) == len([k for k in d.asset_keys if k[0] == "raw"])
    assert max(batch_writes) < acquired, (batch_writes, acquired)

    # The demo server's log of demo-001's requests: the batch's complete sync, all answered before its
    # first write, then the single runs' syncs, all after the first one got the lock; nothing between.
    held = [r for r in first_phase.requests if r.account == HELD]
    batch_requests = [r for r in held if r.arrived < acquired]
    later = [r for r in held if r.arrived >= acquired]
    assert batch_requests and later
    assert max(r.ended for r in batch_requests) < min(batch_writes)
    # The batch's requests are one full sync, shaped like another account's full sync in this phase.
    other = [r for r in first_phase.requests if r.account == OTHER]
    assert unpaged(sync_shape(batch_requests)) == unpaged(sync_shape(other))
    assert not any(r.incremental for r in batch_requests)
    # Then the single runs' syncs (each of every resource; full or incremental reads of the bookings:
    # the plan may see the table as it was before the lock was granted).
    assert set(sync_shape(later)) == set(sync_shape(other))

    # Three syncs of demo-001 wrote; its tables are exact.
    assert bookings_fingerprint(d.database, HELD) == served_fingerprint(d.api, HELD)
    assert len(account_tables(first_phase.tables, HELD)["raw.bookings"]) == d.keys[0].bookings


@pytest.mark.slow
def test_a_run_that_waited_for_the_key_lock_reads_incrementally(
    deployment: Deployment, first_phase: FirstPhase
) -> None:
    """By the time the single run got demo-001's lock, the batch had written its rows and recorded its
    cursor: the single run should read only what changed since, like the run after it does."""
    d = deployment
    first, second = first_phase.singles
    assert HELD in waited_events(d.instance, first.run_id)
    assert bookings_plans(d.instance, second.run_id)[HELD].startswith("incremental")
    plan = bookings_plans(d.instance, first.run_id)[HELD]
    assert plan.startswith("incremental"), (
        f"the run that waited for the key lock planned {plan!r}, although demo-001's rows were in "
        "raw.bookings when it got the lock"
    )


# ---- phase 2: a Postgres restart in the middle of a backfill, then a re-run of what failed -------


@dataclass
class RestartPhase:
    backfill_id: str
    runs: list[RunWindow]  # every run since the second backfill was launched (retries included)
    postmaster_pids: tuple[int | None, int | None]  # before and after the restart
    written_at_restart: int  # raw materializations the writing batch had logged when Postgres went down
    held_gate_timed_out: bool
    before: Snapshot  # the warehouse when the second backfill was launched
    after_restart: Snapshot  # when every run of the second backfill had ended
    synced_before: dict[tuple[str, str], Any]  # (raw table, account) -> newest _synced_at
    synced_after_restart: dict[tuple[str, str], Any]
    reported: dict[str, dict[str, set[str]]]  # run id -> account -> raw tables it reported materialized
    materialized: set[tuple[str, str]]  # (table, account) materialized by the second backfill
    incomplete: list[str]  # accounts with an asset the second backfill did not materialize
    rerun: list[RunWindow]
    final: Snapshot
    failures: dict[str, list[str]]  # run id -> its step failures (message <- cause <- ...)
    changed: dict[str, tuple[int, int]]  # account -> (bookings edited, bookings added)

    def run_covering(self, account: str) -> RunWindow:
        [window] = [w for w in self.runs if account in w.accounts]
        return window


def materialized_since(instance: dg.DagsterInstance, key: list[str], account: str, since: float) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[account], after_timestamp=since),
        limit=1,
    ).records
    return bool(records)


@pytest.fixture(scope="module")
def restart_phase(deployment: Deployment, first_phase: FirstPhase) -> RestartPhase:
    d = deployment
    with timed(d.timings, "phase 2"):
        # The accounts change, so that a sync that completes leaves every account's tables different.
        changed = {}
        for name in d.names:
            demo = d.api.account_for(name)
            changed[name] = (len(demo.touch(0.1)), len(demo.add(7)))
        before = snapshot(d.database)
        synced_before = synced_at(d.database)

        # Both batches are held in the middle of their fetch (each holding its accounts' key locks).
        held_gate = d.api.close_gate(HELD, GATE_MAX_HOLD)
        other_gate = d.api.close_gate(OTHER, GATE_MAX_HOLD)
        launched = time.time()
        since = dg.RunsFilter(created_after=datetime.fromtimestamp(launched - 1, UTC))
        backfill_id = launch_backfill(d.context(), d.asset_keys, d.names, "every account, again")
        wait_until(
            lambda: held_gate.arrived.is_set() and other_gate.arrived.is_set(),
            RUNS_TIMEOUT,
            "both batches of the second backfill syncing",
            d.diagnostics,
        )
        [writing] = [
            r.dagster_run.run_id
            for r in d.instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
            if OTHER in covered_accounts(r.dagster_run.tags, d.names)
        ]
        # demo-003's batch goes on; Postgres restarts as soon as it has written its first raw table,
        # while demo-001's batch is still waiting for the API.
        other_gate.open()
        written = wait_until(
            lambda: raw_materialization_times(d.instance, writing, OTHER),
            GATE_MAX_HOLD / 2,
            "demo-003's batch writing",
            d.diagnostics,
            interval=0.02,
        )
        pid_before = d.postgres.postmaster_pid
        with timed(d.timings, "postgres restart"):
            d.postgres.restart()
        pid_after = d.postgres.postmaster_pid
        held_gate.open()

        expected = math.ceil(ACCOUNTS / PER_RUN)
        records = wait_until(
            lambda: d.finished_runs(since, expected), RUNS_TIMEOUT, "second backfill ended", d.diagnostics
        )
        runs = d.windows(records)
        after_restart = snapshot(d.database)
        synced_after_restart = synced_at(d.database)
        reported = {
            w.run_id: {name: set(raw_materializations(d.instance, w.run_id, name)) for name in w.accounts}
            for w in runs
        }
        materialized = {
            (".".join(key), name)
            for key in d.asset_keys
            for name in d.names
            if materialized_since(d.instance, key, name, launched)
        }
        tables = {".".join(key) for key in d.asset_keys}
        incomplete = [name for name in d.names if any((t, name) not in materialized for t in tables)]

        # The operator re-runs what failed: a backfill of those accounts.
        rerun_id = launch_backfill(d.context(), d.asset_keys, incomplete or d.names, "re-run what failed")
        rerun = wait_until(
            lambda: d.finished_runs(
                dg.RunsFilter(tags={BACKFILL_TAG: rerun_id}), math.ceil(len(incomplete or d.names) / PER_RUN)
            ),
            RUNS_TIMEOUT,
            "the re-run finished",
            d.diagnostics,
        )
        phase = RestartPhase(
            backfill_id=backfill_id,
            runs=runs,
            postmaster_pids=(pid_before, pid_after),
            written_at_restart=len(written),
            held_gate_timed_out=held_gate.timed_out,
            before=before,
            after_restart=after_restart,
            synced_before=synced_before,
            synced_after_restart=synced_after_restart,
            reported=reported,
            materialized=materialized,
            incomplete=incomplete,
            rerun=d.windows(rerun),
            final=snapshot(d.database),
            failures={w.run_id: step_failure_messages(d.instance, w.run_id) for w in runs},
            changed=changed,
        )
    print(f"\nphase 2 runs:\n{summarize(phase.runs, d.t0)}\nre-run:\n{summarize(phase.rerun, d.t0)}")
    print(
        f"restart after {phase.written_at_restart} raw write(s) of {OTHER}; incomplete: {incomplete}; "
        f"raw tables reported per run: { {k[:8]: {a: sorted(t) for a, t in v.items()} for k, v in reported.items()} }"
    )
    for run_id, messages in phase.failures.items():
        for message in messages:
            print(f"  {run_id[:8]} step failure: {' '.join(message.split())[:700]}")
    return phase


@pytest.mark.slow
def test_postgres_restart_mid_backfill_leaves_no_partial_table(
    deployment: Deployment, restart_phase: RestartPhase
) -> None:
    d = deployment
    phase = restart_phase
    context = summarize(phase.runs, d.t0) + f"\nfailures: {phase.failures}"
    assert None not in phase.postmaster_pids and len(set(phase.postmaster_pids)) == 2, "no restart"
    assert not phase.held_gate_timed_out, f"the gate let {HELD} through before the restart"
    # Every run ended, failed or succeeded (none stuck in STARTED, none left waiting for a retry) ...
    assert all(w.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for w in phase.runs)
    # ... under the limits: within the cap, and no two runs of one account at once (the re-run too).
    assert peak_in_progress([*phase.runs, *phase.rerun]) <= MAX_RUNS, context
    assert shared_account_overlaps([*phase.runs, *phase.rerun]) == [], context

    # The batch held mid-fetch lost its key locks with the restart: it failed, saying so, and wrote
    # nothing of either account (every table of both exactly as before).
    held = phase.run_covering(HELD)
    assert held.accounts == (HELD, "demo-002")
    assert held.status == dg.DagsterRunStatus.FAILURE, context
    assert any("key lock was lost" in message for message in phase.failures[held.run_id]), context
    for name in held.accounts:
        assert name in phase.incomplete
        assert account_tables(phase.after_restart, name) == account_tables(phase.before, name), name

    # Whatever the batch caught writing did: each of its tables is exactly as before or exactly as a
    # completed sync leaves it (the final state, after the re-run), never a mix; every table the
    # backfill reported materialized is complete.
    assert set(phase.after_restart) == set(phase.before) == set(phase.final)
    for (table, account), rows in phase.after_restart.items():
        assert rows in (phase.before[(table, account)], phase.final[(table, account)]), (table, account)
        if (table, account) in phase.materialized:
            assert rows == phase.final[(table, account)], (table, account)
    # The changes make a completed sync visible: raw.bookings differs from before for every account.
    for name in d.names:
        assert phase.before[("raw.bookings", name)] != phase.final[("raw.bookings", name)], name
    # Runs failed cleanly: each with its step failure, and not retried (deploy/dagster.yaml retries a
    # crashed run worker, not a failed step: the partitions are re-run by the next tick or backfill).
    for window in phase.runs:
        if window.status == dg.DagsterRunStatus.FAILURE:
            assert phase.failures[window.run_id], (window.run_id, "failed without a step failure")
            assert window.tags.get(WILL_RETRY_TAG) == "false", window.tags


@pytest.mark.slow
def test_an_interrupted_account_sync_is_written_whole_or_not_at_all(
    deployment: Deployment, restart_phase: RestartPhase
) -> None:
    """The account is the unit: its sync completes (every raw table written) or leaves it as it was.

    docs/accounts.md: failed accounts "keep their previous rows exactly"; the lost-lock failure says
    "nothing of it was written". Checked with `_synced_at` (a rewrite with the same content counts)
    and the run's own materialization events.
    """
    d = deployment
    phase = restart_phase
    raw = {".".join(key) for key in d.asset_keys if key[0] == "raw"}
    problems = []
    for name in d.names:
        rewritten = {
            table
            for table in raw
            if phase.synced_after_restart[(table, name)] != phase.synced_before[(table, name)]
        }
        if rewritten not in (set(), raw):
            run = phase.run_covering(name)
            problems.append(
                f"{name}: run {run.run_id[:8]} ({run.status.value}) rewrote {sorted(rewritten)} and left "
                f"{sorted(raw - rewritten)} from the previous sync; it reported {sorted(phase.reported[run.run_id][name])} "
                f"materialized; its failure: {[' '.join(m.split())[:400] for m in phase.failures[run.run_id]]}"
            )
    for window in phase.runs:
        for message in phase.failures[window.run_id]:
            for name in window.accounts:
                claims_nothing = f"account '{name}'" in message and "nothing of it was written" in message
                if claims_nothing and phase.reported[window.run_id][name]:
                    problems.append(
                        f"{name}: run {window.run_id[:8]} says 'nothing of it was written' but reported "
                        f"{sorted(phase.reported[window.run_id][name])} materialized for it"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_rerun_of_the_failed_partitions_completes_exactly(
    deployment: Deployment, restart_phase: RestartPhase
) -> None:
    d = deployment
    phase = restart_phase
    runs = summarize(phase.rerun, d.t0)
    assert [w.status for w in phase.rerun] == [dg.DagsterRunStatus.SUCCESS] * len(phase.rerun), runs
    assert sorted(a for w in phase.rerun for a in w.accounts) == phase.incomplete
    for key in d.asset_keys:
        done = d.instance.get_materialized_partitions(dg.AssetKey(key))
        assert done >= set(d.names), (key, sorted(done))
    for key in d.keys:
        _edited, added = phase.changed[key.name]
        assert len(phase.final[("raw.bookings", key.name)]) == key.bookings + added
        assert bookings_fingerprint(d.database, key.name) == served_fingerprint(d.api, key.name), key.name
    for name in d.names:
        stats = d.api.account_stats(name)
        assert stats.throttled == 0 and stats.blocked_times == [], (name, dict(stats.by_status))


@pytest.mark.slow
def test_no_api_key_reaches_postgres_or_any_log(deployment: Deployment, restart_phase: RestartPhase) -> None:
    """After all of it: no key in Dagster's tables (runs, tags, config, event logs) or in any log file."""
    d = deployment
    connection = d.postgres.connect(d.dbname)
    try:
        for key in d.keys:
            assert postgres_rows_containing(connection, key.api_key) == {}, key.name
    finally:
        connection.close()
    accounts_env = d.directory / "accounts.env"  # the keys' own file, next to the accounts file
    for key in d.keys:
        assert files_containing(d.directory, key.api_key, skip=[accounts_env]) == [], key.name
