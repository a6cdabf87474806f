"""The markdown report of `benchmarks/accounts.py`: the side-by-side table, the targets, where (a)'s time
goes, and the measured inputs of the capacity model (with a projection to 10,000 accounts hourly)."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.model import MB, NOISE_SHARE

TARGET_ACCOUNTS_PER_MIN = 60.0
TARGET_OVER_DLT = 2.5
MODEL_ACCOUNTS = 10_000  # the capacity model's hourly schedule


def _med(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _max(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _n(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def run_phases(ours: dict[str, Any]) -> list[dict[str, float | None]]:
    """Per run: queue (created → STARTING), start-up (STARTING → STARTED), setup (STARTED → first step),
    steps, run (STARTED → end), created → started; for the CLI launcher, process start → STARTED."""
    processes = {tuple(p["batch"]): p for p in ours.get("cli_processes", [])}
    phases = []
    for run in ours["runs"]:
        process = processes.get(tuple(run["range"]))
        phases.append(
            {
                "accounts": run["accounts"],
                "queue_s": _diff(run["launched"], run["created"]),
                "startup_s": _diff(run["started"], run["launched"]),
                "setup_s": _diff(run["first_step"], run["started"]),
                "sync_s": run.get("sync_step_s"),
                "before_s": run.get("before_materializations_s"),
                "fetch_max_s": run.get("fetch_max_s"),
                "write_tx_s": run.get("write_tx_s"),
                "recording_s": run.get("recording_s"),
                "materializations": run.get("materializations"),
                "analytics_s": run.get("analytics_steps_s"),
                "checks_s": run.get("check_steps_s"),
                "steps_s": run.get("all_steps_s"),
                "run_s": _diff(run["ended"], run["started"]),
                "created_to_started_s": _diff(run["started"], run["created"]),
                "process_to_started_s": _diff(run["started"], process["process_started"])
                if process
                else None,
            }
        )
    return phases


def render(results: dict[str, Any]) -> str:
    s, ours, dlt = results["settings"], results["ours"], results.get("dlt")
    n = s["accounts"]
    lines = [
        f"## Many accounts: {n:,} demo accounts x {s['bookings']:,} bookings "
        f"({results['expected_bookings']:,} in all), rate limit {s['rate_limit'] or 'none'} per key",
        "",
        f"(a) launcher `{s['launcher']}`, {s['per_run']} accounts per run, max {s['max_runs']} runs at once, "
        f"one DuckDB file; {os.cpu_count()} CPUs.",
        "",
        "| case | wall s | accounts/min | runs (ok) | run s, median | created→started s, median | requests "
        "| 429s | peak MB per run process, median / max | peak MB, all processes | CPU s | rows exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    phases = run_phases(ours)
    procs = [p["peak_bytes"] / MB for p in ours.get("run_processes", [])]
    label = "(a) ours: deploy/dagster.yaml + daemon, one GraphQL backfill"
    if s["launcher"] == "cli":
        label = "(a) ours: deploy/dagster.yaml, concurrent `dagster job execute`"
    exact_a = not ours["rows_wrong"] and not any(ours.get("missing_partitions", {}).values())
    lines.append(
        f"| {label} | {_n(ours['wall_s'])} | {_n(ours['accounts_per_min'])} | {len(ours['runs'])} "
        f"({ours['runs_ok']}) | {_n(_med([p['run_s'] for p in phases]))} "
        f"| {_n(_med([p['created_to_started_s'] for p in phases]))} | {ours['requests']:,} | {ours['throttled']} "
        f"| {_n(_med(procs), 0)} / {_n(_max(procs), 0)} | {_n(ours.get('peak_total_mb'), 0)} "
        f"| {_n(ours.get('cpu_s'), 0)} | {'yes' if exact_a else 'NO'} |"
    )
    if dlt:
        rate = n / dlt["wall_s"] * 60 if dlt["wall_s"] else None
        wrong_b = sum(
            dlt["rows"].get(name) != want for name, want in results.get("expected_by_account", {}).items()
        )
        lines.append(
            f"| (b) dlt rest_api loop, one pipeline per account, sequential | {_n(dlt['wall_s'])} | {_n(rate)} "
            f"| {n} pipelines ({dlt.get('accounts_ok')}) | {_n(_med(list(dlt['account_seconds'].values())), 2)} "
            f"per account | - | {dlt['requests']:,} | {dlt['throttled']} | {_n(dlt['peak_mb'], 0)} (one process) "
            f"| {_n(dlt['peak_mb'], 0)} | {_n(dlt['cpu_s'], 0)} | {'yes' if wrong_b == 0 and not dlt['failed'] else 'NO'} |"
        )
    runs = ours["runs"]
    lines += [
        "",
        f"(a) checks: {sum(r.get('checks_passed', 0) for r in runs):,} passed, "
        f"{sum(r.get('checks_warned', 0) for r in runs):,} warnings (by design: each demo account has a "
        f"booking of a deleted event type), {sum(r.get('checks_failed', 0) for r in runs)} failed.",
        "",
        *_targets(s, ours, dlt, exact_a),
        "",
        *_where(ours, phases, n),
        "",
        *_capacity(s, ours, results),
    ]
    lines += ["", *_notes(ours, dlt)]
    return "\n".join(lines)


def _targets(s: dict[str, Any], ours: dict[str, Any], dlt: dict[str, Any] | None, exact: bool) -> list[str]:
    rate = ours["accounts_per_min"] or 0.0
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    at_target = s["accounts"] == 200 and s["bookings"] == 2000 and s["rate_limit"] == "120/60/60"
    verdict = (
        ("PASS" if rate >= TARGET_ACCOUNTS_PER_MIN else "MISS") if at_target else "n/a (not 200 x 2,000)"
    )
    rows.append(f"| (a) >= {TARGET_ACCOUNTS_PER_MIN:.0f} accounts per minute | {rate:.1f} | {verdict} |")
    rows.append(f"| (a) zero 429 | {ours['throttled']} | {'PASS' if ours['throttled'] == 0 else 'MISS'} |")
    if dlt:
        ratio = dlt["wall_s"] / ours["wall_s"] if ours["wall_s"] else 0.0
        rows.append(
            f"| (a) throughput >= {TARGET_OVER_DLT}x (b)'s (dlt wall / ours) | {ratio:.2f}x "
            f"| {'PASS' if ratio >= TARGET_OVER_DLT else 'MISS'} |"
        )
    rows.append(
        f"| (a) exact: every account's raw.bookings = its demo bookings, every asset materialized for every account "
        f"| {len(ours['rows_wrong'])} accounts off, {sum(ours.get('missing_partitions', {}).values())} partitions missing "
        f"| {'PASS' if exact else 'MISS'} |"
    )
    return ["### Targets", "", *rows]


def _where(ours: dict[str, Any], phases: list[dict[str, Any]], n: int) -> list[str]:
    per_run = _med([p["accounts"] for p in phases]) or 1
    pickup = "the backfill daemon's pickup; its loop runs every 30 s"
    if ours["launcher"] == "cli":
        pickup = "the first `dagster job execute` process starting up"
    rows = [
        "### Where (a)'s time goes (medians over runs; per account = run median / accounts in the run)",
        "",
        f"Launch → first run created ({pickup}): {_n(ours.get('pickup_s'))} s. "
        f"Wall from the first run created: {_n(_diff(ours['wall_s'], ours.get('pickup_s')))} s "
        f"({_n(n / (ours['wall_s'] - ours['pickup_s']) * 60 if ours.get('pickup_s') is not None else None)} accounts/min).",
        "",
        "| phase | median s | max s | per account s |",
        "|---|---|---|---|",
    ]
    names = {
        "queue_s": "queued (created → STARTING): waiting for a run slot",
        "startup_s": "run worker start-up (STARTING → STARTED)",
        "process_to_started_s": "CLI process start → run STARTED",
        "setup_s": "STARTED → first step (definitions, resources, plan)",
        "sync_s": "raw_sources step (sync of every account of the run)",
        "before_s": "  until its first materialization: plan, fetch (accounts in parallel threads), write",
        "fetch_max_s": "    the slowest account's fetch of one resource (metadata fetch_seconds, max)",
        "write_tx_s": "    inside the warehouse transactions (metadata write_seconds, summed)",
        "recording_s": "  Dagster recording the materializations (first one → step end)",
        "materializations": "    materializations (count: one per account and table)",
        "analytics_s": "analytics steps (summed)",
        "checks_s": "check steps (summed)",
        "steps_s": "all steps (first start → last end)",
        "run_s": "run (STARTED → end)",
    }
    for key, title in names.items():
        values = [p[key] for p in phases]
        median = _med(values)
        if median is None:
            continue
        per = median / per_run if key not in ("queue_s", "startup_s", "process_to_started_s") else None
        rows.append(f"| {title} | {_n(median)} | {_n(_max(values))} | {_n(per, 2)} |")
    cpu = ours.get("cpu_by_role", {})
    rows += [
        "",
        "CPU seconds in the window: "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(cpu.items()))
        + f"; Postgres {_n(ours.get('postgres_cpu_s'), 0)}; demo server {_n(ours.get('server_cpu_s'), 0)}; "
        f"per account (ours + Postgres) {_n(((ours.get('cpu_s') or 0) + (ours.get('postgres_cpu_s') or 0)) / n, 2)}.",
    ]
    return rows


def capacity_inputs(
    s: dict[str, Any], ours: dict[str, Any], results: dict[str, Any]
) -> dict[str, float | None]:
    n, cores = s["accounts"], os.cpu_count() or 1
    cpu = (ours.get("cpu_s") or 0) + (ours.get("postgres_cpu_s") or 0)
    phases = run_phases(ours)
    processes = ours.get("run_processes", [])
    grown = _diff(ours.get("postgres_db_bytes"), ours.get("postgres_db_bytes_before"))
    events = _diff(ours.get("event_log_rows"), ours.get("event_log_rows_before"))
    return {
        "accounts_per_core_hour_cpu": n / (cpu / 3600) if cpu else None,
        "accounts_per_core_hour_wall": n / (ours["wall_s"] * cores / 3600) if ours["wall_s"] else None,
        "run_s_median": _med([p["run_s"] for p in phases]),
        "run_startup_s_median": _med([p["startup_s"] for p in phases])
        or _med([p["process_to_started_s"] for p in phases]),
        "run_setup_s_median": _med([p["setup_s"] for p in phases]),
        "run_cpu_s_median": _med([p["cpu_s"] for p in processes]),
        "run_peak_mb_median": _med([p["peak_bytes"] / MB for p in processes]),
        "run_peak_mb_max": _max([p["peak_bytes"] / MB for p in processes]),
        "accounts_per_run": s["per_run"],
        "max_concurrent_runs": s["max_runs"],
        "postgres_connections_peak": ours.get("peak_connections"),
        "postgres_bytes_per_account_sync": grown / n if grown is not None else None,
        "event_rows_per_account_sync": events / n if events is not None else None,
        "warehouse_bytes_per_booking": (ours.get("warehouse_bytes") or 0)
        / max(1, results["expected_bookings"]),
        "warehouse_bytes_per_account": (ours.get("warehouse_bytes") or 0) / n,
    }


def _capacity(s: dict[str, Any], ours: dict[str, Any], results: dict[str, Any]) -> list[str]:
    c = capacity_inputs(s, ours, results)
    rows = ["### Capacity model inputs (measured)", "", "| input | value |", "|---|---|"]
    rows += [f"| {key} | {_n(value, 2)} |" for key, value in c.items()]
    acph, run_s = c["accounts_per_core_hour_cpu"], c["run_s_median"]
    if acph and run_s:
        runs_per_hour = math.ceil(MODEL_ACCOUNTS / s["per_run"])
        pods = math.ceil(runs_per_hour * run_s / 3600)
        per_run_conn = (c["postgres_connections_peak"] or 0) / max(1, s["max_runs"])
        rows += [
            "",
            f"Projection, {MODEL_ACCOUNTS:,} accounts hourly at this account size ({s['bookings']:,} bookings): "
            f"{MODEL_ACCOUNTS / acph:.1f} cores busy on average; {runs_per_hour} runs per hour of "
            f"~{run_s:.0f} s each, so at least {pods} run workers at once "
            f"(~{pods * (c['run_peak_mb_max'] or 0):,.0f} MB), ~{pods * per_run_conn + 5:.0f} Postgres connections; "
            f"Dagster's database grows ~{24 * MODEL_ACCOUNTS * (c['postgres_bytes_per_account_sync'] or 0) / 1e9:.1f} GB "
            f"a day without retention.",
        ]
    return rows


def _notes(ours: dict[str, Any], dlt: dict[str, Any] | None) -> list[str]:
    notes = []
    for case, data, ours_cpu in (
        ("(a)", ours, (ours.get("cpu_s") or 0) + (ours.get("postgres_cpu_s") or 0)),
        ("(b)", dlt, (dlt or {}).get("cpu_s") or 0),
    ):
        if not data:
            continue
        other = data.get("other_cpu_s")
        if other is None and data.get("machine_busy_cpu_s") is not None:
            other = data["machine_busy_cpu_s"] - ours_cpu - (data.get("server_cpu_s") or 0)
        share = (other or 0) / (data["wall_s"] * (os.cpu_count() or 1)) if data["wall_s"] else 0
        if share > NOISE_SHARE:
            notes.append(
                f"NOISE: other processes used {other:.0f} CPU-s ({share:.0%} of the machine) during {case}."
            )
    if ours["rows_wrong"]:
        notes.append(
            f"WARNING: (a) rows off for {len(ours['rows_wrong'])} accounts: {dict(list(ours['rows_wrong'].items())[:5])}"
        )
    missing = {k: v for k, v in ours.get("missing_partitions", {}).items() if v}
    if missing:
        notes.append(f"WARNING: (a) partitions not materialized: {missing}")
    if ours["runs_ok"] != len(ours["runs"]):
        notes.append(f"WARNING: (a) {len(ours['runs']) - ours['runs_ok']} runs did not succeed.")
    if dlt and (dlt["failed"] or dlt["returncode"] != 0):
        notes.append(f"WARNING: (b) failed: {dlt.get('error') or dlt['failed']}")
    return notes
