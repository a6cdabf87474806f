"""Case (b) of `benchmarks/accounts.py`: a dlt `rest_api` loop over many accounts, as a script would do it.

One Python process reads the accounts file (`SCHED_ACCOUNTS_FILE` format: name, api_key_env, base_url)
and runs one dlt pipeline per account, **one after another**, into one DuckDB file: the source is
`benchmarks/dlt_pipeline.py`'s `rest_api_config` (the same resources, paginators, retry settings),
given the account's own key and base URL. Each account gets its own pipeline name (its own state and
schema) and its own dataset `acct_<name>` (the five unpaged resources are `replace`: one shared
dataset would keep only the last account's rows of them).

Sequential because one DuckDB file takes one writing process, and dlt documents no safe way to load
several pipelines into one DuckDB file from threads at once; a loop is what a simple script does.

    SCHED_API_KEY__DEMO_001=... python -m benchmarks.accounts_dlt --accounts-file accounts.yaml \
        --duckdb /tmp/x/dlt.duckdb --pipelines-dir /tmp/x/pipelines

Prints one JSON line at the end: `{"status", "accounts_ok", "failed": {name: error}, "seconds",
"account_seconds": {name: s}}`; exits 1 when any account failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.dlt_pipeline import QUIET_SETTINGS, RETRY_SETTINGS, rest_api_config, root_cause

DATASET_PREFIX = "acct_"


def dataset_name(account: str) -> str:
    """`demo-001` -> `acct_demo_001` (a DuckDB schema name)."""
    return DATASET_PREFIX + account.replace("-", "_")


def load_accounts(path: Path) -> list[dict[str, str]]:
    return list(yaml.safe_load(path.read_text())["accounts"])


def run_all(accounts: list[dict[str, str]], duckdb_path: str, pipelines_dir: str) -> dict[str, Any]:
    for name, value in {**RETRY_SETTINGS, **QUIET_SETTINGS}.items():
        os.environ.setdefault(name, value)
    import dlt  # after the settings, as in dlt_pipeline.py
    from dlt.sources.rest_api import rest_api_source

    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for entry in accounts:
        name = entry["name"]
        started = time.perf_counter()
        try:
            config = rest_api_config(entry["base_url"], os.environ[entry["api_key_env"]])
            pipeline = dlt.pipeline(
                pipeline_name=f"sched_{dataset_name(name)}",
                destination=dlt.destinations.duckdb(duckdb_path),
                dataset_name=dataset_name(name),
                pipelines_dir=pipelines_dir,
            )
            pipeline.run(rest_api_source(config))  # type: ignore[arg-type]
        except Exception as exc:
            cause = root_cause(exc)
            failed[name] = f"{type(cause).__name__}: {cause}"[:300]
        seconds[name] = round(time.perf_counter() - started, 3)
    return {"accounts_ok": len(accounts) - len(failed), "failed": failed, "account_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts-file", type=Path, required=True)
    parser.add_argument("--duckdb", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run_all(load_accounts(args.accounts_file), args.duckdb, args.pipelines_dir)
    status = "failed" if result["failed"] else "ok"
    print(json.dumps({"status": status, **result, "seconds": round(time.perf_counter() - started, 3)}))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
