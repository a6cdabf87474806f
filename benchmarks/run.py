"""Benchmark harness: our Dagster sync vs. dlt's `rest_api` source, as whole processes.

One command::

    uv run --group bench python benchmarks/run.py [--bookings 100000] [--repeats 3] [--rate-limited]
        [--skip-dlt] [--out benchmarks/results/NAME.json]

It starts the demo API (`python -m sched_assets.demo`) on a free local port with N bookings and times:

- (a) our main command, `dagster asset materialize -m sched_assets.definitions --select 'key:"raw/*"'`,
  into a fresh DuckDB file and a fresh DAGSTER_HOME;
- (b) the same command again (same DuckDB file and DAGSTER_HOME, so the incremental cursor is found)
  after 1% of the bookings changed upstream (`POST /_demo/touch?fraction=0.01`);
- (c) dlt's `rest_api` source (`benchmarks/dlt_pipeline.py`) into a fresh DuckDB file.

For every run it records the wall time, the peak memory of the whole process tree (the maximum over
time of the summed RSS of the process and all its descendants, sampled every 50 ms), the requests and
429 responses the server saw (`GET /_demo/stats`, reset before each run) and the rows of the bookings
table (read back from the DuckDB file afterwards). It prints a markdown table of medians, the ratios and
the targets, and saves every raw measurement as JSON under `benchmarks/results/`.

See `benchmarks/README.md` for how to read the output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DLT_SCRIPT = REPO_ROOT / "benchmarks" / "dlt_pipeline.py"

SAMPLE_INTERVAL_S = 0.05
MB = 1024 * 1024
DEFAULT_BOOKINGS = 100_000
DEFAULT_BOOKINGS_RATE_LIMITED = 20_000
DEFAULT_REPEATS = 3
DEFAULT_REPEATS_RATE_LIMITED = 1
TOUCH_FRACTION = 0.01
RATE_LIMIT_SPEC = "120/60/60"  # requests / window seconds / block seconds, as the real API
RATE_LIMIT_REQUESTS = 120
RATE_LIMIT_WINDOW_S = 60

OUR_SELECTION = 'key:"raw/*"'  # the six source assets; plain `raw/*` selects nothing in Dagster 1.13
FULL_REFRESH_CONFIG = {"ops": {"raw_sources": {"config": {"full_refresh": True}}}}
OUR_TABLE = "raw.bookings"
DLT_DATASET = "sched"  # benchmarks/dlt_pipeline.py's dataset (DuckDB schema)
DLT_TABLE = f"{DLT_DATASET}.bookings"

# Targets (benchmarks/README.md). Absolute ones are stated for 100,000 bookings.
TARGET_BOOKINGS = 100_000
TARGET_DLT_OVER_OURS = 10.0
TARGET_OURS_WALL_S = 12.0
TARGET_PEAK_MB = 400.0
TARGET_PEAK_GROWTH_AT_1M = 1.2
TARGET_INCREMENTAL_SHARE = 0.2
TARGET_FLOOR_RATIO = 1.15
NOISE_SHARE = 0.10  # other processes using more than this share of the machine make a run noisy

CASE_FULL = "a"
CASE_INCREMENTAL = "b"
CASE_DLT = "c"
CASE_LABELS = {
    CASE_FULL: "(a) ours: full sync",
    CASE_INCREMENTAL: "(b) ours: incremental after 1% changed",
    CASE_DLT: "(c) dlt rest_api",
}


# --------------------------------------------------------------------------------------------------
# Measuring one process tree
# --------------------------------------------------------------------------------------------------


def tree_rss_bytes(root: psutil.Process) -> int:
    """Summed RSS of `root` and all its live descendants (processes that vanish mid-read count 0)."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


class TreeMemorySampler:
    """Samples the summed RSS of a process tree every `interval` seconds on a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_bytes = 0
        self.samples = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self._root))
            self.samples += 1
            self._stop.wait(self._interval)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class ProcessResult:
    """How one measured process ended."""

    returncode: int | None
    wall_s: float
    peak_bytes: int
    samples: int
    timed_out: bool
    stdout_path: str
    stderr_path: str
    cpu_s: float = 0.0  # user + system CPU of the whole tree (reaped descendants, via RUSAGE_CHILDREN)
    machine_busy_cpu_s: float = 0.0  # every process on the machine, busy CPU during the run

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MB


def kill_process_group(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the process's group (it was started in its own session), then SIGKILL after a grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def measure_process(
    command: Sequence[str],
    env: dict[str, str],
    log_dir: Path,
    name: str,
    timeout_s: float | None = None,
    cwd: Path = REPO_ROOT,
) -> ProcessResult:
    """Run `command` to completion; return its wall time and the peak RSS of its whole process tree.

    stdout/stderr go to `log_dir/<name>.stdout|.stderr` (files, so a chatty process never blocks on a
    full pipe). Past `timeout_s` the whole process group is killed and `timed_out` is set.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path = log_dir / f"{name}.stdout"
    stderr_path = log_dir / f"{name}.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy_before = machine_busy_cpu_s()
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True
        )
        timed_out = False
        try:
            with TreeMemorySampler(process.pid) as sampler:
                try:
                    returncode: int | None = process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    kill_process_group(process)
                    returncode = process.poll()
                wall = time.perf_counter() - started
        except BaseException:
            kill_process_group(process)
            raise
        busy = machine_busy_cpu_s() - busy_before
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    return ProcessResult(
        returncode=returncode,
        wall_s=wall,
        peak_bytes=sampler.peak_bytes,
        samples=sampler.samples,
        timed_out=timed_out,
        stdout_path=str(stdout_path),
        stderr_path=str(stderr_path),
        cpu_s=cpu,
        machine_busy_cpu_s=busy,
    )


def machine_busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; idle and iowait excluded)."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


def wait_for_quiet(max_wait_s: float, say: Callable[[str], None] | None = None) -> float:
    """Wait up to `max_wait_s` until the machine is mostly idle (other work skews every number).

    Returns the busy share (0..1) measured over the last second before giving up or going ahead.
    """
    deadline = time.monotonic() + max_wait_s
    announced = False
    while True:
        busy = psutil.cpu_percent(interval=1.0) / 100.0
        if busy <= NOISE_SHARE or time.monotonic() >= deadline:
            if announced and say is not None:
                say(f"  machine {busy:.0%} busy; going ahead")
            return busy
        if not announced and say is not None:
            say(
                f"  machine {busy:.0%} busy with other work; waiting up to {max_wait_s:.0f} s for it to calm down"
            )
            announced = True
        time.sleep(1.0)


def tree_cpu_s(root: psutil.Process) -> float:
    """User + system CPU seconds used so far by `root` and its live descendants."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def tail(path: str | Path, lines: int = 5, max_chars: int = 2000) -> str:
    """The last few lines of a log file (for error reports)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-max_chars:]


# --------------------------------------------------------------------------------------------------
# The demo API server
# --------------------------------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s'\"]+")


class DemoServer:
    """`python -m sched_assets.demo` on a free local port, plus its admin endpoints."""

    def __init__(
        self,
        bookings: int,
        seed: int = 7,
        rate_limit: str | None = None,
        error_rate: float = 0.0,
        launcher: Sequence[str] = (),
        log_dir: Path | None = None,
        start_timeout_s: float | None = None,
        prerender: bool = True,
    ) -> None:
        self.bookings = bookings
        self.seed = seed
        self.rate_limit = rate_limit
        self.error_rate = error_rate
        self.launcher = list(launcher)
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="sched_bench_server_"))
        self.prerender = prerender
        # Pre-rendering costs roughly 0.1 ms per booking; leave plenty of room for a busy machine.
        self.start_timeout_s = start_timeout_s or 120.0 + bookings / 1000
        self.base_url = ""
        self.api_key = ""
        self.startup_s = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(timeout=60.0)

    @property
    def command(self) -> list[str]:
        command = [
            *self.launcher,
            _executable(self.launcher, "python"),
            "-m",
            "sched_assets.demo",
            "--port",
            "0",
            "--bookings",
            str(self.bookings),
            "--seed",
            str(self.seed),
            "--error-rate",
            str(self.error_rate),
        ]
        if self.rate_limit:
            command += ["--rate-limit", self.rate_limit]
        if self.prerender:
            command.append("--prerender")
        return command

    @property
    def root(self) -> str:
        """Scheme, host and port: the admin endpoints live here, not under the version prefix."""
        parts = httpx.URL(self.base_url)
        return f"{parts.scheme}://{parts.host}:{parts.port}"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stdout_path = self.log_dir / "server.stdout"
        stderr_path = self.log_dir / "server.stderr"
        started = time.perf_counter()
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            self._process = subprocess.Popen(
                self.command, cwd=REPO_ROOT, stdout=out, stderr=err, start_new_session=True
            )
        deadline = started + self.start_timeout_s
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"demo server exited with {self._process.returncode}: {tail(stderr_path, 20)}"
                )
            self._parse_banner(stdout_path.read_text(errors="replace"))
            if self.base_url and self.api_key and self._alive():
                self.startup_s = time.perf_counter() - started
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"demo server printed no URL within {self.start_timeout_s:.0f} s; "
            f"stdout: {tail(stdout_path)!r} stderr: {tail(stderr_path)!r}"
        )

    def _parse_banner(self, text: str) -> None:
        for line in text.splitlines():
            if not self.base_url and (match := _URL_RE.search(line)):
                self.base_url = match.group(0).rstrip("/.,)")
            lowered = line.lower()
            if not self.api_key and "key" in lowered and ("=" in line or ":" in line):
                self.api_key = re.split(r"[=:]\s*", line.strip(), maxsplit=1)[-1].split()[0].strip("'\"")
        if self.base_url and not self.api_key:
            self.api_key = _demo_api_key_constant()

    def _alive(self) -> bool:
        try:
            return self._http.get(f"{self.root}/_demo/stats").status_code == 200
        except httpx.HTTPError:
            return False

    def cpu_seconds(self) -> float:
        """CPU the server process tree has used so far."""
        return tree_cpu_s(psutil.Process(self._process.pid)) if self._process is not None else 0.0

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            kill_process_group(self._process)
        self._http.close()

    def __enter__(self) -> DemoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Admin endpoints ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        response = self._http.get(f"{self.root}/_demo/stats")
        response.raise_for_status()
        return response.json()

    def reset_stats(self) -> None:
        self._http.post(f"{self.root}/_demo/reset-stats").raise_for_status()

    def touch(self, fraction: float) -> Any:
        response = self._http.post(f"{self.root}/_demo/touch", params={"fraction": fraction})
        response.raise_for_status()
        return _json_or_text(response)

    def reset_limits(self) -> None:
        """Forget every key's rate-limit window and block (`POST /_demo/reset-limits`)."""
        self._http.post(f"{self.root}/_demo/reset-limits").raise_for_status()


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _demo_api_key_constant() -> str:
    from sched_assets.demo.app import DEMO_API_KEY

    return DEMO_API_KEY


def request_counts(stats: dict[str, Any]) -> tuple[int, int, dict[str, int]]:
    """(total requests, 429 responses, count per status) from `/_demo/stats`, whatever its exact shape."""
    by_status: dict[str, int] = {}
    for key in ("by_status", "status_counts", "statuses", "responses", "status"):
        value = stats.get(key)
        if isinstance(value, dict):
            by_status = {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}
            break
    total: int | None = None
    for key in ("requests", "total_requests", "total", "request_count"):
        value = stats.get(key)
        if isinstance(value, int | float):
            total = int(value)
            break
    if total is None:
        total = sum(by_status.values())
    throttled = by_status.get("429", 0)
    for key in ("throttled", "rate_limited", "too_many_requests"):
        if not throttled and isinstance(stats.get(key), int | float):
            throttled = int(stats[key])
    return total, throttled, by_status


# --------------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One measured run of one case."""

    case: str
    repeat: int
    wall_s: float
    peak_mb: float
    requests: int
    throttled: int
    statuses: dict[str, int]
    bookings_rows: int | None
    returncode: int | None
    timed_out: bool
    error: str | None = None
    samples: int = 0
    cpu_s: float = 0.0  # the measured tree's user + system CPU
    server_cpu_s: float = 0.0  # the demo server's CPU during the run (it shares the machine)
    other_cpu_s: float = 0.0  # everything else on the machine during the run: noise
    load_before: float = 0.0  # 1-minute load average just before the run
    busy_before: float = 0.0  # share of the machine busy (1 s sample) just before the run
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def count_rows(database: Path, table: str) -> int | None:
    """Rows of `table` in the DuckDB file, or None when the file or the table does not exist."""
    if not database.exists():
        return None
    import duckdb

    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    except duckdb.Error:
        return None
    return int(row[0]) if row else None


def default_launcher() -> list[str]:
    """`uv run --no-sync` (the project's way to run things, without touching the environment), if uv exists."""
    uv = shutil.which("uv")
    return [uv, "run", "--no-sync"] if uv else []


def _executable(launcher: Sequence[str], name: str) -> str:
    if launcher:
        return name
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def ours_command(launcher: Sequence[str], full_refresh: bool = False) -> list[str]:
    command = [
        *launcher,
        _executable(launcher, "dagster"),
        "asset",
        "materialize",
        "-m",
        "sched_assets.definitions",
        "--select",
        OUR_SELECTION,
    ]
    if full_refresh:
        command += ["--config-json", json.dumps(FULL_REFRESH_CONFIG)]
    return command


def dlt_command(launcher: Sequence[str], base_url: str, database: Path, pipelines_dir: Path) -> list[str]:
    return [
        *launcher,
        _executable(launcher, "python"),
        str(DLT_SCRIPT),
        "--base-url",
        base_url,
        "--duckdb",
        str(database),
        "--pipelines-dir",
        str(pipelines_dir),
    ]


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


def dlt_env(server: DemoServer) -> dict[str, str]:
    env = _clean_env()
    env["SCHED_API_KEY"] = server.api_key
    return env


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


_DURATION_RE = r"((?:\d+h ?)?(?:\d+m(?!s) ?)?(?:[\d.]+(?:ms|s))?)"
_STEP_RE = re.compile(r'Finished execution of step "raw_sources" in ' + _DURATION_RE)
_STEPS_RE = re.compile(r"Finished steps in process \(pid: \d+\) in " + _DURATION_RE)


def _seconds(text: str) -> float:
    """Dagster's `format_duration`: `226ms`, `1.66s`, `1m3s`, `2m 3s`."""
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)(ms|h|m|s)", text):
        total += float(value) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    return total


def dagster_timings(stderr_path: str) -> dict[str, float]:
    """In-run durations from Dagster's event log: the sync step, and every step of the run together.

    The rest of the wall time is the process around the run: interpreter start, imports, loading the
    definitions, run storage, shutdown.
    """
    try:
        text = Path(stderr_path).read_text(errors="replace")
    except OSError:
        return {}
    timings: dict[str, float] = {}
    if step := _STEP_RE.search(text):
        timings["sync_step_s"] = _seconds(step.group(1))
    if steps := _STEPS_RE.search(text):
        timings["all_steps_s"] = _seconds(steps.group(1))
    return timings


def _dlt_summary(stdout_path: str) -> dict[str, Any]:
    """The JSON line `dlt_pipeline.py` prints last, if any."""
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


@dataclass
class Settings:
    """What one benchmark invocation runs."""

    bookings: int
    repeats: int
    rate_limited: bool
    skip_dlt: bool
    seed: int = 7
    touch_fraction: float = TOUCH_FRACTION
    ours_timeout_s: float = 1800.0
    dlt_timeout_s: float = 600.0
    launcher: list[str] = field(default_factory=default_launcher)
    keep_files: bool = False
    quiet_wait_s: float = 60.0
    prerender: bool = True


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
        self.server_startups: list[float] = []
        self._server: DemoServer | None = None

    @property
    def server(self) -> DemoServer:
        if self._server is None:
            raise RuntimeError("no demo server is running")
        return self._server

    @contextlib.contextmanager
    def fresh_server(self, name: str) -> Iterator[DemoServer]:
        """A demo server with the settings' account, for one repeat."""
        server = DemoServer(
            self.settings.bookings,
            seed=self.settings.seed,
            rate_limit=RATE_LIMIT_SPEC if self.settings.rate_limited else None,
            launcher=self.settings.launcher,
            log_dir=self.workdir / "server" / name,
            prerender=self.settings.prerender,
        )
        with server:
            self.server_startups.append(server.startup_s)
            self.say(
                f"  demo API with {self.settings.bookings:,} bookings at {server.base_url} "
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
        database: Path,
        table: str,
    ) -> Measurement:
        """Measure one process; read the server's counters and the table's row count afterwards."""
        busy_before = self._prepare()
        load_before = os.getloadavg()[0]
        server_cpu_before = self.server.cpu_seconds()
        result = measure_process(command, env, self.workdir / "logs", f"{case}{repeat}", timeout_s=timeout_s)
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
            bookings_rows=count_rows(database, table),
            returncode=result.returncode,
            timed_out=result.timed_out,
            samples=result.samples,
            cpu_s=result.cpu_s,
            server_cpu_s=server_cpu,
            other_cpu_s=max(0.0, result.machine_busy_cpu_s - result.cpu_s - server_cpu),
            load_before=load_before,
            busy_before=busy_before,
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

    def run_ours(self, repeat: int) -> tuple[Measurement, Measurement]:
        """(a) full sync into fresh state, then (b) incremental after `touch` on the same state."""
        state = self.workdir / f"ours{repeat}"
        shutil.rmtree(state, ignore_errors=True)
        home = state / "dagster_home"
        home.mkdir(parents=True)
        database = state / "sched.duckdb"
        env = ours_env(self.server, database, home)
        command = ours_command(self.settings.launcher)
        timeout = self.settings.ours_timeout_s

        full = self._run_case(CASE_FULL, repeat, command, env, timeout, database, OUR_TABLE)
        if not full.ok and not full.error:
            full.error = _dagster_error(full.extra["stderr"]) or "failed"
        full.extra.update(dagster_timings(full.extra["stderr"]))
        self.say(f"  {_describe(full)}")

        touched = self.server.touch(self.settings.touch_fraction)
        incremental = self._run_case(CASE_INCREMENTAL, repeat, command, env, timeout, database, OUR_TABLE)
        if not incremental.ok and not incremental.error:
            incremental.error = _dagster_error(incremental.extra["stderr"]) or "failed"
        incremental.extra.update(dagster_timings(incremental.extra["stderr"]))
        if isinstance(touched, dict):
            incremental.extra["touched"] = touched.get("touched")
        self.say(f"  {_describe(incremental)}")
        if not self.settings.keep_files:
            shutil.rmtree(state, ignore_errors=True)
        return full, incremental

    def run_dlt(self, repeat: int) -> Measurement:
        """(c) dlt's rest_api source into a fresh DuckDB file and a fresh pipelines dir."""
        state = self.workdir / f"dlt{repeat}"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        database = state / "dlt.duckdb"
        command = dlt_command(self.settings.launcher, self.server.base_url, database, state / "pipelines")
        measurement = self._run_case(
            CASE_DLT, repeat, command, dlt_env(self.server), self.settings.dlt_timeout_s, database, DLT_TABLE
        )
        summary = _dlt_summary(measurement.extra["stdout"])
        measurement.extra["summary"] = summary
        if not measurement.ok and not measurement.error:
            measurement.error = str(summary.get("error") or tail(measurement.extra["stderr"], 1) or "failed")
        self.say(f"  {_describe(measurement)}")
        if not self.settings.keep_files:
            shutil.rmtree(state, ignore_errors=True)
        return measurement

    def run_all(self) -> list[Measurement]:
        for repeat in range(1, self.settings.repeats + 1):
            self.say(f"repeat {repeat}/{self.settings.repeats}: ours")
            with self.fresh_server(f"ours{repeat}"):
                self.run_ours(repeat)
        if not self.settings.skip_dlt:
            for repeat in range(1, self.settings.repeats + 1):
                self.say(f"repeat {repeat}/{self.settings.repeats}: dlt")
                with self.fresh_server(f"dlt{repeat}"):
                    self.run_dlt(repeat)
        return self.measurements


def _describe(m: Measurement) -> str:
    status = "ok" if m.ok else f"FAILED ({m.error})"
    return (
        f"{CASE_LABELS[m.case]}: {m.wall_s:.2f} s, peak {m.peak_mb:.0f} MB, {m.requests} requests, "
        f"{m.throttled} x 429, bookings rows {m.bookings_rows}: {status}"
    )


# --------------------------------------------------------------------------------------------------
# Summaries and the report
# --------------------------------------------------------------------------------------------------


@dataclass
class CaseSummary:
    """Medians of one case over its repeats."""

    case: str
    runs: int
    ok_runs: int
    wall_s: float
    peak_mb: float
    requests: float
    throttled: float
    bookings_rows: float | None
    requests_range: tuple[int, int]
    errors: list[str]
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    sync_step_s: float | None = None  # ours only: Dagster's duration of the `raw_sources` step
    all_steps_s: float | None = None  # ours only: every step of the run (sync + asset checks)

    @property
    def label(self) -> str:
        return CASE_LABELS[self.case]


def summarize(measurements: Sequence[Measurement]) -> dict[str, CaseSummary]:
    """Medians per case (over every run, failed ones included: a failure's time is what it cost)."""
    summaries: dict[str, CaseSummary] = {}
    for case in (CASE_FULL, CASE_INCREMENTAL, CASE_DLT):
        runs = [m for m in measurements if m.case == case]
        if not runs:
            continue
        rows = [m.bookings_rows for m in runs if m.bookings_rows is not None]
        sync_steps = [m.extra["sync_step_s"] for m in runs if "sync_step_s" in m.extra]
        all_steps = [m.extra["all_steps_s"] for m in runs if "all_steps_s" in m.extra]
        summaries[case] = CaseSummary(
            case=case,
            runs=len(runs),
            ok_runs=sum(m.ok for m in runs),
            wall_s=statistics.median(m.wall_s for m in runs),
            peak_mb=statistics.median(m.peak_mb for m in runs),
            requests=statistics.median(m.requests for m in runs),
            throttled=statistics.median(m.throttled for m in runs),
            bookings_rows=statistics.median(rows) if rows else None,
            requests_range=(min(m.requests for m in runs), max(m.requests for m in runs)),
            errors=sorted({m.error for m in runs if m.error}),
            cpu_s=statistics.median(m.cpu_s for m in runs),
            server_cpu_s=statistics.median(m.server_cpu_s for m in runs),
            other_cpu_s=statistics.median(m.other_cpu_s for m in runs),
            sync_step_s=statistics.median(sync_steps) if sync_steps else None,
            all_steps_s=statistics.median(all_steps) if all_steps else None,
        )
    return summaries


def floor_seconds(requests: float) -> float:
    """Least wall time `requests` can take under 120 requests / 60 s: whole windows after the first."""
    if requests <= 0:
        return 0.0
    return (math.ceil(requests / RATE_LIMIT_REQUESTS) - 1) * RATE_LIMIT_WINDOW_S


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass
class Check:
    """One target: what it is, the measured value, and whether it is met."""

    name: str
    target: str
    value: str
    passed: bool | None  # None: not applicable / not measurable in this run


def evaluate_targets(
    settings: Settings, summaries: dict[str, CaseSummary], baseline_peak_mb: float | None = None
) -> list[Check]:
    """The README's targets that this run can speak to."""
    checks: list[Check] = []
    full = summaries.get(CASE_FULL)
    incremental = summaries.get(CASE_INCREMENTAL)
    dlt = summaries.get(CASE_DLT)
    if full is None:
        return checks
    if settings.rate_limited:
        for summary in (full, incremental):
            if summary is None:
                continue
            floor = floor_seconds(summary.requests)
            ratio = _ratio(summary.wall_s, floor)
            checks.append(
                Check(f"{summary.label}: zero 429s", "0", _num(summary.throttled), summary.throttled == 0)
            )
            if floor > 0:
                checks.append(
                    Check(
                        f"{summary.label}: wall / floor",
                        f"<= {TARGET_FLOOR_RATIO}",
                        f"{summary.wall_s:.1f} s / {floor:.0f} s = {ratio:.3f}",
                        ratio is not None and ratio <= TARGET_FLOOR_RATIO,
                    )
                )
        return checks

    at_target_size = settings.bookings == TARGET_BOOKINGS
    checks.append(
        Check(
            "(a) wall time, whole process",
            f"<= {TARGET_OURS_WALL_S:.0f} s at {TARGET_BOOKINGS:,}",
            f"{full.wall_s:.2f} s",
            full.wall_s <= TARGET_OURS_WALL_S if at_target_size else None,
        )
    )
    if settings.bookings >= 10 * TARGET_BOOKINGS:
        budget = TARGET_PEAK_GROWTH_AT_1M * (baseline_peak_mb or TARGET_PEAK_MB)
        source = (
            f"the 100,000 run's {baseline_peak_mb:.0f} MB"
            if baseline_peak_mb
            else f"{TARGET_PEAK_MB:.0f} MB (no 100,000 result found)"
        )
        checks.append(
            Check(
                "(a) peak memory, whole tree",
                f"<= {TARGET_PEAK_GROWTH_AT_1M}x {source} = {budget:.0f} MB",
                f"{full.peak_mb:.0f} MB",
                full.peak_mb <= budget,
            )
        )
    else:
        checks.append(
            Check(
                "(a) peak memory, whole tree",
                f"<= {TARGET_PEAK_MB:.0f} MB at {TARGET_BOOKINGS:,}",
                f"{full.peak_mb:.0f} MB",
                full.peak_mb <= TARGET_PEAK_MB if at_target_size else None,
            )
        )
    if incremental is not None:
        share = _ratio(incremental.wall_s, full.wall_s)
        checks.append(
            Check(
                "(b) / (a) wall time",
                f"<= {TARGET_INCREMENTAL_SHARE}",
                f"{share:.3f}" if share is not None else "-",
                share is not None and share <= TARGET_INCREMENTAL_SHARE,
            )
        )
    if dlt is not None:
        speedup = _ratio(dlt.wall_s, full.wall_s)
        note = "" if dlt.ok_runs == dlt.runs else " (dlt did not finish every run)"
        checks.append(
            Check(
                "dlt / ours (a) wall time",
                f">= {TARGET_DLT_OVER_OURS:.0f}x at {TARGET_BOOKINGS:,}",
                (f"{speedup:.1f}x" if speedup is not None else "-") + note,
                (speedup is not None and speedup >= TARGET_DLT_OVER_OURS) if at_target_size else None,
            )
        )
    return checks


def render_report(
    settings: Settings,
    measurements: Sequence[Measurement],
    server_startup_s: float | None = None,
    baseline_peak_mb: float | None = None,
) -> str:
    """The markdown the harness prints: medians, ratios, rate-limit floor, targets, warnings."""
    summaries = summarize(measurements)
    mode = "rate-limited (120 req / 60 s, 60 s block)" if settings.rate_limited else "no rate limit"
    lines = [
        f"## Benchmark: {settings.bookings:,} bookings, {settings.repeats} repeat(s), {mode}",
        "",
        "| case | runs ok | median wall s | median peak MB | requests | 429s | rows in bookings |",
        "|---|---|---|---|---|---|---|",
    ]
    for summary in summaries.values():
        low, high = summary.requests_range
        requests = _num(summary.requests) if low == high else f"{_num(summary.requests)} ({low}-{high})"
        lines.append(
            f"| {summary.label} | {summary.ok_runs}/{summary.runs} | {summary.wall_s:.2f} | "
            f"{summary.peak_mb:.0f} | {requests} | {_num(summary.throttled)} | "
            f"{_num(summary.bookings_rows)} |"
        )
    lines.append("")

    full = summaries.get(CASE_FULL)
    incremental = summaries.get(CASE_INCREMENTAL)
    dlt = summaries.get(CASE_DLT)
    ratios: list[str] = []
    if full and dlt:
        speedup = _ratio(dlt.wall_s, full.wall_s)
        suffix = "" if dlt.ok_runs == dlt.runs else " (dlt failed or was capped: time until it stopped)"
        ratios.append(f"- dlt / ours (a) wall: **{speedup:.1f}x**{suffix}" if speedup else "- dlt / ours: -")
        peak = _ratio(dlt.peak_mb, full.peak_mb)
        if peak:
            ratios.append(f"- dlt / ours (a) peak memory: {peak:.1f}x")
    if full and incremental:
        share = _ratio(incremental.wall_s, full.wall_s)
        ratios.append(f"- (b) / (a) wall: **{share:.3f}**" if share is not None else "- (b) / (a): -")
    if ratios:
        lines += ["Ratios (of medians):", *ratios, ""]

    cores = os.cpu_count() or 1
    lines += [
        f"CPU seconds during the run (medians; the machine has {cores} cores, the demo server shares them):",
        "",
        "| case | wall s | measured tree CPU s | demo server CPU s | other processes CPU s |",
        "|---|---|---|---|---|",
    ]
    for summary in summaries.values():
        lines.append(
            f"| {summary.label} | {summary.wall_s:.2f} | {summary.cpu_s:.1f} | {summary.server_cpu_s:.1f} | "
            f"{summary.other_cpu_s:.1f} |"
        )
    lines.append("")

    breakdown = [s for s in summaries.values() if s.all_steps_s is not None]
    if breakdown:
        lines += [
            "Where our wall time goes (medians, from Dagster's event log):",
            "",
            "| case | wall s | run steps s | of which sync step s | outside the run s |",
            "|---|---|---|---|---|",
        ]
        for summary in breakdown:
            steps = summary.all_steps_s or 0.0
            lines.append(
                f"| {summary.label} | {summary.wall_s:.2f} | {steps:.2f} | {_num(summary.sync_step_s, 2)} | "
                f"{summary.wall_s - steps:.2f} |"
            )
        lines += [
            "",
            "(run steps = the sync step plus the asset checks; outside the run = interpreter start, imports, "
            "loading the definitions, run storage, shutdown)",
            "",
        ]

    if settings.rate_limited:
        lines += [
            "Rate-limit floor, `(ceil(requests / 120) - 1) * 60 s`:",
            "",
            "| case | requests | floor s | median wall s | wall / floor | 429s | how it ended |",
            "|---|---|---|---|---|---|---|",
        ]
        for summary in summaries.values():
            floor = floor_seconds(summary.requests)
            ratio = _ratio(summary.wall_s, floor)
            ended = "ok" if summary.ok_runs == summary.runs else "; ".join(summary.errors)[:300]
            lines.append(
                f"| {summary.label} | {_num(summary.requests)} | {floor:.0f} | {summary.wall_s:.1f} | "
                f"{f'{ratio:.3f}' if ratio is not None else '-'} | {_num(summary.throttled)} | {ended} |"
            )
        lines.append("")

    checks = evaluate_targets(settings, summaries, baseline_peak_mb)
    if checks:
        lines += ["Targets:", "", "| target | goal | measured | |", "|---|---|---|---|"]
        for check in checks:
            verdict = {True: "PASS", False: "MISS", None: "n/a (other size)"}[check.passed]
            lines.append(f"| {check.name} | {check.target} | {check.value} | {verdict} |")
        lines.append("")

    lines += [f"WARNING: {warning}" for warning in collect_warnings(settings, measurements)]
    lines += [f"NOISE: {note}" for note in collect_noise(measurements)]
    if server_startup_s is not None:
        lines.append(
            f"(a fresh demo server per repeat; with {settings.bookings:,} bookings it started in at most "
            f"{server_startup_s:.1f} s)"
        )
    return "\n".join(lines).rstrip() + "\n"


def collect_noise(measurements: Sequence[Measurement]) -> list[str]:
    """Runs that shared the CPUs with other work: their times are inflated, their memory less so."""
    notes: list[str] = []
    cores = os.cpu_count() or 1
    for m in measurements:
        if m.other_cpu_s > NOISE_SHARE * m.wall_s * cores:
            notes.append(
                f"{CASE_LABELS[m.case]}, repeat {m.repeat}: other processes used {m.other_cpu_s:.1f} CPU s "
                f"during the run ({m.other_cpu_s / (m.wall_s * cores):.0%} of the machine); its time is inflated"
            )
    return notes


def collect_warnings(settings: Settings, measurements: Sequence[Measurement]) -> list[str]:
    """Anything that makes a number untrustworthy: failures, wrong row counts, throttling."""
    warnings: list[str] = []
    for m in measurements:
        label = f"{CASE_LABELS[m.case]}, repeat {m.repeat}"
        if m.case in (CASE_FULL, CASE_INCREMENTAL):
            if not m.ok:
                warnings.append(f"{label} failed: {m.error}")
            if m.bookings_rows != settings.bookings:
                warnings.append(
                    f"{label}: {OUR_TABLE} has {m.bookings_rows} rows, expected exactly {settings.bookings:,}"
                )
            if m.throttled:
                warnings.append(f"{label}: the server answered 429 {m.throttled} time(s)")
        elif not m.ok:
            warnings.append(f"{label} did not finish: {m.error}")
        elif m.bookings_rows != settings.bookings:
            warnings.append(
                f"{label}: {DLT_TABLE} has {m.bookings_rows} rows, expected {settings.bookings:,}"
            )
    return warnings


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def environment_info(launcher: Sequence[str]) -> dict[str, Any]:
    """Versions and machine facts saved beside the numbers."""
    versions: dict[str, str | None] = {}
    for package in ("dagster", "dlt", "duckdb", "polars", "httpx", "orjson", "pyarrow", "psutil"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commit = None
    dirty: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "sched_assets"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        dirty = [line[3:] for line in status.splitlines()]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_total_mb": round(psutil.virtual_memory().total / MB),
        "launcher": list(launcher),
        "git_commit": commit,
        "uncommitted_in_sched_assets": dirty,
        "versions": versions,
    }


def latest_baseline_peak_mb(results_dir: Path = RESULTS_DIR) -> tuple[float, str] | None:
    """(a)'s median peak in the newest saved 100,000-booking run without a rate limit, and its file."""
    best: tuple[str, float, str] | None = None
    for path in results_dir.glob("*.json"):
        try:
            saved = json.loads(path.read_text())
            settings = saved["settings"]
            peak = float(saved["medians"][CASE_FULL]["peak_mb"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if settings.get("bookings") != TARGET_BOOKINGS or settings.get("rate_limited"):
            continue
        started = str(saved.get("started_at", ""))
        if best is None or started > best[0]:
            best = (started, peak, str(path))
    return (best[1], best[2]) if best else None


def default_output_path(settings: Settings, now: datetime) -> Path:
    mode = "-ratelimited" if settings.rate_limited else ""
    return RESULTS_DIR / f"{now:%Y%m%dT%H%M%SZ}-n{settings.bookings}{mode}.json"


def run_benchmark(
    settings: Settings,
    out: Path | None = None,
    log: TextIO = sys.stderr,
    workdir: Path | None = None,
    baseline_peak_mb: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Start the server, run every case, save the JSON; return (markdown report, results dict)."""
    if not settings.skip_dlt:
        try:
            metadata.version("dlt")
        except metadata.PackageNotFoundError:
            raise SystemExit(
                "dlt is not installed: run `uv sync --group bench` and use "
                "`uv run --group bench python benchmarks/run.py`, or pass --skip-dlt."
            ) from None
    started_at = datetime.now(UTC)
    owns_workdir = workdir is None
    root = workdir or Path(tempfile.mkdtemp(prefix="sched_bench_"))
    try:
        bench = Bench(settings, root, log)
        measurements = bench.run_all()
        startup = max(bench.server_startups, default=0.0)
        report = render_report(settings, measurements, startup, baseline_peak_mb)
        results = {
            "started_at": started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "settings": asdict(settings),
            "environment": environment_info(settings.launcher),
            "server_startup_s": bench.server_startups,
            "commands": {
                "ours": ours_command(settings.launcher),
                "ours_full_refresh": ours_command(settings.launcher, full_refresh=True),
                "dlt": dlt_command(settings.launcher, "<base-url>", Path("<db>"), Path("<dir>")),
            },
            "measurements": [{**asdict(m), "ok": m.ok, "label": CASE_LABELS[m.case]} for m in measurements],
            "medians": {case: asdict(s) for case, s in summarize(measurements).items()},
            "report_markdown": report,
        }
        path = out or default_output_path(settings, started_at)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str))
        results["path"] = str(path)
        return report, results
    finally:
        if owns_workdir and not settings.keep_files:
            shutil.rmtree(root, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, Path | None, float | None]:
    parser = argparse.ArgumentParser(
        description="Time our Dagster sync (full and incremental) against dlt's rest_api source."
    )
    parser.add_argument(
        "--bookings",
        type=int,
        default=None,
        help=f"bookings in the demo account (default {DEFAULT_BOOKINGS:,}; "
        f"{DEFAULT_BOOKINGS_RATE_LIMITED:,} with --rate-limited)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs per case; the table shows medians (default {DEFAULT_REPEATS}; "
        f"{DEFAULT_REPEATS_RATE_LIMITED} with --rate-limited)",
    )
    parser.add_argument(
        "--rate-limited",
        action="store_true",
        help="the demo API enforces 120 requests / 60 s with a 60 s block, as the real one",
    )
    parser.add_argument("--skip-dlt", action="store_true", help="do not run case (c), dlt")
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default benchmarks/results/...)"
    )
    parser.add_argument("--seed", type=int, default=7, help="demo account seed")
    parser.add_argument(
        "--dlt-timeout", type=float, default=600.0, help="kill a dlt run after this many seconds"
    )
    parser.add_argument(
        "--ours-timeout", type=float, default=1800.0, help="kill one of our runs after this many seconds"
    )
    parser.add_argument(
        "--baseline-peak-mb",
        type=float,
        default=None,
        help="(a)'s peak at 100,000 bookings, for the 1,000,000-booking memory target (default: from the "
        "newest 100,000-booking result in benchmarks/results/, else 400)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for other processes to leave the CPUs "
        "idle (0: never wait); runs that shared the machine anyway get a NOISE note",
    )
    parser.add_argument(
        "--no-prerender",
        action="store_true",
        help="let the demo server build each page's JSON per request (by default it renders every booking "
        "at start, so serving costs little CPU and the numbers measure the clients)",
    )
    parser.add_argument(
        "--keep-files", action="store_true", help="keep the temp DuckDB files and logs (path printed)"
    )
    parser.add_argument(
        "--no-uv",
        action="store_true",
        help="run the commands with this interpreter's venv instead of `uv run --no-sync`",
    )
    args = parser.parse_args(argv)
    bookings = args.bookings or (DEFAULT_BOOKINGS_RATE_LIMITED if args.rate_limited else DEFAULT_BOOKINGS)
    repeats = args.repeats or (DEFAULT_REPEATS_RATE_LIMITED if args.rate_limited else DEFAULT_REPEATS)
    if bookings < 1 or repeats < 1:
        parser.error("--bookings and --repeats must be at least 1")
    settings = Settings(
        bookings=bookings,
        repeats=repeats,
        rate_limited=args.rate_limited,
        skip_dlt=args.skip_dlt,
        seed=args.seed,
        ours_timeout_s=args.ours_timeout,
        dlt_timeout_s=args.dlt_timeout,
        launcher=[] if args.no_uv else default_launcher(),
        keep_files=args.keep_files,
        quiet_wait_s=max(0.0, args.quiet_wait),
        prerender=not args.no_prerender,
    )
    return settings, args.out, args.baseline_peak_mb


def main(argv: Sequence[str] | None = None) -> int:
    settings, out, baseline = parse_args(argv)
    if baseline is None and settings.bookings >= 10 * TARGET_BOOKINGS and not settings.rate_limited:
        found = latest_baseline_peak_mb()
        if found:
            baseline = found[0]
            print(f"memory baseline: (a) peaked at {found[0]:.0f} MB in {found[1]}", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="sched_bench_")) if settings.keep_files else None
    report, results = run_benchmark(settings, out, workdir=workdir, baseline_peak_mb=baseline)
    print(report)
    print(f"raw results: {results['path']}")
    if workdir is not None:
        print(f"files kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
