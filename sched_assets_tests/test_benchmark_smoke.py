"""Smoke test of the benchmark harness (`benchmarks/run.py`) on a tiny account, without dlt.

It runs the real measuring code end to end: the demo API as a subprocess on a local port, our
`dagster asset materialize` command as a whole process for (a) the full sync and (b) the incremental
sync, `/_demo/stats` for the request counts and the DuckDB file for the row counts. dlt is skipped,
so the test needs only the default dependency groups (psutil is in `dev`).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOKINGS = 500


def _load_harness() -> ModuleType:
    """`benchmarks/` is not a package: load run.py from its path."""
    path = REPO_ROOT / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("sched_benchmarks_run", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    return _load_harness()


def test_floor_and_request_counts(harness: ModuleType) -> None:
    """The pure helpers: the rate-limit floor and reading `/_demo/stats`."""
    assert harness.floor_seconds(0) == 0
    assert harness.floor_seconds(120) == 0
    assert harness.floor_seconds(121) == 60
    assert harness.floor_seconds(205) == 60
    assert harness.floor_seconds(241) == 120


@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        ('Finished execution of step "raw_sources" in 226ms.', 0.226),
        ('Finished execution of step "raw_sources" in 1.66s.', 1.66),
        ('Finished execution of step "raw_sources" in 1m3s.', 63.0),
        ('Finished execution of step "raw_sources" in 2m 3s.', 123.0),
    ],
)
def test_dagster_step_durations(harness: ModuleType, tmp_path: Path, line: str, seconds: float) -> None:
    """The in-run breakdown reads Dagster's own duration format."""
    log = tmp_path / "run.stderr"
    log.write_text(
        f"... - raw_sources - STEP_SUCCESS - {line}\n... Finished steps in process (pid: 1) in 1m4s\n"
    )
    timings = harness.dagster_timings(str(log))
    assert timings["sync_step_s"] == pytest.approx(seconds)
    assert timings["all_steps_s"] == pytest.approx(64.0)


def test_measure_process_counts_descendants(harness: ModuleType, tmp_path: Path) -> None:
    """Peak memory is the summed RSS of the whole tree: a grandchild's 120 MB shows up."""
    grandchild = "import time; b = b'x' * (120 * 2**20); time.sleep(0.6)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    result = harness.measure_process(
        [sys.executable, "-c", child], env=dict(os.environ), log_dir=tmp_path, name="tree", timeout_s=30
    )
    assert result.returncode == 0 and not result.timed_out
    assert result.wall_s >= 0.6
    assert result.peak_mb >= 120
    assert result.samples >= 5


def test_measure_process_kills_on_timeout(harness: ModuleType, tmp_path: Path) -> None:
    result = harness.measure_process(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env=dict(os.environ),
        log_dir=tmp_path,
        name="slow",
        timeout_s=0.5,
    )
    assert result.timed_out
    assert result.wall_s < 10


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_harness_end_to_end_small_account(harness: ModuleType, tmp_path: Path) -> None:
    """(a) + (b) on 500 bookings, 1 repeat, --skip-dlt: the table prints and the counts are right."""
    out = tmp_path / "results.json"
    settings, _, baseline = harness.parse_args(
        ["--bookings", str(BOOKINGS), "--repeats", "1", "--skip-dlt", "--quiet-wait", "0", "--out", str(out)]
    )
    log = io.StringIO()
    report, results = harness.run_benchmark(settings, out, log=log, baseline_peak_mb=baseline)

    assert "| case | runs ok | median wall s |" in report
    assert "(a) ours: full sync" in report
    assert "(b) ours: incremental after 1% changed" in report
    assert "dlt" not in report.split("Ratios")[0].split("|---|")[1]  # no dlt row
    assert "WARNING" not in report, report + log.getvalue()

    by_case = {m["case"]: m for m in results["measurements"]}
    full, incremental = by_case["a"], by_case["b"]
    assert full["ok"] and incremental["ok"], log.getvalue()
    assert full["bookings_rows"] == BOOKINGS
    assert incremental["bookings_rows"] == BOOKINGS
    # 5 single-page resources + ceil(500 / 100) booking pages (+ at most one empty page), no throttling.
    assert 10 <= full["requests"] <= 12, full
    assert full["throttled"] == 0 and incremental["throttled"] == 0
    # The incremental run reads only the changed bookings: far fewer booking pages than the full sync.
    assert 5 < incremental["requests"] < full["requests"], incremental
    assert full["peak_mb"] > 50 and full["wall_s"] > 0.5

    saved = json.loads(out.read_text())
    assert saved["settings"]["bookings"] == BOOKINGS
    assert {m["case"] for m in saved["measurements"]} == {"a", "b"}
    assert saved["medians"]["a"]["bookings_rows"] == BOOKINGS
