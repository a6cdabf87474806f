"""Shared by the analytics and check tests: a stand-in for the sync (the `database` fixture is in conftest)."""

from collections.abc import Iterator

import dagster as dg
import duckdb
import polars as pl

from sched_assets.analytics import SELECTS
from sched_assets.analytics.build import build_table
from sched_assets.analytics.specs import TableSpec
from sched_assets.api.specs import ENDPOINTS
from sched_assets.defs.keys import history_key, raw_key
from sched_assets.storage import WarehouseResource


@dg.multi_asset(
    specs=[dg.AssetSpec(raw_key(spec.name)) for spec in ENDPOINTS]
    + [dg.AssetSpec(history_key(spec.name)) for spec in ENDPOINTS if spec.history],
    can_subset=True,
)
def raw_stand_in(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
    """Stands in for the sync: the raw (and history) tables were written by hand, this only
    'materializes' the keys."""
    for key in sorted(context.selected_asset_keys):
        yield dg.MaterializeResult(asset_key=key)


class RefusingIOManager(dg.ConfigurableIOManager):
    """Fails any step that routes a value through an IO manager: the analytics assets must not."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        raise AssertionError(
            f"{context.asset_key.to_user_string()} handed {type(obj).__name__} to an IO manager"
        )

    def load_input(self, context: dg.InputContext) -> object:
        raise AssertionError(f"{context.asset_key.to_user_string()} loaded an input through an IO manager")


def resources(database: str) -> dict[str, object]:
    """The resources the analytics assets and checks run with, over the DuckDB file `database`."""
    return {"io_manager": RefusingIOManager(), "warehouse": WarehouseResource(database=database)}


def build_frame(con: duckdb.DuckDBPyConnection, table: TableSpec) -> pl.DataFrame:
    """Build `analytics.<table>` in place, then read it back whole (fine for tests' small tables)."""
    build_table(con, table, SELECTS[table.name])
    return con.sql(f"SELECT * FROM {table.table_name.sql}").pl()
