"""Shared helpers of the reliability suite (`test_reliability_*.py`).

Every helper drives the real product: the real source multi-asset and analytics assets, the real
`SchedApiResource`, `WarehouseIOManager` and `WarehouseResource`, against a `DemoApi` served on a local
port. Tables are then compared with what the demo account holds (keys *and* every field value), or
byte-for-byte (as text) with a snapshot taken before a fault.

Measurements: when `SCHED_RELIABILITY_REPORT=<file>` is set, `record_outcome` appends one JSON line per
fault scenario; `uv run python -m sched_assets_tests.reliability_helpers <file>` prints them as the
markdown table of `docs/reliability.md`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import orjson

from sched_assets.api.selector import select_records
from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME
from sched_assets.definitions import warehouse_resources
from sched_assets.defs.analytics import analytics_assets
from sched_assets.defs.resources import SchedApiResource
from sched_assets.defs.sources import build_source_assets
from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi, DemoServer, serve
from sched_assets.frames.columns import EXTRA_COLUMN, SYNCED_AT_COLUMN, snake_case
from sched_assets_tests.demo_helpers import all_records
from sched_assets_tests.processes import start_group, stop_group
from sched_assets_tests.sync_helpers import FROM_HISTORY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESOURCES: tuple[str, ...] = tuple(spec.name for spec in ENDPOINTS)
REPORT_ENV_VAR = "SCHED_RELIABILITY_REPORT"

# Client settings that keep fault scenarios fast: tiny backoff, short rate-limit waits.
FAST_SETTINGS: dict[str, Any] = {
    "backoff_factor": 0.01,
    "max_backoff_seconds": 0.5,
    "rate_limit_wait_seconds": 2.0,
    "max_rate_limit_wait_seconds": 10.0,
}

Record = dict[str, Any]
RETRY_LINE = re.compile(r"\bretry \d+ of \d+\b")
Snapshot = dict[str, tuple[list[tuple[str, str]], list[tuple[Any, ...]]]]


# ---- serving the demo API ---------------------------------------------------------------------


FULL_REFRESH = {"ops": {"raw_sources": {"config": {"full_refresh": True}}}}


@contextmanager
def demo_server(api: DemoApi, timeout_stall: float = 30.0) -> Iterator[DemoServer]:
    """`api` on a free local port for the duration of the block."""
    with serve(api, port=0, timeout_stall=timeout_stall) as server:
        yield server


def api_get(
    api: DemoApi, resource: str, query: Mapping[str, str] | None = None, key: str | None = None
) -> Any:
    """One request straight into the demo app (no socket), as the client would send it; parsed body."""
    spec = ENDPOINTS_BY_NAME[resource]
    headers = {"Authorization": f"Bearer {key or api.api_key}", **spec.headers}
    response = api.handle("GET", api.root + spec.path, dict(query or {}), headers)
    assert response.status == 200, f"{resource}: demo answered {response.status}: {response.body[:200]!r}"
    return response.json()


def served_records(api: DemoApi, resource: str, page_size: int = 250) -> list[Record]:
    """Every record the demo API currently serves for `resource` (its faults applied, e.g. drift).

    Read page by page straight from the app, independently of the product's client. Call it only when
    no random faults are configured (they would hit these requests too).
    """
    spec = ENDPOINTS_BY_NAME[resource]
    if not spec.paged:
        records = select_records(api_get(api, resource), spec.selector)
        if spec.fan_out is not None:  # event types: the own ones, then every team's
            fan_out = spec.fan_out
            for team in served_records(api, fan_out.parent.name):
                headers = {"Authorization": f"Bearer {api.api_key}"}
                response = api.handle("GET", api.root + fan_out.path.format(**team), {}, headers)
                assert response.status == 200, f"{fan_out.name}: demo answered {response.status}"
                for record in select_records(response.json(), fan_out.selector):
                    records.append({**record, "teamId": record.get("teamId", team["id"])})
        return records
    records: list[Record] = []
    skip = 0
    while True:
        body = api_get(api, resource, {"take": str(page_size), "skip": str(skip)})
        page = select_records(body, spec.selector)
        records.extend(page)
        if len(page) < page_size:
            return records
        skip += page_size


def account_records(account: DemoAccount) -> dict[str, list[Record]]:
    """What a complete sync of `account` must store, per resource (the API's records, secrets included)."""
    return {name: all_records(account, name) for name in RESOURCES}


@contextmanager
def temporary_instance(directory: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance with its run and event storage (sqlite) in `directory`.

    One instance can serve many tests: the bookings cursor is keyed by source (the API root, which
    includes the demo server's port), so runs against different servers never see each other's state.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(directory)) as instance:
        yield instance


# ---- running the real assets in-process -------------------------------------------------------


def all_assets() -> list[dg.AssetsDefinition]:
    """The real definitions' assets: the six-table source multi-asset and every analytics asset."""
    return [build_source_assets(), *analytics_assets]


def resources_for(url: str, database: Path | str, **settings: Any) -> dict[str, Any]:
    """The real resources, pointed at a demo server and a DuckDB file."""
    api_settings = {"api_key": DEMO_API_KEY, **FAST_SETTINGS, **settings}
    return {
        "sched_api": SchedApiResource(base_url=url, **api_settings),
        **warehouse_resources(str(database), lock_timeout_seconds=60.0),
    }


@dataclass
class SyncRun:
    """One in-process materialization and what the demo server saw during it."""

    result: dg.ExecuteInProcessResult
    instance: dg.DagsterInstance
    seconds: float
    server: dict[str, Any]

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def requests(self) -> int:
        """Requests the server received during the run (resets included)."""
        return int(self.server["requests"])

    def path_requests(self, resource: str) -> int:
        """Requests for one resource's endpoint."""
        spec = ENDPOINTS_BY_NAME[resource]
        # Exact path under the API root: `/v2/event-types`, not `/v2/teams/5/event-types`.
        return sum(
            n for path, n in self.server["by_path"].items() if "/" + path.split("/", 2)[-1] == spec.path
        )

    @property
    def throttled(self) -> int:
        return int(self.server["throttled"])

    def log_messages(self) -> list[str]:
        """Every message of the run's event log (logs and Dagster events)."""
        return [entry.user_message or "" for entry in self.instance.all_logs(self.result.run_id)]

    def retry_warnings(self) -> int:
        """How many retries the client announced in the run log (also counted when the run failed)."""
        return sum(1 for message in self.log_messages() if RETRY_LINE.search(message))

    def source_metadata(self) -> dict[str, dict[str, Any]]:
        """Materialization metadata of each raw table in this run (plain values)."""
        found: dict[str, dict[str, Any]] = {}
        for event in self.result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization is None or materialization.asset_key.path[0] != "raw":
                continue
            found[materialization.asset_key.path[-1]] = {
                name: value.value for name, value in materialization.metadata.items()
            }
        return found

    def total(self, metadata_key: str) -> int:
        """Sum of an integer metadata entry over the raw tables (e.g. `retries`, `requests`)."""
        return sum(int(meta.get(metadata_key) or 0) for meta in self.source_metadata().values())

    def failure(self) -> str:
        """Every error message of the run (step and run failures, with their causes), one per line."""
        return failure_text(self.result)


def sync(
    api: DemoApi,
    url: str,
    database: Path,
    instance: dg.DagsterInstance,
    *,
    assets: Sequence[dg.AssetsDefinition] | None = None,
    run_config: Mapping[str, Any] | None = None,
    **settings: Any,
) -> SyncRun:
    """Materialize the real assets against the demo API; never raises on a failed run."""
    api.reset_stats()
    started = time.perf_counter()
    result = dg.materialize(
        list(assets) if assets is not None else all_assets(),
        resources=resources_for(url, database, **settings),
        instance=instance,
        run_config=dict(run_config or {}),
        raise_on_error=False,
    )
    seconds = time.perf_counter() - started
    return SyncRun(result, instance, seconds, api.stats.snapshot())


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Error messages of every failure event of a run, including chained causes."""
    lines: list[str] = []

    def add(error: Any) -> None:
        while error is not None:
            lines.append(error.message.strip())
            error = error.cause or error.context

    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                lines.append(data.user_failure_data.description)
            add(data.error)
        elif event.is_run_failure:
            data = event.event_specific_data
            lines.append(event.message or "")
            add(getattr(data, "error", None))
    return "\n".join(lines)


# ---- reading tables ---------------------------------------------------------------------------


@contextmanager
def open_db(database: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed afterwards (never hold it while a run is writing)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def snapshot(database: Path) -> Snapshot:
    """Every table of every schema: its columns and all rows as text, in a stable order.

    Two equal snapshots mean byte-for-byte equal tables (values compared as DuckDB prints them).
    """
    tables: Snapshot = {}
    with open_db(database) as con:
        names = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL"
        ).fetchall()
        for schema, table in names:
            qualified = f'"{schema}"."{table}"'
            columns = [
                (str(name), str(type_)) for name, type_, *_ in con.execute(f"DESCRIBE {qualified}").fetchall()
            ]
            rows = con.execute(f"SELECT COLUMNS(*)::VARCHAR FROM {qualified} ORDER BY ALL").fetchall()
            tables[f"{schema}.{table}"] = (columns, rows)
    return tables


def read_table(database: Path, table: str) -> list[Record]:
    """Rows of `table` as dicts (TIMESTAMPTZ as aware datetimes, JSON as text)."""
    with open_db(database) as con:
        cursor = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def table_counts(database: Path) -> dict[str, int]:
    """Row count of every table."""
    return {name: len(rows) for name, (_, rows) in snapshot(database).items()}


# ---- comparing tables with what the API served -------------------------------------------------


def _parse_ts(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def _same_scalar(kind: str, column: Any, value: Any) -> bool:
    """Whether a typed column value is a lossless reading of the API's value."""
    if kind == "ts":
        parsed = _parse_ts(value) if isinstance(value, str) else None
        return parsed is not None and column == parsed
    if kind == "bool":
        return column is value or (isinstance(value, str) and value.strip().lower() == str(column).lower())
    if isinstance(value, bool):
        return kind == "str" and column == ("true" if value else "false")
    if kind in ("int", "float"):
        if isinstance(value, int | float):
            return column == value
        return (isinstance(value, str) and str(column) == value.strip()) or _float_text(value) == column
    return column == value or (isinstance(value, int | float) and column == str(value))


def _float_text(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def record_problems(resource: str, record: Record, row: Record) -> list[str]:
    """Why `row` does not hold everything of `record` ([] when nothing is lost).

    Each API field must be in its typed column (equal, or losslessly converted) or, when it did not fit
    (or is not a known field), verbatim in `_extra`. `_extra` holds nothing the API did not send, and
    secret fields (conferencing `key`) are nowhere.
    """
    spec = ENDPOINTS_BY_NAME[resource]
    fields, secret = spec.columns, spec.secret_fields
    extra_text = row.get(EXTRA_COLUMN)
    extra: dict[str, Any] = orjson.loads(extra_text) if extra_text else {}
    problems: list[str] = []
    for name in extra:
        if name not in record or name in secret:
            problems.append(f"_extra has {name!r}, which the API did not send (or must not be stored)")
    for name, value in record.items():
        if name in secret:
            continue
        kind = fields.get(name)
        if kind is None:
            if name not in extra or extra[name] != value:
                problems.append(f"unknown field {name!r} not kept verbatim in _extra")
            continue
        column = row.get(snake_case(name))
        if value is None:
            if column is not None:
                problems.append(f"{name}: API sent null, column has {column!r}")
            continue
        if kind == "json":
            if column is None or orjson.loads(column) != value:
                problems.append(f"{name}: JSON column {column!r} != API value {value!r}")
            continue
        if column is not None:
            if not _same_scalar(kind, column, value):
                problems.append(f"{name}: column {column!r} != API value {value!r}")
        elif extra.get(name) != value:
            problems.append(f"{name}: API value {value!r} is neither in its column nor in _extra")
    return problems


def record_key(resource: str, record: Record) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in ENDPOINTS_BY_NAME[resource].primary_key)


def row_key(resource: str, row: Record) -> tuple[Any, ...]:
    return tuple(row.get(snake_case(k)) for k in ENDPOINTS_BY_NAME[resource].primary_key)


def table_problems(database: Path, resource: str, records: Sequence[Record]) -> list[str]:
    """Differences between `raw.<resource>` and the API's records: keys, duplicates and every value."""
    rows = read_table(database, f"raw.{resource}")
    problems: list[str] = []
    by_key: dict[tuple[Any, ...], Record] = {}
    for row in rows:
        key = row_key(resource, row)
        if key in by_key:
            problems.append(f"duplicate key {key}")
        by_key[key] = row
        if row.get(SYNCED_AT_COLUMN) is None:
            problems.append(f"{key}: _synced_at is null")
    expected = {record_key(resource, r): r for r in records}
    missing = expected.keys() - by_key.keys()
    unexpected = by_key.keys() - expected.keys()
    if missing:
        problems.append(f"{len(missing)} key(s) missing, e.g. {sorted(missing, key=repr)[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {sorted(unexpected, key=repr)[:3]}")
    secret = ENDPOINTS_BY_NAME[resource].secret_fields
    columns = {snake_case(name) for name in secret} & set(rows[0] if rows else ())
    if columns:
        problems.append(f"secret column(s) stored: {sorted(columns)}")
    for key, record in expected.items():
        row = by_key.get(key)
        if row is not None:
            problems.extend(f"{key}: {p}" for p in record_problems(resource, record, row))
        if len(problems) > 20:
            break
    return [f"raw.{resource}: {p}" for p in problems[:20]]


def assert_raw_tables_exact(database: Path, expected: Mapping[str, Sequence[Record]]) -> None:
    """Every raw table holds exactly the expected records (keys, no duplicates, every value)."""
    problems = [p for name, records in expected.items() for p in table_problems(database, name, records)]
    assert not problems, "tables differ from the API:\n" + "\n".join(problems)


def analytics_only(shot: Snapshot) -> Snapshot:
    """The `analytics.*` part of a snapshot (derived tables have no sync timestamps), without what
    they compute from the history (`FROM_HISTORY`)."""
    result: Snapshot = {}
    for name, (columns, rows) in shot.items():
        if not name.startswith("analytics.") or (name in FROM_HISTORY and FROM_HISTORY[name] is None):
            continue
        dropped = FROM_HISTORY.get(name) or set()
        keep = [i for i, (column, _) in enumerate(columns) if column not in dropped]
        result[name] = ([columns[i] for i in keep], sorted(tuple(row[i] for i in keep) for row in rows))
    return result


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences between two snapshots ([] when byte-for-byte equal)."""
    problems: list[str] = []
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            problems.append(f"{name} disappeared")
        elif name not in before:
            problems.append(f"{name} appeared")
        elif before[name][0] != after[name][0]:
            problems.append(f"{name}: columns changed")
        elif before[name][1] != after[name][1]:
            old, new = set(before[name][1]), set(after[name][1])
            problems.append(f"{name}: {len(old - new)} row(s) gone, {len(new - old)} row(s) new")
    return problems


# ---- the main command as a subprocess ----------------------------------------------------------


def dagster_command(*args: str) -> list[str]:
    """`uv run dagster ...` (the project's documented way), or this interpreter's dagster without uv."""
    uv = shutil.which("uv")
    if uv:
        return [uv, "run", "--no-sync", "dagster", *args]
    return [sys.executable, "-m", "dagster", *args]


MAIN_COMMAND_ARGS: tuple[str, ...] = ("asset", "materialize", "-m", "sched_assets.definitions")


def command_env(
    url: str | None, key: str | None, database: Path, dagster_home: Path, **extra: str
) -> dict[str, str]:
    """The environment of a run of the main command: only what the contract says, nothing inherited."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCHED_", "DAGSTER_")) and k != "PYTEST_CURRENT_TEST"
    }
    dagster_home.mkdir(parents=True, exist_ok=True)
    env.update(SCHED_DUCKDB_PATH=str(database), DAGSTER_HOME=str(dagster_home), **extra)
    if url is not None:
        env["SCHED_API_BASE_URL"] = url
    if key is not None:
        env["SCHED_API_KEY"] = key
    return env


def start_main_command(env: Mapping[str, str], select: str = "*") -> subprocess.Popen[str]:
    """Start `dagster asset materialize -m sched_assets.definitions --select <select>` in its own group."""
    return start_group(  # its own process group, so kill -9 reaches uv and python alike
        dagster_command(*MAIN_COMMAND_ARGS, "--select", select),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class CommandRun:
    """A finished subprocess run."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def finish(proc: subprocess.Popen[str], started: float, timeout: float = 180.0) -> CommandRun:
    """Wait for a started run; kill its group if it overstays."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"run did not finish within {timeout}s:\n{stderr[-3000:]}") from None
    return CommandRun(proc.returncode, stdout, stderr, time.perf_counter() - started)


def run_main_command(env: Mapping[str, str], select: str = "*", timeout: float = 180.0) -> CommandRun:
    """Run the main command to completion."""
    started = time.perf_counter()
    return finish(start_main_command(env, select), started, timeout)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """kill -9 the process group of a run started by `start_main_command`."""
    stop_group(proc, grace=0)


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Wait until `path` exists; fail with the run's output if it ends or overstays first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            raise AssertionError(f"run ended ({proc.returncode}) before {path} appeared:\n{stderr[-3000:]}")
        if time.monotonic() > deadline:
            kill_group(proc)
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.02)


# ---- secrets ------------------------------------------------------------------------------------


def secret_hits(blob: bytes | str, secrets: Iterable[str]) -> list[str]:
    """The secrets that occur in `blob` (also JSON-escaped and as their distinctive fragments)."""
    data = blob.encode() if isinstance(blob, str) else blob
    found: list[str] = []
    for secret in secrets:
        variants = {secret, secret.replace("/", "\\/"), *_fragments(secret)}
        if any(v.encode() in data for v in variants):
            found.append(secret)
    return found


def _fragments(secret: str) -> list[str]:
    # A secret split or partly escaped still leaks its longest run; 16 characters are enough to be sure.
    return [secret[i : i + 16] for i in range(0, max(1, len(secret) - 15), 8)] if len(secret) > 24 else []


def scan_files(root: Path, secrets: Iterable[str]) -> dict[str, list[str]]:
    """Every file under `root` (or `root` itself) whose bytes contain a secret."""
    secrets = list(secrets)
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    hits: dict[str, list[str]] = {}
    for path in paths:
        found = secret_hits(path.read_bytes(), secrets)
        if found:
            hits[str(path)] = found
    return hits


def scan_tables(database: Path, secrets: Iterable[str]) -> list[str]:
    """Table cells (any column, as text) or column names containing a secret: `table.column` per hit."""
    secrets = list(secrets)
    hits: list[str] = []
    for table, (columns, rows) in snapshot(database).items():
        for index, (column, _) in enumerate(columns):
            if secret_hits(column, secrets):
                hits.append(f"{table} column name {column}")
            if any(row[index] is not None and secret_hits(row[index], secrets) for row in rows):
                hits.append(f"{table}.{column}")
    return hits


# ---- rate-limit block injection -------------------------------------------------------------------


@dataclass
class BlockInjector:
    """Another consumer of the same API key: once the client has made `after` bookings requests, it
    sends requests with the key until the server blocks the key (one 429 of its own, then stops)."""

    api: DemoApi
    key: str
    after: int
    injected_requests: int = 0
    injected_429: int = 0
    blocked_at: float | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="block-injector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _bookings_requests(self) -> int:
        return sum(n for path, n in self.api.stats.by_path.items() if path.endswith("/bookings"))

    def _run(self) -> None:
        while not self._stop.is_set() and self._bookings_requests() < self.after:
            time.sleep(0.002)
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self._stop.is_set() and self.injected_requests < 1000:
            response = self.api.handle("GET", self.api.root + "/me", {}, headers)
            self.injected_requests += 1
            if response.status == 429:
                self.injected_429 += 1
                self.blocked_at = self.api.clock()
                return


# ---- measurements -------------------------------------------------------------------------------


def record_outcome(scenario: str, **values: Any) -> None:
    """Append one measured outcome to the report file named by `SCHED_RELIABILITY_REPORT` (if set)."""
    target = os.environ.get(REPORT_ENV_VAR)
    if not target:
        return
    line = {"scenario": scenario, **values}
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, default=str) + "\n")


REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenario", "fault"),
    ("outcome", "outcome"),
    ("tables", "tables"),
    ("requests", "requests"),
    ("retries", "retries"),
    ("throttled_429", "429s"),
    ("seconds", "wall s"),
)


def report_table(lines: Iterable[Mapping[str, Any]]) -> str:
    """The markdown table of measured outcomes."""
    header = "| " + " | ".join(title for _, title in REPORT_COLUMNS) + " |"
    rule = "|" + "---|" * len(REPORT_COLUMNS)
    body = []
    for line in lines:
        cells = []
        for key, _ in REPORT_COLUMNS:
            value = line.get(key, "")
            cells.append(f"{value:.1f}" if isinstance(value, float) else str(value))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *body])


def main(argv: Sequence[str]) -> int:
    """Print the report table of a `SCHED_RELIABILITY_REPORT` file."""
    if len(argv) != 1:
        print("usage: python -m sched_assets_tests.reliability_helpers REPORT.jsonl", file=sys.stderr)
        return 2
    lines = [json.loads(text) for text in Path(argv[0]).read_text().splitlines() if text.strip()]
    print(report_table(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
