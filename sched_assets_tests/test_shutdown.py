"""A process that loads the definitions freezes its heap at the very end of exit, after the exit
handlers that release resources (registered later), before the ones registered earlier."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_heap_is_frozen_after_later_exit_handlers_and_before_earlier_ones(tmp_path):
    code = textwrap.dedent(
        """
        import atexit, gc

        # Registered first, so it runs last: after the definitions' hook.
        atexit.register(lambda: print("earlier handler sees frozen:", gc.get_freeze_count(), flush=True))
        import sched_assets.definitions

        # Registered after the import, like the warehouse's release: runs before the heap is frozen.
        atexit.register(lambda: print("later handler sees frozen:", gc.get_freeze_count(), flush=True))
        from sched_assets.shutdown import skip_final_collection
        skip_final_collection()  # already registered by the import: registers nothing more
        """
    )
    env = {**os.environ, "SCHED_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    later, earlier = result.stdout.strip().splitlines()
    assert later == "later handler sees frozen: 0"
    frozen = int(earlier.rsplit(" ", 1)[1])
    assert frozen > 10_000  # everything Dagster and the definitions built
