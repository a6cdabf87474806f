"""Case (a) of `benchmarks/accounts.py`: the pieces of our many-accounts mode as a deployment runs it.

- `deploy/dagster.yaml` as the instance (Postgres storage, the queued run coordinator, per-account tag
  limits), only `max_concurrent_runs` patched, on a private PostgreSQL cluster
  (`sched_assets_tests.postgres`); the helpers of `sched_assets_tests/test_deploy_instance.py` write it.
- Launcher `daemon`: `dagster-daemon run -w workspace.yaml` (its code server starts the run workers),
  one backfill of every asset over every account launched through GraphQL (`launchPartitionBackfill`,
  what the UI sends), the queue starting the runs under the limits.
- Launcher `cli`: no daemon; `max_runs` concurrent `dagster job execute -j sync_everything --tags
  '{range start/end}'` processes over the batches (the same instance): Dagster's queue overhead, compared.

Every Python process of the deployment shares one bytecode cache (`PYTHONPYCACHEPREFIX`, compiled once
by `warm_bytecode`): this machine sets PYTHONDONTWRITEBYTECODE and the venv has no `__pycache__`, so
each run worker would otherwise compile Dagster again (production images: `uv sync --compile-bytecode`).
`accounts_ours.py` puts the pieces together; `accounts_records.py` reads what the runs left behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import yaml

from benchmarks.model import REPO_ROOT
from sched_assets_tests.processes import start_group, stop_group

LOCATION = "sched_assets"
JOB = "sync_everything"
BACKFILL_TAG = "dagster/backfill"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
ASSET_NODES_QUERY = "query AssetKeys { assetNodes { assetKey { path } } }"
BIN = Path(sys.executable).parent


def warm_bytecode(prefix: Path, log: TextIO) -> None:
    """Compile the venv and the project into `prefix` once (what `uv sync --compile-bytecode` does)."""
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    targets = [sysconfig.get_paths()["purelib"], str(REPO_ROOT / "sched_assets")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *targets],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    print(f"  bytecode cache {prefix} ready in {time.perf_counter() - started:.1f} s", file=log)


def deployment_env(
    base: Mapping[str, str], instance: Mapping[str, str], keys: Mapping[str, str], extra: Mapping[str, str]
) -> dict[str, str]:
    """The environment of every process of the deployment (daemon, code servers, run workers)."""
    env = {k: v for k, v in base.items() if not k.startswith(("SCHED_", "DAGSTER_", "PYTHONDONTWRITE"))}
    env.update(instance)
    env.update(keys)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ = `env` inside (the harness opens the instance and a GraphQL context like a webserver)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def write_workspace(directory: Path) -> Path:
    path = directory / "workspace.yaml"
    entry = {"module_name": "sched_assets.definitions", "working_directory": str(REPO_ROOT)}
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": {**entry, "location_name": LOCATION}}]}))
    return path


def batches(names: Sequence[str], per_run: int) -> list[list[str]]:
    return [list(names[i : i + per_run]) for i in range(0, len(names), per_run)]


# ---- launcher "daemon": dagster-daemon and a GraphQL backfill -----------------------------------


def start_daemon(env: Mapping[str, str], workspace: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return start_group(
            [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_daemon_ready(
    instance: Any, daemon: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> float:
    """Until the backfill daemon and the run queue have both sent a heartbeat; returns the seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited: {log_path.read_text(errors='replace')[-3000:]}")
        beats = instance.get_daemon_heartbeats()
        if {"BACKFILL", "QUEUED_RUN_COORDINATOR"} <= set(beats):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"dagster-daemon not ready after {timeout:.0f} s")


@contextlib.contextmanager
def graphql_context(instance: Any, workspace: Path) -> Iterator[Any]:
    """A request context like the webserver's (it starts its own code server for the workspace)."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as process:
        yield process.create_request_context()


def asset_keys(context: Any) -> list[list[str]]:
    from dagster_graphql.test.utils import execute_dagster_graphql

    result = execute_dagster_graphql(context, ASSET_NODES_QUERY)
    return [node["assetKey"]["path"] for node in result.data["assetNodes"]]


def launch_backfill(context: Any, keys: Sequence[Sequence[str]], names: Sequence[str]) -> str:
    """What the UI's "Materialize all" → backfill over every account sends."""
    from dagster_graphql.test.utils import execute_dagster_graphql

    from sched_assets_tests.test_deploy_instance import LAUNCH_BACKFILL_MUTATION

    params = {
        "assetSelection": [{"path": list(key)} for key in keys],
        "partitionNames": list(names),
        "title": f"benchmark: {len(names)} accounts",
    }
    result = execute_dagster_graphql(context, LAUNCH_BACKFILL_MUTATION, variables={"backfillParams": params})
    launched = result.data["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill failed: {launched}")
    return launched["backfillId"]


def wait_backfill(
    instance: Any, backfill_id: str, expected_runs: int, timeout: float, on_done: Any, say: Any
) -> list[Any]:
    """Poll until the backfill has ended (the daemon notices within ~30 s) and every run finished.

    `on_done()` is called once at the first poll where `expected_runs` runs exist and all finished
    (so the sampler's numbers stop there, not at the daemon's next pass).
    """
    import dagster as dg
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    deadline = time.monotonic() + timeout
    done_called = False
    last_report = 0.0
    while True:
        records = list(instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id})))
        finished = [r for r in records if r.dagster_run.is_finished]
        if not done_called and len(records) >= expected_runs and len(finished) == len(records):
            on_done()
            done_called = True
        backfill = instance.get_backfill(backfill_id)
        if done_called and backfill is not None and backfill.status in BULK_ACTION_TERMINAL_STATUSES:
            return records
        if time.monotonic() > deadline:
            status = backfill.status.value if backfill else "?"
            raise TimeoutError(
                f"backfill {status} after {timeout:.0f} s: {len(finished)}/{len(records)} runs"
            )
        if time.monotonic() - last_report > 15:
            say(f"  backfill: {len(finished)}/{len(records)} of {expected_runs} runs finished")
            last_report = time.monotonic()
        time.sleep(1.0)


# ---- launcher "cli": K concurrent `dagster job execute` processes --------------------------------


def cli_command(batch: Sequence[str]) -> list[str]:
    tags = {RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]}
    if len(batch) == 1:
        tags = {PARTITION_TAG: batch[0]}
    command = [str(BIN / "dagster"), "job", "execute", "-m", "sched_assets.definitions", "-j", JOB]
    return [*command, "--tags", json.dumps(tags)]


class CliLauncher:
    """Runs the batches `concurrency` at a time, each as its own `dagster job execute` process."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, concurrency: int) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.live: dict[int, subprocess.Popen[bytes]] = {}
        self.results: list[dict[str, Any]] = []

    def roots(self) -> list[int]:
        return list(self.live)

    def _one(self, index: int, batch: list[str], timeout: float) -> None:
        path = self.log_dir / f"cli-{index:04d}.log"
        started = time.time()
        with path.open("wb") as log:
            process = start_group(cli_command(batch), env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        self.live[process.pid] = process
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = stop_group(process)
        finally:
            self.live.pop(process.pid, None)
        self.results.append(
            {"batch": [batch[0], batch[-1]], "process_started": started, "ended": time.time(), "rc": code}
        )

    def run(self, groups: list[list[str]], timeout: float) -> None:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            list(pool.map(lambda item: self._one(item[0], item[1], timeout), enumerate(groups)))


def expected_runs(accounts: int, per_run: int) -> int:
    return math.ceil(accounts / per_run)
