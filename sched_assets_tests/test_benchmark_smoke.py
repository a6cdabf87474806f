"""Smoke test of the benchmark harness (`benchmarks/run.py` and its modules) on a tiny account, without dlt.

It runs the real measuring code end to end on the standard shape: the demo API as a subprocess on a
local port, our `dagster asset materialize` command as a whole process for (a) the full sync, (b) the
incremental sync and (d) the full sync with analytics and checks (`--with-analytics`, `--select '*'`),
the bare httpx client (f) as its own process, `/_demo/stats` for the request counts, the DuckDB file for
the row counts and the run's DAGSTER_HOME for Dagster's step timings. The nested shape gets the bare
client only (its server and the shape recorded per run); the per-shape report is checked on made-up
measurements. dlt is skipped, so the test needs only the default dependency groups (psutil is in
`dev`). `benchmarks` imports as a package: the editable install puts the project root on sys.path.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from benchmarks import cases, measure, model, report, run
from sched_assets.api.keyset import SLICES_PER_WORKER
from sched_assets.demo import DemoAccount
from sched_assets_tests.demo_helpers import all_records

BOOKINGS = 500


def test_floor_and_request_counts() -> None:
    """The pure helpers: the rate-limit floor and reading `/_demo/stats`."""
    assert report.floor_seconds(0) == 0
    assert report.floor_seconds(120) == 0
    assert report.floor_seconds(121) == 60
    assert report.floor_seconds(205) == 60
    assert report.floor_seconds(241) == 120


def test_step_timings_from_events() -> None:
    """Per-step durations from STEP_START to STEP_SUCCESS / STEP_FAILURE; all steps = first start to last end."""
    events = [
        (None, "RUN_START", 99.0),
        ("raw_sources", "STEP_START", 100.0),
        ("raw_sources", "STEP_OUTPUT", 101.0),
        ("raw_sources", "STEP_SUCCESS", 101.66),
        ("raw_bookings_check", "STEP_START", 101.7),
        ("raw_bookings_check", "STEP_FAILURE", 102.0),
        ("never_finished", "STEP_START", 102.5),
    ]
    timings = cases.step_timings(events)
    assert timings["sync_step_s"] == pytest.approx(1.66)
    assert timings["all_steps_s"] == pytest.approx(2.0)
    assert timings["step_s"] == pytest.approx({"raw_sources": 1.66, "raw_bookings_check": 0.3})
    assert "analytics_steps_s" not in timings  # no derived table was built
    assert cases.step_timings([(None, "RUN_START", 1.0)]) == {}

    # (d): derived tables are the `analytics__*` steps that materialized; checks materialized nothing.
    with_analytics = cases.step_timings(
        [
            *events[1:3],
            ("raw_sources", "ASSET_MATERIALIZATION", 101.0),
            *events[3:6],
            ("analytics__event_type_stats", "STEP_START", 102.0),
            ("analytics__event_type_stats", "ASSET_MATERIALIZATION", 102.4),
            ("analytics__event_type_stats", "STEP_SUCCESS", 102.5),
            ("analytics__event_type_stats_primary_key_unique_not_null", "STEP_START", 102.5),
            ("analytics__event_type_stats_primary_key_unique_not_null", "STEP_SUCCESS", 102.6),
        ]
    )
    assert with_analytics["analytics_steps_s"] == pytest.approx(0.5)
    assert with_analytics["check_steps_s"] == pytest.approx(0.3 + 0.1)


def test_measure_process_counts_descendants(tmp_path: Path) -> None:
    """Peak memory is the summed RSS of the whole tree: a grandchild's 120 MB shows up."""
    grandchild = "import time; b = b'x' * (120 * 2**20); time.sleep(0.6)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    result = measure.measure_process(
        [sys.executable, "-c", child], env=dict(os.environ), log_dir=tmp_path, name="tree", timeout_s=30
    )
    assert result.returncode == 0 and not result.timed_out
    assert result.wall_s >= 0.6
    assert result.peak_mb >= 120
    assert result.samples >= 5


def test_measure_process_kills_on_timeout(tmp_path: Path) -> None:
    result = measure.measure_process(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env=dict(os.environ),
        log_dir=tmp_path,
        name="slow",
        timeout_s=0.5,
    )
    assert result.timed_out
    assert result.wall_s < 10


def test_shape_selection() -> None:
    """`--shapes`: both by default, a comma list otherwise (each once, in order), unknown shapes refused."""
    assert run.parse_args([])[0].shapes == ["standard", "nested"]
    assert run.parse_args(["--shapes", "standard"])[0].shapes == ["standard"]
    assert run.parse_args(["--shapes", "nested, standard,nested"])[0].shapes == ["nested", "standard"]
    with pytest.raises(SystemExit):
        run.parse_args(["--shapes", "flat"])


def _run(case: str, shape: str, wall: float, **extra: float) -> model.Measurement:
    rows = 100_000
    return model.Measurement(case, 1, wall, 300.0, 1000, 0, {}, rows, 0, False, shape=shape, extra=extra)


def test_report_per_shape_ratios_and_targets() -> None:
    """One section per shape with its own ratios and targets, then every shape's verdicts side by side."""
    settings = model.Settings(bookings=100_000, repeats=1, rate_limited=False, skip_dlt=False)
    measurements = [
        run
        for shape, slow in (("standard", 1.0), ("nested", 3.0))
        for run in (
            _run("a", shape, 8.0 * slow, sync_step_s=3.0 * slow, all_steps_s=3.5 * slow),
            _run("b", shape, 5.0, sync_step_s=0.6, all_steps_s=0.8),
            _run("f", shape, 1.5 * slow, read_s=1.0 * slow),
            _run("c", shape, 120.0),
        )
    ]
    text = report.render_report(settings, measurements)
    standard, nested = text.split("## Benchmark: ")[1:]
    assert standard.startswith("100,000 bookings, standard shape") and nested.startswith(
        "100,000 bookings, nested"
    )
    assert "| (f) bare httpx client | 1/1 | 1.50 | 300 | 1.00 |" in standard
    assert "| (a) ours: full sync | 1/1 | 8.00 | 300 | 3.00 |" in standard
    assert "- (a) sync step / (f) bare-client read: **3.00x**" in standard
    assert "- (b) / (a) sync step: **0.200**" in standard
    # Dagster's floor: (a)'s wall minus its run steps, and the least (b) / (a) it leaves.
    assert "floor on this machine: 4.50 s per process" in standard and "= 0.562" in standard
    assert (
        "| (a) sync step / (f) bare-client read | <= 2x at 100,000 | 3.00 s / 1.00 s = 3.00x | MISS |"
        in standard
    )
    assert "| dlt / ours (a) wall time | >= 10x at 100,000 | 15.0x | PASS |" in standard
    assert "| dlt / ours (a) wall time | >= 10x at 100,000 | 5.0x | MISS |" in nested
    by_shape = text.split("## Targets by shape")[1]
    assert "| target | standard | nested |" in by_shape
    assert "| dlt / ours (a) wall time | 15.0x: PASS | 5.0x: MISS |" in by_shape
    assert "WARNING" not in text


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_bare_client_on_nested_shape(tmp_path: Path) -> None:
    """(f) on a nested account: the server gets `--shape nested`, every record is counted, the run
    records its shape, and the in-process read is shorter than the whole process."""
    settings, _, _ = run.parse_args(f"--bookings {BOOKINGS} --shapes nested --quiet-wait 0".split())
    bench = cases.Bench(settings, tmp_path, io.StringIO())
    bench.shape = "nested"
    with bench.fresh_server("bare1") as server:
        assert server.command[server.command.index("--shape") + 1] == "nested"
        bare = bench.run_bare(1)
    assert bare.ok and bare.shape == "nested", bare
    assert bare.bookings_rows == BOOKINGS and bare.requests == BOOKINGS // 100
    assert 0 < bare.extra["read_s"] < bare.wall_s


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_harness_end_to_end_small_account(tmp_path: Path) -> None:
    """(a) + (b) + (d) + (f) on 500 standard bookings, 1 repeat, --skip-dlt: the table prints and the
    counts are right."""
    out = tmp_path / "results.json"
    flags = f"--bookings {BOOKINGS} --repeats 1 --skip-dlt --with-analytics --quiet-wait 0 --shapes standard"
    settings, _, _ = run.parse_args([*flags.split(), "--out", str(out)])
    log = io.StringIO()
    text, results = run.run_benchmark(settings, out, log=log)

    assert "| case | runs ok | median wall s |" in text
    assert text.count("## Benchmark: ") == 1 and "standard shape" in text and "Targets by shape" not in text
    assert "(a) ours: full sync" in text
    assert "(b) ours: incremental after 1% changed" in text
    table = text.split("Ratios")[0]  # the first table: one row per case
    assert "dlt" not in table  # no dlt row
    # (d) is next to (a), before (b).
    assert table.index("| (a) ours: full sync |") < table.index("| (d) ours: full sync, --select '*' |")
    assert table.index("| (d) ours: full sync, --select '*' |") < table.index("| (b) ours:")
    assert "(d) peak / (a) peak = **" in text
    assert "WARNING" not in text, text + log.getvalue()

    by_case = {m["case"]: m for m in results["measurements"]}
    full, incremental, everything, bare = by_case["a"], by_case["b"], by_case["d"], by_case["f"]
    assert full["ok"] and incremental["ok"], log.getvalue()
    assert full["bookings_rows"] == BOOKINGS
    assert incremental["bookings_rows"] == BOOKINGS
    # 6 single-request resources + one request per team + the bookings read by position: ceil(500 / 99)
    # pages (each re-reads the previous page's last row), up to two closing requests for each of the
    # 12 slices (3 per connection), and the count taken after the read. No throttling.
    teams = len(all_records(DemoAccount(bookings=BOOKINGS), "teams"))
    assert 6 + teams + 7 <= full["requests"] <= 6 + teams + 7 + 2 * SLICES_PER_WORKER * 4, full
    assert full["throttled"] == 0 and incremental["throttled"] == 0
    # The incremental run reads only the changed bookings: far fewer booking pages than the full sync.
    assert 5 < incremental["requests"] < full["requests"], incremental
    assert full["peak_mb"] > 50 and full["wall_s"] > 0.5
    # (d): the README's main command on fresh state reads what (a) reads, then builds the analytics.
    assert everything["ok"] and everything["bookings_rows"] == BOOKINGS, log.getvalue()
    # Same bounds, not the same count: the keyset slices are cut at the clock's "now", so two full
    # reads seconds apart can differ by a slice's closing request (seen once in CI: 23 vs 22).
    assert 6 + teams + 7 <= everything["requests"] <= 6 + teams + 7 + 2 * SLICES_PER_WORKER * 4, everything
    assert everything["throttled"] == 0
    assert everything["extra"]["command"][-2:] == ["--select", "*"]
    assert everything["extra"]["run_id"] != full["extra"]["run_id"]
    assert everything["extra"]["run_status"] == "SUCCESS", everything["extra"]
    assert 0 < everything["extra"]["analytics_steps_s"] < everything["extra"]["all_steps_s"]
    assert "(d)'s run steps: sync step" in text
    # (f): one request per page of 100, every record counted, its own read inside its wall time.
    assert bare["ok"] and bare["bookings_rows"] == BOOKINGS and bare["requests"] == BOOKINGS // 100, bare
    assert 0 < bare["extra"]["read_s"] < bare["wall_s"]
    assert "- (a) sync step / (f) bare-client read: **" in text
    assert "- (b) / (a) sync step: **" in text and "Dagster's own floor on this machine: " in text

    # Dagster's step timings, read from each run's event log in its DAGSTER_HOME: two different runs,
    # each with the sync step inside the run's steps, and the steps inside the whole process.
    extras = full["extra"], incremental["extra"]
    assert extras[0]["run_id"] != extras[1]["run_id"]
    for extra, wall in zip(extras, (full["wall_s"], incremental["wall_s"]), strict=True):
        assert extra["run_status"] == "SUCCESS", extra
        assert 0 < extra["sync_step_s"] <= extra["all_steps_s"] < wall, extra
        assert extra["step_s"]["raw_sources"] == extra["sync_step_s"]
    assert "Where our wall time goes (medians, from Dagster's event log):" in text
    breakdown = text.split("Where our wall time goes")[1]
    assert "(a) ours: full sync" in breakdown and "(b) ours: incremental" in breakdown

    saved = json.loads(out.read_text())
    assert saved["settings"]["bookings"] == BOOKINGS and saved["settings"]["shapes"] == ["standard"]
    assert {m["case"] for m in saved["measurements"]} == {"a", "b", "d", "f"}
    assert {m["shape"] for m in saved["measurements"]} == {"standard"}
    medians = saved["medians"]["standard"]
    assert medians["a"]["bookings_rows"] == BOOKINGS
    assert medians["a"]["sync_step_s"] == pytest.approx(extras[0]["sync_step_s"])
    assert medians["f"]["read_s"] == pytest.approx(bare["extra"]["read_s"])
