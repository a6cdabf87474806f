"""The source assets `raw/<resource>`, generated from the resource specs as one multi-asset.

One step fetches every selected resource at once (one shared client, so one shared rate-limit budget),
spills the pages to disk where DuckDB types them into Parquet parts (`frames.spill`), and only when
*every* fetch has succeeded hands the tables to the IO manager. A failing API therefore changes no table
at all, and DuckDB's single writer is never contested.

The definitions need only the specs (keys, descriptions, column schema); the client and the spill are
imported by the functions a run calls.
"""

import tempfile
import threading
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from sched_assets.accounts import ACCOUNT_COLUMN
from sched_assets.api.errors import ApiError
from sched_assets.api.specs import ENDPOINTS, EndpointSpec, Keyset
from sched_assets.defs.keys import RAW_SCHEMA, history_key, history_table, raw_key, raw_table
from sched_assets.defs.partitions import run_accounts
from sched_assets.defs.resources import SchedApiResource
from sched_assets.frames.columns import column_types, key_columns
from sched_assets.heap import heap_frozen
from sched_assets.storage import NullKeys, TableWrite, WarehouseResource, WriteMode
from sched_assets.storage.naming import TableName, quote_ident
from sched_assets.storage.write import TableWrites

if TYPE_CHECKING:  # no `from __future__ import annotations`: Dagster reads the asset parameters' types
    from sched_assets.api.client import SchedApiClient, SyncStats
    from sched_assets.frames.spill import Preview, TypingStats

RAW_GROUP = "raw"
HISTORY_GROUP = "history"
# A raw output is one TableWrite, or with many accounts one scoped TableWrite per account of the run.
# (None when the step wrote the tables itself: many accounts, one transaction per account.)
TABLE_WRITES = dg.PythonObjectDagsterType((TableWrite, TableWrites, type(None)), name="TableWrite")
CURSOR_KEY = "cursor_updated_at"
CURSOR_COLUMN = "updated_at"  # paged resources sync incrementally on the API's `updatedAt`


class SourceSyncConfig(dg.Config):
    """Launchpad settings of a sync run."""

    full_refresh: bool = Field(
        default=False,
        description="Re-read every booking instead of only those updated since the last sync. Removes bookings "
        "deleted upstream and picks up bookings whose updatedAt is null.",
    )
    incremental_lag_minutes: float = Field(
        default=60.0,
        description="Incremental syncs re-read bookings updated up to this long before the last cursor, "
        "to catch writes that landed out of order.",
    )


@dataclass(frozen=True)
class SyncPlan:
    """How one resource is read and written in this run, and why."""

    mode: WriteMode
    reason: str
    order: Keyset | None = None  # paged resources: read by position in this order ...
    lower: str | None = None  # ... from this value on (None: everything)
    previous_cursor: str | None = None

    @property
    def requested_after(self) -> str | None:
        return self.lower


@dataclass
class Fetched:
    """One resource, fetched and spilled, waiting to be written."""

    spec: EndpointSpec
    plan: SyncPlan
    paths: list[Path]
    stats: "SyncStats"
    typing_stats: "TypingStats"
    read_started: datetime
    newest_updated_at: datetime | None = None
    without_cursor: int = 0  # rows whose updatedAt is null: only a full read (by createdAt) sees them
    preview: "Preview | None" = None


def _description(spec: EndpointSpec) -> str:
    key = ", ".join(f"`{column}`" for column in key_columns(spec))
    version = f" with header `cal-api-version: {spec.version}`" if spec.version else ""
    paging = (
        "Paged with `take`/`skip`; incremental by `updatedAt` after the first sync (merge on the key), "
        "full refresh replaces the table."
        if spec.paged
        else "Fetched whole on every run (one request) and replaced atomically."
    )
    also = ""
    if spec.fan_out is not None:
        also += (
            f" Then `GET {spec.fan_out.path}` for every record of `raw.{spec.fan_out.parent.name}`, "
            f"records at `{spec.fan_out.selector}`."
        )
    if spec.legacy is not None:
        also += (
            f" A server answering in the {spec.legacy.name} shape (`{spec.legacy.selector}`) is read too, "
            "its fields renamed to the documented ones; `response_shape` in the metadata says which was seen."
        )
    return (
        f"**Grain:** {spec.description}\n\n"
        f"**Source:** `GET {spec.path}`{version}, records at `{spec.selector}`.{also}\n\n"
        f"**Key:** {key}.\n\n{paging}\n\n"
        "Known fields are typed columns in snake_case; unknown fields and values that do not fit their "
        "column are kept in `_extra` (JSON); `_synced_at` is when the row was written."
    )


def _asset_spec(spec: EndpointSpec) -> dg.AssetSpec:
    types = column_types(spec)
    return dg.AssetSpec(
        key=raw_key(spec.name),
        description=_description(spec),
        group_name=RAW_GROUP,
        kinds={"api", "duckdb"},
        owners=["team:data"],
        tags={"source": "cal.com"},
        metadata={
            "write_mode": (WriteMode.MERGE if spec.paged else WriteMode.REPLACE).value,
            "primary_key": list(key_columns(spec)),
            "dagster/table_name": raw_table(spec.name),
            # Known before the first run, so the UI shows the columns of a never-materialized asset.
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, type_) for name, type_ in types.items()]
            ),
            "api_path": spec.path,
        },
    )


def _previous_cursor(context: dg.AssetExecutionContext, key: dg.AssetKey, source: str) -> str | None:
    """The bookings cursor recorded by the last materialization from the same source, if any."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    recorded_source = metadata.get("source")
    cursor = metadata.get(CURSOR_KEY)
    if recorded_source is None or recorded_source.value != source or cursor is None:
        return None
    return str(cursor.value) if cursor.value else None


def plan_sync(
    config: SourceSyncConfig,
    spec: EndpointSpec,
    previous: str | None,
    table_present: Callable[[str], bool],
) -> SyncPlan:
    """How to read `spec` given the cursor recorded by the last sync (`previous`) and the warehouse."""
    if not spec.paged:
        return SyncPlan(WriteMode.REPLACE, "whole resource (no change filters)")
    full = spec.full_order
    if config.full_refresh:
        return SyncPlan(WriteMode.REPLACE, "full refresh requested", full, previous_cursor=previous)
    if previous is None or spec.incremental_order is None:
        return SyncPlan(WriteMode.REPLACE, "first sync from this source: full refresh", full)
    if not table_present(raw_table(spec.name)):
        return SyncPlan(
            WriteMode.REPLACE, "table missing in this database: full refresh", full, previous_cursor=previous
        )
    after = datetime.fromisoformat(previous) - timedelta(minutes=config.incremental_lag_minutes)
    lower = after.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return SyncPlan(
        WriteMode.MERGE,
        f"incremental: updated since {lower}",
        spec.incremental_order,
        lower,
        previous_cursor=previous,
    )


def _fetch(
    client: "SchedApiClient",
    spec: EndpointSpec,
    plan: SyncPlan,
    directory: Path,
    synced_at: datetime,
    cancelled: threading.Event,
) -> Fetched:
    from sched_assets.api.client import SyncStats
    from sched_assets.api.keyset import iter_keyset
    from sched_assets.frames.spill import RecordSpill

    # Pages go to disk as JSON lines as they arrive; DuckDB types them a batch at a time.
    spill = RecordSpill(spec, directory, synced_at, cursor_column=CURSOR_COLUMN if spec.paged else None)
    fetched = Fetched(spec, plan, [], SyncStats(), spill.stats, read_started=datetime.now(UTC))
    try:
        if plan.order is not None:
            # A full read must see every row that exists when it ends, or it may not delete the others.
            full = plan.mode is WriteMode.REPLACE
            pages = iter_keyset(client, spec, plan.order, fetched.stats, plan.lower, check_total=full)
        else:
            pages = client.iter_pages(spec, {}, fetched.stats)
        for page in pages:
            if cancelled.is_set():
                raise RuntimeError("cancelled because another resource failed")
            spill.add(page.records)
        fetched.paths = spill.finish()
    finally:
        spill.close()
    fetched.newest_updated_at = spill.newest_cursor
    fetched.without_cursor = spill.without_cursor
    fetched.preview = spill.preview
    return fetched


def _preview(fetched: Fetched) -> str:
    from sched_assets.analytics.previews import markdown_table

    preview = fetched.preview
    if preview is None:
        return "_No records._"
    return markdown_table(preview.columns, preview.rows)


def fetch_all(
    client: "SchedApiClient",
    plans: dict[str, SyncPlan],
    selected: list[EndpointSpec],
    tmp: Path,
) -> list[Fetched]:
    """Fetch every selected resource concurrently; raise (writing nothing) if any fetch failed."""
    synced_at = datetime.now(UTC)
    cancelled = threading.Event()
    fetched: list[Fetched] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, len(selected)), thread_name_prefix="sched-fetch") as pool:
        futures = {}
        for spec in selected:
            directory = tmp / spec.name
            directory.mkdir()
            futures[spec.name] = pool.submit(
                _fetch, client, spec, plans[spec.name], directory, synced_at, cancelled
            )
        for spec in selected:
            try:
                fetched.append(futures[spec.name].result())
            except BaseException as exc:
                cancelled.set()
                errors.append(exc)
    if errors:
        first = next((e for e in errors if isinstance(e, ApiError)), errors[0])
        if isinstance(first, ApiError):
            raise dg.Failure(
                description=f"{first} No table was changed: every selected resource must be fetched "
                "before any is written."
            ) from None
        raise first
    return fetched


def build_source_assets(endpoints: tuple[EndpointSpec, ...] = ENDPOINTS) -> dg.AssetsDefinition:
    """One multi-asset producing `raw.<name>` for every resource spec."""
    by_key = {raw_key(spec.name): spec for spec in endpoints}

    @dg.multi_asset(
        name="raw_sources",
        outs={
            raw_key(spec.name).to_python_identifier(): dg.AssetOut.from_spec(
                _asset_spec(spec), dagster_type=TABLE_WRITES, is_required=False
            )
            for spec in endpoints
        }
        | {
            history_key(spec.name).to_python_identifier(): dg.AssetOut.from_spec(
                _history_spec(spec), dagster_type=TABLE_WRITES, is_required=False
            )
            for spec in endpoints
            if spec.history
        },
        # Lineage: a history table is made from its raw table (in the same step and transaction).
        internal_asset_deps={
            history_key(spec.name).to_python_identifier(): {raw_key(spec.name)}
            for spec in endpoints
            if spec.history
        },
        can_subset=True,
        description=f"Fetches the selected API resources concurrently and writes them to DuckDB schema "
        f"`{RAW_SCHEMA}`.",
    )
    def raw_sources(
        context: dg.AssetExecutionContext,
        config: SourceSyncConfig,
        sched_api: SchedApiResource,
        warehouse: WarehouseResource,
    ):
        with heap_frozen():  # the step allocates millions of page objects; see sched_assets.heap
            yield from _sync(
                context,
                config,
                sched_api,
                warehouse,
                [by_key[key] for key in by_key if key in context.selected_asset_keys],
                _selected_histories(context.selected_asset_keys, endpoints),
            )

    return raw_sources


def _sync(
    context: dg.AssetExecutionContext,
    config: SourceSyncConfig,
    sched_api: SchedApiResource,
    warehouse: WarehouseResource,
    selected: list[EndpointSpec],
    with_history: set[str],
) -> Iterator[dg.Output]:
    """The step's work: one account (fetch everything, then write), or a run's accounts."""
    accounts = run_accounts(context)
    if accounts is not None:
        from sched_assets.defs.account_sync import sync_accounts

        yield from sync_accounts(context, config, sched_api, warehouse, selected, accounts, with_history)
        return
    if sched_api.is_demo:
        context.log.warning(
            "DEMO MODE: SCHED_API_KEY and SCHED_API_BASE_URL are not set, so this run syncs the built-in "
            f"demo account ({sched_api.demo_bookings} bookings, served in-process) into "
            f"{warehouse.location}. To sync your real account, set SCHED_API_KEY to your Cal.com API key "
            "(and SCHED_API_BASE_URL if you do not use https://api.cal.com/v2), then run again."
        )
    try:
        client_config = sched_api.client_config()
    except ApiError as exc:
        raise dg.Failure(description=str(exc)) from None
    warehouse.get_write_warehouse().check_writable()
    source = sched_api.source
    exists = warehouse.get_warehouse().table_exists
    plans = {
        spec.name: plan_sync(config, spec, _previous_cursor(context, raw_key(spec.name), source), exists)
        for spec in selected
    }

    with (
        tempfile.TemporaryDirectory(prefix="sched_assets_") as tmp,
        sched_api.build_client(client_config, context.log) as client,
    ):
        fetched = fetch_all(client, plans, selected, Path(tmp))
        # Every fetch succeeded: now write, one table at a time (DuckDB has one writer), the file
        # opened once for all of them.
        with warehouse.get_write_warehouse().writing():
            for item in fetched:
                yield _output(item, source, context.log)  # written by the IO manager before we go on
                if item.spec.name in with_history:
                    yield history_output(warehouse, item.spec)


def _history_spec(spec: EndpointSpec) -> dg.AssetSpec:
    types = column_types(spec)
    return dg.AssetSpec(
        key=history_key(spec.name),
        description=(
            f"**Grain:** one row per version of a row of `{raw_table(spec.name)}` the syncs have seen "
            f"(a {spec.name.removesuffix('s')} changes when any stored field changes, `_synced_at` aside).\n\n"
            f"**Source:** `{raw_table(spec.name)}`, written in the same step and transaction.\n\n"
            f"**Key:** {', '.join(f'`{c}`' for c in key_columns(spec))}, `valid_from`.\n\n"
            "`valid_from` is when a sync first saw the version, `valid_to` when a sync saw it change or (in "
            "a full refresh) no longer saw the row; null while current. A change between two syncs is "
            "dated at the later sync. See docs/tables.md."
        ),
        group_name=HISTORY_GROUP,
        kinds={"duckdb"},
        owners=["team:data"],
        metadata={
            "primary_key": [*key_columns(spec), "valid_from"],
            "dagster/table_name": history_table(spec.name),
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    *(dg.TableColumn(name, type_) for name, type_ in types.items()),
                    dg.TableColumn("valid_from", "TIMESTAMPTZ"),
                    dg.TableColumn("valid_to", "TIMESTAMPTZ"),
                ]
            ),
        },
    )


def _selected_histories(selected: AbstractSet[dg.AssetKey], endpoints: tuple[EndpointSpec, ...]) -> set[str]:
    """Resources whose history asset is selected; it is written with its raw table, so both must be."""
    names = {spec.name for spec in endpoints if spec.history and history_key(spec.name) in selected}
    alone = sorted(name for name in names if raw_key(name) not in selected)
    if alone:
        raise dg.Failure(
            description=f"{', '.join(history_key(n).to_user_string() for n in alone)} is written in the "
            f"same transaction as {', '.join(raw_key(n).to_user_string() for n in alone)}: select both "
            "(for example `--select 'raw/bookings history/bookings'`)."
        )
    return names


def history_output(
    warehouse: WarehouseResource, spec: EndpointSpec, accounts: list[str] | None = None
) -> dg.Output:
    """The history asset's output: its table was written with the raw one, so only its metadata."""
    from sched_assets.analytics.build import ScopedRows
    from sched_assets.analytics.previews import PREVIEW_ROWS, markdown_query

    table = TableName.parse(history_table(spec.name))
    rows = ScopedRows(table, ACCOUNT_COLUMN, tuple(accounts)) if accounts else table
    keys = ([ACCOUNT_COLUMN] if accounts else []) + list(key_columns(spec))

    preview_columns = ", ".join(quote_ident(c) for c in (*keys, *spec.preview_columns[1:4]) if c != "id")
    with warehouse.get_connection(read_only=True) as con:
        # The latest changes: versions that closed another (or were closed) most recently first.
        preview = markdown_query(
            con,
            f"SELECT id, {preview_columns}, valid_from, valid_to FROM {rows.sql} "
            f"ORDER BY coalesce(valid_to, valid_from) DESC, id LIMIT {PREVIEW_ROWS}",
        )
        [(versions, current, changed)] = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL), "
            f"count(*) - count(DISTINCT ({', '.join(quote_ident(k) for k in keys)})) "
            f"FROM {rows.sql}"
        ).fetchall()
    columns = warehouse.get_warehouse().columns(str(table))
    schema = dg.TableSchema(columns=[dg.TableColumn(name=name, type=type_) for name, type_ in columns])
    return dg.Output(
        None,
        output_name=history_key(spec.name).to_python_identifier(),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(int(versions)),
            "dagster/column_schema": dg.MetadataValue.table_schema(schema),
            "dagster/table_name": dg.MetadataValue.text(str(table)),
            "current_versions": int(current),
            "superseded_versions": int(changed),
            "preview": dg.MetadataValue.md(f"**Latest changes**\n\n{preview}"),
        },
    )


def _cursor(item: Fetched, incomplete: bool) -> str:
    """The cursor to record: the newest `updatedAt` read, never moving back, and kept after a partial read."""
    previous = item.plan.previous_cursor
    if incomplete:
        return previous or ""
    newest_read = item.newest_updated_at
    if newest_read is not None and newest_read > item.read_started:
        # Rows edited during the read carry later times; a cursor past the read's start could step over
        # a row that was edited mid-read and not seen again. The lag window covers clock skew.
        newest_read = item.read_started
    newest = newest_read.isoformat() if newest_read is not None else None
    if item.plan.mode is WriteMode.MERGE and previous and (newest is None or newest < previous):
        return previous  # nothing newer arrived: keep the old cursor
    return newest or ""


def _output(item: Fetched, source: str, log: Any) -> dg.Output:
    write, metadata = fetched_write(item, source, log)
    return dg.Output(write, output_name=raw_key(item.spec.name).to_python_identifier(), metadata=metadata)


def fetched_write(
    item: Fetched, source: str, log: Any, scope: dict[str, str] | None = None
) -> tuple[TableWrite, dict[str, Any]]:
    """The table write of one fetched resource and the metadata that describes its read."""
    spec = item.spec
    mode = item.plan.mode
    incomplete = not item.stats.complete
    if incomplete:
        # The server repeated a page, or counts more rows than were read: what we hold may miss rows.
        # Upsert it (never delete on partial evidence) and keep the old cursor so nothing is skipped.
        mode = WriteMode.MERGE
        log.warning(
            f"{spec.name}{f' ({scope})' if scope else ''}: this read is incomplete (stopped by: {item.stats.stopped_by}; rows the server "
            f"counts after the read: {item.stats.rows_counted_after}). Its rows are merged; no row is "
            "deleted and the incremental cursor is not advanced."
        )
    stats, typing_stats = item.stats, item.typing_stats
    shapes = ", ".join(sorted(stats.shapes)) or "none"
    who = f"[{scope and next(iter(scope.values()))}] " if scope else ""
    log.info(
        f"{who}{spec.name}: {typing_stats.rows} records in {stats.pages} page(s), response shape: {shapes}"
    )
    metadata: dict[str, Any] = {
        "source": source,
        "sync_plan": item.plan.reason,
        "records_fetched": typing_stats.rows,
        "pages": stats.pages,
        "requests": stats.requests,
        "retries": stats.retries,
        "throttled_429": stats.throttled,
        "rate_limit_waits": stats.rate_limit_waits,
        "fetch_seconds": stats.elapsed_seconds,
        "stopped_by": stats.stopped_by.value if stats.stopped_by else "",
        "response_shape": shapes,
        "values_converted": typing_stats.converted,
        "values_kept_in_extra": typing_stats.kept_in_extra,
        "unknown_fields": ", ".join(sorted(typing_stats.unknown_fields)) or "none",
        "preview": dg.MetadataValue.md(_preview(item)),
        "complete_read": not incomplete,
    }
    if spec.paged:
        metadata[CURSOR_KEY] = _cursor(item, incomplete)
        metadata["requested_after_updated_at"] = item.plan.requested_after or "everything"
        metadata["read_order"] = item.plan.order.field if item.plan.order else "offset"
        metadata["rows_without_updated_at"] = item.without_cursor
        if stats.rows_counted_after is not None:
            metadata["rows_counted_after_read"] = stats.rows_counted_after
    write = TableWrite(
        data=item.paths,
        mode=mode,
        primary_key=key_columns(spec),
        column_types=column_types(spec),
        # A record without a usable key cannot be upserted: storage leaves it out and counts it.
        null_keys=NullKeys.SKIP,
        version_column=CURSOR_COLUMN if spec.paged else None,
        scope=scope or {},
        # One transaction for the rows and their versions: never a raw change without its history.
        history=history_table(spec.name) if spec.history else None,
    )
    return write, metadata
