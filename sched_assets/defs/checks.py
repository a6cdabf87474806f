"""Asset checks on the raw and analytics tables, run as SQL inside DuckDB.

- Every raw table: primary key unique and not null (blocking: a duplicated key would multiply rows in
  every derived table, so derived assets do not run on it).
- `raw/bookings`: bookings whose event type is missing from `raw.event_types` (warning).
- `history/bookings`: its key (`id`, `valid_from`) unique and not null.
- Every analytics table: primary key unique and not null.
- `analytics/booking_utilization_daily`: minutes never negative (error); days booked over 100% (warning).

Checks open the warehouse read-only and only fetch counts and a few example rows, never whole tables.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import dagster as dg

from sched_assets.accounts import ACCOUNT_COLUMN
from sched_assets.analytics.build import ScopedRows
from sched_assets.analytics.previews import markdown_query
from sched_assets.analytics.specs import BOOKING_UTILIZATION_DAILY, TABLES
from sched_assets.api.specs import ENDPOINTS, EndpointSpec
from sched_assets.defs.keys import analytics_key, history_key, history_table, raw_key, raw_table
from sched_assets.defs.partitions import run_accounts
from sched_assets.frames.columns import key_columns
from sched_assets.storage.catalog import table_columns
from sched_assets.storage.naming import TableName, quote_ident
from sched_assets.storage.resource import WarehouseResource

if TYPE_CHECKING:  # no `from __future__ import annotations`: Dagster reads the check parameters' types
    import duckdb

EXAMPLES = 10
PRIMARY_KEY_CHECK = "primary_key_unique_not_null"


@dataclass(frozen=True)
class KeyedTable:
    """A table and the columns that must identify its rows."""

    table: TableName
    key: tuple[str, ...]
    accounts: tuple[str, ...] | None = None  # many-accounts mode: the run's accounts, whose rows are checked

    @property
    def description(self) -> str:
        return f"Primary key ({', '.join(self.key)}) of {self.table} is unique and never null."

    def for_accounts(self, accounts: Sequence[str] | None) -> "KeyedTable":
        return self if accounts is None else replace(self, accounts=tuple(accounts))

    @property
    def rows(self) -> "TableName | ScopedRows":
        return _rows(self.table, self.accounts)

    @property
    def full_key(self) -> tuple[str, ...]:
        """The key as stored: with many accounts, `account` leads it."""
        return self.key if self.accounts is None else (ACCOUNT_COLUMN, *self.key)


def _rows(table: TableName, accounts: Sequence[str] | None) -> "TableName | ScopedRows":
    """The rows a check looks at: the table, or the run's accounts' rows of it."""
    return table if accounts is None else ScopedRows(table, ACCOUNT_COLUMN, tuple(accounts))


def _raw(name: str) -> TableName:
    return TableName.parse(raw_table(name))


def _missing_table(table: TableName, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=severity,
        description=f"table {table} does not exist; materialize its asset first",
        metadata={"table": str(table)},
    )


def _run(
    warehouse: WarehouseResource,
    tables: Sequence[TableName],
    severity: dg.AssetCheckSeverity,
    evaluate: "Callable[[duckdb.DuckDBPyConnection], dg.AssetCheckResult]",
) -> dg.AssetCheckResult:
    """Open the warehouse read-only, fail cleanly if a table is missing, else evaluate."""
    with warehouse.get_connection(read_only=True) as con:
        for table in tables:
            if table_columns(con, table) is None:
                return _missing_table(table, severity)
        return evaluate(con)


def _primary_key_result(con: "duckdb.DuckDBPyConnection", keyed: KeyedTable) -> dg.AssetCheckResult:
    source, key = keyed.rows.sql, keyed.full_key
    columns = ", ".join(quote_ident(c) for c in key)
    any_null = " OR ".join(f"{quote_ident(c)} IS NULL" for c in key)
    duplicates = (
        f"SELECT {columns}, count(*) AS row_count FROM {source} "
        f"WHERE NOT ({any_null}) GROUP BY {columns} HAVING count(*) > 1"
    )
    [(rows, null_rows)] = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {any_null}) FROM {source}"
    ).fetchall()
    [(duplicate_keys, duplicate_rows)] = con.execute(
        f"SELECT count(*), coalesce(sum(row_count), 0) FROM ({duplicates})"
    ).fetchall()
    metadata: dict[str, object] = {
        "table": str(keyed.table),
        "primary_key": ", ".join(key),
        "rows": rows,
        "null_key_rows": null_rows,
        "duplicate_keys": duplicate_keys,
        "rows_with_duplicate_keys": int(duplicate_rows),
    }
    problems = []
    if duplicate_keys:
        examples = markdown_query(con, f"{duplicates} ORDER BY row_count DESC, {columns} LIMIT {EXAMPLES}")
        metadata["duplicate_examples"] = dg.MetadataValue.md(examples)
        problems.append(f"{duplicate_keys} key(s) appear more than once ({int(duplicate_rows)} rows)")
    if null_rows:
        # Key columns, then a few plain columns that help find the row (JSON is too wide to show).
        plain = [name for name, type_ in table_columns(con, keyed.table) or [] if type_ != "JSON"]
        shown = [*key, *[c for c in plain if c not in key][:4]]
        examples = markdown_query(
            con,
            f"SELECT {', '.join(map(quote_ident, shown))} FROM {source} WHERE {any_null} LIMIT {EXAMPLES}",
        )
        metadata["null_key_examples"] = dg.MetadataValue.md(examples)
        problems.append(f"{null_rows} row(s) have a null key")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata=metadata,
        description="; ".join(problems) or f"({', '.join(key)}) is unique and never null in {rows} rows",
    )


def primary_key_check(
    asset_key: dg.AssetKey, keyed: KeyedTable, *, blocking: bool
) -> dg.AssetChecksDefinition:
    """A check that the key of `keyed.table` is unique and never null, for the asset `asset_key`."""

    @dg.asset_check(asset=asset_key, name=PRIMARY_KEY_CHECK, blocking=blocking, description=keyed.description)
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        scoped = keyed.for_accounts(run_accounts(context))
        return _run(
            warehouse,
            [keyed.table],
            dg.AssetCheckSeverity.ERROR,
            lambda con: _primary_key_result(con, scoped),
        )

    return _check


def primary_key_results(
    warehouse: WarehouseResource,
    tables: Mapping[dg.AssetCheckKey, KeyedTable],
    accounts: Sequence[str] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """The primary-key check result of each (check key -> keyed table), over one connection."""
    with warehouse.get_connection(read_only=True) as con:
        for check_key, keyed in tables.items():
            if table_columns(con, keyed.table) is not None:
                result = _primary_key_result(con, keyed.for_accounts(accounts))
            else:
                result = _missing_table(keyed.table, dg.AssetCheckSeverity.ERROR)
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=check_key.name,
                passed=result.passed,
                severity=result.severity,
                metadata=result.metadata,
                description=result.description,
            )


def raw_keyed_table(spec: EndpointSpec) -> KeyedTable:
    """`raw.<name>` of one API resource, with its snake_case key columns."""
    return KeyedTable(_raw(spec.name), key_columns(spec))


def raw_primary_key_checks_for(endpoints: Sequence[EndpointSpec]) -> dg.AssetChecksDefinition:
    """One step checking the keys of every raw table over one connection (blocking, per table).

    A step per table costs Dagster ~0.2 s each on every sync; the queries themselves take milliseconds.
    """
    tables = {
        dg.AssetCheckKey(raw_key(spec.name), PRIMARY_KEY_CHECK): raw_keyed_table(spec) for spec in endpoints
    }

    @dg.multi_asset_check(
        name="raw_primary_keys",
        specs=[
            dg.AssetCheckSpec(
                PRIMARY_KEY_CHECK, asset=check_key.asset_key, blocking=True, description=keyed.description
            )
            for check_key, keyed in tables.items()
        ],
        can_subset=True,
        description="Primary keys of the raw tables are unique and never null (blocking).",
    )
    def raw_primary_keys(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        selected = {k: v for k, v in tables.items() if k in context.selected_asset_check_keys}
        yield from primary_key_results(warehouse, selected, run_accounts(context))

    return raw_primary_keys


raw_primary_key_checks = raw_primary_key_checks_for(ENDPOINTS)

_BOOKINGS = _raw("bookings")
_EVENT_TYPES = _raw("event_types")


@dg.asset_check(
    asset=raw_key("bookings"),
    additional_deps=[raw_key("event_types")],
    description=f"Every booking's event_type_id is in {_EVENT_TYPES} (warns with the count and examples).",
)
def bookings_event_type_known(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Bookings of event types that `raw.event_types` lacks (deleted, or another user's)."""
    accounts = run_accounts(context)
    bookings_rows = _rows(_BOOKINGS, accounts).sql
    same_account = "" if accounts is None else f" AND et.{ACCOUNT_COLUMN} = b.{ACCOUNT_COLUMN}"

    def evaluate(con: "duckdb.DuckDBPyConnection") -> dg.AssetCheckResult:
        unknown = (
            f"FROM {bookings_rows} AS b WHERE b.event_type_id IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {_EVENT_TYPES.sql} AS et WHERE et.id = b.event_type_id{same_account})"
        )
        [(bookings, event_types)] = con.execute(
            f"SELECT count(*), count(DISTINCT b.event_type_id) {unknown}"
        ).fetchall()
        [(without,)] = con.execute(
            f"SELECT count(*) FROM {bookings_rows} WHERE event_type_id IS NULL"
        ).fetchall()
        examples = con.execute(
            f"SELECT b.id, b.event_type_id {unknown} ORDER BY b.id LIMIT {EXAMPLES}"
        ).fetchall()
        return dg.AssetCheckResult(
            passed=bookings == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "bookings_with_unknown_event_type": bookings,
                "unknown_event_type_ids": event_types,
                "example_booking_ids": dg.MetadataValue.json([row[0] for row in examples]),
                "example_event_type_ids": dg.MetadataValue.json(sorted({row[1] for row in examples})),
                "bookings_without_event_type": without,
            },
            description=(
                f"{bookings} booking(s) reference {event_types} event type(s) missing from {_EVENT_TYPES}"
                if bookings
                else "every booking's event type is known"
            ),
        )

    return _run(warehouse, [_BOOKINGS, _EVENT_TYPES], dg.AssetCheckSeverity.WARN, evaluate)


_UTILIZATION = BOOKING_UTILIZATION_DAILY.table_name


@dg.asset_check(
    asset=analytics_key(BOOKING_UTILIZATION_DAILY.name),
    description="available_minutes, booked_minutes and buffer_minutes are never negative.",
)
def utilization_minutes_non_negative(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """A negative minute count means a parsing or DST bug, never real data."""
    rows = _rows(_UTILIZATION, run_accounts(context)).sql

    def evaluate(con: "duckdb.DuckDBPyConnection") -> dg.AssetCheckResult:
        bad = "available_minutes < 0 OR booked_minutes < 0 OR buffer_minutes < 0"
        [(count,)] = con.execute(f"SELECT count(*) FROM {rows} WHERE {bad}").fetchall()
        metadata: dict[str, object] = {"negative_rows": count}
        if count:
            examples = markdown_query(
                con,
                f"SELECT schedule_id, date, available_minutes, booked_minutes, buffer_minutes "
                f"FROM {rows} WHERE {bad} ORDER BY schedule_id, date LIMIT {EXAMPLES}",
            )
            metadata["examples"] = dg.MetadataValue.md(examples)
        return dg.AssetCheckResult(
            passed=count == 0,
            metadata=metadata,
            description=f"{count} row(s) with negative minutes" if count else "no negative minutes",
        )

    return _run(warehouse, [_UTILIZATION], dg.AssetCheckSeverity.ERROR, evaluate)


@dg.asset_check(
    asset=analytics_key(BOOKING_UTILIZATION_DAILY.name),
    description="Days whose accepted bookings exceed the schedule's availability (utilization > 100%).",
)
def utilization_at_most_100_percent(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Over-booked days are possible (manual bookings, changed schedules) but worth a look: warns."""
    rows = _rows(_UTILIZATION, run_accounts(context)).sql

    def evaluate(con: "duckdb.DuckDBPyConnection") -> dg.AssetCheckResult:
        [(count,)] = con.execute(f"SELECT count(*) FROM {rows} WHERE utilization > 1").fetchall()
        metadata: dict[str, object] = {"days_over_100_percent": count}
        if count:
            days = markdown_query(
                con,
                f"SELECT schedule_id, date, booked_minutes, available_minutes, "
                f"round(utilization * 100, 1) AS utilization_pct FROM {rows} "
                f"WHERE utilization > 1 ORDER BY utilization DESC, schedule_id, date LIMIT {EXAMPLES * 2}",
            )
            metadata["days"] = dg.MetadataValue.md(days)
        return dg.AssetCheckResult(
            passed=count == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata,
            description=f"{count} day(s) booked over 100% of availability" if count else "no day over 100%",
        )

    return _run(warehouse, [_UTILIZATION], dg.AssetCheckSeverity.WARN, evaluate)


analytics_primary_key_checks: list[dg.AssetChecksDefinition] = [
    # Derived tables feed nothing downstream, so these report rather than block.
    primary_key_check(
        analytics_key(table.name), KeyedTable(table.table_name, table.primary_key), blocking=False
    )
    for table in TABLES
]

history_primary_key_checks: list[dg.AssetChecksDefinition] = [
    # A version is its row's key plus when it began; nothing reads history downstream yet: report only.
    primary_key_check(
        history_key(spec.name),
        KeyedTable(TableName.parse(history_table(spec.name)), (*key_columns(spec), "valid_from")),
        blocking=False,
    )
    for spec in ENDPOINTS
    if spec.history
]

raw_checks: list[dg.AssetChecksDefinition] = [
    raw_primary_key_checks,
    bookings_event_type_known,
    *history_primary_key_checks,
]
analytics_checks: list[dg.AssetChecksDefinition] = [
    *analytics_primary_key_checks,
    utilization_minutes_non_negative,
    utilization_at_most_100_percent,
]
checks: list[dg.AssetChecksDefinition] = [*raw_checks, *analytics_checks]
