"""Benchmark harness: our Dagster sync vs. dlt's `rest_api` source, as whole processes.

One command::

    uv run --group bench python benchmarks/run.py [--bookings 100000] [--repeats 3] [--rate-limited]
        [--skip-dlt] [--with-analytics] [--shapes standard,nested] [--out benchmarks/results/NAME.json]

For each account shape (`--shapes`, default both) it starts the demo API (`python -m sched_assets.demo
--shape S`) on a free local port with N bookings and times:

- (a) our main command, `dagster asset materialize -m sched_assets.definitions --select 'key:"raw/*"'`,
  into a fresh DuckDB file and a fresh DAGSTER_HOME;
- (b) the same command again (same DuckDB file and DAGSTER_HOME, so the incremental cursor is found)
  after 1% of the bookings changed upstream (`POST /_demo/touch?fraction=0.01`);
- (c) dlt's `rest_api` source (`benchmarks/dlt_pipeline.py`) into a fresh DuckDB file;
- (d) only with `--with-analytics`: the README's main command, `--select '*'` (the raw assets, the
  analytics tables and every check), into a fresh DuckDB file and a fresh DAGSTER_HOME, like (a);
- (f) the bare httpx client (`benchmarks/bare_client.py`), the floor for reading every bookings page
  (not with `--rate-limited`); our sync step is compared with its in-process read seconds.

For every run it records the wall time, the peak memory of the whole process tree (the maximum over
time of the summed RSS of the process and all its descendants, sampled every 50 ms), the requests and
429 responses the server saw (`GET /_demo/stats`, reset before each run) and the rows of the bookings
table (read back from the DuckDB file afterwards). It prints, per shape, a markdown table of medians, the
ratios and the targets, and saves every raw measurement (with its shape) as JSON under `benchmarks/results/`.

The harness is split by concern: `servers.py` (the demo API server), `measure.py` (a process tree's
wall time, peak memory and CPU; the quiet-machine guard), `cases.py` (the commands of (a) to (f),
and Dagster's step timings read from the run's event log), `report.py` (medians, the table, PASS/MISS
against the targets) and `model.py` (constants, targets, settings, one measurement). This file is the
command line. See `benchmarks/README.md` for how to read the output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import psutil

from benchmarks.cases import Bench, bare_command, dlt_command, ours_command
from benchmarks.model import (
    ALL_SELECTION,
    CASE_FULL,
    CASE_LABELS,
    DEFAULT_BOOKINGS,
    DEFAULT_BOOKINGS_RATE_LIMITED,
    DEFAULT_REPEATS,
    DEFAULT_REPEATS_RATE_LIMITED,
    MB,
    REPO_ROOT,
    RESULTS_DIR,
    SHAPES,
    TARGET_BOOKINGS,
    Settings,
    default_launcher,
)
from benchmarks.report import by_shape, render_report, summarize


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


def latest_baseline_peak_mb(shape: str, results_dir: Path = RESULTS_DIR) -> tuple[float, str] | None:
    """(a)'s median peak on `shape` in the newest saved 100,000-booking run without a rate limit, and its
    file. Results saved before shapes existed have medians per case only: they count as the first shape."""
    best: tuple[str, float, str] | None = None
    for path in results_dir.glob("*.json"):
        try:
            saved = json.loads(path.read_text())
            settings = saved["settings"]
            medians = saved["medians"]
            if CASE_FULL in medians:
                medians = {SHAPES[0]: medians}
            peak = float(medians[shape][CASE_FULL]["peak_mb"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if settings.get("bookings") != TARGET_BOOKINGS or settings.get("rate_limited"):
            continue
        started = str(saved.get("started_at", ""))
        if best is None or started > best[0]:
            best = (started, peak, str(path))
    return (best[1], best[2]) if best else None


def baselines(settings: Settings, given_mb: float | None, log: TextIO = sys.stderr) -> dict[str, float]:
    """Per shape, the 100,000-booking peak the 1,000,000-booking memory target compares with: `given_mb`
    for every shape, else each shape's newest saved result; only needed for runs at 1,000,000."""
    if given_mb is not None:
        return dict.fromkeys(settings.shapes, given_mb)
    if settings.bookings < 10 * TARGET_BOOKINGS or settings.rate_limited:
        return {}
    found: dict[str, float] = {}
    for shape in settings.shapes:
        if latest := latest_baseline_peak_mb(shape):
            found[shape] = latest[0]
            print(f"memory baseline, {shape}: (a) peaked at {latest[0]:.0f} MB in {latest[1]}", file=log)
    return found


def default_output_path(settings: Settings, now: datetime) -> Path:
    mode = "-ratelimited" if settings.rate_limited else ""
    shapes = "" if settings.shapes == list(SHAPES) else "-" + "-".join(settings.shapes)
    return RESULTS_DIR / f"{now:%Y%m%dT%H%M%SZ}-n{settings.bookings}{shapes}{mode}.json"


def run_benchmark(
    settings: Settings,
    out: Path | None = None,
    log: TextIO = sys.stderr,
    workdir: Path | None = None,
    baseline_peak_mb: Mapping[str, float] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Start the servers, run every case on every shape, save the JSON; return (markdown report, results).

    `baseline_peak_mb`: per shape, the 100,000-booking peak for the 1,000,000-booking memory target.
    """
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
        startup = {shape: max(times) for shape, times in bench.server_startups.items()}
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
                "bare_client": bare_command(settings.launcher, "<base-url>"),
                **(
                    {"ours_with_analytics": ours_command(settings.launcher, selection=ALL_SELECTION)}
                    if settings.with_analytics
                    else {}
                ),
            },
            "measurements": [{**asdict(m), "ok": m.ok, "label": CASE_LABELS[m.case]} for m in measurements],
            "medians": {
                shape: {case: asdict(s) for case, s in summarize(runs).items()}
                for shape, runs in by_shape(measurements).items()
            },
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


def parse_shapes(text: str) -> list[str]:
    """`standard,nested` -> ["standard", "nested"]: known shapes, each once, in the order given."""
    shapes = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [shape for shape in shapes if shape not in SHAPES]
    if unknown or not shapes:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(SHAPES)}; got {text!r}")
    return shapes


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, Path | None, float | None]:
    parser = argparse.ArgumentParser(
        description="Time our Dagster sync (full and incremental) against a bare httpx client and dlt's "
        "rest_api source, on each demo account shape."
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
        "--with-analytics",
        action="store_true",
        help="also run case (d): the full sync with the analytics tables and every check, "
        "`--select '*'` (the README's main command), on fresh state; reported next to (a)",
    )
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=list(SHAPES),
        help=f"demo account shapes to run every case on, comma-separated (default {','.join(SHAPES)}); "
        "nested: many attendees, custom booking fields, seated bookings",
    )
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
        help="(a)'s peak at 100,000 bookings, for the 1,000,000-booking memory target, on every shape "
        "(default: each shape's newest 100,000-booking result in benchmarks/results/, else 400)",
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
        with_analytics=args.with_analytics,
        shapes=args.shapes,
    )
    return settings, args.out, args.baseline_peak_mb


def main(argv: Sequence[str] | None = None) -> int:
    settings, out, given_baseline = parse_args(argv)
    baseline = baselines(settings, given_baseline)
    workdir = Path(tempfile.mkdtemp(prefix="sched_bench_")) if settings.keep_files else None
    report, results = run_benchmark(settings, out, workdir=workdir, baseline_peak_mb=baseline)
    print(report)
    print(f"raw results: {results['path']}")
    if workdir is not None:
        print(f"files kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
