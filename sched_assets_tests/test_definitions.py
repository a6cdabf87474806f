"""The Definitions as users load them: structure, demo mode, and a full in-process run with checks."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from sched_assets.api.errors import ConfigError
from sched_assets.api.specs import ENDPOINTS
from sched_assets.defs.resources import SchedApiResource, database_path_from_env, demo_mode_from_env

RAW = [spec.name for spec in ENDPOINTS]
ANALYTICS = [
    "booking_attendees",
    "schedule_windows",
    "schedule_overrides",
    "booking_utilization_daily",
    "event_type_stats",
    "booking_changes",
]


def load(monkeypatch, tmp_path, **env: str) -> dg.Definitions:
    for name in ("SCHED_API_KEY", "SCHED_API_BASE_URL", "SCHED_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCHED_DUCKDB_PATH", str(tmp_path / "demo.duckdb"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from sched_assets.definitions import defs

    return defs()


def test_every_asset_has_group_kinds_description_owner(monkeypatch, tmp_path):
    definitions = load(monkeypatch, tmp_path)
    graph = definitions.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {f"raw/{n}" for n in RAW} | {"history/bookings"} | {f"analytics/{n}" for n in ANALYTICS}
    for key in graph.get_all_asset_keys():
        spec = graph.get(key)
        assert spec.group_name in ("raw", "history", "analytics")
        assert spec.kinds and ("duckdb" in spec.kinds)
        assert "grain" in (spec.description or "").lower(), key
        assert spec.owners
        assert "dagster/code_references" in spec.metadata, key
    schedules = {s.name: s for s in definitions.schedules}
    assert set(schedules) == {"daily_sync", "weekly_full_refresh"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())


def test_demo_mode_and_paths_from_env():
    assert demo_mode_from_env({}) and database_path_from_env({}) == "data/demo.duckdb"
    assert not demo_mode_from_env({"SCHED_API_KEY": "k"})
    assert database_path_from_env({"SCHED_API_KEY": "k"}) == "data/sched.duckdb"
    assert database_path_from_env({"SCHED_DUCKDB_PATH": "/x.duckdb"}) == "/x.duckdb"
    assert not demo_mode_from_env({"SCHED_API_BASE_URL": "http://x/v2"})


def test_base_url_without_key_is_a_config_error():
    resource = SchedApiResource(base_url="http://127.0.0.1:9/v2")
    with pytest.raises(ConfigError, match="SCHED_API_KEY is not"):
        resource.client_config()
    assert SchedApiResource().is_demo and SchedApiResource().source == "demo"


def test_everything_materializes_in_demo_mode_and_checks_pass(monkeypatch, tmp_path):
    definitions = load(monkeypatch, tmp_path)
    job = definitions.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= len(RAW) + len(ANALYTICS) + 3
    # The demo account contains bookings of an unknown event type on purpose: that warning fires.
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed}
    assert failed <= {
        ("raw/bookings", "bookings_event_type_known"),
        ("analytics/booking_utilization_daily", "utilization_at_most_100_percent"),
    }
    assert ("raw/bookings", "bookings_event_type_known") in failed
    errors = [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert errors == []
    sources = [e for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "raw"]
    assert {e.materialization.metadata["source"].value for e in sources} == {"demo"}
    with duckdb.connect(str(tmp_path / "demo.duckdb"), read_only=True) as con:
        for table in ANALYTICS:
            if table == "booking_changes":  # changes need a second sync to be seen
                continue
            assert con.execute(f"select count(*) from analytics.{table}").fetchone()[0] > 0


def test_launchpad_edit_does_not_silently_switch_to_demo(monkeypatch):
    """Run config replaces the resource's config; the key must still come from SCHED_API_KEY."""
    monkeypatch.setenv("SCHED_API_KEY", "cal_test_from_env")
    monkeypatch.delenv("SCHED_API_BASE_URL", raising=False)
    edited = SchedApiResource(page_size=50)
    assert not edited.is_demo
    assert edited.source == "https://api.cal.com/v2"
    assert edited.client_config().api_key == "cal_test_from_env"
    monkeypatch.delenv("SCHED_API_KEY")
    assert SchedApiResource(page_size=50).is_demo
