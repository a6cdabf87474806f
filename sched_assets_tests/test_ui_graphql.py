"""`dagster dev` end to end, through the GraphQL API the UI itself uses.

One `dagster dev -w workspace.yaml` (webserver, daemon, code server) runs for the module, in demo mode,
with a temporary DAGSTER_HOME and DuckDB file. The tests check what a user sees in the UI (assets with
descriptions, groups, kinds, owners, code references; lineage; checks; schedules) and then click
"Materialize all" the way the UI does: the same loader query, the same decision (one run of the
implicit `__ASSET_JOB`, no launchpad), the same `LaunchPipelineExecution` mutation with every asset key
and every asset check. The run must succeed and the UI must show its row counts, column schemas and
previews. The server and every process it started are stopped at the end, also when a test fails.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psutil
import pytest

from sched_assets import analytics as analytics_sql
from sched_assets.analytics.specs import TABLES
from sched_assets.api.specs import ENDPOINTS
from sched_assets.defs.analytics import analytics_assets
from sched_assets.defs.checks import checks
from sched_assets.defs.freshness import freshness_checks, freshness_window
from sched_assets.defs.jobs import daily_sync, weekly_full_refresh
from sched_assets.defs.sources import build_source_assets
from sched_assets_tests.processes import free_port, start_group, stop_group
from sched_assets_tests.raw_tables import create_raw_tables

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCATION = "sched_assets"  # workspace.yaml's location_name
REPOSITORY = "__repository__"  # the name Dagster gives the repository behind a Definitions object
ASSET_JOB = "__ASSET_JOB"  # the implicit job the UI's "Materialize all" launches

STARTUP_TIMEOUT = 150.0  # `dagster dev` until the code location is loaded (about 15 s here)
RUN_TIMEOUT = 150.0  # queued -> SUCCESS of the whole demo sync (about 20 s here)
SHUTDOWN_GRACE = 20.0  # for dagster dev's own Ctrl-C shutdown before everything left is killed

RAW_ASSETS = [spec.name for spec in ENDPOINTS]
ANALYTICS_ASSETS = [
    "booking_attendees",
    "schedule_windows",
    "schedule_overrides",
    "booking_utilization_daily",
    "event_type_stats",
    "booking_changes",
]
HISTORY_ASSETS = [spec.name for spec in ENDPOINTS if spec.history]
ALL_KEYS = (
    [("raw", name) for name in RAW_ASSETS]
    + [("history", name) for name in HISTORY_ASSETS]
    + [("analytics", name) for name in ANALYTICS_ASSETS]
)
# The checks the code location defines: checks.py's, and a freshness check per synced asset.
check_definitions = [*checks, *freshness_checks([build_source_assets()], freshness_window({}))]
KINDS = {"raw": {"api", "duckdb"}, "history": {"duckdb"}, "analytics": {"duckdb"}}
DEMO_BOOKINGS = 2000  # SchedApiResource.demo_bookings default


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class DagsterDev:
    """A running `dagster dev` in its own session (and process group), and a GraphQL client for it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path, database: Path):
        self.process = process
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.log_path = log_path
        self.database = database
        self.client = httpx.Client(timeout=60.0)
        self.seen: dict[int, psutil.Process] = {}  # every descendant observed, for the leftover check

    def output(self, last_lines: int = 150) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-last_lines:])

    def remember_processes(self) -> None:
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.post(self.url, json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, f"GraphQL HTTP {response.status_code}: {response.text[:2000]}"
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]


WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def _wait_until_loaded(server: DagsterDev) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"dagster dev exited with code {server.process.returncode} before the code location "
                f"loaded. Its output:\n{server.output()}"
            )
        try:
            data = server.gql(WORKSPACE_QUERY)
        except (httpx.TransportError, AssertionError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
            continue
        entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
        entry = entries.get(LOCATION)
        if entry and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "RepositoryLocation":
                return
            pytest.fail(
                f"code location {LOCATION} failed to load: {loaded.get('message')}\n"
                f"{''.join(loaded.get('stack') or [])}\nServer output:\n{server.output()}"
            )
        last = f"workspace: {data}"
        time.sleep(0.5)
    pytest.fail(
        f"code location {LOCATION} did not load within {STARTUP_TIMEOUT:.0f}s (last: {last}). "
        f"dagster dev output:\n{server.output()}"
    )


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and _alive(process):
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return members


def _describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid}: {' '.join(process.cmdline())[:200]}")
        except psutil.Error:
            lines.append(f"{process.pid}: (gone)")
    return "\n".join(lines)


def _stop(server: DagsterDev) -> list[psutil.Process]:
    """Ctrl-C dagster dev, then kill whatever is left of its process group; return survivors."""
    process = server.process
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    server.remember_processes()
    # dagster dev maps SIGTERM to its Ctrl-C shutdown; then SIGKILL to whatever is left of the group.
    stop_group(process, SHUTDOWN_GRACE, terminate="leader")
    # Descendants that left the group (none do today) are killed one by one, by pid.
    for child in server.seen.values():
        if _alive(child):
            child.kill()
    deadline = time.monotonic() + 10
    survivors: list[psutil.Process] = []
    while time.monotonic() < deadline:
        survivors = _group_members(pgid) + [p for p in server.seen.values() if _alive(p)]
        if not survivors:
            break
        time.sleep(0.2)
    server.client.close()
    return survivors


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    tmp = tmp_path_factory.mktemp("dagster_dev")
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    database = tmp / "sched.duckdb"
    log_path = tmp / "dagster_dev.log"

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHED_") and k != "DAGSTER_HOME"}
    env.update(DAGSTER_HOME=str(home), SCHED_DUCKDB_PATH=str(database), PYTHONUNBUFFERED="1")
    port = free_port()
    with log_path.open("wb") as log:
        process = start_group(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A runner that starts pytest in the background leaves SIGINT/SIGTERM ignored, and ignored
            # signals survive exec: dagster dev would then ignore its Ctrl-C. Restore the defaults.
            default_signals=True,
        )
    server = DagsterDev(process, port, log_path, database)
    try:
        _wait_until_loaded(server)
        server.remember_processes()
        yield server
    finally:
        survivors = _stop(server)
        if survivors:
            pytest.fail(f"processes left after stopping dagster dev:\n{_describe(survivors)}")


# --------------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------------

METADATA_FIELDS = """
__typename
label
... on IntMetadataEntry { intValue intRepr }
... on TextMetadataEntry { text }
... on MarkdownMetadataEntry { mdStr }
... on JsonMetadataEntry { jsonString }
... on TableSchemaMetadataEntry { schema { columns { name type } } }
... on CodeReferencesMetadataEntry {
  codeReferences {
    __typename
    ... on LocalFileCodeReference { filePath lineNumber }
    ... on UrlCodeReference { url }
  }
}
"""

ASSET_NODES_QUERY = f"""
query {{
  assetNodes {{
    assetKey {{ path }}
    description
    groupName
    kinds
    owners {{ __typename ... on TeamAssetOwner {{ team }} ... on UserAssetOwner {{ email }} }}
    dependencyKeys {{ path }}
    dependedByKeys {{ path }}
    isExecutable
    isMaterializable
    metadataEntries {{ {METADATA_FIELDS} }}
    assetChecksOrError {{
      __typename
      ... on AssetChecks {{
        checks {{ name description blocking jobNames canExecuteIndividually additionalAssetKeys {{ path }} }}
      }}
    }}
  }}
}}
"""

# What the UI's LaunchAssetExecutionButton asks before it launches (LaunchAssetLoaderQuery, trimmed to
# the fields its decision uses).
LAUNCH_ASSET_LOADER_QUERY = """
query LaunchAssetLoaderQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    id
    opNames
    jobNames
    hasMaterializePermission
    partitionDefinition { description }
    isObservable
    isExecutable
    isMaterializable
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name canExecuteIndividually jobNames } } }
    repository { name location { name } }
    requiredResources { resourceKey }
    configField { isRequired }
  }
  assetNodeAdditionalRequiredKeys(assetKeys: $assetKeys) { path }
  assetNodeDefinitionCollisions(assetKeys: $assetKeys) { assetKey { path } }
}
"""

LAUNCH_ASSET_LOADER_RESOURCE_QUERY = """
query LaunchAssetLoaderResourceQuery(
  $pipelineName: String!, $repositoryLocationName: String!, $repositoryName: String!
) {
  resourcesOrError(pipelineSelector: {
    pipelineName: $pipelineName, repositoryName: $repositoryName,
    repositoryLocationName: $repositoryLocationName
  }) {
    __typename
    ... on ResourceConnection { resources { name configField { isRequired } } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""

# The UI's mutation (ui-core runs/RunUtils.tsx), verbatim apart from the PythonError fragment.
LAUNCH_PIPELINE_EXECUTION_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      jobName
      assetSelection { path }
      assetCheckSelection { name assetKey { path } }
    }
  }
}
"""

LOGS_QUERY = """
query ($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 500) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent {
          error { message cause { message stack } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

LATEST_QUERY = f"""
query {{
  assetNodes(loadMaterializations: true) {{
    assetKey {{ path }}
    assetMaterializations(limit: 1) {{ runId metadataEntries {{ {METADATA_FIELDS} }} }}
    assetChecksOrError {{
      ... on AssetChecks {{
        checks {{
          name
          executionForLatestMaterialization {{
            runId
            status
            evaluation {{ success severity description }}
          }}
        }}
      }}
    }}
  }}
}}
"""

SCHEDULES_QUERY = """
query ($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) {
    __typename
    ... on Schedules {
      results { name cronSchedule pipelineName defaultStatus scheduleState { status } }
    }
    ... on PythonError { message }
  }
}
"""


def _key(node: dict[str, Any]) -> tuple[str, ...]:
    return tuple(node["assetKey"]["path"])


def _paths(keys: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    return {tuple(k["path"]) for k in keys}


def _metadata(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["label"]: e for e in entries}


@pytest.fixture(scope="module")
def asset_nodes(dagster_dev: DagsterDev) -> dict[tuple[str, ...], dict[str, Any]]:
    return {_key(node): node for node in dagster_dev.gql(ASSET_NODES_QUERY)["assetNodes"]}


# --------------------------------------------------------------------------------------------------
# What the UI shows before anything ran
# --------------------------------------------------------------------------------------------------


def test_expected_asset_lists_match_the_code() -> None:
    assert sorted(RAW_ASSETS) == sorted(spec.name for spec in ENDPOINTS)
    assert sorted(ANALYTICS_ASSETS) == sorted(table.name for table in TABLES)


def test_every_asset_is_listed_with_description_group_kinds_owner_and_code_reference(
    asset_nodes: dict[tuple[str, ...], dict[str, Any]],
) -> None:
    assert sorted(asset_nodes) == sorted(ALL_KEYS)
    for key, node in asset_nodes.items():
        schema, name = key
        label = "/".join(key)
        assert node["groupName"] == schema, label
        assert set(node["kinds"]) == KINDS[schema], label
        assert node["isExecutable"] and node["isMaterializable"], label
        assert {"__typename": "TeamAssetOwner", "team": "data"} in node["owners"], label
        # Markdown the UI renders: a bold "Grain" paragraph, inline code for tables and columns.
        description = node["description"] or ""
        assert "**Grain:**" in description and "`" in description, f"{label}: {description!r}"
        if schema == "analytics":
            assert re.search(r"\*\*Sources?:\*\*", description), f"{label}: no **Source(s):** paragraph"

        metadata = _metadata(node["metadataEntries"])
        assert metadata["dagster/table_name"]["text"] == f"{schema}.{name}", label
        # dg.with_source_code_references: a link to the defining file, shown on the asset page.
        references = metadata["dagster/code_references"]["codeReferences"]
        assert references, label
        for reference in references:
            assert reference["__typename"] == "LocalFileCodeReference", (label, reference)
            path = Path(reference["filePath"])
            assert path.is_file() and path.is_relative_to(PROJECT_ROOT / "sched_assets" / "defs"), (
                label,
                reference,
            )
            assert reference["lineNumber"] and reference["lineNumber"] > 0, (label, reference)
            source = path.read_text().splitlines()
            around = "\n".join(source[reference["lineNumber"] - 2 : reference["lineNumber"] + 2])
            expected = "raw_sources" if schema in ("raw", "history") else f"def {name}("
            assert expected in around, f"{label}: code reference {path}:{reference['lineNumber']} is off"


def _tables_read(builder: Any) -> set[tuple[str, str]]:
    """The (schema, table)s a derived table's SQL reads: the ones whose absence makes it fail to bind."""
    read = set()
    sources = [("raw", t) for t in RAW_ASSETS] + [("history", t) for t in HISTORY_ASSETS]
    with duckdb.connect() as con:
        create_raw_tables(con)
        builder(con)  # every raw and history table present (and empty): must work
        for schema, table in sources:
            con.execute("BEGIN")
            con.execute(f"DROP TABLE {schema}.{table}")
            try:
                builder(con)
            except duckdb.CatalogException as exc:
                assert f"{schema}.{table}" in str(exc) or table in str(exc), exc
                read.add((schema, table))
            finally:
                con.execute("ROLLBACK")
    return read


def test_lineage_edges_are_exactly_the_raw_tables_each_analytics_asset_reads(
    asset_nodes: dict[tuple[str, ...], dict[str, Any]],
) -> None:
    declared = {
        tuple(asset.key.path): {tuple(dep.path) for dep in asset.asset_deps[asset.key]}
        for asset in analytics_assets
    }
    for name in ANALYTICS_ASSETS:
        key = ("analytics", name)
        shown = _paths(asset_nodes[key]["dependencyKeys"])
        # 1. the UI draws the edges that `deps=` in defs/analytics.py declares ...
        assert shown == declared[key], f"{name}: UI shows {sorted(shown)}, code declares {declared[key]}"
        # 2. ... which are exactly the tables the SQL reads ...
        select = analytics_sql.SELECTS[name]
        read = _tables_read(lambda con, sql=select: con.execute(sql).fetchall())
        assert shown == read, f"{name}: lineage {sorted(shown)} but the SQL reads {sorted(read)}"
        # 3. ... and the tables the description names as its sources.
        sources_paragraph = re.search(
            r"\*\*Sources?:\*\*(.*?)(\n\n|$)", asset_nodes[key]["description"], re.S
        )
        assert sources_paragraph, name
        named = set(re.findall(r"`(raw|history)\.(\w+)`", sources_paragraph.group(1)))
        assert named == shown, f"{name}: description names {sorted(named)}, lineage is {sorted(shown)}"

    for name in RAW_ASSETS:
        node = asset_nodes[("raw", name)]
        assert node["dependencyKeys"] == [], name
        readers = {key for key, deps in declared.items() if ("raw", name) in deps}
        if name in HISTORY_ASSETS:  # its versions, written in the same step and transaction
            readers.add(("history", name))
        assert _paths(node["dependedByKeys"]) == readers, name
    for name in HISTORY_ASSETS:
        node = asset_nodes[("history", name)]
        assert _paths(node["dependencyKeys"]) == {("raw", name)}, name
        assert _paths(node["dependedByKeys"]) == {
            k for k, deps in declared.items() if ("history", name) in deps
        }


def test_asset_checks_are_listed_as_defined_in_checks_py(
    asset_nodes: dict[tuple[str, ...], dict[str, Any]],
) -> None:
    expected = {
        (tuple(spec.asset_key.path), spec.name): (
            spec.blocking,
            {tuple(dep.asset_key.path) for dep in spec.additional_deps or []},
        )
        for definition in check_definitions
        for spec in definition.check_specs
    }
    shown = {}
    for key, node in asset_nodes.items():
        assert node["assetChecksOrError"]["__typename"] == "AssetChecks", key
        for check in node["assetChecksOrError"]["checks"]:
            assert check["description"], (key, check["name"])
            assert ASSET_JOB in check["jobNames"], (key, check["name"])
            shown[(key, check["name"])] = (check["blocking"], _paths(check["additionalAssetKeys"]))
    assert shown == expected
    # Every table has its key check; raw ones block the derived assets.
    for key in ALL_KEYS:
        blocking, _ = shown[(key, "primary_key_unique_not_null")]
        assert blocking == (key[0] == "raw"), key


def test_schedules_are_listed_and_stopped(dagster_dev: DagsterDev) -> None:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    result = dagster_dev.gql(SCHEDULES_QUERY, {"selector": selector})["schedulesOrError"]
    assert result["__typename"] == "Schedules", result
    schedules = {s["name"]: s for s in result["results"]}
    assert sorted(schedules) == ["daily_sync", "weekly_full_refresh"]
    for definition in (daily_sync, weekly_full_refresh):
        shown = schedules[definition.name]
        assert shown["cronSchedule"] == definition.cron_schedule
        assert shown["pipelineName"] == definition.job_name
        assert shown["defaultStatus"] == "STOPPED"
        assert shown["scheduleState"]["status"] == "STOPPED"


# --------------------------------------------------------------------------------------------------
# "Materialize all", as the UI does it
# --------------------------------------------------------------------------------------------------


def _ui_execution_params(server: DagsterDev) -> dict[str, Any]:
    """What LaunchAssetExecutionButton sends for "Materialize all" (stateForLaunchingAssets and
    executionParamsForAssetJob in ui-core/src/assets/LaunchAssetExecutionButton.tsx)."""
    asset_keys = [{"path": list(key)} for key in ALL_KEYS]
    loaded = server.gql(LAUNCH_ASSET_LOADER_QUERY, {"assetKeys": asset_keys})
    assert loaded["assetNodeDefinitionCollisions"] == []
    # A multi-asset that cannot subset would make the UI ask for confirmation first.
    assert loaded["assetNodeAdditionalRequiredKeys"] == []
    nodes = loaded["assetNodes"]
    assert sorted(_key(n) for n in nodes) == sorted(ALL_KEYS)
    for node in nodes:
        assert node["hasMaterializePermission"] and node["isExecutable"], _key(node)
        assert not node["isObservable"] and node["partitionDefinition"] is None, _key(node)

    # getCommonJob: the first job every selected asset belongs to.
    common = [job for job in nodes[0]["jobNames"] if all(job in n["jobNames"] for n in nodes)]
    assert common and common[0] == ASSET_JOB, common
    repository = nodes[0]["repository"]
    assert (repository["name"], repository["location"]["name"]) == (REPOSITORY, LOCATION)

    # Required op config or resource config would open the launchpad instead of launching a run.
    assert not any((n["configField"] or {}).get("isRequired") for n in nodes)
    resources = server.gql(
        LAUNCH_ASSET_LOADER_RESOURCE_QUERY,
        {"pipelineName": ASSET_JOB, "repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
    )["resourcesOrError"]
    assert resources["__typename"] == "ResourceConnection", resources
    required = {r["resourceKey"] for n in nodes for r in n["requiredResources"]}
    needing_config = [
        r["name"]
        for r in resources["resources"]
        if r["name"] in required and (r["configField"] or {}).get("isRequired")
    ]
    assert not needing_config, f"resources would force the launchpad: {needing_config}"

    return {
        "mode": "default",
        "executionMetadata": {"tags": []},
        "runConfigData": "{}",
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "pipelineName": ASSET_JOB,
            "assetSelection": [{"path": n["assetKey"]["path"]} for n in nodes],
            "assetCheckSelection": [
                {"name": check["name"], "assetKey": {"path": n["assetKey"]["path"]}}
                for n in nodes
                for check in n["assetChecksOrError"]["checks"]
                if not check["jobNames"] or ASSET_JOB in check["jobNames"]
            ],
        },
    }


def _run_events(server: DagsterDev, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = server.gql(LOGS_QUERY, {"runId": run_id, "cursor": cursor})["logsForRun"]
        assert page["__typename"] == "EventConnection", page
        events += page["events"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


def _failure_report(server: DagsterDev, run_id: str) -> str:
    lines = []
    for event in _run_events(server, run_id):
        if event.get("level") == "ERROR" or event["__typename"] == "ExecutionStepFailureEvent":
            lines.append(f"{event['__typename']} {event.get('stepKey')}: {event.get('message')}")
            error = event.get("error") or {}
            cause = error.get("cause") or {}
            if cause:
                lines.append(f"  caused by: {cause['message']}{''.join(cause.get('stack') or [])[-2000:]}")
    return "\n".join(lines)


def _wait_for_run(server: DagsterDev, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = server.gql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        server.remember_processes()  # the run worker, for the leftover check
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(1.0)
    pytest.fail(
        f"run {run_id} still {run.get('status')} after {RUN_TIMEOUT:.0f}s.\n"
        f"{_failure_report(server, run_id)}\nServer output:\n{server.output()}"
    )


def test_materialize_all_like_the_ui_succeeds_and_the_ui_shows_the_results(dagster_dev: DagsterDev) -> None:
    params = _ui_execution_params(dagster_dev)
    assert len(params["selector"]["assetCheckSelection"]) == sum(
        len(d.check_specs) for d in check_definitions
    )

    launched = dagster_dev.gql(LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params})[
        "launchPipelineExecution"
    ]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    run = _wait_for_run(dagster_dev, run_id)
    assert run["status"] == "SUCCESS", (
        f"run {run_id} ended {run['status']}:\n{_failure_report(dagster_dev, run_id)}\n"
        f"Server output:\n{dagster_dev.output()}"
    )
    assert run["jobName"] == ASSET_JOB
    assert _paths(run["assetSelection"]) == set(ALL_KEYS)
    assert len(run["assetCheckSelection"]) == len(params["selector"]["assetCheckSelection"])

    # Demo mode says so in the run log, and wrote to SCHED_DUCKDB_PATH (not data/demo.duckdb).
    events = _run_events(dagster_dev, run_id)
    demo_lines = [e for e in events if (e.get("message") or "").startswith("DEMO MODE")]
    assert demo_lines, "no 'DEMO MODE' line in the run's event log"
    assert demo_lines[0]["level"] == "WARNING"
    assert str(dagster_dev.database) in demo_lines[0]["message"]
    assert dagster_dev.database.is_file()

    latest = {_key(n): n for n in dagster_dev.gql(LATEST_QUERY)["assetNodes"]}
    row_counts = {}
    for key in ALL_KEYS:
        label = "/".join(key)
        [materialization] = latest[key]["assetMaterializations"]
        assert materialization["runId"] == run_id, label
        metadata = _metadata(materialization["metadataEntries"])
        row_counts[key] = int(metadata["dagster/row_count"]["intRepr"])
        columns = [c["name"] for c in metadata["dagster/column_schema"]["schema"]["columns"]]
        assert columns, f"{label}: empty column schema"
        assert metadata["preview"]["__typename"] == "MarkdownMetadataEntry", label
        preview = metadata["preview"]["mdStr"]
        assert "|---" in preview or "_no rows_" in preview.lower(), f"{label}: preview is not a table"
        if key[0] == "raw":
            assert metadata["source"]["text"] == "demo", label
            assert {"_extra", "_synced_at"} <= set(columns), label

    assert row_counts[("raw", "bookings")] == DEMO_BOOKINGS
    bookings = _metadata(latest[("raw", "bookings")]["assetMaterializations"][0]["metadataEntries"])
    assert int(bookings["records_fetched"]["intRepr"]) == DEMO_BOOKINGS
    for name in ANALYTICS_ASSETS:
        if name == "booking_changes":  # changes need a second sync to be seen
            continue
        assert row_counts[("analytics", name)] > 0, f"analytics/{name} is empty: {row_counts}"

    # The charts on the asset pages: PNGs embedded in markdown metadata, as the UI receives them.
    for name, entry in (
        ("booking_utilization_daily", "utilization_chart"),
        ("event_type_stats", "event_type_chart"),
    ):
        metadata = _metadata(latest[("analytics", name)]["assetMaterializations"][0]["metadataEntries"])
        assert metadata[entry]["__typename"] == "MarkdownMetadataEntry", name
        match = re.fullmatch(
            r"!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", metadata[entry]["mdStr"]
        )
        assert match, f"{name}: {metadata[entry]['mdStr'][:80]!r}"
        png = base64.b64decode(match.group(1))
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and 5_000 < len(png) < 200_000, (name, len(png))

    # Every check ran in this run; the error-severity ones (keys, negative minutes) passed. Warnings
    # may fire on the demo data (it has bookings of a deleted event type on purpose).
    for key in ALL_KEYS:
        for check in latest[key]["assetChecksOrError"]["checks"]:
            execution = check["executionForLatestMaterialization"]
            label = f"{'/'.join(key)}:{check['name']}"
            assert execution and execution["runId"] == run_id, label
            evaluation = execution["evaluation"]
            assert evaluation is not None, label
            if evaluation["severity"] == "ERROR":
                assert execution["status"] == "SUCCEEDED" and evaluation["success"], (label, evaluation)
