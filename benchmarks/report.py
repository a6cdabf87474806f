"""Summaries and the report: medians per case, ratios, the rate-limit floor, PASS/MISS against the
targets, warnings and noise notes, as the markdown `run.py` prints: one section per account shape.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.model import (
    CASE_ALL,
    CASE_BARE,
    CASE_DLT,
    CASE_FULL,
    CASE_INCREMENTAL,
    CASE_LABELS,
    DLT_TABLE,
    NOISE_SHARE,
    OUR_CASES,
    OUR_TABLE,
    RATE_LIMIT_REQUESTS,
    RATE_LIMIT_WINDOW_S,
    REPORT_ORDER,
    TARGET_BOOKINGS,
    TARGET_DLT_OVER_OURS,
    TARGET_FLOOR_RATIO,
    TARGET_INCREMENTAL_SHARE,
    TARGET_OURS_WALL_S,
    TARGET_PEAK_GROWTH_AT_1M,
    TARGET_PEAK_MB,
    TARGET_SYNC_OVER_BARE,
    Measurement,
    Settings,
)


@dataclass
class CaseSummary:
    """Medians of one case over its repeats."""

    case: str
    runs: int
    ok_runs: int
    wall_s: float
    peak_mb: float
    requests: float
    throttled: float
    bookings_rows: float | None
    requests_range: tuple[int, int]
    errors: list[str]
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    sync_step_s: float | None = None  # ours only: Dagster's duration of the `raw_sources` step
    all_steps_s: float | None = None  # ours only: every step of the run (sync + asset checks)
    analytics_steps_s: float | None = None  # (d) only: the derived tables' steps, summed
    check_steps_s: float | None = None  # (d) only: the asset checks' steps, summed
    outside_s: float | None = None  # ours only: wall minus the run's steps, per run: Dagster's own cost
    read_s: float | None = None  # (f) only: first request to last response, inside the process

    @property
    def label(self) -> str:
        return CASE_LABELS[self.case]


def by_shape(measurements: Sequence[Measurement]) -> dict[str, list[Measurement]]:
    """The runs of each account shape, shapes in the order they ran."""
    shapes: dict[str, list[Measurement]] = {}
    for m in measurements:
        shapes.setdefault(m.shape, []).append(m)
    return shapes


def _median_extra(runs: Sequence[Measurement], key: str) -> float | None:
    values = [m.extra[key] for m in runs if key in m.extra]
    return statistics.median(values) if values else None


def summarize(measurements: Sequence[Measurement]) -> dict[str, CaseSummary]:
    """Medians per case (over every run, failed ones included: a failure's time is what it cost).

    Of one shape's runs: the caller splits the shapes (`by_shape`).
    """
    summaries: dict[str, CaseSummary] = {}
    for case in REPORT_ORDER:
        runs = [m for m in measurements if m.case == case]
        if not runs:
            continue
        rows = [m.bookings_rows for m in runs if m.bookings_rows is not None]
        outside = [m.wall_s - m.extra["all_steps_s"] for m in runs if "all_steps_s" in m.extra]
        summaries[case] = CaseSummary(
            case=case,
            runs=len(runs),
            ok_runs=sum(m.ok for m in runs),
            wall_s=statistics.median(m.wall_s for m in runs),
            peak_mb=statistics.median(m.peak_mb for m in runs),
            requests=statistics.median(m.requests for m in runs),
            throttled=statistics.median(m.throttled for m in runs),
            bookings_rows=statistics.median(rows) if rows else None,
            requests_range=(min(m.requests for m in runs), max(m.requests for m in runs)),
            errors=sorted({m.error for m in runs if m.error}),
            cpu_s=statistics.median(m.cpu_s for m in runs),
            server_cpu_s=statistics.median(m.server_cpu_s for m in runs),
            other_cpu_s=statistics.median(m.other_cpu_s for m in runs),
            sync_step_s=_median_extra(runs, "sync_step_s"),
            all_steps_s=_median_extra(runs, "all_steps_s"),
            analytics_steps_s=_median_extra(runs, "analytics_steps_s"),
            check_steps_s=_median_extra(runs, "check_steps_s"),
            outside_s=statistics.median(outside) if outside else None,
            read_s=_median_extra(runs, "read_s"),
        )
    return summaries


def floor_seconds(requests: float) -> float:
    """Least wall time `requests` can take under 120 requests / 60 s: whole windows after the first."""
    if requests <= 0:
        return 0.0
    return (math.ceil(requests / RATE_LIMIT_REQUESTS) - 1) * RATE_LIMIT_WINDOW_S


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def sync_over_bare(full: CaseSummary, bare: CaseSummary) -> float | None:
    """(a)'s sync step over (f)'s read: both in-process, so neither pays Python's or Dagster's start-up."""
    return _ratio(full.sync_step_s, bare.read_s) if bare.ok_runs == bare.runs else None


@dataclass
class Check:
    """One target: what it is, the measured value, and whether it is met."""

    name: str
    target: str
    value: str
    passed: bool | None  # None: not applicable / not measurable in this run


def evaluate_targets(
    settings: Settings, summaries: dict[str, CaseSummary], baseline_peak_mb: float | None = None
) -> list[Check]:
    """The README's targets that this run can speak to."""
    checks: list[Check] = []
    full = summaries.get(CASE_FULL)
    incremental = summaries.get(CASE_INCREMENTAL)
    dlt = summaries.get(CASE_DLT)
    bare = summaries.get(CASE_BARE)
    if full is None:
        return checks
    if settings.rate_limited:
        for summary in (full, incremental):
            if summary is None:
                continue
            floor = floor_seconds(summary.requests)
            ratio = _ratio(summary.wall_s, floor)
            checks.append(
                Check(f"{summary.label}: zero 429s", "0", _num(summary.throttled), summary.throttled == 0)
            )
            if floor > 0:
                checks.append(
                    Check(
                        f"{summary.label}: wall / floor",
                        f"<= {TARGET_FLOOR_RATIO}",
                        f"{summary.wall_s:.1f} s / {floor:.0f} s = {ratio:.3f}",
                        ratio is not None and ratio <= TARGET_FLOOR_RATIO,
                    )
                )
        return checks

    at_target_size = settings.bookings == TARGET_BOOKINGS
    checks.append(
        Check(
            "(a) wall time, whole process",
            f"<= {TARGET_OURS_WALL_S:.0f} s at {TARGET_BOOKINGS:,}",
            f"{full.wall_s:.2f} s",
            full.wall_s <= TARGET_OURS_WALL_S if at_target_size else None,
        )
    )
    if settings.bookings >= 10 * TARGET_BOOKINGS:
        budget = TARGET_PEAK_GROWTH_AT_1M * (baseline_peak_mb or TARGET_PEAK_MB)
        source = (
            f"the 100,000 run's {baseline_peak_mb:.0f} MB"
            if baseline_peak_mb
            else f"{TARGET_PEAK_MB:.0f} MB (no 100,000 result found)"
        )
        checks.append(
            Check(
                "(a) peak memory, whole tree",
                f"<= {TARGET_PEAK_GROWTH_AT_1M}x {source} = {budget:.0f} MB",
                f"{full.peak_mb:.0f} MB",
                full.peak_mb <= budget,
            )
        )
    else:
        checks.append(
            Check(
                "(a) peak memory, whole tree",
                f"<= {TARGET_PEAK_MB:.0f} MB at {TARGET_BOOKINGS:,}",
                f"{full.peak_mb:.0f} MB",
                full.peak_mb <= TARGET_PEAK_MB if at_target_size else None,
            )
        )
    if incremental is not None:
        share = _ratio(incremental.wall_s, full.wall_s)
        checks.append(
            Check(
                "(b) / (a) wall time",
                f"<= {TARGET_INCREMENTAL_SHARE}",
                f"{share:.3f}" if share is not None else "-",
                share is not None and share <= TARGET_INCREMENTAL_SHARE,
            )
        )
    if bare is not None:
        over_bare = sync_over_bare(full, bare)
        checks.append(
            Check(
                "(a) sync step / (f) bare-client read",
                f"<= {TARGET_SYNC_OVER_BARE:.0f}x at {TARGET_BOOKINGS:,}",
                f"{_num(full.sync_step_s, 2)} s / {_num(bare.read_s, 2)} s = "
                + (f"{over_bare:.2f}x" if over_bare is not None else "-"),
                (over_bare is not None and over_bare <= TARGET_SYNC_OVER_BARE) if at_target_size else None,
            )
        )
    if dlt is not None:
        speedup = _ratio(dlt.wall_s, full.wall_s)
        note = "" if dlt.ok_runs == dlt.runs else " (dlt did not finish every run)"
        checks.append(
            Check(
                "dlt / ours (a) wall time",
                f">= {TARGET_DLT_OVER_OURS:.0f}x at {TARGET_BOOKINGS:,}",
                (f"{speedup:.1f}x" if speedup is not None else "-") + note,
                (speedup is not None and speedup >= TARGET_DLT_OVER_OURS) if at_target_size else None,
            )
        )
    return checks


def render_report(
    settings: Settings,
    measurements: Sequence[Measurement],
    server_startup_s: Mapping[str, float] | None = None,
    baseline_peak_mb: Mapping[str, float] | None = None,
) -> str:
    """The markdown the harness prints: one section per shape, then (several shapes) the targets side by side.

    `server_startup_s` and `baseline_peak_mb` are per shape (the 1,000,000-booking memory target compares
    a shape with its own 100,000-booking peak).
    """
    startups = server_startup_s or {}
    baselines = baseline_peak_mb or {}
    sections: list[str] = []
    verdicts: dict[str, list[Check]] = {}
    for shape, runs in by_shape(measurements).items():
        summaries = summarize(runs)
        verdicts[shape] = evaluate_targets(settings, summaries, baselines.get(shape))
        sections.append(render_shape(settings, shape, runs, summaries, verdicts[shape], startups.get(shape)))
    if len(verdicts) > 1:
        sections.append(_targets_by_shape(verdicts))
    return "\n".join(sections)


def render_shape(
    settings: Settings,
    shape: str,
    measurements: Sequence[Measurement],
    summaries: Mapping[str, CaseSummary],
    checks: Sequence[Check],
    server_startup_s: float | None = None,
) -> str:
    """One shape's section: medians, ratios, CPU, where our time goes, rate-limit floor, targets, warnings."""
    mode = "rate-limited (120 req / 60 s, 60 s block)" if settings.rate_limited else "no rate limit"
    lines = [
        f"## Benchmark: {settings.bookings:,} bookings, {shape} shape, {settings.repeats} repeat(s), {mode}",
        "",
        *_main_table(summaries),
        *_ratios(summaries),
        *_cpu_table(summaries),
        *_breakdown(summaries),
    ]
    if settings.rate_limited:
        lines += _floor_table(summaries)
    if checks:
        lines += ["Targets:", "", "| target | goal | measured | |", "|---|---|---|---|"]
        lines += [f"| {c.name} | {c.target} | {c.value} | {_verdict(c)} |" for c in checks]
        lines.append("")
    lines += [f"WARNING: {warning}" for warning in collect_warnings(settings, measurements)]
    lines += [f"NOISE: {note}" for note in collect_noise(measurements)]
    if server_startup_s is not None:
        lines.append(
            f"(a fresh demo server per repeat; with {settings.bookings:,} {shape} bookings it started in at "
            f"most {server_startup_s:.1f} s)"
        )
    return "\n".join(lines).rstrip() + "\n"


def _verdict(check: Check) -> str:
    return {True: "PASS", False: "MISS", None: "n/a (other size)"}[check.passed]


def _main_table(summaries: Mapping[str, CaseSummary]) -> list[str]:
    lines = [
        "| case | runs ok | median wall s | median peak MB | sync step / read s | requests | 429s "
        "| rows in bookings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for summary in summaries.values():
        low, high = summary.requests_range
        requests = _num(summary.requests) if low == high else f"{_num(summary.requests)} ({low}-{high})"
        in_process = summary.read_s if summary.case == CASE_BARE else summary.sync_step_s
        lines.append(
            f"| {summary.label} | {summary.ok_runs}/{summary.runs} | {summary.wall_s:.2f} | "
            f"{summary.peak_mb:.0f} | {_num(in_process, 2)} | {requests} | {_num(summary.throttled)} | "
            f"{_num(summary.bookings_rows)} |"
        )
    if CASE_BARE in summaries:
        lines += [
            "",
            "(sync step / read s: ours, Dagster's `raw_sources` step from the event log; (f), the bare "
            "client's first request to last response, in-process; (f)'s rows are the records it counted)",
        ]
    return [*lines, ""]


def _ratios(summaries: Mapping[str, CaseSummary]) -> list[str]:
    full = summaries.get(CASE_FULL)
    incremental = summaries.get(CASE_INCREMENTAL)
    dlt = summaries.get(CASE_DLT)
    bare = summaries.get(CASE_BARE)
    everything = summaries.get(CASE_ALL)
    ratios: list[str] = []
    if full and dlt:
        speedup = _ratio(dlt.wall_s, full.wall_s)
        suffix = "" if dlt.ok_runs == dlt.runs else " (dlt failed or was capped: time until it stopped)"
        ratios.append(f"- dlt / ours (a) wall: **{speedup:.1f}x**{suffix}" if speedup else "- dlt / ours: -")
        peak = _ratio(dlt.peak_mb, full.peak_mb)
        if peak:
            ratios.append(f"- dlt / ours (a) peak memory: {peak:.1f}x")
    if full and bare:
        over_bare = sync_over_bare(full, bare)
        ratios.append(
            f"- (a) sync step / (f) bare-client read: **{over_bare:.2f}x** (goal: <= {TARGET_SYNC_OVER_BARE:.0f}x)"
            if over_bare is not None
            else "- (a) sync step / (f) bare-client read: -"
        )
    if full and incremental:
        share = _ratio(incremental.wall_s, full.wall_s)
        ratios.append(f"- (b) / (a) wall: **{share:.3f}**" if share is not None else "- (b) / (a): -")
        steps = _ratio(incremental.sync_step_s, full.sync_step_s)
        ratios.append(
            f"- (b) / (a) sync step: **{steps:.3f}**" if steps is not None else "- (b) / (a) sync step: -"
        )
        if full.outside_s is not None:
            least = _ratio(full.outside_s, full.wall_s)
            ratios.append(
                f"- Dagster's own floor on this machine: {full.outside_s:.2f} s per process (wall minus the "
                f"run's steps, median of (a)); even a sync step of 0 s leaves (b) / (a) wall at "
                f">= {full.outside_s:.2f} / {full.wall_s:.2f} = {_num(least, 3)}"
            )
    if full and everything:
        peak = _ratio(everything.peak_mb, full.peak_mb)
        wall = _ratio(everything.wall_s, full.wall_s)
        ratios.append(
            f"- (d) peak / (a) peak = **{peak:.2f}** (goal: <= 1.00, the analytics are built inside DuckDB)"
            if peak is not None
            else "- (d) peak / (a) peak = -"
        )
        ratios.append(f"- (d) / (a) wall: {wall:.2f}" if wall is not None else "- (d) / (a) wall: -")
    return ["Ratios (of medians):", *ratios, ""] if ratios else []


def _cpu_table(summaries: Mapping[str, CaseSummary]) -> list[str]:
    cores = os.cpu_count() or 1
    lines = [
        f"CPU seconds during the run (medians; the machine has {cores} cores, the demo server shares them):",
        "",
        "| case | wall s | measured tree CPU s | demo server CPU s | other processes CPU s |",
        "|---|---|---|---|---|",
    ]
    for summary in summaries.values():
        lines.append(
            f"| {summary.label} | {summary.wall_s:.2f} | {summary.cpu_s:.1f} | {summary.server_cpu_s:.1f} | "
            f"{summary.other_cpu_s:.1f} |"
        )
    return [*lines, ""]


def _breakdown(summaries: Mapping[str, CaseSummary]) -> list[str]:
    breakdown = [s for s in summaries.values() if s.all_steps_s is not None]
    if not breakdown:
        return []
    lines = [
        "Where our wall time goes (medians, from Dagster's event log):",
        "",
        "| case | wall s | run steps s | of which sync step s | outside the run s |",
        "|---|---|---|---|---|",
    ]
    for summary in breakdown:
        lines.append(
            f"| {summary.label} | {summary.wall_s:.2f} | {_num(summary.all_steps_s, 2)} | "
            f"{_num(summary.sync_step_s, 2)} | {_num(summary.outside_s, 2)} |"
        )
    lines += [
        "",
        "(run steps = the sync step plus the asset checks; outside the run = interpreter start, imports, "
        "loading the definitions, run storage, shutdown: the median over runs of wall minus run steps)",
        "",
    ]
    everything = summaries.get(CASE_ALL)
    if everything is not None and everything.analytics_steps_s is not None:
        lines += [
            f"(d)'s run steps: sync step {_num(everything.sync_step_s, 2)} s + analytics tables "
            f"{everything.analytics_steps_s:.2f} s + asset checks {_num(everything.check_steps_s, 2)} s "
            "(summed step durations, medians)",
            "",
        ]
    return lines


def _floor_table(summaries: Mapping[str, CaseSummary]) -> list[str]:
    lines = [
        "Rate-limit floor, `(ceil(requests / 120) - 1) * 60 s`:",
        "",
        "| case | requests | floor s | median wall s | wall / floor | 429s | how it ended |",
        "|---|---|---|---|---|---|---|",
    ]
    for summary in summaries.values():
        floor = floor_seconds(summary.requests)
        ratio = _ratio(summary.wall_s, floor)
        ended = "ok" if summary.ok_runs == summary.runs else "; ".join(summary.errors)[:300]
        lines.append(
            f"| {summary.label} | {_num(summary.requests)} | {floor:.0f} | {summary.wall_s:.1f} | "
            f"{f'{ratio:.3f}' if ratio is not None else '-'} | {_num(summary.throttled)} | {ended} |"
        )
    return [*lines, ""]


def _targets_by_shape(verdicts: Mapping[str, Sequence[Check]]) -> str:
    """Every shape's verdicts side by side: a target must hold on each shape."""
    shapes = list(verdicts)
    names = list(dict.fromkeys(check.name for checks in verdicts.values() for check in checks))
    lines = [
        "## Targets by shape",
        "",
        "| target | " + " | ".join(shapes) + " |",
        "|---|" + "---|" * len(shapes),
    ]
    for name in names:
        cells = []
        for shape in shapes:
            check = next((c for c in verdicts[shape] if c.name == name), None)
            cells.append(f"{check.value}: {_verdict(check)}" if check else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def collect_noise(measurements: Sequence[Measurement]) -> list[str]:
    """Runs that shared the CPUs with other work: their times are inflated, their memory less so."""
    notes: list[str] = []
    cores = os.cpu_count() or 1
    for m in measurements:
        if m.other_cpu_s > NOISE_SHARE * m.wall_s * cores:
            notes.append(
                f"{CASE_LABELS[m.case]}, repeat {m.repeat}: other processes used {m.other_cpu_s:.1f} CPU s "
                f"during the run ({m.other_cpu_s / (m.wall_s * cores):.0%} of the machine); its time is inflated"
            )
    return notes


def collect_warnings(settings: Settings, measurements: Sequence[Measurement]) -> list[str]:
    """Anything that makes a number untrustworthy: failures, wrong row counts, throttling."""
    warnings: list[str] = []
    for m in measurements:
        label = f"{CASE_LABELS[m.case]}, repeat {m.repeat}"
        if m.case in OUR_CASES:
            if not m.ok:
                warnings.append(f"{label} failed: {m.error}")
            if m.bookings_rows != settings.bookings:
                warnings.append(
                    f"{label}: {OUR_TABLE} has {m.bookings_rows} rows, expected exactly {settings.bookings:,}"
                )
            if m.throttled:
                warnings.append(f"{label}: the server answered 429 {m.throttled} time(s)")
        elif not m.ok:
            warnings.append(f"{label} did not finish: {m.error}")
        elif m.bookings_rows != settings.bookings:
            where = f"{DLT_TABLE} has" if m.case == CASE_DLT else "counted"
            warnings.append(f"{label}: {where} {m.bookings_rows} rows, expected {settings.bookings:,}")
    return warnings
