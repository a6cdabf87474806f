"""Freshness and automation: a sync that stopped running turns the asset pages red, and the analytics
follow the raw tables when automation is on (docs/ui.md, "Freshness and automation").

- Every raw asset (and `history/bookings`, written with `raw/bookings`) carries a freshness policy:
  warning once its last materialization is older than `SCHED_FRESHNESS_HOURS` (default 26: a daily
  sync may run late by two hours), failing after twice that. The UI evaluates policies when the
  instance has `freshness: enabled: true` (Dagster's freshness policies are in preview).
- The same window as asset checks (`freshness_checks`, warning severity), which work on any instance:
  the `freshness_checks_sensor` runs them when they are due. Like the schedules it is off by default.
- Every analytics asset has `AutomationCondition.eager()`: with the automation sensor on, it is rebuilt
  after its sources are materialized (by a schedule, a backfill, or a run from another tool), and not
  while they are missing or being materialized.
"""

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta

import dagster as dg

from sched_assets.defs.keys import HISTORY_SCHEMA, RAW_SCHEMA

FRESHNESS_HOURS_ENV = "SCHED_FRESHNESS_HOURS"
DEFAULT_FRESHNESS_HOURS = 26.0
FRESHNESS_SENSOR = "freshness_checks_sensor"
# The sensor looks every 10 minutes: a check is due only once a window has passed since the last sync.
SENSOR_INTERVAL_SECONDS = 600


def freshness_window(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How old the last sync may be before the raw assets warn (`SCHED_FRESHNESS_HOURS`)."""
    text = environ.get(FRESHNESS_HOURS_ENV, "").strip()
    if not text:
        return timedelta(hours=DEFAULT_FRESHNESS_HOURS)
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not 0 < hours < 24 * 366:  # also false for NaN
        raise ValueError(
            f"{FRESHNESS_HOURS_ENV} must be a number of hours above 0 and under a year (e.g. 26 for a "
            f"daily sync); got {text!r}. Unset it for the default of {DEFAULT_FRESHNESS_HOURS:g}."
        )
    return timedelta(hours=hours)


def _synced(key: dg.AssetKey) -> bool:
    return key.path[0] in (RAW_SCHEMA, HISTORY_SCHEMA)


def with_freshness(assets: Sequence[dg.AssetsDefinition], window: timedelta) -> list[dg.AssetsDefinition]:
    """The assets, the synced ones (raw, history) with a freshness policy of `window` (warn) and twice
    it (fail), the analytics with an eager automation condition."""
    policy = dg.FreshnessPolicy.time_window(fail_window=2 * window, warn_window=window)
    eager = dg.AutomationCondition.eager()

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        if _synced(spec.key):
            return spec.replace_attributes(freshness_policy=policy)
        return spec.replace_attributes(automation_condition=eager)

    return list(dg.map_asset_specs(add, assets))


def freshness_checks(
    assets: Sequence[dg.AssetsDefinition], window: timedelta
) -> list[dg.AssetChecksDefinition]:
    """One warning check per synced asset: its last materialization is at most `window` old."""
    keys = sorted({key for asset in assets for key in asset.keys if _synced(key)}, key=lambda k: k.path)
    with _superseded_ok():
        return list(
            dg.build_last_update_freshness_checks(
                assets=keys, lower_bound_delta=window, severity=dg.AssetCheckSeverity.WARN
            )
        )


def freshness_sensor(checks: Sequence[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    """Runs the freshness checks when due (off by default: turn it on in Automation)."""
    with _superseded_ok():
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=FRESHNESS_SENSOR,
            minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
            default_status=dg.DefaultSensorStatus.STOPPED,
        )


@contextlib.contextmanager
def _superseded_ok() -> Iterator[None]:
    # Dagster calls freshness checks superseded by freshness policies, which we attach too; but those
    # are a preview that needs an instance flag, and the checks work everywhere. The warning would
    # repeat on every code-location load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        yield
