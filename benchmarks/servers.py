"""The demo API server the benchmarks read from, and its admin endpoints.

`DemoServer` runs `python -m sched_assets.demo --port 0 --bookings N [--shape S] [--rate-limit ...]
[--prerender]` in its own process group, reads the URL and API key from its banner, and wraps
`/_demo/stats`, `/_demo/reset-stats`, `/_demo/reset-limits` and `/_demo/touch`. Used by `run.py` (one
fresh server per repeat) and `client_read.py`.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.measure import tail, tree_cpu_s
from benchmarks.model import REPO_ROOT, executable
from sched_assets_tests.processes import start_group, stop_group

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
        shape: str | None = None,
    ) -> None:
        self.bookings = bookings
        self.seed = seed
        self.rate_limit = rate_limit
        self.error_rate = error_rate
        self.launcher = list(launcher)
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="sched_bench_server_"))
        self.prerender = prerender
        self.shape = shape  # None: the server's default account shape
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
            executable(self.launcher, "python"),
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
        if self.shape:
            command += ["--shape", self.shape]
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
            self._process = start_group(self.command, cwd=REPO_ROOT, stdout=out, stderr=err)
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
            stop_group(self._process)
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
