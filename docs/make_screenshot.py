"""Regenerate docs/asset_lineage.png: the global asset lineage graph of a freshly synced demo account
(or, with --asset, an asset's page, e.g. docs/asset_chart.png with its utilization chart).

    uv run --with playwright python docs/make_screenshot.py [--output docs/asset_lineage.png]
    uv run --with playwright python docs/make_screenshot.py --asset analytics/booking_utilization_daily \
        --output docs/asset_chart.png --height 1100

What it does: starts `dagster dev -w workspace.yaml` on a free port in demo mode (temporary DAGSTER_HOME
and DuckDB file, SCHED_API_KEY / SCHED_API_BASE_URL removed from the environment), materializes every
asset through GraphQL (the UI's "Materialize all"), opens the Lineage page (/asset-groups) in headless
Chromium, waits for the graph to render, saves the PNG, and stops dagster dev and all its processes.

Needs a Chromium binary (Debian: `apt-get install -y chromium`, or pass --chromium PATH); Playwright's
own browser download (`playwright install`) is not needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from sched_assets_tests.processes import free_port, process_group

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCATION, REPOSITORY, ASSET_JOB = "sched_assets", "__repository__", "__ASSET_JOB"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSET_NAMES = [
    "event_types",
    "teams",
    "my_profile",
    "schedules",
    "calendars",
    "bookings",
    "conferencing",
    "booking_attendees",
    "schedule_windows",
    "schedule_overrides",
    "booking_utilization_daily",
    "event_type_stats",
    "booking_changes",
]

ASSETS_QUERY = """
query { assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name jobNames } } } } }
"""
LAUNCH_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


def log(message: str) -> None:
    print(f"[make_screenshot] {message}", flush=True)


def gql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def wait_until_loaded(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited early:\n{log_path.read_text(errors='replace')[-5000:]}")
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            entries = gql(url, query)["workspaceOrError"].get("locationEntries", [])
            if any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries):
                return
        time.sleep(0.5)
    raise RuntimeError(f"code location not loaded after {timeout:.0f}s:\n{log_path.read_text()[-5000:]}")


def materialize_all(url: str, timeout: float) -> None:
    nodes = gql(url, ASSETS_QUERY)["assetNodes"]
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "pipelineName": ASSET_JOB,
        "assetSelection": [{"path": n["assetKey"]["path"]} for n in nodes],
        "assetCheckSelection": [
            {"name": c["name"], "assetKey": {"path": n["assetKey"]["path"]}}
            for n in nodes
            for c in n["assetChecksOrError"].get("checks", [])
            if ASSET_JOB in c["jobNames"]
        ],
    }
    params = {
        "mode": "default",
        "executionMetadata": {"tags": []},
        "runConfigData": "{}",
        "selector": selector,
    }
    launched = gql(url, LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launch failed: {launched}")
    run_id = launched["run"]["runId"]
    log(f"materializing all assets: run {run_id}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = gql(
            url, "query($id: ID!){ runOrError(runId: $id){ ... on Run { status } } }", {"id": run_id}
        )["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            if status != "SUCCESS":
                raise RuntimeError(f"run {run_id} ended {status}")
            return
        time.sleep(1)
    raise RuntimeError(f"run {run_id} not finished after {timeout:.0f}s")


# Browser settings the UI keeps in localStorage: no "join the community" dialog, raw -> analytics from
# left to right, and nodes that show checks, status and kinds (not partitions/automation, unused here).
UI_SETTINGS = {
    "communityNux": True,
    "asset-graph-direction": "horizontal",
    "asset-node-facets": ["unsynced-tag", "checks", "status", "kind-tag"],
}
MINIMAL_SCALE = 0.6  # below this zoom the UI draws name-only nodes (ui-core AssetGraphExplorer.tsx)
ZOOM_STEP = 0.05  # one click of the graph's zoom-out button


def screenshot(
    base_url: str,
    output: Path,
    chromium: str,
    width: int,
    height: int,
    scale: float,
    asset: str | None = None,
) -> None:
    settings = "".join(
        f"localStorage.setItem({json.dumps(k)}, {json.dumps(json.dumps(v))});" for k, v in UI_SETTINGS.items()
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
            page.add_init_script(settings)
            if asset is not None:
                try:
                    render_asset_page(page, f"{base_url}/assets/{asset}")
                except Exception:
                    debug = Path(tempfile.gettempdir()) / "asset_page.failed.png"
                    page.screenshot(path=str(debug), full_page=True)
                    log(f"the chart did not show as expected; what the page showed: {debug}")
                    raise
                output.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(output))
                return
            page.goto(f"{base_url}/asset-groups", wait_until="networkidle", timeout=120_000)
            try:
                render_graph(page)
            except Exception:
                debug = Path(tempfile.gettempdir()) / "asset_lineage.failed.png"
                page.screenshot(path=str(debug))
                log(f"graph did not render as expected; what the page showed: {debug}")
                raise
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output))
        finally:
            browser.close()


def render_asset_page(page: Page, url: str) -> None:
    """An asset's page with its latest materialization's chart (markdown metadata holding a PNG) in view."""
    page.goto(url, wait_until="networkidle", timeout=120_000)
    page.get_by_text("Hide navigation", exact=True).click()
    entry = page.locator("tr", has=page.get_by_text("utilization_chart", exact=True)).first
    entry.wait_for(state="attached", timeout=60_000)
    entry.scroll_into_view_if_needed()
    # A large markdown value sits behind "[Show Markdown]", which opens it rendered in a dialog.
    entry.get_by_text("[Show Markdown]").click()
    chart = page.locator('img[src^="data:image/png"]').first
    chart.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(1500)


def render_graph(page: Page) -> None:
    """Every group expanded, every asset drawn with its live status, the whole graph in view."""
    for group in ("raw", "history", "analytics"):
        page.get_by_text(group, exact=True).first.wait_for(state="visible", timeout=60_000)
    # More room for the graph: hide the asset tree (button left of the search box) and the navigation.
    page.locator('button:has([aria-label="panel_show_right"])').filter(
        has_not_text="Hide navigation"
    ).first.click()
    page.get_by_text("Hide navigation", exact=True).click()
    page.keyboard.press("Alt+e")  # "Expand all groups" (also in the graph's settings menu)
    for name in ASSET_NAMES:
        # The graph draws only the nodes inside the viewport: the default size holds all 14 at zoom 1.
        page.get_by_text(name, exact=True).first.wait_for(state="visible", timeout=60_000)
    if page.get_by_text("Materialized", exact=True).count() == 0:
        log("no asset shows as materialized yet")
    page.wait_for_timeout(1500)  # layout animation

    # Zoom out until the whole graph fits, but not so far that the UI switches to name-only nodes.
    graph = page.locator("svg").filter(has=page.locator("foreignObject")).first
    viewport = page.locator('[data-svg-viewport="1"]').first.bounding_box()
    graph_width, graph_height = float(graph.get_attribute("width")), float(graph.get_attribute("height"))
    fit = min(viewport["width"] / graph_width, viewport["height"] / graph_height) * 0.98
    zoom = graph.bounding_box()["width"] / graph_width
    clicks = max(0, math.ceil((zoom - fit) / ZOOM_STEP - 1e-6))
    while clicks and zoom - clicks * ZOOM_STEP < MINIMAL_SCALE + 1e-3:
        clicks -= 1
    if zoom - clicks * ZOOM_STEP > fit:
        log(f"graph does not fit at a readable zoom; use a larger --height (now {viewport['height']:.0f})")
    log(f"graph {graph_width:.0f}x{graph_height:.0f} px, zoom {zoom - clicks * ZOOM_STEP:.2f}")
    zoom_out = page.locator('button:has([aria-label="zoom_out"])').first
    for _ in range(clicks):
        zoom_out.click()
        page.wait_for_timeout(150)
    page.wait_for_timeout(1500)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "asset_lineage.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--width", type=int, default=1400, help="browser viewport width (CSS px)")
    parser.add_argument("--height", type=int, default=1900, help="browser viewport height (CSS px)")
    parser.add_argument("--scale", type=float, default=1.0, help="device scale factor (2 = retina PNG)")
    parser.add_argument("--no-materialize", action="store_true", help="screenshot the never-run graph")
    parser.add_argument(
        "--asset", help="an asset page instead of the lineage, e.g. analytics/booking_utilization_daily"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sched_screenshot_") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHED_") and k != "DAGSTER_HOME"}
        env.update(DAGSTER_HOME=str(home), SCHED_DUCKDB_PATH=str(Path(tmp) / "demo.duckdb"))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "dagster_dev.log"
        log(f"starting dagster dev on {base_url} (demo mode, DAGSTER_HOME={home})")
        command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml"]
        command += ["-h", "127.0.0.1", "-p", str(port)]
        # On exit: Ctrl-C dagster dev (SIGTERM; it stops its webserver, daemon and code server), then
        # SIGKILL whatever is left of its process group. Ignored SIGINT/SIGTERM (background shells)
        # would survive exec and make dagster dev ignore Ctrl-C: `default_signals` restores them.
        with (
            log_path.open("wb") as out,
            process_group(
                command,
                grace=20,
                terminate="leader",
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                default_signals=True,
            ) as process,
        ):
            wait_until_loaded(f"{base_url}/graphql", process, log_path, timeout=150)
            if not args.no_materialize:
                materialize_all(f"{base_url}/graphql", timeout=300)
            log(f"rendering {args.asset or 'the lineage'} at {args.width}x{args.height}")
            screenshot(base_url, args.output, args.chromium, args.width, args.height, args.scale, args.asset)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
