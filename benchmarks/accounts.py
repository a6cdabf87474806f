"""Many accounts (issue 13): our deployment vs a dlt loop, side by side, over one multi-account demo API.

    uv run --group bench python benchmarks/accounts.py --accounts 200 --bookings 2000 --rate-limit 120/60/60 \
        [--per-run 25] [--max-runs 4] [--skip-dlt] [--launcher daemon|cli] [--capacity]

One demo server (`python -m sched_assets.demo --accounts N --bookings B --rate-limit R --prerender
--write-accounts ...`) serves every account, one key and one rate-limit budget each. Then:

- (a) ours, as a deployment runs it (`accounts_deploy.py`): `deploy/dagster.yaml` on a private
  PostgreSQL (`max_concurrent_runs` = `--max-runs`), `dagster-daemon` running, one backfill of every
  asset (raw, analytics, checks) over every account launched through GraphQL, `SCHED_ACCOUNTS_PER_RUN`
  accounts per run, into one DuckDB file. Measured from the launch to the last run's end: wall,
  accounts per minute, runs and their phases, 429s, peak RSS per run process and of all our processes
  (`accounts_sampler.py`), and exactness (each account's `raw.bookings` rows = its demo bookings; every
  asset materialized for every account). `--launcher cli` runs the batches as `--max-runs` concurrent
  `dagster job execute` processes instead (no daemon, same instance).
- (b) dlt's `rest_api` source in a loop, one pipeline run per account, sequentially, into one DuckDB
  file (`accounts_dlt.py`), measured as one process (`measure.py`).

`--capacity` runs (a) alone over 1,000 small accounts (50 bookings) and prints the inputs of the
capacity model (accounts per core-hour, per-run costs, Postgres connections and growth, warehouse
size). The report is markdown on stdout (`accounts_report.py`); everything measured is saved as JSON
under `benchmarks/results/`. See `benchmarks/README.md`, "Many accounts".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from benchmarks.accounts_ours import count_by_account, run_ours
from benchmarks.accounts_report import render
from benchmarks.cases import _json_summary
from benchmarks.measure import measure_process, tail, wait_for_quiet
from benchmarks.model import RESULTS_DIR
from benchmarks.run import environment_info
from benchmarks.servers import DemoServer, request_counts


@dataclass
class AccountsSettings:
    accounts: int = 200
    bookings: int = 2000
    rate_limit: str = "120/60/60"
    per_run: int = 25
    max_runs: int = 4  # deploy/dagster.yaml's max_concurrent_runs
    skip_dlt: bool = False
    launcher: str = "daemon"  # or "cli"
    capacity: bool = False
    seed: int = 7
    prerender: bool = True
    ours_timeout_s: float = 3600.0
    dlt_timeout_s: float = 3600.0
    quiet_wait_s: float = 60.0
    keep_files: bool = False
    # One bytecode cache for every process of the deployment, compiled first when `warm` (see
    # accounts_deploy.warm_bytecode; production images: `uv sync --compile-bytecode`).
    pycache: str = str(Path(tempfile.gettempdir()) / "sched_bench_pycache")
    warm: bool = True


class AccountsDemoServer(DemoServer):
    """The demo API serving `accounts` accounts; writes the accounts file and the keys next to it."""

    def __init__(self, settings: AccountsSettings, accounts_file: Path, log_dir: Path) -> None:
        total = settings.accounts * settings.bookings
        super().__init__(
            settings.bookings,
            seed=settings.seed,
            rate_limit=settings.rate_limit or None,
            log_dir=log_dir,
            start_timeout_s=120.0 + total / 1000,
            prerender=settings.prerender,
        )
        self.accounts = settings.accounts
        self.accounts_file = accounts_file

    @property
    def command(self) -> list[str]:
        extra = ["--accounts", str(self.accounts), "--write-accounts", str(self.accounts_file)]
        return [*super().command, *extra]

    def keys_env(self) -> dict[str, str]:
        """SCHED_API_KEY__* = key, from the accounts.env file the server wrote."""
        env_file = self.accounts_file.with_suffix(".env")
        deadline = time.monotonic() + 30
        while not env_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        return {k: v for k, v in pairs if k.startswith("SCHED_API_KEY__")}


def expected_bookings(settings: AccountsSettings) -> dict[str, int]:
    """Each demo account's bookings, as the server derives them (same function, same seed)."""
    from sched_assets.demo.accounts import demo_accounts

    return {
        key.name: key.bookings
        for key in demo_accounts(settings.accounts, settings.bookings, seed=settings.seed)
    }


def run_dlt(
    settings: AccountsSettings, server: AccountsDemoServer, keys: dict[str, str], root: Path, log: TextIO
) -> dict[str, Any]:
    """(b): the dlt loop as one process; its wall, peak memory, CPU, 429s and per-account rows."""
    from benchmarks.accounts_deploy import deployment_env
    from benchmarks.accounts_dlt import dataset_name

    database = root / "dlt.duckdb"
    env = deployment_env(os.environ, {}, keys, {"PYTHONPYCACHEPREFIX": settings.pycache})
    command = [sys.executable, "-m", "benchmarks.accounts_dlt", "--accounts-file", str(server.accounts_file)]
    command += ["--duckdb", str(database), "--pipelines-dir", str(root / "dlt_pipelines")]
    wait_for_quiet(settings.quiet_wait_s, lambda m: print(m, file=log))
    server.reset_stats()
    server.reset_limits()
    server_cpu = server.cpu_seconds()
    print(f"(b) dlt loop over {settings.accounts} accounts, sequential ...", file=log)
    result = measure_process(command, env, root / "logs", "dlt", timeout_s=settings.dlt_timeout_s)
    requests, throttled, statuses = request_counts(server.stats())
    summary = _json_summary(result.stdout_path)
    names = list(expected_bookings(settings))
    rows = count_by_account(database, {name: f"{dataset_name(name)}.bookings" for name in names})
    return {
        "wall_s": result.wall_s,
        "peak_mb": result.peak_mb,
        "cpu_s": result.cpu_s,
        "server_cpu_s": server.cpu_seconds() - server_cpu,
        "other_cpu_s": max(
            0.0, result.machine_busy_cpu_s - result.cpu_s - (server.cpu_seconds() - server_cpu)
        ),
        "returncode": result.returncode,
        "timed_out": result.timed_out,
        "requests": requests,
        "throttled": throttled,
        "statuses": statuses,
        "rows": rows,
        "accounts_ok": summary.get("accounts_ok"),
        "failed": summary.get("failed", {}),
        "account_seconds": summary.get("account_seconds", {}),
        "error": None if result.returncode == 0 else tail(result.stderr_path, 5),
        "database_bytes": database.stat().st_size if database.exists() else None,
    }


def run_benchmark(settings: AccountsSettings, root: Path, log: TextIO = sys.stderr) -> dict[str, Any]:
    """Everything of one invocation; returns the results (the report is `render(results)`)."""
    expected = expected_bookings(settings)
    started_at = datetime.now(UTC)
    accounts_file = root / "accounts.yaml"
    print(f"demo server: {settings.accounts} accounts x {settings.bookings} bookings ...", file=log)
    with AccountsDemoServer(settings, accounts_file, root / "server") as server:
        print(f"  up in {server.startup_s:.1f} s at {server.base_url}", file=log)
        keys = server.keys_env()
        ours = run_ours(settings, server, keys, expected, root, log)
        dlt = None if settings.skip_dlt else run_dlt(settings, server, keys, root, log)
    return {
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "settings": asdict(settings),
        "environment": environment_info([]),  # versions, git commit, uncommitted files in sched_assets/
        "server_startup_s": server.startup_s,
        "expected_bookings": sum(expected.values()),
        "expected_by_account": expected,
        "ours": ours,
        "dlt": dlt,
    }


def parse_args(argv: Sequence[str] | None = None) -> tuple[AccountsSettings, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--accounts", type=int, default=None, help="demo accounts (default 200; 1000 with --capacity)"
    )
    p.add_argument(
        "--bookings",
        type=int,
        default=None,
        help="mean bookings per account (default 2000; 50 with --capacity)",
    )
    p.add_argument("--rate-limit", default="120/60/60", help="per key, LIMIT/WINDOW/BLOCK ('' for none)")
    p.add_argument("--per-run", type=int, default=25, help="accounts per run (SCHED_ACCOUNTS_PER_RUN)")
    p.add_argument(
        "--max-runs",
        type=int,
        default=4,
        help="max_concurrent_runs, as deploy/dagster.yaml (cli: concurrent processes)",
    )
    p.add_argument("--skip-dlt", action="store_true", help="do not run (b), the dlt loop")
    p.add_argument("--launcher", choices=("daemon", "cli"), default="daemon")
    p.add_argument(
        "--capacity", action="store_true", help="1,000 small accounts through (a) only; capacity inputs"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-prerender", action="store_true", help="the demo server renders pages per request")
    p.add_argument("--ours-timeout", type=float, default=3600.0)
    p.add_argument("--dlt-timeout", type=float, default=3600.0)
    p.add_argument("--quiet-wait", type=float, default=60.0, help="wait up to S s for an idle machine first")
    p.add_argument("--keep-files", action="store_true", help="keep the work directory (path printed)")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/...)")
    a = p.parse_args(argv)
    settings = AccountsSettings(
        accounts=a.accounts or (1000 if a.capacity else 200),
        bookings=a.bookings if a.bookings is not None else (50 if a.capacity else 2000),
        rate_limit=a.rate_limit,
        per_run=a.per_run,
        max_runs=a.max_runs,
        skip_dlt=a.skip_dlt or a.capacity,
        launcher=a.launcher,
        capacity=a.capacity,
        seed=a.seed,
        prerender=not a.no_prerender,
        ours_timeout_s=a.ours_timeout,
        dlt_timeout_s=a.dlt_timeout,
        quiet_wait_s=max(0.0, a.quiet_wait),
        keep_files=a.keep_files,
    )
    if settings.accounts < 1 or settings.per_run < 1 or settings.max_runs < 1:
        p.error("--accounts, --per-run and --max-runs must be at least 1")
    return settings, a.out


def main(argv: Sequence[str] | None = None) -> int:
    settings, out = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="sched_bench_accounts_"))
    try:
        results = run_benchmark(settings, root)
        report = render(results)
        results["report_markdown"] = report
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        mode = "-capacity" if settings.capacity else ""
        path = out or RESULTS_DIR / f"{stamp}-accounts-{settings.accounts}x{settings.bookings}{mode}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str))
        print(report)
        print(f"raw results: {path}")
    finally:
        if settings.keep_files:
            print(f"files kept in {root}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
