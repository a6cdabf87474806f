"""Freshness and automation on the real definitions: the window setting, the policies and automation
conditions on the assets, the checks and their sensor, and a check failing on a stale asset."""

from __future__ import annotations

import time
from datetime import timedelta

import dagster as dg
import pytest

from sched_assets.defs.freshness import (
    FRESHNESS_HOURS_ENV,
    FRESHNESS_SENSOR,
    freshness_checks,
    freshness_window,
    with_freshness,
)


def load(monkeypatch: pytest.MonkeyPatch, **environ: str) -> dg.Definitions:
    for name in ("SCHED_API_KEY", "SCHED_API_BASE_URL", "SCHED_ACCOUNTS_FILE", FRESHNESS_HOURS_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    from sched_assets.definitions import defs

    return defs()


def test_window_defaults_to_26_hours_and_reads_the_variable() -> None:
    assert freshness_window({}) == timedelta(hours=26)
    assert freshness_window({FRESHNESS_HOURS_ENV: " 12.5 "}) == timedelta(hours=12.5)
    assert freshness_window({FRESHNESS_HOURS_ENV: ""}) == timedelta(hours=26)


@pytest.mark.parametrize("bad", ["0", "-3", "nan", "a day", "1e9"])
def test_a_bad_window_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match=f"{FRESHNESS_HOURS_ENV} must be a number of hours") as info:
        freshness_window({FRESHNESS_HOURS_ENV: bad})
    assert repr(bad) in str(info.value)


def test_synced_assets_have_the_policy_and_analytics_follow_them(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = load(monkeypatch, **{FRESHNESS_HOURS_ENV: "30"}).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] in ("raw", "history"):
            policy = node.freshness_policy
            assert policy is not None, key
            windows = (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta())
            assert windows == (timedelta(hours=30), timedelta(hours=60)), key
            assert node.automation_condition is None, key  # synced by schedules, not by automation
        else:
            assert node.freshness_policy is None, key
            assert node.automation_condition == dg.AutomationCondition.eager(), key


def test_a_freshness_check_per_synced_asset_and_a_stopped_sensor(monkeypatch: pytest.MonkeyPatch) -> None:
    definitions = load(monkeypatch)
    graph = definitions.resolve_asset_graph()
    synced = {key for key in graph.get_all_asset_keys() if key.path[0] in ("raw", "history")}
    fresh = {
        check_key
        for checks in definitions.asset_checks
        for check_key in checks.check_keys
        if check_key.name == "freshness_check"
    }
    assert {check_key.asset_key for check_key in fresh} == synced
    sensor = definitions.get_sensor_def(FRESHNESS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_the_check_warns_on_a_stale_asset_and_passes_after_a_sync() -> None:
    @dg.asset(key=["raw", "bookings"])
    def bookings() -> None: ...

    checks = freshness_checks([bookings], timedelta(seconds=1))
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*checks))
    definitions = dg.Definitions(assets=[bookings], asset_checks=checks, jobs=[job])

    def evaluate(instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
        result = definitions.resolve_job_def("freshness").execute_in_process(instance=instance)
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "bookings"]))
        assert evaluate(instance).passed
        time.sleep(1.5)  # the window passes without a sync

        stale = evaluate(instance)
        assert not stale.passed
        assert stale.severity == dg.AssetCheckSeverity.WARN

        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "bookings"]))
        assert evaluate(instance).passed


def test_with_freshness_keeps_every_asset(monkeypatch: pytest.MonkeyPatch) -> None:
    from sched_assets.defs.analytics import analytics_assets
    from sched_assets.defs.sources import build_source_assets

    assets = [build_source_assets(), *analytics_assets]
    changed = with_freshness(assets, timedelta(hours=1))
    assert [set(a.keys) for a in changed] == [set(a.keys) for a in assets]


def test_analytics_are_requested_after_their_sources_are_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    definitions = load(monkeypatch)
    graph = definitions.resolve_asset_graph()
    synced = [key for key in graph.get_all_asset_keys() if key.path[0] in ("raw", "history")]
    analytics = {key for key in graph.get_all_asset_keys() if key.path[0] == "analytics"}

    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        assert first.total_requested == 0  # nothing synced yet: the sources are missing

        for key in synced:  # a sync by any means (here: reported, as a run of another tool would)
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        second = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=first.cursor)
        assert {key for key in analytics if second.get_num_requested(key)} == analytics

        third = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=second.cursor)
        assert third.total_requested == 0  # requested once, not on every tick
