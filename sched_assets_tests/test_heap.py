"""The sync step freezes the heap while it runs and leaves nothing frozen behind; a process that loads
the definitions freezes it at the very end of exit (`sched_assets.heap`)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

import sched_assets.defs.sources as sources
from sched_assets.demo import DemoAccount, DemoApi, serve
from sched_assets.heap import heap_frozen
from sched_assets_tests.sync_helpers import sync

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_heap_frozen_unfreezes_after_an_error() -> None:
    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), heap_frozen():
        assert gc.get_freeze_count() > before
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_sync_fetches_with_the_heap_frozen_and_unfreezes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    fetch_all = sources.fetch_all

    def spy(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return fetch_all(*args, **kwargs)

    monkeypatch.setattr(sources, "fetch_all", spy)
    with dg.instance_for_test() as instance, serve(DemoApi(DemoAccount(bookings=300))) as server:
        assert sync(server.url, tmp_path / "sched.duckdb", instance).success
    # Dagster's and the definitions' objects were out of the collector's way during the fetch.
    assert seen and seen[0] > 10_000
    assert gc.get_freeze_count() == 0


def test_heap_is_frozen_after_later_exit_handlers_and_before_earlier_ones(tmp_path):
    code = textwrap.dedent(
        """
        import atexit, gc

        # Registered first, so it runs last: after the definitions' hook.
        atexit.register(lambda: print("earlier handler sees frozen:", gc.get_freeze_count(), flush=True))
        import sched_assets.definitions

        # Registered after the import, like the warehouse's release: runs before the heap is frozen.
        atexit.register(lambda: print("later handler sees frozen:", gc.get_freeze_count(), flush=True))
        from sched_assets.heap import skip_final_collection
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
