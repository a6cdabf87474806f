"""Asset checks against a hand-built DuckDB file: pass on clean data, fail or warn on planted problems."""

import dagster as dg
import duckdb
import pytest

from sched_assets.analytics.specs import TABLES
from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME
from sched_assets.defs.analytics import analytics_assets
from sched_assets.defs.checks import (
    PRIMARY_KEY_CHECK,
    analytics_checks,
    bookings_event_type_known,
    checks,
    primary_key_results,
    raw_checks,
    raw_keyed_table,
    raw_primary_key_checks,
    utilization_at_most_100_percent,
    utilization_minutes_non_negative,
)
from sched_assets.defs.keys import raw_key
from sched_assets.storage import WarehouseResource
from sched_assets_tests.analytics_helpers import raw_stand_in, resources
from sched_assets_tests.raw_tables import insert_rows


def sql(database: str, statement: str) -> None:
    with duckdb.connect(database) as con:
        con.execute(statement)


def run_check(check: dg.AssetChecksDefinition, database: str) -> dg.AssetCheckResult:
    result = check(dg.build_asset_check_context(), warehouse=WarehouseResource(database=database))
    assert isinstance(result, dg.AssetCheckResult)
    return result


def run_raw_pk_check(name: str, database: str) -> dg.AssetCheckResult:
    """What the `raw_primary_keys` multi-check yields for raw.<name>."""
    check_key = dg.AssetCheckKey(raw_key(name), PRIMARY_KEY_CHECK)
    table = raw_keyed_table(ENDPOINTS_BY_NAME[name])
    [result] = primary_key_results(WarehouseResource(database=database), {check_key: table})
    assert result.asset_key == raw_key(name) and result.check_name == PRIMARY_KEY_CHECK
    return result


def values(result: dg.AssetCheckResult) -> dict[str, object]:
    return {key: value.value for key, value in result.metadata.items()}


def test_check_names_and_blocking() -> None:
    raw_keys = {key for check in raw_checks for key in check.check_keys}
    assert raw_keys == {
        *(dg.AssetCheckKey(raw_key(spec.name), PRIMARY_KEY_CHECK) for spec in ENDPOINTS),
        dg.AssetCheckKey(raw_key("bookings"), "bookings_event_type_known"),
        dg.AssetCheckKey(dg.AssetKey(["history", "bookings"]), PRIMARY_KEY_CHECK),
    }
    assert {spec.key for spec in raw_primary_key_checks.check_specs} == {
        dg.AssetCheckKey(raw_key(spec.name), PRIMARY_KEY_CHECK) for spec in ENDPOINTS
    }
    assert all(spec.blocking for spec in raw_primary_key_checks.check_specs)
    analytics_keys = {key for check in analytics_checks for key in check.check_keys}
    utilization = analytics_key_by_name("booking_utilization_daily")
    assert dg.AssetCheckKey(utilization, "utilization_minutes_non_negative") in analytics_keys
    assert dg.AssetCheckKey(utilization, "utilization_at_most_100_percent") in analytics_keys
    assert {key.asset_key for key in analytics_keys} == {asset.key for asset in analytics_assets}
    assert len(checks) == len(raw_checks) + len(analytics_checks)
    # raw key checks + bookings_event_type_known, the history key check, a key check per analytics
    # table + 2 utilization checks.
    assert sum(len(check.check_keys) for check in checks) == len(ENDPOINTS) + 1 + 1 + len(TABLES) + 2


def analytics_key_by_name(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


@pytest.mark.parametrize("name", [spec.name for spec in ENDPOINTS])
def test_primary_key_checks_pass_on_clean_data(database: str, name: str) -> None:
    result = run_raw_pk_check(name, database)
    assert result.passed, result.description
    assert values(result)["duplicate_keys"] == 0
    assert values(result)["null_key_rows"] == 0


def test_primary_key_check_fails_on_duplicated_key(database: str) -> None:
    sql(
        database,
        "INSERT INTO raw.bookings (id, uid, status) VALUES (1, 'copy-a', 'accepted'), (1, 'copy-b', 'accepted')",
    )
    result = run_raw_pk_check("bookings", database)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    meta = values(result)
    assert (meta["duplicate_keys"], meta["rows_with_duplicate_keys"], meta["null_key_rows"]) == (1, 3, 0)
    assert "| 1 | 3 |" in str(meta["duplicate_examples"])


def test_composite_primary_key_check_fails_on_null_key(database: str) -> None:
    # Same external_id under two credentials is fine (the sample has that); a null credential is not.
    with duckdb.connect(database) as con:
        insert_rows(con, "calendars", [{"credential_id": None, "external_id": "team@group", "name": "Team"}])
    result = run_raw_pk_check("calendars", database)
    assert not result.passed
    meta = values(result)
    assert (meta["null_key_rows"], meta["duplicate_keys"]) == (1, 0)
    assert "team@group" in str(meta["null_key_examples"])


def test_primary_key_check_fails_on_null_id(database: str) -> None:
    sql(database, "INSERT INTO raw.event_types (id, title) VALUES (NULL, 'ghost')")
    result = run_raw_pk_check("event_types", database)
    assert not result.passed
    assert values(result)["null_key_rows"] == 1


def test_primary_key_check_fails_when_table_is_missing(database: str) -> None:
    sql(database, "DROP TABLE raw.conferencing")
    result = run_raw_pk_check("conferencing", database)
    assert not result.passed
    assert "does not exist" in (result.description or "")


def test_blocking_primary_key_check_stops_downstream_assets(database: str) -> None:
    sql(database, "INSERT INTO raw.event_types (id, title) VALUES (100, 'duplicate')")
    result = dg.materialize(
        [raw_stand_in, *analytics_assets, *checks],
        resources=resources(database),
        raise_on_error=False,
    )
    assert not result.success
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    # The raw key checks run as one step (one connection, ~1 s less per sync), so a failed key check
    # holds back every table derived from raw, including attendees, which reads only bookings
    # (booking_changes reads only history.bookings, which has its own key check).
    assert {key for key in materialized if key.path[0] == "analytics"} <= {
        analytics_key_by_name("booking_changes")
    }
    assert analytics_key_by_name("booking_utilization_daily") not in materialized
    assert analytics_key_by_name("event_type_stats") not in materialized
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [(e.asset_key, e.check_name) for e in failed if e.severity == dg.AssetCheckSeverity.ERROR] == [
        (raw_key("event_types"), PRIMARY_KEY_CHECK)
    ]


def test_missing_event_type_check_warns_with_count_and_examples(database: str) -> None:
    # The sample already has booking 4 of unknown type 999; add two more of 999 and one of 998.
    sql(
        database,
        "INSERT INTO raw.bookings (id, status, event_type_id) VALUES "
        "(12, 'accepted', 999), (11, 'cancelled', 998), (13, 'accepted', 999), (14, 'accepted', NULL)",
    )
    result = run_check(bookings_event_type_known, database)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    meta = values(result)
    assert meta["bookings_with_unknown_event_type"] == 4
    assert meta["unknown_event_type_ids"] == 2
    assert meta["example_booking_ids"] == [4, 11, 12, 13]
    assert meta["example_event_type_ids"] == [998, 999]
    assert meta["bookings_without_event_type"] == 1


def test_missing_event_type_check_passes_when_all_known(database: str) -> None:
    sql(database, "DELETE FROM raw.bookings WHERE event_type_id = 999")
    result = run_check(bookings_event_type_known, database)
    assert result.passed
    assert values(result)["bookings_with_unknown_event_type"] == 0


def utilization_table(database: str, rows: str) -> None:
    sql(
        database,
        "CREATE SCHEMA IF NOT EXISTS analytics; "
        "CREATE OR REPLACE TABLE analytics.booking_utilization_daily AS "
        "SELECT * FROM (VALUES " + rows + ") AS t(schedule_id, date, available_minutes, booked_minutes, "
        "buffer_minutes, utilization)",
    )


def test_utilization_checks_pass_on_sane_rows(database: str) -> None:
    utilization_table(
        database, "(10, DATE '2026-05-04', 480, 90, 15, 0.1875), (10, DATE '2026-05-05', 0, 30, 0, NULL)"
    )
    assert run_check(utilization_minutes_non_negative, database).passed
    assert run_check(utilization_at_most_100_percent, database).passed


def test_negative_minutes_fail(database: str) -> None:
    utilization_table(
        database, "(10, DATE '2026-05-04', -60, 90, 15, NULL), (10, DATE '2026-05-05', 480, 30, 0, 0.0625)"
    )
    result = run_check(utilization_minutes_non_negative, database)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert values(result)["negative_rows"] == 1
    assert "2026-05-04" in str(values(result)["examples"])


def test_over_100_percent_warns_and_lists_days(database: str) -> None:
    # Plant it through the real pipeline: 10 hours booked on a 1-hour override day.
    with duckdb.connect(database) as con:
        con.execute(
            'UPDATE raw.schedules SET overrides = \'[{"date": "2026-05-04", "startTime": "09:00", "endTime": "10:00"}]\''
        )
        con.execute("UPDATE raw.bookings SET duration = 600 WHERE id = 1")
    result = dg.materialize(
        [raw_stand_in, *analytics_assets, *checks],
        resources=resources(database),
        raise_on_error=False,
    )
    assert result.success  # warnings do not fail the run
    [over] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "utilization_at_most_100_percent"
    ]
    assert not over.passed
    assert over.severity == dg.AssetCheckSeverity.WARN
    assert over.metadata["days_over_100_percent"].value == 1
    # (600 + 30) booked minutes over 60 available.
    assert "| 10 | 2026-05-04 | 630 | 60 | 1,050.0 |" in str(over.metadata["days"].value)
