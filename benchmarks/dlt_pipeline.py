"""The comparison: what a careful dlt user writes for this API, run as its own process.

This is the config guide (`../shared/seed/scheduling-api-config-guide.md`) corrected with everything
`../shared/api-notes.md` says about the real service, using dlt 1.31's `rest_api` source as documented:

- base URL `<root>/` (the v2 root) and bearer auth;
- a `single_page` paginator for the five unpaged endpoints (so they cannot loop forever);
- bookings paged with `take`/`skip` and the total read from `pagination.totalItems`;
- the `cal-api-version` headers the API needs for the v2 response shapes;
- calendars keyed on `(credentialId, externalId)` (they have no `id`);
- bookings merged on `id`, every other resource replaced;
- the guide's retry policy through dlt's runtime settings: 3 retries (`RUNTIME__REQUEST_MAX_ATTEMPTS`),
  backoff factor 2 (`RUNTIME__REQUEST_BACKOFF_FACTOR`). dlt retries 429 and 5xx, honours `Retry-After`
  when present (the real API sends none) and otherwise waits `factor * 2**n` seconds.

Usage (the harness `benchmarks/run.py` runs it like this)::

    SCHED_API_KEY=... python benchmarks/dlt_pipeline.py --base-url http://127.0.0.1:PORT/v2 \
        --duckdb /tmp/x/dlt.duckdb --pipelines-dir /tmp/x/pipelines

It prints one JSON line (`{"status": ..., "rows": {...}, "seconds": ...}`) on stdout at the end and
exits 1 when the pipeline fails (the error is printed on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Any

DATASET = "sched"
PIPELINE_NAME = "sched_rest_api"

# The guide: "Max Retries: 3, Backoff Factor: 2". dlt's docs map these to its runtime settings
# (`[runtime] request_max_attempts` / `request_backoff_factor`); environment variables override config.toml.
RETRY_SETTINGS: dict[str, str] = {
    "RUNTIME__REQUEST_MAX_ATTEMPTS": "3",
    "RUNTIME__REQUEST_BACKOFF_FACTOR": "2",
}
# No internet in the benchmark: do not let telemetry try to phone home.
QUIET_SETTINGS: dict[str, str] = {"RUNTIME__DLTHUB_TELEMETRY": "false"}


def rest_api_config(base_url: str, api_key: str) -> dict[str, Any]:
    """The `rest_api_source` configuration (a plain dict, as in dlt's docs)."""
    single_page = {"type": "single_page"}
    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "bearer", "token": api_key},
        },
        "resource_defaults": {
            "primary_key": "id",
            "write_disposition": "replace",
        },
        "resources": [
            {
                "name": "event_types",
                "endpoint": {
                    "path": "event-types",
                    "data_selector": "data.eventTypeGroups.*.eventTypes.*",
                    "paginator": single_page,
                },
            },
            {
                "name": "my_profile",
                "endpoint": {"path": "me", "data_selector": "data", "paginator": single_page},
            },
            {
                "name": "schedules",
                "endpoint": {
                    "path": "schedules",
                    "headers": {"cal-api-version": "2024-06-11"},
                    "data_selector": "data",
                    "paginator": single_page,
                },
            },
            {
                "name": "calendars",
                "primary_key": ["credentialId", "externalId"],
                "endpoint": {
                    "path": "calendars",
                    "data_selector": "data.connectedCalendars.*.calendars.*",
                    "paginator": single_page,
                },
            },
            {
                "name": "bookings",
                "write_disposition": "merge",
                "primary_key": "id",
                "endpoint": {
                    "path": "bookings",
                    "headers": {"cal-api-version": "2024-08-13"},
                    "data_selector": "data",
                    "paginator": {
                        "type": "offset",
                        "limit": 100,
                        "offset_param": "skip",
                        "limit_param": "take",
                        "total_path": "pagination.totalItems",
                    },
                },
            },
            {
                "name": "conferencing",
                "endpoint": {"path": "conferencing", "data_selector": "data", "paginator": single_page},
            },
        ],
    }


def run(base_url: str, api_key: str, duckdb_path: str, pipelines_dir: str) -> dict[str, Any]:
    """Extract, normalize and load every resource into `duckdb_path` (dataset `sched`)."""
    for name, value in {**RETRY_SETTINGS, **QUIET_SETTINGS}.items():
        os.environ.setdefault(name, value)

    import dlt  # imported here so the settings above are in place before dlt reads its configuration
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(rest_api_config(base_url, api_key))  # type: ignore[arg-type]
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(duckdb_path),
        dataset_name=DATASET,
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run(source)
    rows = dict(pipeline.last_trace.last_normalize_info.row_counts) if pipeline.last_trace else {}
    return {"loads": len(info.loads_ids), "rows": rows}


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception (dlt wraps step failures in PipelineStepFailed)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="API root incl. version, e.g. http://host/v2")
    parser.add_argument("--duckdb", required=True, help="DuckDB file to write (dataset schema `sched`)")
    parser.add_argument("--pipelines-dir", required=True, help="dlt's working directory (a temp dir)")
    parser.add_argument(
        "--api-key", default=os.environ.get("SCHED_API_KEY", ""), help="bearer key (default: $SCHED_API_KEY)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        result = run(args.base_url, args.api_key, args.duckdb, args.pipelines_dir)
    except Exception as exc:
        traceback.print_exc()
        cause = root_cause(exc)
        summary = {
            "status": "failed",
            "error": f"{type(cause).__name__}: {cause}"[:1000],
            "wrapped_in": type(exc).__name__,
            "seconds": round(time.perf_counter() - started, 3),
        }
        print(json.dumps(summary), flush=True)
        return 1
    print(
        json.dumps({"status": "ok", **result, "seconds": round(time.perf_counter() - started, 3)}), flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
