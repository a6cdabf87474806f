"""Case (a) of `benchmarks/accounts.py`, end to end: set up the deployment, launch, wait, collect.

The pieces (instance, daemon, GraphQL backfill, CLI launcher) are in `accounts_deploy.py`, the run
records in `accounts_records.py`, the sampling of memory, CPU and Postgres connections in
`accounts_sampler.py`.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from benchmarks.accounts_deploy import (
    JOB,
    CliLauncher,
    asset_keys,
    batches,
    deployment_env,
    expected_runs,
    graphql_context,
    launch_backfill,
    patched_environ,
    start_daemon,
    wait_backfill,
    wait_daemon_ready,
    warm_bytecode,
    write_workspace,
)
from benchmarks.accounts_records import materialized_everywhere, run_summary
from benchmarks.accounts_sampler import DeploymentSampler
from benchmarks.measure import machine_busy_cpu_s, wait_for_quiet
from benchmarks.model import MB
from benchmarks.servers import request_counts
from sched_assets_tests.processes import stop_group

if TYPE_CHECKING:
    from benchmarks.accounts import AccountsDemoServer, AccountsSettings

DATABASE = "sched_bench"


def count_by_account(database: Path, tables: Mapping[str, str]) -> dict[str, int | None]:
    """Rows per account: `tables` maps an account to its table, or use `raw.bookings` by `account`."""
    import duckdb

    if not database.exists():
        return dict.fromkeys(tables)
    out: dict[str, int | None] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        for name, table in tables.items():
            try:
                if table == "raw.bookings":
                    row = con.execute(
                        "SELECT count(*) FROM raw.bookings WHERE account = ?", [name]
                    ).fetchone()
                else:
                    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
                out[name] = int(row[0]) if row else None
            except duckdb.Error:
                out[name] = None
    return out


def _pg_scalar(cluster: Any, dbname: str, sql: str, params: tuple = ()) -> Any:
    connection = cluster.connect(dbname)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]
    finally:
        connection.close()


def run_ours(
    settings: AccountsSettings,
    server: AccountsDemoServer,
    keys: dict[str, str],
    expected: dict[str, int],
    root: Path,
    log: TextIO,
) -> dict[str, Any]:
    import dagster as dg

    from sched_assets_tests.postgres import PostgresCluster
    from sched_assets_tests.test_deploy_instance import deploy_config, instance_env, write_home

    def say(message: str) -> None:
        print(message, file=log, flush=True)

    names = list(expected)
    if settings.warm:
        warm_bytecode(Path(settings.pycache), log)
    home = write_home(root / "dagster_home", deploy_config(settings.max_runs))
    database = root / "warehouse.duckdb"
    workspace = write_workspace(root)
    (root / "logs").mkdir(exist_ok=True)
    measured: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(PostgresCluster())
        cluster.create_database(DATABASE)
        extra = {
            "SCHED_ACCOUNTS_FILE": str(server.accounts_file),
            "SCHED_DUCKDB_PATH": str(database),
            "SCHED_ACCOUNTS_PER_RUN": str(settings.per_run),
            "PYTHONPYCACHEPREFIX": settings.pycache,
        }
        env = deployment_env(os.environ, instance_env(cluster, DATABASE, home), keys, extra)
        stack.enter_context(patched_environ(env))
        instance = stack.enter_context(dg.DagsterInstance.get())
        watcher = cluster.connect(DATABASE)
        watcher.autocommit = True
        stack.callback(watcher.close)

        def connections() -> int:
            with watcher.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (DATABASE,),
                )
                return int(cursor.fetchone()[0])

        daemon = None
        launcher = CliLauncher(env, root / "logs", settings.max_runs)
        if settings.launcher == "daemon":
            say("(a) starting dagster-daemon (deploy/dagster.yaml on a private PostgreSQL) ...")
            daemon = start_daemon(env, workspace, root / "logs" / "daemon.log")
            stack.callback(stop_group, daemon, 15.0)
            measured["daemon_ready_s"] = wait_daemon_ready(
                instance, daemon, root / "logs" / "daemon.log", timeout=300
            )
            roots = lambda: [daemon.pid]  # noqa: E731
        else:
            roots = launcher.roots
        sampler = stack.enter_context(
            DeploymentSampler(roots, postgres_pid=lambda: cluster.postmaster_pid, connections=connections)
        )
        snapshot: dict[str, Any] = {}

        def take_snapshot() -> None:
            snapshot.update(
                at=time.time(),
                cpu_s=sampler.cpu_s(),
                cpu_by_role=sampler.cpu_by_role(),
                postgres_cpu_s=sampler.postgres_cpu_s(),
                peak_total_mb=sampler.peak_total_bytes / MB,
                peak_by_role_mb={k: v / MB for k, v in sampler.peak_by_role.items()},
                peak_postgres_mb=sampler.peak_postgres_bytes / MB,
                peak_connections=sampler.peak_connections,
                run_processes=[dict(vars(run)) for run in sampler.runs.values()],
                server_cpu_s=server.cpu_seconds() - server_cpu,
                machine_busy_cpu_s=machine_busy_cpu_s() - busy,
            )

        with graphql_context(instance, workspace) as context:
            keys_of_assets = asset_keys(context)
            wait_for_quiet(settings.quiet_wait_s, say)
            measured["postgres_db_bytes_before"] = _pg_scalar(
                cluster, DATABASE, "SELECT pg_database_size(%s)", (DATABASE,)
            )
            measured["event_log_rows_before"] = _pg_scalar(
                cluster, DATABASE, "SELECT count(*) FROM event_logs"
            )
            server.reset_stats()
            server.reset_limits()
            server_cpu, busy = server.cpu_seconds(), machine_busy_cpu_s()
            sampler.mark()
            started = time.time()
            if daemon is not None:
                backfill_id = launch_backfill(context, keys_of_assets, names)
                say(
                    f"(a) backfill {backfill_id} launched: {len(names)} accounts, {len(keys_of_assets)} assets"
                )
        runs_wanted = expected_runs(len(names), settings.per_run)
        if daemon is not None:
            records = wait_backfill(
                instance, backfill_id, runs_wanted, settings.ours_timeout_s, take_snapshot, say
            )
        else:
            say(f"(a) {runs_wanted} `dagster job execute` processes, {settings.max_runs} at a time ...")
            launcher.run(batches(names, settings.per_run), settings.ours_timeout_s)
            take_snapshot()
            records = list(instance.get_run_records(dg.RunsFilter(job_name=JOB)))
        runs = sorted((run_summary(instance, r, names) for r in records), key=lambda run: run["created"])
        measured["missing_partitions"] = materialized_everywhere(instance, keys_of_assets, names)
        measured["postgres_db_bytes"] = _pg_scalar(
            cluster, DATABASE, "SELECT pg_database_size(%s)", (DATABASE,)
        )
        measured["event_log_rows"] = _pg_scalar(cluster, DATABASE, "SELECT count(*) FROM event_logs")
        if daemon is not None:
            stop_group(daemon, 15.0)
    by_pid = {process["pid"]: process for process in snapshot.get("run_processes", [])}
    for run in runs:  # the run worker's own sampled peak and CPU, by the pid Dagster logged
        process = by_pid.get(run["pid"])
        run["peak_mb"] = process["peak_bytes"] / MB if process else None
        run["cpu_s"] = process["cpu_s"] if process else None
    requests, throttled, statuses = request_counts(server.stats())
    ended = [run["ended"] for run in runs if run["ended"]]
    if settings.launcher == "cli":
        ended += [result["ended"] for result in launcher.results]
    rows = count_by_account(database, dict.fromkeys(names, "raw.bookings"))
    wrong = {name: [rows.get(name), want] for name, want in expected.items() if rows.get(name) != want}
    wall = (max(ended) if ended else time.time()) - started
    return {
        "launcher": settings.launcher,
        "started": started,
        "wall_s": wall,
        "accounts_per_min": len(names) / wall * 60 if wall > 0 else None,
        "runs": runs,
        "runs_expected": runs_wanted,
        "runs_ok": sum(run["status"] == "SUCCESS" for run in runs),
        "cli_processes": launcher.results,
        "pickup_s": (runs[0]["created"] - started) if runs else None,
        "requests": requests,
        "throttled": throttled,
        "statuses": statuses,
        "rows_total": sum(v or 0 for v in rows.values()),
        "rows_wrong": wrong,
        "warehouse_bytes": database.stat().st_size if database.exists() else None,
        "asset_keys": ["/".join(key) for key in keys_of_assets],
        **measured,
        **snapshot,
        "run_process_peak_mb_median": statistics.median(
            [r["peak_bytes"] / MB for r in snapshot.get("run_processes", [])] or [0]
        ),
    }
