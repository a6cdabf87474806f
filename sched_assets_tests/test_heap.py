"""The sync step freezes the heap while it runs and leaves nothing frozen behind (`sched_assets.heap`)."""

from __future__ import annotations

import gc
from pathlib import Path

import dagster as dg
import pytest

import sched_assets.defs.sources as sources
from sched_assets.demo import DemoAccount, DemoApi, serve
from sched_assets.heap import heap_frozen
from sched_assets_tests.sync_helpers import sync


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
