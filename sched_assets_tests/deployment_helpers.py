"""Helpers for `test_accounts_deployment.py`: the real code location deployed with `deploy/dagster.yaml`.

- `GatedDemoApi`: the multi-account demo API that also records every API request (account, path,
  query, wall-clock times, status) and can hold one account's requests at a gate, so a test can keep a
  run in the middle of one account's sync (holding its key lock) for as long as it needs.
- `CodeServer`: `dagster api grpc -m sched_assets.definitions` in its own process group, the one
  code server the daemon (and the run workers it launches) and the test's GraphQL context share.
- GraphQL launches as the UI sends them, run windows from the run storage (with the accounts each run
  covers, from its partition or range tags) and their overlaps, and snapshots of the warehouse per
  (table, account).

The existing instance helpers (`deploy_config`, `write_home`, `instance_env`, the backfill mutation)
come from `test_deploy_instance.py`.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import yaml
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from sched_assets.accounts import ACCOUNT_COLUMN
from sched_assets.demo import DemoApi
from sched_assets.demo.accounts import DemoAccountKey
from sched_assets.demo.admin import ADMIN_PREFIX
from sched_assets_tests.processes import free_port, start_group, stop_group
from sched_assets_tests.test_deploy_instance import (
    ASSET_JOB,
    LAUNCH_BACKFILL_MUTATION,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REPOSITORY,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCATION = "sched_assets"
WAITED = re.compile(
    r"account '(?P<account>[^']+)': waited (?P<seconds>[\d.]+) s for another run syncing its key"
)
ASSET_NODES_QUERY = "query AssetKeys { assetNodes { assetKey { path } } }"


# ---- the demo API, recorded and gated -------------------------------------------------------------


@dataclass(frozen=True)
class ApiRequest:
    """One API request as the demo server saw it (wall-clock epoch seconds, comparable across processes)."""

    account: str | None  # None: a key the server does not know
    path: str
    query: Mapping[str, str]
    arrived: float  # when the request reached the server (before any gate)
    started: float  # when the API began answering it (after the gate)
    ended: float
    status: int

    @property
    def incremental(self) -> bool:
        """A bookings page of an incremental read (filtered on updatedAt)."""
        return any("updated" in name.lower() for name in self.query)


@dataclass
class Gate:
    """Holds one account's API requests until `open()` (or `max_hold` seconds, whichever first)."""

    account: str
    max_hold: float
    arrived: threading.Event = field(default_factory=threading.Event)  # a request is waiting
    opened: threading.Event = field(default_factory=threading.Event)
    first_arrival: float | None = None
    timed_out: bool = False

    def hold(self) -> None:
        if self.first_arrival is None:
            self.first_arrival = time.time()
        self.arrived.set()
        if not self.opened.wait(self.max_hold):
            self.timed_out = True  # below the client's read timeout: let the request through

    def open(self) -> None:
        self.opened.set()


class GatedDemoApi(DemoApi):
    """`DemoApi(accounts=keys)` that records every API request and can gate one account's requests.

    The gate holds a request before the API handles it (so outside the API's lock: the other accounts
    are served meanwhile). The client only sees a slow response.
    """

    def __init__(self, keys: Sequence[DemoAccountKey], **options: Any) -> None:
        super().__init__(accounts=keys, **options)
        self._account_by_key = {key.api_key: key.name for key in keys}
        self._record_lock = threading.Lock()
        self._requests: list[ApiRequest] = []
        self._gates: dict[str, Gate] = {}

    def close_gate(self, account: str, max_hold: float) -> Gate:
        gate = Gate(account, max_hold)
        self._gates[account] = gate
        return gate

    def requests(self, account: str | None = None) -> list[ApiRequest]:
        with self._record_lock:
            found = list(self._requests)
        return sorted((r for r in found if account is None or r.account == account), key=lambda r: r.arrived)

    def handle(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Any:
        if path.startswith(ADMIN_PREFIX):
            return super().handle(method, path, query, headers)
        arrived = time.time()
        authorization = {k.lower(): v for k, v in headers.items()}.get("authorization") or ""
        account = self._account_by_key.get(authorization.partition(" ")[2].strip())
        gate = self._gates.get(account) if account else None
        if gate is not None and not gate.opened.is_set():
            gate.hold()
        started = time.time()
        response = super().handle(method, path, query, headers)
        request = ApiRequest(account, path, dict(query), arrived, started, time.time(), response.status)
        with self._record_lock:
            self._requests.append(request)
        return response


def sync_shape(requests: Iterable[ApiRequest]) -> Counter[str]:
    """The paths of a set of requests with their counts (one sync of an account has a fixed shape)."""
    return Counter(request.path for request in requests)


# ---- the code server shared by the daemon and the test's GraphQL context -------------------------


class CodeServer:
    """`dagster api grpc` for the real code location, as a deployment's user-code server runs it."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port("127.0.0.1")
        self.log_path = log_path
        command = [
            str(Path(sys.executable).parent / "dagster"),
            "api",
            "grpc",
            "-m",
            "sched_assets.definitions",
            "-d",
            str(PROJECT_ROOT),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--location-name",
            LOCATION,
        ]
        with log_path.open("wb") as log:
            self.process = start_group(
                command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.port, host="127.0.0.1")
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"code server exited: {self.log_tail()}")
            with contextlib.suppress(Exception):
                client.ping("ready")
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"code server not up after {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.5)

    def workspace(self, directory: Path) -> Path:
        path = directory / "workspace.yaml"
        entry = {"host": "127.0.0.1", "port": self.port, "location_name": LOCATION}
        path.write_text(yaml.safe_dump({"load_from": [{"grpc_server": entry}]}))
        return path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_group(self.process, grace=10.0)


# ---- GraphQL, as the UI sends it -------------------------------------------------------------------


def asset_keys(context: Any) -> list[list[str]]:
    result = execute_dagster_graphql(context, ASSET_NODES_QUERY)
    return sorted(node["assetKey"]["path"] for node in result.data["assetNodes"])


def launch_backfill(
    context: Any, keys: Sequence[Sequence[str]], partitions: Sequence[str], title: str
) -> str:
    """The UI's "Materialize all" → backfill over the chosen accounts."""
    params = {
        "assetSelection": [{"path": list(key)} for key in keys],
        "partitionNames": list(partitions),
        "title": title,
    }
    result = execute_dagster_graphql(context, LAUNCH_BACKFILL_MUTATION, variables={"backfillParams": params})
    launched = result.data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def launch_partition_run(context: Any, keys: Sequence[Sequence[str]], partition: str) -> str:
    """The UI's "Materialize" of one account (one partition): the implicit asset job, a partition tag."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": ASSET_JOB,
            "assetSelection": [{"path": list(key)} for key in keys],
        },
        "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": partition}]},
    }
    result = execute_dagster_graphql(
        context, LAUNCH_PIPELINE_EXECUTION_MUTATION, variables={"executionParams": params}
    )
    launched = result.data["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


# ---- runs as the run storage (Postgres) has them ---------------------------------------------------


def covered_accounts(tags: Mapping[str, str], names: Sequence[str]) -> tuple[str, ...]:
    """The accounts a run syncs: its `dagster/partition`, or every name of its range in partition order."""
    if PARTITION_TAG in tags:
        return (tags[PARTITION_TAG],)
    first, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
    return tuple(names[names.index(first) : names.index(last) + 1])


@dataclass(frozen=True)
class RunWindow:
    """One finished run: its tags, the accounts it covers and when it was in progress (epoch seconds)."""

    run_id: str
    status: dg.DagsterRunStatus
    tags: Mapping[str, str]
    accounts: tuple[str, ...]
    launched: float  # dequeued: STARTING (from here on it counts against the caps)
    start: float  # STARTED
    end: float

    @property
    def limit_tag(self) -> tuple[str, str]:
        """The (tag, value) the run queue limits this run by: one run per value."""
        if PARTITION_TAG in self.tags:
            return PARTITION_TAG, self.tags[PARTITION_TAG]
        return RANGE_START_TAG, self.tags[RANGE_START_TAG]

    def overlaps(self, other: RunWindow) -> bool:
        return self.launched < other.end and other.launched < self.end


def run_window(instance: dg.DagsterInstance, record: dg.RunRecord, names: Sequence[str]) -> RunWindow:
    run = record.dagster_run
    stats = instance.get_run_stats(run.run_id)
    assert record.start_time is not None and record.end_time is not None, (run.run_id, run.status)
    return RunWindow(
        run_id=run.run_id,
        status=run.status,
        tags=dict(run.tags),
        accounts=covered_accounts(run.tags, names),
        launched=stats.launch_time or record.start_time,
        start=record.start_time,
        end=record.end_time,
    )


def shared_account_overlaps(windows: Sequence[RunWindow]) -> list[tuple[RunWindow, RunWindow, set[str]]]:
    """Pairs of runs that were in progress at the same time and cover a common account."""
    found = []
    for a, b in itertools.combinations(windows, 2):
        common = set(a.accounts) & set(b.accounts)
        if common and a.overlaps(b):
            found.append((a, b, common))
    return found


def peak_in_progress(windows: Sequence[RunWindow]) -> int:
    """The most runs in progress (launched .. end) at one moment; an end at the same instant goes first."""
    events = sorted([(w.launched, 1) for w in windows] + [(w.end, -1) for w in windows])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def waited_events(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """account -> (seconds waited for its key lock, when the run logged it) from the run's event log."""
    found = {}
    for event in instance.all_logs(run_id):
        match = WAITED.search(event.user_message or "")
        if match:
            found[match["account"]] = (float(match["seconds"]), event.timestamp)
    return found


def step_started(instance: dg.DagsterInstance, run_id: str) -> bool:
    return bool(instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START))


def raw_materializations(instance: dg.DagsterInstance, run_id: str, account: str) -> dict[str, float]:
    """The raw tables (`raw.<name>`) the run reported materialized for partition `account`, and when."""
    found = {}
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = event.asset_materialization
        if (
            materialization is not None
            and materialization.asset_key.path[0] == "raw"
            and materialization.partition == account
        ):
            found[".".join(materialization.asset_key.path)] = event.timestamp
    return found


def raw_materialization_times(instance: dg.DagsterInstance, run_id: str, account: str) -> list[float]:
    """When the run logged each materialization of a raw asset's partition `account`."""
    return sorted(raw_materializations(instance, run_id, account).values())


def step_failure_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    messages = []
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = event.dagster_event.step_failure_data if event.dagster_event else None
        error = data.error if data is not None else None
        parts = []
        while error is not None:  # the step error, then what caused it
            parts.append(error.message.strip())
            error = error.cause
        if parts:
            messages.append(" <- ".join(parts))
    return messages


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = lambda: "",
    interval: float = 0.5,
) -> Any:
    """Poll `predicate` until it returns something truthy (and return that); fail with `diagnostics()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s\n{diagnostics()}")
        time.sleep(interval)


def postgres_rows_containing(connection: Any, needle: str) -> dict[str, int]:
    """table -> rows whose text form contains `needle`, over every table of the database's public schema."""
    found = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM public."{table}" AS t WHERE t::text LIKE %s', [f"%{needle}%"]
            )
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


def files_containing(directory: Path, needle: str, skip: Iterable[Path] = ()) -> list[Path]:
    """Files under `directory` (logs, compute logs, storage) whose bytes contain `needle`."""
    skipped = {path.resolve() for path in skip}
    data = needle.encode()
    found = []
    for path in directory.rglob("*"):
        with contextlib.suppress(OSError):  # a file removed meanwhile
            if path.is_file() and path.resolve() not in skipped and data in path.read_bytes():
                found.append(path)
    return found


# ---- the warehouse --------------------------------------------------------------------------------

Snapshot = dict[tuple[str, str], list[tuple]]  # (schema.table, account) -> rows, `_synced_at` left out


def snapshot(database: Path) -> Snapshot:
    """Every raw, history and analytics table (or view: `history.bookings`; not the tables behind it,
    named `_...`), split by account: each account's rows in a stable order (an empty list where the
    account has none)."""
    result: Snapshot = {}
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'history', 'analytics') AND NOT starts_with(table_name, '_') "
            "ORDER BY ALL"
        ).fetchall()
        for schema, table in tables:
            columns = [
                column
                for (column, *_) in con.execute(f'DESCRIBE "{schema}"."{table}"').fetchall()
                if column != "_synced_at"
            ]
            assert columns[0] == ACCOUNT_COLUMN, (schema, table, columns)
            quoted = ", ".join(f'"{column}"' for column in columns)
            for row in con.execute(f'SELECT {quoted} FROM "{schema}"."{table}"').fetchall():
                result.setdefault((f"{schema}.{table}", row[0]), []).append(row[1:])
    # An account without rows in a table (booking_changes before a second sync) has them empty.
    accounts = {account for _, account in result}
    for schema, table in tables:
        for account in accounts:
            result.setdefault((f"{schema}.{table}", account), [])
    return {key: sorted(rows, key=repr) for key, rows in result.items()}


def synced_at(database: Path) -> dict[tuple[str, str], Any]:
    """(raw.<table>, account) -> the newest `_synced_at` of the account's rows: changes whenever a sync
    writes the account's rows of that table, even with the same content."""
    found = {}
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' ORDER BY ALL"
        ).fetchall()
        for (table,) in tables:
            query = f'SELECT {ACCOUNT_COLUMN}, max(_synced_at) FROM raw."{table}" GROUP BY ALL'
            for account, newest in con.execute(query).fetchall():
                found[(f"raw.{table}", account)] = newest
    return found


def account_tables(snap: Snapshot, account: str) -> dict[str, list[tuple]]:
    return {table: rows for (table, name), rows in snap.items() if name == account}


def bookings_fingerprint(database: Path, account: str) -> set[tuple[int, str, str]]:
    """(id, title, status) of the account's rows in raw.bookings."""
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            f"SELECT id, title, status FROM raw.bookings WHERE {ACCOUNT_COLUMN} = ?", [account]
        ).fetchall()
    return {(int(i), str(t), str(s)) for i, t, s in rows}


def served_fingerprint(api: DemoApi, account: str) -> set[tuple[int, str, str]]:
    """(id, title, status) of every booking the demo server holds for the account right now."""
    demo = api.account_for(account)
    with demo.lock:
        records = [demo.record(slot) for slot in demo.live_slots()]
    return {(int(r["id"]), str(r["title"]), str(r["status"])) for r in records}


def summarize(windows: Iterable[RunWindow], t0: float) -> str:
    """One line per run (times relative to t0), for failure messages and the -s output."""
    lines = []
    for w in sorted(windows, key=lambda w: w.launched):
        tag, value = w.limit_tag
        lines.append(
            f"  {w.run_id[:8]} {w.status.value:<8} {tag.split('/')[-1]}={value} accounts={','.join(w.accounts)} "
            f"launched {w.launched - t0:6.1f} started {w.start - t0:6.1f} ended {w.end - t0:6.1f}"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[name] = time.monotonic() - started
