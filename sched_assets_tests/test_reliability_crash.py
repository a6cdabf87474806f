"""Crash safety: kill -9 the main command inside an open DuckDB write transaction.

The main command runs with the test-side hook of `crash_hooks` installed (the same `dagster asset
materialize` arguments, in one process whose writes create a marker file and sleep with the data inserted
but not committed; the package has no such hook). We kill the whole process group at that moment (once in the first
write of a `--select '*'` run, once in the 50,000-booking write of a bookings-only run), then check that
the database opens and every table equals either its state before the run or the new state, never a mix,
and that the next sync recovers to the exact new state.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from sched_assets.defs.sources import build_source_assets
from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi
from sched_assets_tests.crash_hooks import paused_dagster_command
from sched_assets_tests.demo_helpers import account_booking_ids
from sched_assets_tests.processes import start_group
from sched_assets_tests.reliability_helpers import (
    FULL_REFRESH,
    MAIN_COMMAND_ARGS,
    PROJECT_ROOT,
    Snapshot,
    account_records,
    assert_raw_tables_exact,
    command_env,
    demo_server,
    kill_group,
    record_outcome,
    snapshot,
    sync,
    table_problems,
    wait_for_file,
)

BOOKINGS = 50_000


def start_paused_main_command(env: dict[str, str], select: str, marker: Path) -> subprocess.Popen[str]:
    """The main command (`dagster asset materialize -m sched_assets.definitions --select <select>`) in its
    own process group, pausing before the COMMIT of its first write (after creating `marker`)."""
    return start_group(
        paused_dagster_command(marker, *MAIN_COMMAND_ARGS, "--select", select),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def classify(after: Snapshot, previous: Snapshot, database: Path, account: DemoAccount) -> dict[str, str]:
    """Per table: "previous" (byte-for-byte as before), "new" (raw table exactly equal to the account
    now), or "other" (analytics tables that differ from before: judged after the recovery sync)."""
    current = account_records(account)
    states: dict[str, str] = {}
    for table in sorted(previous.keys() | after.keys()):
        if previous.get(table) == after.get(table):
            states[table] = "previous"
        elif table.startswith("raw.") and not table_problems(database, table[4:], current[table[4:]]):
            states[table] = "new"
        else:
            states[table] = "other"
    return states


def _summary(states: dict[str, str]) -> str:
    """E.g. "6 old (never a mix)" or "5 old, 1 new (never a mix)"."""
    counts = {state: sum(1 for s in states.values() if s == state) for state in sorted(set(states.values()))}
    words = {"previous": "old", "new": "new", "other": "changed"}
    return ", ".join(f"{n} {words[state]}" for state, n in counts.items()) + " (never a mix)"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_inside_a_write_leaves_every_table_old_or_new(tmp_path: Path) -> None:
    """50,000 bookings synced, then changed upstream; two runs killed mid-write; then a clean recovery."""
    database = tmp_path / "sched.duckdb"
    marker = tmp_path / "paused-in-write"
    account = DemoAccount(bookings=BOOKINGS)
    api = DemoApi(account)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with demo_server(api) as server, dg.instance_for_test(temp_dir=str(home)) as instance:
        # The previous state: the six raw tables (the kills below happen before any analytics write).
        first = sync(api, server.url, database, instance, assets=[build_source_assets()], page_size=250)
        assert first.success, first.failure()
        previous = snapshot(database)

        # Upstream changes, so the new state of bookings differs from the old one.
        account.touch(0.02)
        account.add(500)
        account.delete(account_booking_ids(account)[:100])

        states: dict[str, dict[str, str]] = {}
        afters: dict[str, Snapshot] = {}
        kills: dict[str, tuple[float, int]] = {}  # select -> (seconds until the kill, requests sent)
        for select in ("*", "raw/bookings"):
            env = command_env(server.url, DEMO_API_KEY, database, tmp_path / f"home-{len(states)}")
            api.reset_stats()
            started = time.perf_counter()
            proc = start_paused_main_command(env, select, marker)
            try:
                wait_for_file(marker, proc, timeout=150)
            finally:
                kill_group(proc)
                proc.communicate(timeout=30)
            kills[select] = (time.perf_counter() - started, api.stats.requests)
            assert proc.returncode == -9
            marker.unlink()
            afters[select] = snapshot(database)  # the database opens (replaying or discarding its WAL)
            states[select] = classify(afters[select], previous, database, account)
            assert "other" not in {s for t, s in states[select].items() if t.startswith("raw.")}, states
        assert set(states["*"].values()) == {"previous"}, states["*"]  # killed in the first write
        assert states["raw/bookings"]["raw.bookings"] == "previous", states["raw/bookings"]

        # A full refresh: the deletions upstream are only visible to a full read.
        recovery = sync(api, server.url, database, instance, page_size=250, run_config=FULL_REFRESH)
        assert recovery.success, recovery.failure()
        assert_raw_tables_exact(database, account_records(account))
        recovered = snapshot(database)
        for select, per_table in states.items():
            for table, state in per_table.items():
                if state == "other":
                    assert afters[select][table] == recovered[table], (
                        f"{table} is a mix after kill ({select})"
                    )
    for select, (seconds, requests) in kills.items():
        record_outcome(
            f"kill -9 inside the DuckDB write (`--select '{select}'`, {BOOKINGS:,} bookings)",
            outcome="database opens; next sync recovers exactly",
            tables=_summary(states[select]),
            requests=requests,
            retries="",
            throttled_429="",
            seconds=round(seconds, 1),
        )
