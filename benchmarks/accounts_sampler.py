"""Memory, CPU and Postgres connections of a whole deployment while it works (`benchmarks/accounts.py`).

`DeploymentSampler` walks the process trees of our processes (the daemon with its code server and run
workers, or the `dagster job execute` processes of the CLI launcher) every `interval` seconds on a
thread and keeps:

- the peak of the summed RSS of every one of our processes (`peak_total_bytes`);
- per run process (`dagster api execute_run ...` under the daemon, `dagster job execute ...` for the
  CLI launcher; Dagster's event log names each run's pid): its peak RSS (with its own children) and
  its last CPU seconds;
- the CPU of every process seen, so `cpu_s()` gives the CPU used inside the measured window (processes
  alive at `mark()` count from their CPU then; a process that ends between two samples loses its last
  interval, at most `interval` seconds of it);
- the same for the Postgres server's processes, every second (kept apart: infrastructure, not ours),
  and the peak number of connections to the instance's database (`pg_stat_activity`, every second).

RSS counts shared pages once per process, so the totals are upper bounds (as in `measure.py`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil


def role(cmdline: list[str]) -> str:
    """What one of our processes is, from its command line."""
    text = " ".join(cmdline)
    if "spawn_main" in text:  # the code server starts each run worker with multiprocessing's spawn
        return "run"
    if "execute_run" in text or ("job" in cmdline and "execute" in cmdline):
        return "run"
    if "dagster-daemon" in text:
        return "daemon"
    if "grpc" in text:
        return "code server"
    return "other"


@dataclass
class RunProcess:
    """One run worker process as sampled."""

    pid: int
    started: float  # the process's create time (epoch seconds)
    peak_bytes: int = 0
    cpu_s: float = 0.0
    last_seen: float = 0.0


@dataclass
class _Seen:
    cpu_at_mark: float  # its CPU when the window opened (0 for processes born inside it)
    cpu_last: float
    role: str


@dataclass
class DeploymentSampler:
    """See the module docstring. `roots()` gives the pids whose trees are ours, at each sample."""

    roots: Callable[[], Iterable[int]]
    postgres_pid: Callable[[], int | None] = lambda: None
    connections: Callable[[], int | None] = lambda: None
    interval: float = 0.2
    peak_total_bytes: int = 0
    peak_by_role: dict[str, int] = field(default_factory=dict)
    peak_postgres_bytes: int = 0
    peak_connections: int = 0
    runs: dict[int, RunProcess] = field(default_factory=dict)
    samples: int = 0

    def __post_init__(self) -> None:
        self._ours: dict[int, _Seen] = {}
        self._postgres: dict[int, _Seen] = {}
        self._marked = False
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._sample, self.interval), daemon=True),
            threading.Thread(target=self._loop, args=(self._sample_connections, 1.0), daemon=True),
        ]
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> DeploymentSampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def mark(self) -> None:
        """Open the measured window: peaks restart, CPU counts from now."""
        with self._lock:
            self._sample()
            for seen in (*self._ours.values(), *self._postgres.values()):
                seen.cpu_at_mark = seen.cpu_last
            self.peak_total_bytes = self.peak_postgres_bytes = self.peak_connections = 0
            self.peak_by_role = {}
            self.runs = {}
            self._marked = True

    def _loop(self, sample: Callable[[], None], interval: float) -> None:
        while not self._stop.is_set():
            with self._lock:
                sample()
            self._stop.wait(interval)

    # ---- results -----------------------------------------------------------------------------

    def cpu_s(self) -> float:
        """CPU seconds of our processes inside the window."""
        return sum(seen.cpu_last - seen.cpu_at_mark for seen in self._ours.values())

    def cpu_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for seen in self._ours.values():
            out[seen.role] = out.get(seen.role, 0.0) + seen.cpu_last - seen.cpu_at_mark
        return out

    def postgres_cpu_s(self) -> float:
        return sum(seen.cpu_last - seen.cpu_at_mark for seen in self._postgres.values())

    # ---- sampling ----------------------------------------------------------------------------

    def _sample(self) -> None:
        now = time.time()
        processes: dict[int, psutil.Process] = {}
        for pid in list(self.roots()):
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for process in [root, *root.children(recursive=True)]:
                    processes[process.pid] = process
        total = 0
        by_role: dict[str, int] = {}
        rss: dict[int, int] = {}
        for pid, process in processes.items():
            with contextlib.suppress(psutil.Error):
                with process.oneshot():
                    rss[pid] = process.memory_info().rss
                    times = process.cpu_times()
                    cpu = times.user + times.system
                    seen = self._ours.get(pid)
                    if seen is None:
                        seen = self._ours[pid] = _Seen(0.0, cpu, "other")
                    if seen.role == "other":  # seen again: a fork may not have exec'd yet at first sight
                        seen.role = role(process.cmdline())
                        if seen.role == "run":
                            self._new_run(process)
                    seen.cpu_last = cpu
                total += rss[pid]
                by_role[self._ours[pid].role] = by_role.get(self._ours[pid].role, 0) + rss[pid]
        for pid, run in self.runs.items():
            if pid in processes:
                with contextlib.suppress(psutil.Error):
                    tree = [pid, *(child.pid for child in processes[pid].children(recursive=True))]
                    run.peak_bytes = max(run.peak_bytes, sum(rss.get(p, 0) for p in tree))
                    run.cpu_s = self._ours[pid].cpu_last
                    run.last_seen = now
        self.peak_total_bytes = max(self.peak_total_bytes, total)
        for name, value in by_role.items():
            self.peak_by_role[name] = max(self.peak_by_role.get(name, 0), value)
        self.samples += 1

    def _new_run(self, process: psutil.Process) -> None:
        self.runs[process.pid] = RunProcess(pid=process.pid, started=process.create_time())

    def _sample_postgres(self) -> int:
        pid = self.postgres_pid()
        if pid is None:
            return 0
        total = 0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for process in [root, *root.children()]:
                with contextlib.suppress(psutil.Error):
                    with process.oneshot():
                        total += process.memory_info().rss
                        times = process.cpu_times()
                        cpu = times.user + times.system
                    seen = self._postgres.setdefault(process.pid, _Seen(0.0, cpu, "postgres"))
                    seen.cpu_last = cpu
        return total

    def _sample_connections(self) -> None:
        # Postgres once a second: dozens of backends, cheap to miss a short peak of, costly to walk often.
        self.peak_postgres_bytes = max(self.peak_postgres_bytes, self._sample_postgres())
        with contextlib.suppress(Exception):
            count = self.connections()
            if count is not None:
                self.peak_connections = max(self.peak_connections, count)
