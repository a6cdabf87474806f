"""Measuring one process tree: wall time, peak memory of the whole tree, CPU, and a quiet machine first.

`measure_process` runs a command to completion in its own process group and returns its wall time,
the peak of the summed RSS of the process and all its descendants (sampled every 50 ms with psutil),
the CPU of the tree (RUSAGE_CHILDREN) and the busy CPU of the whole machine during the run.
`wait_for_quiet` is the noise guard run before each measurement.
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.model import MB, NOISE_SHARE, REPO_ROOT, SAMPLE_INTERVAL_S
from sched_assets_tests.processes import start_group, stop_group


def _tree(root: psutil.Process) -> list[psutil.Process]:
    """`root` and its live descendants; empty when `root` is gone."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss_bytes(root: psutil.Process) -> int:
    """Summed RSS of `root` and all its live descendants (processes that vanish mid-read count 0)."""
    total = 0
    for process in _tree(root):
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def tree_cpu_s(root: psutil.Process) -> float:
    """User + system CPU seconds used so far by `root` and its live descendants."""
    total = 0.0
    for process in _tree(root):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
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
        process = start_group(command, env=env, cwd=cwd, stdout=out, stderr=err)
        timed_out = False
        try:
            with TreeMemorySampler(process.pid) as sampler:
                try:
                    returncode: int | None = process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    returncode = stop_group(process)
                wall = time.perf_counter() - started
        except BaseException:
            stop_group(process)
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


def tail(path: str | Path, lines: int = 5, max_chars: int = 2000) -> str:
    """The last few lines of a log file (for error reports)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-max_chars:]


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
