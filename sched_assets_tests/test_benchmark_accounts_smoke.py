"""Smoke test of the many-accounts benchmark (`benchmarks/accounts.py` and its `accounts_*` modules).

- The report (table, targets, where the time goes, capacity inputs) on made-up measurements.
- End to end on two tiny demo accounts: the multi-account demo server, a private PostgreSQL holding
  the `deploy/dagster.yaml` instance, and case (a) with the `cli` launcher (one `dagster job execute`
  run over both accounts: the daemon's backfill loop alone would take up to 30 s more). Checks the
  exactness verdict, the 429 count, the run's record and timings from the event log, and the sampled
  memory of the run process. Skipped without the PostgreSQL server binaries, unless `CI` is set.
- The dlt loop (case (b)) on the same two accounts, only where dlt is installed (`uv sync --group bench`).
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks import accounts, accounts_report
from benchmarks.accounts_sampler import role
from sched_assets_tests.postgres import find_bindir

TINY = {"accounts": 2, "bookings": 20, "per_run": 2, "max_runs": 1}


def _settings(**overrides: Any) -> accounts.AccountsSettings:
    # warm=False: the shared bytecode cache fills as the processes import (compiling the whole venv first
    # costs ~15 s on a fresh CI machine).
    values = {**TINY, "skip_dlt": True, "launcher": "cli", "quiet_wait_s": 0.0, "warm": False}
    return accounts.AccountsSettings(**{**values, **overrides})


def _made_up_results() -> dict[str, Any]:
    run = {
        "run_id": "r1",
        "status": "SUCCESS",
        "range": ["demo-001", "demo-025"],
        "accounts": 25,
        "pid": 11,
        "created": 100.0,
        "launched": 101.0,
        "started": 105.0,
        "first_step": 106.0,
        "ended": 140.0,
        "sync_step_s": 20.0,
        "before_materializations_s": 12.0,
        "fetch_max_s": 4.0,
        "write_tx_s": 5.0,
        "recording_s": 8.0,
        "materializations": 175,
        "analytics_steps_s": 6.0,
        "check_steps_s": 6.0,
        "all_steps_s": 33.0,
        "peak_mb": 300.0,
        "cpu_s": 30.0,
    }
    runs = [dict(run, run_id=f"r{i}", pid=10 + i, created=100.0 + 30 * i) for i in range(8)]
    ours = {
        "launcher": "daemon",
        "started": 90.0,
        "wall_s": 180.0,
        "accounts_per_min": 200 / 180 * 60,
        "runs": runs,
        "runs_expected": 8,
        "runs_ok": 8,
        "cli_processes": [],
        "pickup_s": 10.0,
        "requests": 5000,
        "throttled": 0,
        "rows_wrong": {},
        "missing_partitions": {"raw/bookings": 0},
        "run_processes": [{"pid": 10 + i, "peak_bytes": 300 * 2**20, "cpu_s": 30.0} for i in range(8)],
        "peak_total_mb": 900.0,
        "cpu_s": 300.0,
        "cpu_by_role": {"run": 240.0, "daemon": 30.0, "code server": 30.0},
        "postgres_cpu_s": 20.0,
        "server_cpu_s": 10.0,
        "machine_busy_cpu_s": 340.0,
        "peak_connections": 12,
        "postgres_db_bytes_before": 10_000_000,
        "postgres_db_bytes": 60_000_000,
        "event_log_rows_before": 10,
        "event_log_rows": 20_010,
        "warehouse_bytes": 400_000_000,
    }
    dlt = {
        "wall_s": 600.0,
        "peak_mb": 250.0,
        "cpu_s": 550.0,
        "other_cpu_s": 0.0,
        "returncode": 0,
        "requests": 5000,
        "throttled": 0,
        "rows": {},
        "failed": {},
        "accounts_ok": 200,
        "account_seconds": {"demo-001": 3.0},
    }
    settings = {**vars(accounts.AccountsSettings())}
    return {
        "settings": settings,
        "expected_bookings": 400_000,
        "expected_by_account": {},
        "ours": ours,
        "dlt": dlt,
    }


def test_report_on_made_up_results() -> None:
    results = _made_up_results()
    report = accounts_report.render(results)
    assert "| (a) ours: deploy/dagster.yaml + daemon, one GraphQL backfill | 180.0 | 66.7 | 8 (8) |" in report
    assert "| (b) dlt rest_api loop, one pipeline per account, sequential | 600.0 | 20.0 |" in report
    assert "| (a) >= 60 accounts per minute | 66.7 | PASS |" in report
    assert "| (a) throughput >= 2.5x (b)'s (dlt wall / ours) | 3.33x | PASS |" in report
    assert "| (a) zero 429 | 0 | PASS |" in report
    assert "| run worker start-up (STARTING → STARTED) | 4.0 | 4.0 | - |" in report
    assert "| raw_sources step (sync of every account of the run) | 20.0 | 20.0 | 0.80 |" in report
    inputs = accounts_report.capacity_inputs(results["settings"], results["ours"], results)
    assert inputs["accounts_per_core_hour_cpu"] == pytest.approx(200 / (320 / 3600))
    assert inputs["postgres_bytes_per_account_sync"] == pytest.approx(250_000)
    assert inputs["event_rows_per_account_sync"] == pytest.approx(100)
    assert "Projection, 10,000 accounts hourly" in report
    assert "NOISE" not in report and "WARNING" not in report

    slow = copy.deepcopy(results)
    slow["ours"].update(wall_s=400.0, accounts_per_min=30.0, throttled=3, rows_wrong={"demo-007": [1, 2]})
    report = accounts_report.render(slow)
    assert "| (a) >= 60 accounts per minute | 30.0 | MISS |" in report
    assert "| (a) throughput >= 2.5x (b)'s (dlt wall / ours) | 1.50x | MISS |" in report
    assert "| (a) zero 429 | 3 | MISS |" in report
    assert "WARNING: (a) rows off for 1 accounts" in report

    small = copy.deepcopy(results)
    small["settings"].update(accounts=6, bookings=200)
    assert "n/a (not 200 x 2,000)" in accounts_report.render(small)


def test_process_roles() -> None:
    """The sampler tells run workers from the daemon and the code server by their command lines."""
    spawn = ["python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)"]
    assert role(spawn) == "run"
    assert role(["dagster", "job", "execute", "-m", "sched_assets.definitions"]) == "run"
    assert role(["python", "/x/bin/dagster-daemon", "run", "-w", "w.yaml"]) == "daemon"
    assert role(["python", "-m", "dagster", "api", "grpc", "--lazy-load-user-code"]) == "code server"


@pytest.mark.slow
def test_cli_launcher_end_to_end(tmp_path: Path) -> None:
    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("the PostgreSQL server binaries (initdb, pg_ctl) are missing under CI")
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    log = io.StringIO()
    results = accounts.run_benchmark(_settings(), tmp_path, log=log)
    ours = results["ours"]
    assert results["expected_bookings"] == sum(results["expected_by_account"].values()) > 0
    assert ours["rows_wrong"] == {}, log.getvalue()
    assert ours["rows_total"] == results["expected_bookings"]
    assert ours["missing_partitions"] and not any(ours["missing_partitions"].values())
    assert ours["throttled"] == 0 and ours["requests"] > 0
    [run] = ours["runs"]
    assert run["status"] == "SUCCESS" and run["accounts"] == 2
    assert run["range"] == ["demo-001", "demo-002"]
    assert run["sync_step_s"] > 0 and run["materializations"] >= 2 * 6  # every table, once per account
    assert run["sync_step_s"] >= run["before_materializations_s"] > run["fetch_max_s"] > 0
    assert run["write_tx_s"] > 0
    assert run["checks_failed"] == 0 and run["checks_passed"] > 0, run["failed_checks"]
    # The demo's deliberate booking of a deleted event type: a warning, in each account.
    assert run["failed_checks"] == ["raw/bookings:bookings_event_type_known"]
    assert run["peak_mb"] and run["peak_mb"] > 50  # the sampler found the run process by its pid
    assert ours["peak_total_mb"] >= run["peak_mb"]
    assert ours["peak_connections"] >= 1
    report = accounts_report.render(results)
    assert "| (a) ours: deploy/dagster.yaml, concurrent `dagster job execute` |" in report
    assert "| (a) zero 429 | 0 | PASS |" in report
    assert "0 accounts off, 0 partitions missing | PASS |" in report


def test_dlt_loop_on_two_accounts(tmp_path: Path) -> None:
    pytest.importorskip("dlt")
    settings = _settings(skip_dlt=False)
    expected = accounts.expected_bookings(settings)
    with accounts.AccountsDemoServer(settings, tmp_path / "accounts.yaml", tmp_path / "server") as server:
        result = accounts.run_dlt(settings, server, server.keys_env(), tmp_path, io.StringIO())
    assert result["returncode"] == 0, result["error"]
    assert result["failed"] == {}
    assert result["rows"] == expected
    assert result["throttled"] == 0
    assert set(result["account_seconds"]) == set(expected)
