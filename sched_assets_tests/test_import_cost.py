"""Loading the code location stays light: no DuckDB, Polars, PyArrow or demo code until a run needs them.

Every run process, code-server load and test subprocess imports `sched_assets.definitions` and calls
`defs()`, so what they import is paid again and again. Each check runs in a fresh interpreter (this
test process has long since imported everything). No timings here: `benchmarks/import_time.py`
measures them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sched_assets.api.specs import ENDPOINTS
from sched_assets.frames.columns import column_types

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("polars", "duckdb", "pyarrow", "sched_assets.demo")


def run_fresh(code: str, tmp_path: Path) -> dict:
    """Run `code` in a fresh interpreter (demo mode, database under `tmp_path`); return the JSON it prints."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCHED_API_KEY", "SCHED_API_BASE_URL")}
    env["SCHED_DUCKDB_PATH"] = str(tmp_path / "warehouse.duckdb")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_definitions_load_no_heavy_modules_and_keep_the_column_schema(tmp_path):
    out = run_fresh(
        f"""
        import json, sys
        import sched_assets.definitions as d

        definitions = d.defs()
        heavy = {HEAVY!r}
        loaded = sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in heavy))
        graph = definitions.resolve_asset_graph()
        schemas = {{}}
        for key in graph.get_all_asset_keys():
            if key.path[0] == "raw":
                schema = graph.get(key).metadata["dagster/column_schema"]
                schemas[key.path[-1]] = [[c.name, c.type] for c in schema.columns]

        from dagster_duckdb import DuckDBResource
        from sched_assets.storage import WarehouseResource

        print(json.dumps({{
            "loaded": loaded,
            "schemas": schemas,
            "subclass": issubclass(WarehouseResource, DuckDBResource),
            "warehouse": type(definitions.resources["warehouse"]).__name__,
            "dagster_duckdb": "dagster_duckdb" in sys.modules,
        }}))
        """,
        tmp_path,
    )
    assert out["loaded"] == []
    # The asset pages show each raw table's columns before the first run, built from the specs.
    assert out["schemas"] == {
        spec.name: [[name, type_] for name, type_ in column_types(spec).items()] for spec in ENDPOINTS
    }
    # dagster-duckdb is still imported and subclassed; only DuckDB itself waits.
    assert out["subclass"] and out["dagster_duckdb"]
    assert out["warehouse"] == "WarehouseResource"


def test_duckdb_loads_on_first_use(tmp_path):
    """After a light load, the warehouse resource and dagster-duckdb's own code still reach real DuckDB."""
    out = run_fresh(
        """
        import json, sys
        import sched_assets.definitions as d

        warehouse = d.defs().resources["warehouse"]
        before = "duckdb" in sys.modules
        with warehouse.get_connection() as con:
            ours = con.execute("SELECT 42").fetchall()[0][0]

        import duckdb
        import dagster_duckdb.resource
        from dagster_duckdb import DuckDBResource

        with DuckDBResource(database=":memory:").get_connection() as con:
            theirs = con.execute("SELECT 7").fetchall()[0][0]
        print(json.dumps({
            "before": before,
            "ours": ours,
            "theirs": theirs,
            "real": type(duckdb).__name__ == "module" and hasattr(duckdb, "__file__"),
            "same_connect": dagster_duckdb.resource.duckdb.connect is duckdb.connect,
        }))
        """,
        tmp_path,
    )
    assert out == {"before": False, "ours": 42, "theirs": 7, "real": True, "same_connect": True}


def test_a_whole_demo_run_never_loads_polars_or_pyarrow(tmp_path):
    """Records go from the API to DuckDB without Polars: a full run (sync, derived tables, checks) in a
    fresh interpreter never imports it, nor PyArrow."""
    out = run_fresh(
        """
        import json, sys
        import dagster as dg
        import sched_assets.definitions as d

        job = d.defs().get_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
        loaded = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("polars", "pyarrow")})
        print(json.dumps({"success": result.success, "loaded": loaded, "duckdb": "duckdb" in sys.modules}))
        """,
        tmp_path,
    )
    assert out == {"success": True, "loaded": [], "duckdb": True}
