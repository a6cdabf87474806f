"""What one benchmark invocation is: its constants and targets, its settings, and one measured run.

Shared by `servers.py`, `measure.py`, `cases.py`, `report.py` and the CLI in `run.py`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sched_assets.demo import SHAPES as demo_shapes

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DLT_SCRIPT = REPO_ROOT / "benchmarks" / "dlt_pipeline.py"
BARE_CLIENT_SCRIPT = REPO_ROOT / "benchmarks" / "bare_client.py"

SAMPLE_INTERVAL_S = 0.05
MB = 1024 * 1024
DEFAULT_BOOKINGS = 100_000
DEFAULT_BOOKINGS_RATE_LIMITED = 20_000
DEFAULT_REPEATS = 3
DEFAULT_REPEATS_RATE_LIMITED = 1
TOUCH_FRACTION = 0.01
RATE_LIMIT_SPEC = "120/60/60"  # requests / window seconds / block seconds, as the real API
RATE_LIMIT_REQUESTS = 120
RATE_LIMIT_WINDOW_S = 60
# Demo account shapes (`python -m sched_assets.demo --shape ...`), the demo's own list; nested: many
# attendees, custom booking fields, seated bookings, so every page is heavier to parse and to flatten.
SHAPES: tuple[str, ...] = tuple(demo_shapes)
DEFAULT_SHAPE = "standard"  # the account the demo serves without `--shape`

OUR_SELECTION = 'key:"raw/*"'  # the six source assets; plain `raw/*` selects nothing in Dagster 1.13
ALL_SELECTION = "*"  # (d): the README's main command, raw + analytics + every check
SYNC_STEP = "raw_sources"  # the sync's op, and its step key in Dagster's event log
ANALYTICS_STEP_PREFIX = "analytics__"  # step keys of the derived tables' assets (and of their checks)
FULL_REFRESH_CONFIG = {"ops": {SYNC_STEP: {"config": {"full_refresh": True}}}}
OUR_TABLE = "raw.bookings"
DLT_DATASET = "sched"  # benchmarks/dlt_pipeline.py's dataset (DuckDB schema)
DLT_TABLE = f"{DLT_DATASET}.bookings"

# Targets (benchmarks/README.md). Absolute ones are stated for 100,000 bookings.
TARGET_BOOKINGS = 100_000
TARGET_DLT_OVER_OURS = 10.0
TARGET_OURS_WALL_S = 12.0
TARGET_PEAK_MB = 400.0
TARGET_PEAK_GROWTH_AT_1M = 1.2
TARGET_INCREMENTAL_SHARE = 0.2
TARGET_FLOOR_RATIO = 1.15
TARGET_SYNC_OVER_BARE = 2.0  # (a)'s sync step / (f)'s read seconds
TARGET_IMPORT_OVER_DAGSTER_S = 0.5  # benchmarks/import_time.py: definitions + defs() over `import dagster`
NOISE_SHARE = 0.10  # other processes using more than this share of the machine make a run noisy

CASE_FULL = "a"
CASE_INCREMENTAL = "b"
CASE_DLT = "c"
CASE_ALL = "d"  # opt-in (--with-analytics)
CASE_BARE = "f"  # the bare httpx client: the floor for reading the bookings
CASE_LABELS = {
    CASE_FULL: "(a) ours: full sync",
    CASE_INCREMENTAL: "(b) ours: incremental after 1% changed",
    CASE_DLT: "(c) dlt rest_api",
    CASE_ALL: "(d) ours: full sync, --select '*'",
    CASE_BARE: "(f) bare httpx client",
}
OUR_CASES = (CASE_FULL, CASE_INCREMENTAL, CASE_ALL)  # the cases that run our Dagster command
REPORT_ORDER = (CASE_FULL, CASE_ALL, CASE_INCREMENTAL, CASE_BARE, CASE_DLT)  # (d) next to (a) in the tables


def default_launcher() -> list[str]:
    """`uv run --no-sync` (the project's way to run things, without touching the environment), if uv exists."""
    uv = shutil.which("uv")
    return [uv, "run", "--no-sync"] if uv else []


def executable(launcher: Sequence[str], name: str) -> str:
    """`name` as the launcher finds it, or (no launcher) this interpreter's venv's `name` if it exists."""
    if launcher:
        return name
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass
class Settings:
    """What one benchmark invocation runs."""

    bookings: int
    repeats: int
    rate_limited: bool
    skip_dlt: bool
    seed: int = 7
    touch_fraction: float = TOUCH_FRACTION
    ours_timeout_s: float = 1800.0
    dlt_timeout_s: float = 600.0
    launcher: list[str] = field(default_factory=default_launcher)
    keep_files: bool = False
    quiet_wait_s: float = 60.0
    prerender: bool = True
    with_analytics: bool = False  # also run (d): the full sync with analytics and checks, --select '*'
    shapes: list[str] = field(default_factory=lambda: list(SHAPES))  # every case runs on each


@dataclass
class Measurement:
    """One measured run of one case."""

    case: str
    repeat: int
    wall_s: float
    peak_mb: float
    requests: int
    throttled: int
    statuses: dict[str, int]
    bookings_rows: int | None
    returncode: int | None
    timed_out: bool
    error: str | None = None
    samples: int = 0
    cpu_s: float = 0.0  # the measured tree's user + system CPU
    server_cpu_s: float = 0.0  # the demo server's CPU during the run (it shares the machine)
    other_cpu_s: float = 0.0  # everything else on the machine during the run: noise
    load_before: float = 0.0  # 1-minute load average just before the run
    busy_before: float = 0.0  # share of the machine busy (1 s sample) just before the run
    shape: str = DEFAULT_SHAPE  # the demo account's shape this run read
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out
