"""Shared by the analytics and check tests: a stand-in for the sync (the `database` fixture is in conftest)."""

from collections.abc import Iterator

import dagster as dg

from sched_assets.defs.analytics import raw_key
from sched_assets.frames.columns import FIELDS


@dg.multi_asset(specs=[dg.AssetSpec(raw_key(name)) for name in FIELDS], can_subset=True)
def raw_stand_in(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
    """Stands in for the sync: the raw tables were written by hand, this only 'materializes' the keys."""
    for key in sorted(context.selected_asset_keys):
        yield dg.MaterializeResult(asset_key=key)
