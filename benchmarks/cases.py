"""The benchmark's cases and how one repeat of each is run and measured.

- (a) ours, full sync: `dagster asset materialize -m sched_assets.definitions --select 'key:"raw/*"'`
  into a fresh DuckDB file and a fresh (persistent, sqlite) DAGSTER_HOME;
- (b) ours, incremental: the same command on the same state after 1% of the bookings changed;
- (c) dlt's `rest_api` source (`benchmarks/dlt_pipeline.py`) into a fresh DuckDB file;
- (d) opt-in (`--with-analytics`): the README's main command, `--select '*'` (raw + analytics + checks),
  into a fresh DuckDB file and a fresh DAGSTER_HOME, like (a);
- (f) the bare httpx client (`benchmarks/bare_client.py`): every bookings page read and parsed, nothing
  kept; the floor our sync step is compared with (not under a rate limit: it has no retries).

Every case runs on each of the settings' account shapes (`--shape` of the demo server).

After each of our runs the harness opens the run's DAGSTER_HOME and reads Dagster's own step timings
from the instance's event log (STEP_START to STEP_SUCCESS / STEP_FAILURE per step key).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from benchmarks.measure import count_rows, measure_process, tail, wait_for_quiet
from benchmarks.model import (
    ALL_SELECTION,
    ANALYTICS_STEP_PREFIX,
    BARE_CLIENT_SCRIPT,
    CASE_ALL,
    CASE_BARE,
    CASE_DLT,
    CASE_FULL,
    CASE_INCREMENTAL,
    CASE_LABELS,
    DEFAULT_SHAPE,
    DLT_SCRIPT,
    DLT_TABLE,
    FULL_REFRESH_CONFIG,
    OUR_SELECTION,
    OUR_TABLE,
    RATE_LIMIT_SPEC,
    SYNC_STEP,
    Measurement,
    Settings,
    executable,
)
from benchmarks.servers import DemoServer, request_counts

# --------------------------------------------------------------------------------------------------
# Commands and environments
# --------------------------------------------------------------------------------------------------


def ours_command(
    launcher: Sequence[str], full_refresh: bool = False, selection: str = OUR_SELECTION
) -> list[str]:
    command = [
        *launcher,
        executable(launcher, "dagster"),
        "asset",
        "materialize",
        "-m",
        "sched_assets.definitions",
        "--select",
        selection,
    ]
    if full_refresh:
        command += ["--config-json", json.dumps(FULL_REFRESH_CONFIG)]
    return command


def dlt_command(launcher: Sequence[str], base_url: str, database: Path, pipelines_dir: Path) -> list[str]:
    return [
        *launcher,
        executable(launcher, "python"),
        str(DLT_SCRIPT),
        "--base-url",
        base_url,
        "--duckdb",
        str(database),
        "--pipelines-dir",
        str(pipelines_dir),
    ]


def bare_command(launcher: Sequence[str], base_url: str) -> list[str]:
    return [*launcher, executable(launcher, "python"), str(BARE_CLIENT_SCRIPT), "--base-url", base_url]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_", "DAGSTER_", "RUNTIME__"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ours_env(server: DemoServer, database: Path, dagster_home: Path) -> dict[str, str]:
    env = _clean_env()
    env.update(
        SCHED_API_BASE_URL=server.base_url,
        SCHED_API_KEY=server.api_key,
        SCHED_DUCKDB_PATH=str(database),
        DAGSTER_HOME=str(dagster_home),
    )
    return env


def api_key_env(server: DemoServer) -> dict[str, str]:
    """For the scripts that read only the API (dlt, the bare client): the key, nothing of ours."""
    env = _clean_env()
    env["SCHED_API_KEY"] = server.api_key
    return env


# --------------------------------------------------------------------------------------------------
# What a finished run left behind
# --------------------------------------------------------------------------------------------------


def _dagster_error(stderr_path: str) -> str:
    """The most telling line of a failed `dagster asset materialize` (its stderr is a long log)."""
    try:
        lines = Path(stderr_path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for pattern in ("dagster._core.errors", "Error", "Failure", "Exception"):
        hits = [line.strip() for line in lines if pattern in line]
        if hits:
            return hits[-1][:500]
    return "\n".join(lines[-3:])[:500]


STEP_START = "STEP_START"
STEP_ENDS = ("STEP_SUCCESS", "STEP_FAILURE")
MATERIALIZATION = "ASSET_MATERIALIZATION"


def step_timings(events: Iterable[tuple[str | None, str, float]]) -> dict[str, Any]:
    """Step durations from `(step key, event type, unix timestamp)` events of one run.

    Returns `step_s` (seconds per step key, STEP_START to STEP_SUCCESS or STEP_FAILURE), `sync_step_s`
    (the `raw_sources` step) and `all_steps_s` (first step start to last step end: every step of the
    run together); keys without data are left out. When the run built derived tables (steps named
    `analytics__*` that emitted an ASSET_MATERIALIZATION), also `analytics_steps_s` (their summed
    durations, the tables only) and `check_steps_s` (the summed durations of the steps that
    materialized nothing: the asset checks, raw and analytics).
    """
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    materialized: set[str] = set()
    for step_key, event_type, timestamp in events:
        if step_key is None:
            continue
        if event_type == STEP_START:
            starts.setdefault(step_key, timestamp)
        elif event_type in STEP_ENDS:
            ends[step_key] = timestamp
        elif event_type == MATERIALIZATION:
            materialized.add(step_key)
    steps = {key: ends[key] - start for key, start in starts.items() if key in ends}
    if not steps:
        return {}
    timings: dict[str, Any] = {"step_s": steps}
    if SYNC_STEP in steps:
        timings["sync_step_s"] = steps[SYNC_STEP]
    timings["all_steps_s"] = max(ends[key] for key in steps) - min(starts[key] for key in steps)
    analytics = [key for key in steps if key.startswith(ANALYTICS_STEP_PREFIX) and key in materialized]
    if analytics:
        timings["analytics_steps_s"] = sum(steps[key] for key in analytics)
        timings["check_steps_s"] = sum(value for key, value in steps.items() if key not in materialized)
    return timings


def dagster_timings(dagster_home: Path, skip_run_ids: Iterable[str] = ()) -> dict[str, Any]:
    """In-run durations of the newest run in `dagster_home` (other than `skip_run_ids`), from the
    instance's event log; also the run's id and status. Empty when the process started no run.

    The rest of the wall time is the process around the run: interpreter start, imports, loading the
    definitions, run storage, shutdown.
    """
    skip = set(skip_run_ids)
    if not dagster_home.is_dir():
        return {}
    from dagster import DagsterEventType, DagsterInstance

    of_type = {DagsterEventType(name) for name in (STEP_START, *STEP_ENDS, MATERIALIZATION)}
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            # Newest first; (b)'s home also holds (a)'s run.
            runs = [run for run in instance.get_runs(limit=len(skip) + 1) if run.run_id not in skip]
            if not runs:
                return {}
            run = runs[0]
            entries = instance.all_logs(run.run_id, of_type=of_type)
    except Exception as exc:  # a measurement must survive an unreadable home
        return {"dagster_timings_error": f"{type(exc).__name__}: {exc}"[:500]}
    events = (
        (entry.step_key, entry.dagster_event.event_type_value, entry.timestamp)
        for entry in entries
        if entry.dagster_event is not None
    )
    return {**step_timings(events), "run_id": run.run_id, "run_status": run.status.value}


def _json_summary(stdout_path: str) -> dict[str, Any]:
    """The JSON line `dlt_pipeline.py` or `bare_client.py` prints last, if any."""
    try:
        lines = Path(stdout_path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return {}


# --------------------------------------------------------------------------------------------------
# Running the cases
# --------------------------------------------------------------------------------------------------


class Bench:
    """Runs the cases and collects measurements.

    Every repeat gets a freshly started demo server, so repeats are identical: `touch` moves bookings'
    `updatedAt` forward, and a second (b) on the same server would also re-read the first one's changes.
    """

    def __init__(self, settings: Settings, workdir: Path, log: TextIO) -> None:
        self.settings = settings
        self.workdir = workdir
        self.log = log
        self.measurements: list[Measurement] = []
        self.server_startups: dict[str, list[float]] = {}  # per shape
        self.shape = DEFAULT_SHAPE  # the shape the cases now running read
        self._server: DemoServer | None = None

    @property
    def server(self) -> DemoServer:
        if self._server is None:
            raise RuntimeError("no demo server is running")
        return self._server

    @contextlib.contextmanager
    def fresh_server(self, name: str) -> Iterator[DemoServer]:
        """A demo server with the settings' account in the current shape, for one repeat."""
        server = DemoServer(
            self.settings.bookings,
            seed=self.settings.seed,
            rate_limit=RATE_LIMIT_SPEC if self.settings.rate_limited else None,
            launcher=self.settings.launcher,
            log_dir=self.workdir / self.shape / "server" / name,
            prerender=self.settings.prerender,
            shape=self.shape,
        )
        with server:
            self.server_startups.setdefault(self.shape, []).append(server.startup_s)
            self.say(
                f"  demo API with {self.settings.bookings:,} {self.shape} bookings at {server.base_url} "
                f"(ready in {server.startup_s:.1f} s)"
            )
            self._server = server
            try:
                yield server
            finally:
                self._server = None

    def say(self, message: str) -> None:
        print(message, file=self.log, flush=True)

    def _prepare(self) -> float:
        """Wait (bounded) for a quiet machine; zero the server's counters and rate-limit window.

        Returns the share of the machine other processes were using just before the run.
        """
        busy = wait_for_quiet(self.settings.quiet_wait_s, self.say)
        self.server.reset_limits()
        self.server.reset_stats()
        return busy

    def _run_case(
        self,
        case: str,
        repeat: int,
        command: list[str],
        env: dict[str, str],
        timeout_s: float,
        database: Path | None = None,
        table: str = "",
    ) -> Measurement:
        """Measure one process; read the server's counters and the table's row count afterwards (no
        `database`: the caller fills `bookings_rows` in)."""
        busy_before = self._prepare()
        load_before = os.getloadavg()[0]
        server_cpu_before = self.server.cpu_seconds()
        logs = self.workdir / self.shape / "logs"
        result = measure_process(command, env, logs, f"{case}{repeat}", timeout_s=timeout_s)
        server_cpu = self.server.cpu_seconds() - server_cpu_before
        stats = self.server.stats()
        requests, throttled, statuses = request_counts(stats)
        measurement = Measurement(
            case=case,
            repeat=repeat,
            wall_s=result.wall_s,
            peak_mb=result.peak_mb,
            requests=requests,
            throttled=throttled,
            statuses=statuses,
            bookings_rows=count_rows(database, table) if database else None,
            returncode=result.returncode,
            timed_out=result.timed_out,
            samples=result.samples,
            cpu_s=result.cpu_s,
            server_cpu_s=server_cpu,
            other_cpu_s=max(0.0, result.machine_busy_cpu_s - result.cpu_s - server_cpu),
            load_before=load_before,
            busy_before=busy_before,
            shape=self.shape,
            extra={
                "command": command,
                "requests_by_path": stats.get("by_path", {}),
                "blocked_requests": stats.get("blocked_requests"),
                "stdout": result.stdout_path,
                "stderr": result.stderr_path,
            },
        )
        if result.timed_out:
            measurement.error = f"killed after {timeout_s:.0f} s (time cap)"
        self.measurements.append(measurement)
        return measurement

    def _run_ours(
        self,
        case: str,
        repeat: int,
        env: dict[str, str],
        home: Path,
        database: Path,
        skip_run_ids: Iterable[str] = (),
        selection: str = OUR_SELECTION,
    ) -> Measurement:
        """One of our runs; on failure the telling line of its log; Dagster's step timings."""
        command = ours_command(self.settings.launcher, selection=selection)
        timeout = self.settings.ours_timeout_s
        measurement = self._run_case(case, repeat, command, env, timeout, database, OUR_TABLE)
        if not measurement.ok and not measurement.error:
            measurement.error = _dagster_error(measurement.extra["stderr"]) or "failed"
        measurement.extra.update(dagster_timings(home, skip_run_ids))
        return measurement

    def _fresh_state(self, name: str) -> tuple[Path, Path, Path]:
        """(state dir, empty DAGSTER_HOME, DuckDB path not yet created) under a new `name` directory."""
        state = self.workdir / self.shape / name
        shutil.rmtree(state, ignore_errors=True)
        home = state / "dagster_home"  # empty: a persistent sqlite instance in this directory
        home.mkdir(parents=True)
        return state, home, state / "sched.duckdb"

    def run_ours(self, repeat: int) -> tuple[Measurement, Measurement]:
        """(a) full sync into fresh state, then (b) incremental after `touch` on the same state."""
        state, home, database = self._fresh_state(f"ours{repeat}")
        env = ours_env(self.server, database, home)

        full = self._run_ours(CASE_FULL, repeat, env, home, database)
        self.say(f"  {describe(full)}")

        touched = self.server.touch(self.settings.touch_fraction)
        earlier = [full.extra["run_id"]] if "run_id" in full.extra else []
        incremental = self._run_ours(CASE_INCREMENTAL, repeat, env, home, database, earlier)
        if isinstance(touched, dict):
            incremental.extra["touched"] = touched.get("touched")
        self.say(f"  {describe(incremental)}")
        if not self.settings.keep_files:
            shutil.rmtree(state, ignore_errors=True)
        return full, incremental

    def run_everything(self, repeat: int) -> Measurement:
        """(d) the README's main command, `--select '*'`, into fresh state: sync, analytics, checks."""
        state, home, database = self._fresh_state(f"all{repeat}")
        env = ours_env(self.server, database, home)
        measurement = self._run_ours(CASE_ALL, repeat, env, home, database, selection=ALL_SELECTION)
        self.say(f"  {describe(measurement)}")
        if not self.settings.keep_files:
            shutil.rmtree(state, ignore_errors=True)
        return measurement

    def run_dlt(self, repeat: int) -> Measurement:
        """(c) dlt's rest_api source into a fresh DuckDB file and a fresh pipelines dir."""
        state = self.workdir / self.shape / f"dlt{repeat}"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        database = state / "dlt.duckdb"
        command = dlt_command(self.settings.launcher, self.server.base_url, database, state / "pipelines")
        env, timeout = api_key_env(self.server), self.settings.dlt_timeout_s
        measurement = self._run_case(CASE_DLT, repeat, command, env, timeout, database, DLT_TABLE)
        summary = _json_summary(measurement.extra["stdout"])
        measurement.extra["summary"] = summary
        if not measurement.ok and not measurement.error:
            measurement.error = str(summary.get("error") or tail(measurement.extra["stderr"], 1) or "failed")
        self.say(f"  {describe(measurement)}")
        if not self.settings.keep_files:
            shutil.rmtree(state, ignore_errors=True)
        return measurement

    def run_bare(self, repeat: int) -> Measurement:
        """(f) the bare httpx client: its records and read seconds come from its JSON line."""
        command = bare_command(self.settings.launcher, self.server.base_url)
        env, timeout = api_key_env(self.server), self.settings.ours_timeout_s
        measurement = self._run_case(CASE_BARE, repeat, command, env, timeout)
        summary = _json_summary(measurement.extra["stdout"])
        measurement.bookings_rows = summary.get("records")
        if "read_s" in summary:
            measurement.extra["read_s"] = summary["read_s"]
        if not measurement.ok and not measurement.error:
            measurement.error = tail(measurement.extra["stderr"], 1) or "failed"
        self.say(f"  {describe(measurement)}")
        return measurement

    def _step(self, repeat: int, what: str) -> None:
        self.say(f"[{self.shape}] repeat {repeat}/{self.settings.repeats}: {what}")

    def run_all(self) -> list[Measurement]:
        for shape in self.settings.shapes:
            self.shape = shape
            self.run_shape()
        return self.measurements

    def run_shape(self) -> None:
        """Every case on the current shape; each repeat of each case on a fresh server."""
        for repeat in range(1, self.settings.repeats + 1):
            self._step(repeat, "ours")
            with self.fresh_server(f"ours{repeat}"):
                self.run_ours(repeat)
            if self.settings.with_analytics:
                self._step(repeat, "ours, --select '*'")
                with self.fresh_server(f"all{repeat}"):
                    self.run_everything(repeat)
            # Right after (a), so the floor and our sync share the machine's conditions. Under a rate
            # limit the floor is the limit's, and this client (no retries) would only fail.
            if not self.settings.rate_limited:
                self._step(repeat, "bare httpx client")
                with self.fresh_server(f"bare{repeat}"):
                    self.run_bare(repeat)
        if not self.settings.skip_dlt:
            for repeat in range(1, self.settings.repeats + 1):
                self._step(repeat, "dlt")
                with self.fresh_server(f"dlt{repeat}"):
                    self.run_dlt(repeat)


def describe(m: Measurement) -> str:
    status = "ok" if m.ok else f"FAILED ({m.error})"
    return (
        f"{CASE_LABELS[m.case]}: {m.wall_s:.2f} s, peak {m.peak_mb:.0f} MB, {m.requests} requests, "
        f"{m.throttled} x 429, bookings rows {m.bookings_rows}: {status}"
    )
