"""The asset-page charts: real rendering (matplotlib's Agg), decoded back and checked, nothing mocked."""

from __future__ import annotations

import base64
import io
import math
import random
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from sched_assets.analytics import charts
from sched_assets.analytics.charts import (
    MAX_PNG_BYTES,
    EventTypeBar,
    UtilizationPoint,
    event_type_chart,
    png_markdown,
    rank_schedules,
    top_event_types,
    truncate,
    utilization_chart,
    weekly_utilization,
)

# Rendering warnings (a date locator that gives up, a glyph missing from the font) are failures: those
# matplotlib raises itself, and those it attributes to the caller (`warn_external`: our chart code).
# Not any warning at all: an unrelated leftover of another test (a subprocess collected here) is not.
pytestmark = [
    pytest.mark.filterwarnings("error:::matplotlib"),
    pytest.mark.filterwarnings("error:::sched_assets"),
]

REPO_ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_SHAPE = (450, 800)  # rows, columns: 8 x 4.5 in at 100 dpi
NO_DATA_SHAPE = (120, 400)
MONDAY = date(2024, 1, 1)


def decode(png: bytes):
    """The pixels of `png` (rows x columns x channels), after checking the signature."""
    from matplotlib.image import imread

    assert png.startswith(PNG_SIGNATURE)
    return imread(io.BytesIO(png), format="png")


def year_of_points(schedules: int = 30, days: int = 365, seed: int = 7) -> list[UtilizationPoint]:
    """Noisy daily points (the worst case for PNG compression), weekends without availability."""
    rng = random.Random(seed)
    points = []
    for s in range(schedules):
        for d in range(days):
            day = MONDAY + timedelta(days=d)
            available = 0.0 if day.weekday() >= 5 else 480.0
            points.append(
                UtilizationPoint(f"schedule {s:02d}", day, rng.uniform(0, 1.1 * available), available)
            )
    return points


def many_event_types(count: int = 200, seed: int = 7) -> list[EventTypeBar]:
    rng = random.Random(seed)
    return [
        EventTypeBar(
            f"Event type {i}: " + "a rather long title " * (i % 4),
            rng.randint(0, 500),
            None if i % 7 == 0 else rng.random() / 2,
        )
        for i in range(count)
    ]


SMALL_POINTS = [
    UtilizationPoint("a", MONDAY, 30, 60),
    UtilizationPoint("b", MONDAY + timedelta(days=1), 45, 90),
]
SMALL_BARS = [EventTypeBar("30 min", 10, 0.1), EventTypeBar("Intro", 4, None)]


# ---- the PNGs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("render", "data"),
    [(utilization_chart, SMALL_POINTS), (event_type_chart, SMALL_BARS)],
    ids=["utilization", "event_types"],
)
def test_charts_are_valid_pngs_of_the_fixed_size(render, data):
    pixels = decode(render(data))
    assert pixels.shape[:2] == CHART_SHAPE
    # Something is drawn: not a blank canvas.
    assert pixels.min() < 0.5


def test_a_single_week_and_a_single_event_type():
    one_week = [UtilizationPoint("a", MONDAY + timedelta(days=d), 60, 240) for d in range(5)]
    assert decode(utilization_chart(one_week)).shape[:2] == CHART_SHAPE
    assert decode(event_type_chart([EventTypeBar("Intro", 1, 1.0)])).shape[:2] == CHART_SHAPE


def test_large_inputs_stay_below_the_size_budget():
    utilization = utilization_chart(year_of_points())
    event_types = event_type_chart(many_event_types())
    for png in (utilization, event_types):
        assert decode(png).shape[:2] == CHART_SHAPE
        assert len(png) < MAX_PNG_BYTES


def test_same_data_gives_the_same_bytes():
    points, bars = year_of_points(schedules=10), many_event_types()
    assert utilization_chart(points) == utilization_chart(list(reversed(points)))
    assert event_type_chart(bars) == event_type_chart(list(reversed(bars)))


def test_different_data_gives_different_bytes():
    changed_points = [*SMALL_POINTS[:-1], UtilizationPoint("b", MONDAY + timedelta(days=1), 80, 90)]
    assert utilization_chart(SMALL_POINTS) != utilization_chart(changed_points)
    changed_bars = [EventTypeBar("30 min", 10, 0.5), SMALL_BARS[1]]
    assert event_type_chart(SMALL_BARS) != event_type_chart(changed_bars)


@pytest.mark.parametrize(
    ("render", "data"),
    [
        (utilization_chart, []),
        (utilization_chart, [UtilizationPoint("a", MONDAY, 30, 0), UtilizationPoint("b", MONDAY, 0, 0)]),
        (event_type_chart, []),
        (event_type_chart, [EventTypeBar("30 min", 0, None)]),
    ],
    ids=["no_points", "no_available_minutes", "no_bars", "no_bookings"],
)
def test_no_data_gives_a_small_valid_png(render, data):
    png = render(data)
    assert decode(png).shape[:2] == NO_DATA_SHAPE
    assert len(png) < 10_000


def test_no_data_placeholders_name_their_chart():
    assert utilization_chart([]) != event_type_chart([])


def test_png_markdown_round_trips():
    png = event_type_chart(SMALL_BARS)
    markdown = png_markdown(png, "Bookings [by event type]\nand cancellations")
    match = re.fullmatch(r"!\[([^\[\]\n]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:80]
    assert match.group(1) == "Bookings (by event type) and cancellations"
    assert base64.b64decode(match.group(2), validate=True) == png


# ---- weekly utilization -----------------------------------------------------------------------------


def test_weekly_utilization_hand_computed():
    points = [
        # Week of Monday 1 January: (30 + 15 + 0) / (60 + 90 + 50) = 22.5 %, whatever the order.
        UtilizationPoint("a", date(2024, 1, 7), 0, 50),  # Sunday: still the week of the 1st
        UtilizationPoint("a", date(2024, 1, 1), 30, 60),
        UtilizationPoint("a", date(2024, 1, 3), 15, 90),
        # Week of the 8th: bookings but no availability.
        UtilizationPoint("a", date(2024, 1, 8), 10, 0),
        # Week of the 15th: 10 / 40.
        UtilizationPoint("a", date(2024, 1, 16), 10, 40),
        # "b" only in the last week, overbooked.
        UtilizationPoint("b", date(2024, 1, 21), 90, 60),
    ]
    assert weekly_utilization(points) == {
        "a": [(date(2024, 1, 1), 22.5), (date(2024, 1, 8), None), (date(2024, 1, 15), 25.0)],
        "b": [(date(2024, 1, 1), None), (date(2024, 1, 8), None), (date(2024, 1, 15), 150.0)],
    }
    assert weekly_utilization([]) == {}


def test_weeks_without_availability_are_gaps_not_zero():
    # Two weeks of work, two weeks off (no rows at all, then rows with 0 available), two weeks of work.
    points = [
        UtilizationPoint("a", MONDAY + timedelta(days=d), 120, 0 if 14 <= d < 21 else 240)
        for d in [*range(21), *range(28, 42)]  # the fourth week has no rows
    ]
    weeks = weekly_utilization(points)["a"]
    assert [value for _, value in weeks] == [50.0, 50.0, None, None, 50.0, 50.0]
    # And the line drawn has NaN there (a break), not 0.
    with charts._style():
        figure = charts._utilization_figure(points)
    assert figure is not None
    drawn = list(figure.axes[0].get_lines()[0].get_ydata())
    assert drawn[:2] == [50.0, 50.0] and drawn[4:] == [50.0, 50.0]
    assert all(math.isnan(v) for v in drawn[2:4])


def test_at_most_eight_schedules_the_most_booked_and_the_legend_says_so():
    points = [
        UtilizationPoint(f"s{i:02d}", MONDAY + timedelta(days=d), float(i), 480)
        for i in range(12)
        for d in range(7)
    ]
    # "empty" has bookings but never any availability: it cannot be drawn, so it does not count.
    points.append(UtilizationPoint("empty", MONDAY, 10_000, 0))
    ranked = rank_schedules(points)
    assert ranked == [f"s{i:02d}" for i in range(11, -1, -1)]

    with charts._style():
        figure = charts._utilization_figure(points)
    assert figure is not None
    legend = figure.legends[0]
    assert [text.get_text() for text in legend.get_texts()] == ranked[:8]
    assert legend.get_title().get_text() == "8 most booked of 12\n(4 not shown)"
    assert figure.axes[0].get_title() == "Weekly utilization by schedule"
    assert figure.axes[0].get_ylabel() == "utilization (%)"

    with charts._style():
        few = charts._utilization_figure(points[:14])  # s00 and s01 only
    assert few is not None
    assert few.legends[0].get_title().get_text() == ""


def test_rank_ties_are_broken_by_name():
    points = [UtilizationPoint(name, MONDAY, 60, 120) for name in ("c", "a", "b")]
    assert rank_schedules(points) == ["a", "b", "c"]


# ---- event types ------------------------------------------------------------------------------------


def test_top_event_types_and_others():
    bars = [EventTypeBar(f"t{i:02d}", 100 - i, 0.1) for i in range(15)]
    rest = [
        EventTypeBar("r1", 10, 0.5),
        EventTypeBar("r2", 30, 0.0),
        EventTypeBar("r3", 5, None),  # unknown rate: counted in bookings, not in the rate
    ]
    grouped = top_event_types(list(reversed(bars)) + rest)
    assert [bar.label for bar in grouped[:15]] == [f"t{i:02d}" for i in range(15)]
    others = grouped[15]
    assert others.label == "others (3)"
    assert others.bookings == 45
    assert others.cancellation_rate == pytest.approx((10 * 0.5 + 30 * 0.0) / 40)
    assert len(grouped) == 16

    # No "others" bar when everything fits; unknown rates of the rest give an unknown rate.
    assert top_event_types(bars) == bars
    grouped = top_event_types([*bars, EventTypeBar("x", 1, None)])
    assert grouped[-1] == EventTypeBar("others (1)", 1, None)
    # Ties: by label.
    assert [b.label for b in top_event_types([EventTypeBar(x, 5, None) for x in "cab"])] == ["a", "b", "c"]


def test_event_type_chart_labels_rates_and_truncation():
    long_title = "A very long event type title that goes on and on, well past any sensible width"
    bars = [
        EventTypeBar(long_title, 40, 0.12),
        EventTypeBar(long_title, 20, None),  # same title: still its own bar
        *(EventTypeBar(f"t{i:02d}", 10, 0.0) for i in range(20)),
    ]
    with charts._style():
        figure = charts._event_type_figure(bars)
    assert figure is not None
    ax = figure.axes[0]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert len(labels) == 16
    assert labels[0] == labels[1] == truncate(long_title)
    assert len(labels[0]) == charts.MAX_LABEL_CHARS and labels[0].endswith("…")
    assert labels[-1] == "others (7)"
    texts = [text.get_text() for text in ax.texts]
    assert "12% cancelled" in texts
    assert ax.get_title() == "Bookings and cancellation rate by event type"
    assert ax.get_xlabel() == "bookings"


def test_a_huge_others_bar_is_cut_and_says_so():
    bars = [EventTypeBar(f"t{i:02d}", 10, 0.0) for i in range(215)]
    with charts._style():
        figure = charts._event_type_figure(bars)
    assert figure is not None
    ax = figure.axes[0]
    # The scale follows the named event types, not the 2,000 bookings of "others".
    assert ax.get_xlim()[1] == pytest.approx(12.5)
    assert any(text.get_text().startswith("2,000 bookings (bar cut) · 0% cancelled") for text in ax.texts)


def test_truncate():
    assert truncate("short") == "short"
    assert truncate("two\nlines  and   spaces") == "two lines and spaces"
    assert truncate("x" * 40, 10) == "x" * 9 + "…"


# ---- import cost ------------------------------------------------------------------------------------


def test_importing_the_module_does_not_import_matplotlib():
    code = (
        "import sys, sched_assets.analytics.charts\n"
        "heavy = [m for m in ('matplotlib', 'numpy', 'pandas', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
