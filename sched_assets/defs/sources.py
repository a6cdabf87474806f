"""The six source assets, generated from the endpoint spec table as one multi-asset.

One step fetches every selected resource at once (one shared client, so one shared rate-limit budget),
spills typed pages to Parquet, and only when *every* fetch has succeeded hands the tables to the IO
manager. A failing API therefore changes no table at all, and DuckDB's single writer is never contested.
"""

import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from sched_assets.api.client import SchedApiClient, SyncStats
from sched_assets.api.errors import ApiError
from sched_assets.api.specs import ENDPOINTS, EndpointSpec
from sched_assets.defs.resources import SchedApiResource
from sched_assets.frames.build import FrameStats, build_frame, drop_rows_without_key, empty_frame
from sched_assets.frames.columns import column_types, snake_case
from sched_assets.frames.spill import PageSpill
from sched_assets.storage import TableWrite, WarehouseResource

RAW_GROUP = "raw"
RAW_SCHEMA = "raw"
CURSOR_KEY = "cursor_updated_at"
PREVIEW_ROWS = 5
TYPING_BATCH = 1_000
# Columns worth a glance in the UI's preview, per resource (the rest are in the table).
PREVIEW_COLUMNS: dict[str, list[str]] = {
    "event_types": ["id", "title", "slug", "length", "schedule_id", "team_id"],
    "my_profile": ["id", "username", "time_zone", "default_schedule_id", "time_format"],
    "schedules": ["id", "name", "time_zone", "is_default"],
    "calendars": ["credential_id", "external_id", "integration", "is_selected"],
    "bookings": ["id", "status", "start", "duration", "event_type_id", "updated_at"],
    "conferencing": ["id", "type", "app_id", "invalid"],
}


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


def raw_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([RAW_SCHEMA, name])


def _description(spec: EndpointSpec) -> str:
    key = ", ".join(f"`{snake_case(k)}`" for k in spec.primary_key)
    version = f" with header `cal-api-version: {spec.version}`" if spec.version else ""
    paging = (
        "Paged with `take`/`skip`; incremental by `updatedAt` after the first sync (merge on the key), "
        "full refresh replaces the table."
        if spec.paged
        else "Fetched whole on every run (one request) and replaced atomically."
    )
    return (
        f"**Grain:** {spec.description}\n\n"
        f"**Source:** `GET {spec.path}`{version}, records at `{spec.selector}`.\n\n"
        f"**Key:** {key}.\n\n{paging}\n\n"
        "Known fields are typed columns in snake_case; unknown fields and values that do not fit their "
        "column are kept in `_extra` (JSON); `_synced_at` is when the row was written."
    )


def _asset_spec(spec: EndpointSpec) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=raw_key(spec.name),
        description=_description(spec),
        group_name=RAW_GROUP,
        kinds={"api", "duckdb"},
        owners=["team:data"],
        tags={"source": "cal.com"},
        metadata={
            "write_mode": "merge" if spec.paged else "replace",
            "primary_key": [snake_case(k) for k in spec.primary_key],
            "column_types": column_types(spec.name),
            "dagster/table_name": f"{RAW_SCHEMA}.{spec.name}",
            # Known before the first run, so the UI shows the columns of a never-materialized asset.
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, type_) for name, type_ in column_types(spec.name).items()]
            ),
            "api_path": spec.path,
        },
    )


@dataclass
class Fetched:
    """One resource, fetched and spilled, waiting to be written."""

    spec: EndpointSpec
    paths: list[Path]
    stats: SyncStats
    frame_stats: FrameStats
    mode: str
    plan: str
    cursor: str | None = None
    requested_after: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


def _fetch(
    client: SchedApiClient,
    spec: EndpointSpec,
    params: dict[str, str],
    directory: Path,
    synced_at: datetime,
    cancelled: threading.Event,
) -> tuple[list[Path], SyncStats, FrameStats]:
    stats = SyncStats()
    frame_stats = FrameStats()
    key = tuple(snake_case(k) for k in spec.primary_key)
    spill = PageSpill(directory, key)
    # Records of a few pages are typed together: per-frame overhead dominates at 100 records a page.
    # Memory stays bounded by TYPING_BATCH records, whatever the account size.
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        frame = build_frame(spec.name, batch, synced_at, frame_stats)
        spill.add(drop_rows_without_key(frame, key, frame_stats))
        batch.clear()

    for page in client.iter_pages(spec, params, stats):
        if cancelled.is_set():
            raise RuntimeError("cancelled because another resource failed")
        batch.extend(page.records)
        if len(batch) >= TYPING_BATCH:
            flush()
    if batch:
        flush()
    return spill.finish(), stats, frame_stats


def _max_updated_at(paths: list[Path]) -> datetime | None:
    if not paths:
        return None
    value = pl.scan_parquet(paths).select(pl.col("updated_at").max()).collect().item()
    return value


def _preview(spec: EndpointSpec, paths: list[Path]) -> str:
    if not paths:
        return "_No records._"
    frame = pl.scan_parquet(paths).select(PREVIEW_COLUMNS[spec.name]).head(PREVIEW_ROWS).collect()
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width + "\n"
    rows = "".join(
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |\n" for row in frame.rows()
    )
    return header + rows


def build_source_assets(endpoints: tuple[EndpointSpec, ...] = ENDPOINTS) -> dg.AssetsDefinition:
    """One multi-asset producing `raw.<name>` for every endpoint in the spec table."""
    by_key = {raw_key(spec.name): spec for spec in endpoints}

    @dg.multi_asset(
        name="raw_sources",
        outs={
            raw_key(spec.name).to_python_identifier(): dg.AssetOut.from_spec(
                _asset_spec(spec), dagster_type=TableWrite, is_required=False
            )
            for spec in endpoints
        },
        can_subset=True,
        description="Fetches the selected API resources concurrently and writes them to DuckDB schema `raw`.",
    )
    def raw_sources(
        context: dg.AssetExecutionContext,
        config: SourceSyncConfig,
        sched_api: SchedApiResource,
        warehouse: WarehouseResource,
    ):
        selected = [by_key[key] for key in by_key if key in context.selected_asset_keys]
        if sched_api.is_demo:
            context.log.warning(
                "DEMO MODE: SCHED_API_KEY and SCHED_API_BASE_URL are not set, so this run syncs the built-in "
                f"demo account ({sched_api.demo_bookings} bookings, served in-process) into "
                f"{warehouse.database}. To sync your real account, set SCHED_API_KEY to your Cal.com API key "
                "(and SCHED_API_BASE_URL if you do not use https://api.cal.com/v2), then run again."
            )
        try:
            sched_api.client_config()
        except ApiError as exc:
            raise dg.Failure(description=str(exc)) from None
        warehouse.get_warehouse().check_writable()

        plans: dict[str, tuple[dict[str, str], str, str, str | None]] = {}
        for spec in selected:
            plans[spec.name] = _plan(context, config, sched_api, warehouse, spec)

        synced_at = datetime.now(UTC)
        cancelled = threading.Event()
        with (
            tempfile.TemporaryDirectory(prefix="sched_assets_") as tmp,
            sched_api.build_client(context.log) as client,
        ):
            fetched: list[Fetched] = []
            with ThreadPoolExecutor(
                max_workers=max(1, len(selected)), thread_name_prefix="sched-fetch"
            ) as pool:
                futures = {}
                for spec in selected:
                    directory = Path(tmp) / spec.name
                    directory.mkdir()
                    params = plans[spec.name][0]
                    futures[spec.name] = pool.submit(
                        _fetch, client, spec, params, directory, synced_at, cancelled
                    )
                errors: list[BaseException] = []
                for spec in selected:
                    try:
                        paths, stats, frame_stats = futures[spec.name].result()
                    except BaseException as exc:
                        cancelled.set()
                        errors.append(exc)
                        continue
                    params, mode, plan, previous = plans[spec.name]
                    fetched.append(
                        Fetched(
                            spec,
                            paths,
                            stats,
                            frame_stats,
                            mode,
                            plan,
                            previous,
                            params.get("afterUpdatedAt"),
                        )
                    )
            if errors:
                first = next((e for e in errors if isinstance(e, ApiError)), errors[0])
                if isinstance(first, ApiError):
                    raise dg.Failure(
                        description=f"{first} No table was changed: every selected resource must be fetched "
                        "before any is written."
                    ) from None
                raise first

            # Every fetch succeeded: now write, one table at a time (DuckDB has one writer).
            for item in fetched:
                if item.frame_stats.dropped_without_key:
                    context.log.warning(
                        f"{item.spec.name}: {item.frame_stats.dropped_without_key} record(s) had no usable "
                        f"primary key ({', '.join(item.spec.primary_key)}) and were not stored."
                    )
                yield _output(item, sched_api.source, context.log)

    return raw_sources


def _plan(
    context: dg.AssetExecutionContext,
    config: SourceSyncConfig,
    sched_api: SchedApiResource,
    warehouse: WarehouseResource,
    spec: EndpointSpec,
) -> tuple[dict[str, str], str, str, str | None]:
    """(query params, write mode, why, previous cursor) for one resource."""
    if not spec.paged:
        return {}, "replace", "whole resource (no change filters)", None
    key = raw_key(spec.name)
    previous = _previous_cursor(context, key, sched_api.source)
    if config.full_refresh:
        return {}, "replace", "full refresh requested", previous
    if previous is None:
        return {}, "replace", "first sync from this source: full refresh", None
    if not warehouse.get_warehouse().table_exists(f"{RAW_SCHEMA}.{spec.name}"):
        return {}, "replace", "table missing in this database: full refresh", previous
    after = datetime.fromisoformat(previous) - timedelta(minutes=config.incremental_lag_minutes)
    params = {
        "afterUpdatedAt": after.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "sortUpdatedAt": "asc",
    }
    return params, "merge", f"incremental: updated since {params['afterUpdatedAt']}", previous


def _output(item: Fetched, source: str, log: Any) -> dg.Output:
    spec = item.spec
    mode = item.mode
    incomplete = item.stats.stopped_by.startswith("loop guard")
    if incomplete:
        # The server repeated a page instead of paging on: what we hold is a prefix, not the account.
        # Upsert it (never delete on partial evidence) and keep the old cursor so nothing is skipped.
        mode = "merge"
        log.warning(
            f"{spec.name}: the server repeated a page (it seems to ignore `skip`), so this read is "
            "incomplete. Its rows are merged; no row is deleted and the incremental cursor is not advanced."
        )
    metadata: dict[str, Any] = {
        "source": source,
        "sync_plan": item.plan,
        "records_fetched": item.frame_stats.rows,
        "pages": item.stats.pages,
        "requests": item.stats.requests,
        "retries": item.stats.retries,
        "throttled_429": item.stats.throttled,
        "rate_limit_waits": item.stats.rate_limit_waits,
        "fetch_seconds": item.stats.elapsed_seconds,
        "stopped_by": item.stats.stopped_by,
        "values_converted": item.frame_stats.converted,
        "values_kept_in_extra": item.frame_stats.kept_in_extra,
        "unknown_fields": ", ".join(sorted(item.frame_stats.unknown_fields)) or "none",
        "records_without_key": item.frame_stats.dropped_without_key,
        "preview": dg.MetadataValue.md(_preview(spec, item.paths)),
        "complete_read": not incomplete,
    }
    if spec.paged:
        newest = _max_updated_at(item.paths)
        cursor = newest.isoformat() if newest is not None else None
        if incomplete:
            cursor = item.cursor
        elif mode == "merge" and item.cursor and (cursor is None or cursor < item.cursor):
            cursor = item.cursor  # nothing newer arrived: keep the old cursor
        metadata[CURSOR_KEY] = cursor or ""
        metadata["requested_after_updated_at"] = item.requested_after or "everything"
    write = TableWrite(
        data=item.paths or empty_frame(spec.name),
        mode=mode,  # type: ignore[arg-type]
        primary_key=tuple(snake_case(k) for k in spec.primary_key),
        column_types=column_types(spec.name),
    )
    return dg.Output(write, output_name=raw_key(spec.name).to_python_identifier(), metadata=metadata)
