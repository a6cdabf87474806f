"""`WarehouseIOManager`: stores the source assets' `TableWrite` outputs in the warehouse.

Replaces dagster-duckdb-polars' `DuckDBPolarsIOManager`, which deletes then inserts by column
position outside a transaction, wipes tables on empty frames, has no upsert and cannot load
inputs under duckdb 2.x (see docs/architecture.md, "Why a custom IO manager"). Writes go through
`Warehouse.write`: one transaction, columns by name, merge or atomic replace.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from .errors import InvalidWriteError
from .naming import table_for_key
from .resource import WarehouseResource
from .write import TableWrite, TableWrites, WriteResult


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Writes each asset's `TableWrite` output to the table `<key.path[-2]>.<key.path[-1]>`.

    `raw/bookings` is stored in `raw.bookings`; a one-part key `name` in `main.name` (DuckDB's
    default schema, as for any bare table name). Writes use the warehouse's write limits
    (`write_memory_limit`, `write_threads`). Returning None writes nothing; any other output type is
    refused. Inputs are never loaded through this IO manager: derived assets declare their upstream
    tables as `deps` and read them with SQL through the `warehouse` resource.
    """

    warehouse: WarehouseResource = Field(
        description="The DuckDB warehouse (file, lock timeout, memory limits) the outputs are written to."
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Fail the step early, with a clear message, if the database path is unusable."""
        self.warehouse.get_write_warehouse().check_writable()

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        """Write `obj` to the asset's table in one transaction and report what changed."""
        if obj is None:
            context.log.info("output is None: nothing written")
            return
        key = _asset_key(context)
        table = table_for_key(key.path)
        if isinstance(obj, TableWrites):
            self._write_scoped(context, str(table), obj)
            return
        if context.has_asset_partitions:
            raise InvalidWriteError(
                f"{key.to_user_string()} is partitioned: return TableWrites (one scoped TableWrite per "
                f"partition) for {table}, not {type(obj).__name__}"
            )
        if not isinstance(obj, TableWrite):
            raise InvalidWriteError(
                f"WarehouseIOManager stores TableWrite outputs only; {key.to_user_string()} returned "
                f"{type(obj).__name__} for {table}. Return TableWrite(data, mode, primary_key, ...), or "
                "write the table with SQL through the `warehouse` resource and return a MaterializeResult."
            )
        result = self.warehouse.get_write_warehouse().write(str(table), obj)
        _log_result(context, result, obj)
        context.add_output_metadata(output_metadata(result))

    def _write_scoped(self, context: dg.OutputContext, table: str, obj: TableWrites) -> None:
        """One transaction per scope (account): each account's rows land or stay exactly as they were."""
        results = self.warehouse.get_write_warehouse().write_all(table, obj.writes)
        for result, write in zip(results, obj.writes, strict=True):
            _log_result(context, result, write)
        context.add_output_metadata(scoped_output_metadata(results))

    def load_input(self, context: dg.InputContext) -> Any:
        """Refused: the derived assets read tables with SQL, never as inputs."""
        key = context.asset_key if context.has_asset_key else None
        where = f"the table {table_for_key(key.path)}" if key else "a table"
        raise dg.DagsterInvariantViolationError(
            f"WarehouseIOManager does not load inputs (input {context.name!r} is {where}). Declare the "
            "upstream asset in `deps=[...]` and read it with SQL: "
            "`with warehouse.get_connection(read_only=True) as con: ...`."
        )


def _log_result(context: dg.OutputContext, result: WriteResult, write: TableWrite) -> None:
    scope = "".join(f" [{column}={value}]" for column, value in write.scope.items())
    context.log.info(
        f"{result.mode} {result.table}{scope}: {result.rows_inserted} inserted, {result.rows_updated} "
        f"updated, {result.rows_deleted} deleted, {result.rows_in_table} rows now, "
        f"added columns {result.columns_added or 'none'} ({result.seconds:.2f}s)"
    )
    if result.rows_without_key:
        context.log.warning(
            f"{result.table}{scope}: {result.rows_without_key} row(s) had a null in primary key "
            f"({', '.join(write.primary_key)}) and were not stored."
        )


def scoped_output_metadata(results: list[WriteResult]) -> dict[str, Any]:
    """Metadata of several scoped writes to one table: counts summed over the scopes (accounts)."""
    if len(results) == 1:
        return output_metadata(results[0])
    metadata = output_metadata(results[-1])
    for name in (
        "commit_retries",
        "rows_written",
        "rows_inserted",
        "rows_updated",
        "rows_deleted",
        "rows_without_key",
        "rows_deduplicated",
    ):
        metadata[name] = sum(getattr(result, name) for result in results)
    metadata["dagster/row_count"] = dg.MetadataValue.int(sum(result.rows_in_table for result in results))
    metadata["columns_added"] = dg.MetadataValue.json(sorted({c for r in results for c in r.columns_added}))
    metadata["write_seconds"] = dg.MetadataValue.float(round(sum(result.seconds for result in results), 3))
    histories = [result.history for result in results if result.history is not None]
    if histories:
        metadata["history_versions_added"] = sum(h.versions_added for h in histories)
        metadata["history_versions_closed"] = sum(h.versions_closed for h in histories)
    return metadata


def output_metadata(result: WriteResult) -> dict[str, Any]:
    """Materialization metadata: Dagster's standard table keys plus what the write did."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name=name, type=type_) for name, type_ in result.columns])
    return {
        "dagster/row_count": dg.MetadataValue.int(result.rows_in_table),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
        "dagster/table_name": dg.MetadataValue.text(result.table),
        "rows_written": result.rows_written,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_deleted": result.rows_deleted,
        "rows_without_key": result.rows_without_key,
        "rows_deduplicated": result.rows_deduplicated,
        "columns_added": dg.MetadataValue.json(result.columns_added),
        "write_mode": result.mode.value,
        "write_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "commit_retries": result.commit_retries,
        **(
            {
                "history_versions_added": result.history.versions_added,
                "history_versions_closed": result.history.versions_closed,
            }
            if result.history is not None
            else {}
        ),
    }


def _asset_key(context: dg.OutputContext) -> dg.AssetKey:
    if not context.has_asset_key:
        raise dg.DagsterInvariantViolationError(
            "WarehouseIOManager stores asset outputs only (this output has no asset key)"
        )
    return context.asset_key
