"""The raw sync of the accounts one run covers (many-accounts mode, `SCHED_ACCOUNTS_FILE`).

Each account is synced as the single-account mode syncs its one account, on its own: its key from
the variable the accounts file names, its own client and rate-limit budget, its own lock on the key
(`accounts.lock`: never two syncs of one key at once, across runs and machines) and its own cursor.
Accounts are fetched in parallel threads (`account_concurrency`).

Then each account's raw tables are written in ONE transaction (its rows of the shared `raw.<table>`,
`account` leading the key): an account is written whole or not at all, whatever fails or is killed
mid-way. The step writes them itself (one transaction cannot span the IO manager's per-table calls)
and hands Dagster outputs without a value, carrying the metadata. When some accounts fail, the others
are still written, each reported as a materialization of its own partition, and the step fails naming
the failed accounts and why: their partitions show as failed, their rows stay exactly as they were.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from sched_assets.accounts import ACCOUNT_COLUMN, Account, AccountsFileError
from sched_assets.api.errors import ApiError
from sched_assets.api.specs import EndpointSpec
from sched_assets.defs.keys import history_key, raw_key, raw_table
from sched_assets.defs.resources import SchedApiResource
from sched_assets.defs.sources import (
    CURSOR_KEY,
    Fetched,
    SourceSyncConfig,
    fetch_all,
    fetched_write,
    history_output,
    plan_sync,
)
from sched_assets.storage import WarehouseResource
from sched_assets.storage.catalog import table_columns
from sched_assets.storage.io_manager import output_metadata, scoped_output_metadata
from sched_assets.storage.naming import TableName, quote_ident
from sched_assets.storage.write import TableWrite, WriteResult

if TYPE_CHECKING:
    from sched_assets.accounts.lock import HeldLock, KeyLocks
    from sched_assets.accounts.registry import AccountRegistry
    from sched_assets.api.client import ClientConfig

ACCOUNT_CURSORS = "account_cursors"  # {account: {"source": ..., "cursor": ...}} in the metadata
_SUMMED = (
    "records_fetched",
    "pages",
    "requests",
    "retries",
    "throttled_429",
    "rate_limit_waits",
    "values_converted",
    "values_kept_in_extra",
    "rows_without_updated_at",
)


@dataclass
class AccountFetched:
    """One account, fetched and spilled, holding its key lock until its tables are written."""

    account: Account
    source: str
    fetched: list[Fetched]
    lock: contextlib.ExitStack
    held: HeldLock


def sync_accounts(
    context: dg.AssetExecutionContext,
    config: SourceSyncConfig,
    sched_api: SchedApiResource,
    warehouse: WarehouseResource,
    selected: list[EndpointSpec],
    names: list[str],
    with_history: AbstractSet[str] = frozenset(),
) -> Iterator[dg.Output]:
    """Fetch the run's accounts in parallel, then write them (see the module docstring)."""
    try:
        registry = sched_api.account_registry()
    except (AccountsFileError, ApiError) as exc:
        raise dg.Failure(description=str(exc)) from None
    warehouse.get_write_warehouse().check_writable()
    fetched: dict[str, AccountFetched] = {}
    failed: dict[str, str] = {}
    ready = _resolve(sched_api, registry, names, failed, context.log)
    paged = [raw_table(spec.name) for spec in selected if spec.paged]
    with_rows = _accounts_with_rows(warehouse, paged, list(ready))
    cursors = _previous_cursors(context.instance, selected, ready, sched_api)
    key_locks = _key_locks(context.instance, sched_api.account_lock_timeout_seconds)
    with (
        key_locks,
        tempfile.TemporaryDirectory(prefix="sched_assets_") as tmp,
        contextlib.ExitStack() as locks,
    ):
        workers = max(1, min(len(names), sched_api.account_concurrency))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sched-account") as pool:
            futures = {
                name: pool.submit(
                    _fetch_account,
                    context,
                    config,
                    sched_api,
                    warehouse,
                    account,
                    selected,
                    with_rows,
                    cursors.get(name, {}),
                    key_locks,
                    Path(tmp),
                )
                for name, account in ready.items()
            }
            for name, future in futures.items():
                try:
                    fetched[name] = future.result()
                    locks.enter_context(fetched[name].lock)
                except Exception as exc:
                    failed[name] = _reason(exc)
                    context.log.error(f"account {name!r} failed, nothing of it was written: {failed[name]}")
        written = _write_accounts(
            context, warehouse, selected, [fetched[n] for n in names if n in fetched], failed
        )
        # Still under the key locks: the materializations (which carry the cursors) are recorded
        # before another run of the same key may plan its read from them.
        if not failed:
            yield from _outputs(selected, [written[name] for name in names])
            for spec in selected:
                if spec.name in with_history:
                    yield history_output(warehouse, spec, names)
            return
        for name in names:  # partial success: each written account is a materialization of its partition
            for spec in selected:
                if name in written:
                    metadata = written[name].metadata(spec)
                    context.log_event(
                        dg.AssetMaterialization(raw_key(spec.name), partition=name, metadata=metadata)
                    )
                    if spec.name in with_history:
                        history = history_output(warehouse, spec, [name])
                        context.log_event(
                            dg.AssetMaterialization(
                                history_key(spec.name), partition=name, metadata=history.metadata
                            )
                        )
    raise dg.Failure(
        description=f"{len(failed)} of {len(names)} account(s) failed and kept their previous rows: "
        + "; ".join(f"{name}: {reason.rstrip('.')}" for name, reason in failed.items())
        + (f". Written: {', '.join(written)}." if written else ".")
    )


@dataclass(frozen=True)
class ReadyAccount:
    """An account of the run whose key was found: ready to be synced."""

    account: Account
    client_config: ClientConfig


def _resolve(
    sched_api: SchedApiResource,
    registry: AccountRegistry,
    names: list[str],
    failed: dict[str, str],
    log: Any,
) -> dict[str, ReadyAccount]:
    """Each account's entry and key, before any request; problems go to `failed`, by account.

    Two accounts of one run with the same key would wait on each other's key lock: the later ones fail.
    """
    from sched_assets.accounts.lock import lock_id

    ready: dict[str, ReadyAccount] = {}
    by_key: dict[int, str] = {}
    for name in names:
        try:
            account = registry.get(name)
            client_config = sched_api.account_client_config(account)
        except (AccountsFileError, ApiError) as exc:
            failed[name] = _reason(exc)
            log.error(f"account {name!r} failed, nothing of it was written: {failed[name]}")
            continue
        first = by_key.setdefault(lock_id(client_config.api_key), name)
        if first != name:
            failed[name] = (
                f"its key (from {account.api_key_env}) is the key of account {first!r} too: one key is "
                "one scheduling account, so give each entry of the accounts file its own key"
            )
            log.error(f"account {name!r} failed, nothing of it was written: {failed[name]}")
            continue
        ready[name] = ReadyAccount(account, client_config)
    return ready


def _key_locks(instance: dg.DagsterInstance, timeout: float) -> KeyLocks:
    # Resolved once, before the account threads: an ephemeral instance creates its storage directory
    # lazily, and two threads asking at once each created one (the loser's was deleted under it).
    from sched_assets.accounts.lock import KeyLocks, instance_postgres_url

    return KeyLocks(
        postgres_url=instance_postgres_url(instance),
        lock_dir=Path(instance.storage_directory()) / "sched_key_locks",
        timeout=timeout,
    )


def _fetch_account(
    context: dg.AssetExecutionContext,
    config: SourceSyncConfig,
    sched_api: SchedApiResource,
    warehouse: WarehouseResource,
    ready: ReadyAccount,
    selected: list[EndpointSpec],
    with_rows: dict[str, set[str]],
    cursors: dict[str, str],
    key_locks: KeyLocks,
    tmp: Path,
) -> AccountFetched:
    account, client_config, name = ready.account, ready.client_config, ready.account.name
    source = sched_api.account_source(account)
    lock = contextlib.ExitStack()
    try:
        held = lock.enter_context(key_locks.hold(client_config.api_key, name))
        if held.waited > 0:
            context.log.info(f"account {name!r}: waited {held.waited:.1f} s for another run syncing its key")
            # That run may have written the account's rows and cursors meanwhile: ask again, under the lock.
            with_rows = _accounts_with_rows(warehouse, list(with_rows), [name])
            cursors = {
                spec.name: cursor
                for spec in selected
                if (cursor := _previous_cursor(context.instance, raw_key(spec.name), name, source))
            }
        plans = {
            spec.name: plan_sync(
                config, spec, cursors.get(spec.name), lambda table: name in with_rows.get(table, ())
            )
            for spec in selected
        }
        directory = tmp / name
        directory.mkdir()
        with sched_api.build_client(client_config, context.log) as client:
            fetched = fetch_all(client, plans, selected, directory)
        return AccountFetched(account, source, fetched, lock, held)
    except BaseException:
        lock.close()
        raise


def _reason(exc: BaseException) -> str:
    if isinstance(exc, dg.Failure):
        return exc.description or type(exc).__name__
    if isinstance(exc, ApiError | AccountsFileError | TimeoutError | RuntimeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _previous_cursors(
    instance: dg.DagsterInstance,
    selected: list[EndpointSpec],
    ready: dict[str, ReadyAccount],
    sched_api: SchedApiResource,
) -> dict[str, dict[str, str]]:
    """Per account, per resource: the cursor its last materialization recorded (from the same source).

    Two event-log queries per table for the whole run instead of one per account and table. Read before
    the key locks: a run that writes an account in between leaves us an older cursor (a larger read,
    the same rows), or, if we had to wait for it, the account asks again under its lock.
    """
    from dagster._core.events import DagsterEventType

    found: dict[str, dict[str, str]] = {name: {} for name in ready}
    if not ready:
        return found
    for spec in selected:
        key = raw_key(spec.name)
        latest = instance.event_log_storage.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION, partitions=set(ready)
        )
        if not latest:
            continue
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=list(latest.values())), limit=len(latest)
        ).records
        for record in records:
            name = record.partition_key
            if name in ready and record.asset_materialization is not None:
                source = sched_api.account_source(ready[name].account)
                if cursor := _cursor_of(record.asset_materialization, name, source):
                    found[name][spec.name] = cursor
    return found


def _previous_cursor(instance: dg.DagsterInstance, key: dg.AssetKey, account: str, source: str) -> str | None:
    """The cursor the account's last materialization of `key` recorded for it, from the same source."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[account]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    return _cursor_of(records[0].asset_materialization, account, source)


def _cursor_of(materialization: dg.AssetMaterialization, account: str, source: str) -> str | None:
    entry = materialization.metadata.get(ACCOUNT_CURSORS)
    mine = (entry.value or {}).get(account) if entry is not None and isinstance(entry.value, dict) else None
    if not isinstance(mine, dict) or mine.get("source") != source:
        return None
    return mine.get("cursor") or None


def _accounts_with_rows(
    warehouse: WarehouseResource, tables: list[str], names: list[str]
) -> dict[str, set[str]]:
    """Per table, which of the run's accounts have rows in it (an incremental read needs them there).

    One connection and one query per table for the whole run, not per account.
    """
    found: dict[str, set[str]] = {table: set() for table in tables}
    if not tables or not any(warehouse.get_warehouse().table_exists(table) for table in tables):
        return found
    with warehouse.get_connection(read_only=True) as con:
        for table in tables:
            name = TableName.parse(table)
            if table_columns(con, name) is None:
                continue
            rows = con.execute(
                f"SELECT DISTINCT {quote_ident(ACCOUNT_COLUMN)} FROM {name.sql} "
                f"WHERE {quote_ident(ACCOUNT_COLUMN)} IN (SELECT unnest(?::VARCHAR[]))",
                [names],
            ).fetchall()
            found[table] = {account for (account,) in rows}
    return found


def _account_write(item: Fetched, account: AccountFetched, log: Any) -> tuple[TableWrite, dict[str, Any]]:
    write, metadata = fetched_write(item, account.source, log, scope={ACCOUNT_COLUMN: account.account.name})
    if item.spec.paged:
        cursor = metadata.pop(CURSOR_KEY)
        metadata[ACCOUNT_CURSORS] = {account.account.name: {"source": account.source, "cursor": cursor}}
    metadata["account"] = account.account.name
    return write, metadata


class _WarningsOnly:
    """Passes warnings and errors on to the run's log and drops info lines (a summary follows)."""

    def __init__(self, log: Any) -> None:
        self._log = log

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self._log.warning(message)

    def error(self, message: str) -> None:
        self._log.error(message)


@dataclass
class AccountWritten:
    """One account's raw tables, committed together: what was read and what each write did."""

    fetched_metadata: dict[str, dict[str, Any]]  # by resource name
    results: dict[str, WriteResult]  # by resource name

    def metadata(self, spec: EndpointSpec) -> dict[str, Any]:
        return {**_combined([self.fetched_metadata[spec.name]]), **output_metadata(self.results[spec.name])}


def _write_accounts(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    selected: list[EndpointSpec],
    accounts: list[AccountFetched],
    failed: dict[str, str],
) -> dict[str, AccountWritten]:
    """Write each fetched account's raw tables in ONE transaction of its own (all or nothing).

    The key lock is checked right before: an account whose lock another run may hold now is not
    written. One account's failed write does not stop the others'.
    """
    plans: list[tuple[AccountFetched, list[tuple[str, TableWrite]], dict[str, dict[str, Any]]]] = []
    quiet = _WarningsOnly(context.log)
    for account in accounts:
        name = account.account.name
        try:
            account.held.check()
        except RuntimeError as exc:
            failed[name] = str(exc)
            context.log.error(failed[name])
            continue
        writes, metadata = [], {}
        for spec in selected:
            [item] = [item for item in account.fetched if item.spec.name == spec.name]
            write, metadata[spec.name] = _account_write(item, account, quiet)
            writes.append((raw_table(spec.name), write))
        plans.append((account, writes, metadata))
    outcomes = warehouse.get_write_warehouse().write_groups([writes for _, writes, _ in plans])
    written: dict[str, AccountWritten] = {}
    for (account, _, metadata), outcome in zip(plans, outcomes, strict=True):
        name = account.account.name
        if isinstance(outcome, Exception):
            failed[name] = f"its write failed and was rolled back: {_reason(outcome)}"
            context.log.error(f"account {name!r}: {failed[name]}")
            continue
        # One line per account: each Dagster log line is a write to the instance's event log (~50 ms).
        context.log.info(
            f"account {name!r} written in one transaction: "
            + "; ".join(
                f"{result.table} {result.mode} +{result.rows_inserted} ~{result.rows_updated} "
                f"-{result.rows_deleted} = {result.rows_in_table}"
                + (f" ({result.rows_without_key} without a key left out)" if result.rows_without_key else "")
                for result in outcome
            )
        )
        results = {spec.name: result for spec, result in zip(selected, outcome, strict=True)}
        written[name] = AccountWritten(metadata, results)
    return written


def _outputs(selected: list[EndpointSpec], accounts: list[AccountWritten]) -> Iterator[dg.Output]:
    """Every account written: one output per table covering the run's accounts (already in the warehouse)."""
    for spec in selected:
        metadata = _combined([account.fetched_metadata[spec.name] for account in accounts])
        metadata.update(scoped_output_metadata([account.results[spec.name] for account in accounts]))
        # None: the IO manager has nothing left to write; the metadata says what the writes did.
        yield dg.Output(None, output_name=raw_key(spec.name).to_python_identifier(), metadata=metadata)


def _combined(metadata: list[dict[str, Any]]) -> dict[str, Any]:
    """One table's metadata over the run's accounts (counts summed; the cursors of every account)."""
    if len(metadata) == 1:
        return {**metadata[0], ACCOUNT_CURSORS: dg.MetadataValue.json(metadata[0].get(ACCOUNT_CURSORS, {}))}
    merged = dict(metadata[0])
    for name in _SUMMED:
        if name in merged:
            merged[name] = sum(meta[name] for meta in metadata)
    merged["fetch_seconds"] = max(meta["fetch_seconds"] for meta in metadata)
    merged["complete_read"] = all(meta["complete_read"] for meta in metadata)
    sources = {meta["source"] for meta in metadata}
    merged["source"] = sources.pop() if len(sources) == 1 else "several (see account_cursors)"
    merged["account"] = ", ".join(meta["account"] for meta in metadata)
    cursors = {name: value for meta in metadata for name, value in meta.get(ACCOUNT_CURSORS, {}).items()}
    merged[ACCOUNT_CURSORS] = dg.MetadataValue.json(cursors)
    return merged
