"""PNG charts for the asset pages: weekly utilization per schedule, and bookings per event type.

Dagster renders markdown metadata, including `![alt](data:image/png;base64,...)`, so a chart is a
PNG embedded in a metadata string (`png_markdown`). Inputs are plain Python values (the caller reads
the few rows it needs from DuckDB); the aggregation and grouping helpers are pure and tested alone.

Rendering is deterministic, so the same data gives the same bytes with the same installed versions
(and an unchanged chart does not look like a change in the asset's metadata history): matplotlib's
Agg renderer on a `Figure` of its own (never pyplot's global state), matplotlib's default style
whatever the local matplotlibrc says, a fixed size and DPI, sorted inputs with explicit tie-breaks,
and a PNG without text chunks (no "Software" version, no timestamp). The PNG has a 256-colour palette,
which keeps a busy chart well under `MAX_PNG_BYTES`.

matplotlib is imported inside the functions only: every process that loads the code location imports
this package, and matplotlib (with NumPy) would add a noticeable import cost to each of them.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

T = TypeVar("T")

# Larger data URLs make the asset page slow to load and the metadata heavy to store; the charts stay
# well below this (tests hold them to it), callers need not check it.
MAX_PNG_BYTES = 200_000

FIGSIZE = (8.0, 4.5)  # inches: 800 x 450 pixels at DPI
NO_DATA_FIGSIZE = (4.0, 1.2)  # 400 x 120 pixels
DPI = 100

MAX_SCHEDULES = 8  # more lines than this cannot be told apart (and the default cycle has 10 colours)
MAX_EVENT_TYPES = 15
MAX_LABEL_CHARS = 32
MAX_LEGEND_CHARS = 28  # the legend shares the figure's width with the plot

UTILIZATION_TITLE = "Weekly utilization by schedule"
EVENT_TYPE_TITLE = "Bookings and cancellation rate by event type"

# rcParams are global to the process: two threads drawing at once would see each other's style (and
# matplotlib is not thread-safe anyway), so one chart is drawn at a time.
_LOCK = threading.Lock()

# On top of matplotlib's default style: small enough text for 16 bars or 8 legend entries in 450 px.
_RC = {
    "font.size": 9,
    "axes.titlesize": 11,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class UtilizationPoint:
    """Booked and available minutes of one schedule on one local date."""

    schedule: str
    day: date
    booked_minutes: float
    available_minutes: float


@dataclass(frozen=True)
class EventTypeBar:
    """Bookings of one event type, and the share of them cancelled (0..1; None when unknown)."""

    label: str
    bookings: int
    cancellation_rate: float | None


# ---- pure helpers -------------------------------------------------------------------------------


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def weekly_utilization(points: Sequence[UtilizationPoint]) -> dict[str, list[tuple[date, float | None]]]:
    """Utilization in percent per schedule (sorted by name) and week (Mondays, oldest first).

    A week's utilization is its booked minutes over its available minutes, so busy and quiet days
    weigh by their availability, not equally. Every schedule gets every week from the first to the
    last week of the data; a week without available minutes (none, or no rows at all) is None, a gap
    in the line rather than a misleading 0 %.
    """
    if not points:
        return {}
    booked: defaultdict[tuple[str, date], float] = defaultdict(float)
    available: defaultdict[tuple[str, date], float] = defaultdict(float)
    for p in points:
        key = (p.schedule, week_start(p.day))
        booked[key] += p.booked_minutes
        available[key] += p.available_minutes
    first = min(week for _, week in available)
    last = max(week for _, week in available)
    weeks = [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
    series: dict[str, list[tuple[date, float | None]]] = {}
    for schedule in sorted({schedule for schedule, _ in available}):
        values: list[tuple[date, float | None]] = []
        for week in weeks:
            minutes = available.get((schedule, week), 0.0)
            values.append(
                (week, 100.0 * booked.get((schedule, week), 0.0) / minutes if minutes > 0 else None)
            )
        series[schedule] = values
    return series


def rank_schedules(points: Sequence[UtilizationPoint]) -> list[str]:
    """Schedules that can be drawn (some available minutes), most booked minutes first, then by name."""
    booked: defaultdict[str, float] = defaultdict(float)
    available: defaultdict[str, float] = defaultdict(float)
    for p in points:
        booked[p.schedule] += p.booked_minutes
        available[p.schedule] += p.available_minutes
    drawable = [schedule for schedule, minutes in available.items() if minutes > 0]
    return sorted(drawable, key=lambda schedule: (-booked[schedule], schedule))


def top_event_types(bars: Sequence[EventTypeBar], limit: int = MAX_EVENT_TYPES) -> list[EventTypeBar]:
    """The `limit` event types with the most bookings (ties by label), the rest summed as "others (N)".

    The others' cancellation rate is weighted by bookings, over the event types whose rate is known.
    """
    ranked = sorted(bars, key=lambda bar: (-bar.bookings, bar.label, bar.cancellation_rate or 0.0))
    if len(ranked) <= limit:
        return ranked
    top, rest = ranked[:limit], ranked[limit:]
    rated = [bar for bar in rest if bar.cancellation_rate is not None]
    rated_bookings = sum(bar.bookings for bar in rated)
    rate = (
        sum(bar.bookings * (bar.cancellation_rate or 0.0) for bar in rated) / rated_bookings
        if rated_bookings > 0
        else None
    )
    return [*top, EventTypeBar(f"others ({len(rest)})", sum(bar.bookings for bar in rest), rate)]


def truncate(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    """`label` on one line, cut to `limit` characters (an ellipsis marks the cut)."""
    label = " ".join(label.split())
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def png_markdown(png: bytes, alt: str) -> str:
    """The PNG as a markdown image with a data URL, for a Dagster `MetadataValue.md`."""
    # Brackets or a newline in the alt text would end the image syntax early.
    alt = " ".join(alt.replace("[", "(").replace("]", ")").split())
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


# ---- rendering ----------------------------------------------------------------------------------


def utilization_chart(points: Sequence[UtilizationPoint]) -> bytes:
    """Weekly utilization of the (at most 8) most booked schedules as lines; a PNG of 800 x 450 px."""
    return _render(_utilization_figure, points, UTILIZATION_TITLE)


def event_type_chart(bars: Sequence[EventTypeBar]) -> bytes:
    """Bookings per event type as horizontal bars, with the cancellation rate at the end of each bar."""
    return _render(_event_type_figure, bars, EVENT_TYPE_TITLE)


def _render(build: Callable[[Sequence[T]], Figure | None], data: Sequence[T], title: str) -> bytes:
    """The PNG of `build(data)`, or a small "no data yet" PNG when it has nothing to draw."""
    with _LOCK, _style():
        figure = build(data)
        if figure is None:
            figure = _figure(NO_DATA_FIGSIZE)
            figure.text(0.5, 0.5, f"{title}\nno data yet", ha="center", va="center", color="0.4")
        return _png(figure)


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib.style

    # "default" resets to matplotlib's own defaults, so a local matplotlibrc cannot change the bytes.
    # It must hold from building the figure to drawing it: artists read some rcParams only then.
    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    """Draw `figure` with Agg and encode it as a 256-colour palette PNG."""
    # Pillow is a dependency of matplotlib (which imports it anyway to write PNGs).
    from PIL import Image

    canvas = figure.canvas
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    # A palette instead of true colour: antialiased lines give a true-colour PNG thousands of shades
    # (165 KB for a year of 8 lines, 195 KB for three years); 256 look the same at 40 % of the size.
    # The background is opaque, so the alpha channel carries nothing. Pillow writes no text chunks
    # (no "Software" version, no time), so the bytes depend on the pixels alone.
    buffer = io.BytesIO()
    rgba.convert("RGB").quantize(colors=256).save(buffer, format="PNG")
    return buffer.getvalue()


def _utilization_figure(points: Sequence[UtilizationPoint]) -> Figure | None:
    """The line chart, or None when no schedule has available minutes (build it under `_style()`)."""
    ranked = rank_schedules(points)
    if not ranked:
        return None
    shown = ranked[:MAX_SCHEDULES]
    series = weekly_utilization(points)

    import matplotlib.dates as mdates

    figure = _figure(FIGSIZE)
    ax = figure.add_subplot()
    weeks = [week for week, _ in series[shown[0]]]  # the same weeks for every schedule
    for schedule in shown:
        # NaN, not None: matplotlib breaks the line there.
        values = [math.nan if value is None else value for _, value in series[schedule]]
        # Markers keep a week between two gaps visible (a line needs two points).
        label = truncate(schedule, MAX_LEGEND_CHARS)
        ax.plot(weeks, values, marker="o", markersize=2.5, linewidth=1.4, label=label)
    ax.axhline(100, color="0.5", linewidth=0.8, linestyle="--")  # above it: overbooked
    ax.set_ylim(bottom=0)
    # Three days either side: the end points clear the axes, and a single week is still a range
    # (AutoDateLocator cannot place ticks on an empty one).
    ax.set_xlim(weeks[0] - timedelta(days=3), weeks[-1] + timedelta(days=3))
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(UTILIZATION_TITLE)
    ax.set_ylabel("utilization (%)")
    ax.set_xlabel("week (starting Monday)")
    left_out = len(ranked) - len(shown)
    note = f"{len(shown)} most booked of {len(ranked)}\n({left_out} not shown)" if left_out else None
    figure.legend(loc="outside right upper", title=note, title_fontsize=8)
    return figure


def _event_type_figure(bars: Sequence[EventTypeBar]) -> Figure | None:
    """The bar chart, or None when there are no bookings at all (build it under `_style()`)."""
    if not any(bar.bookings > 0 for bar in bars):
        return None
    grouped = top_event_types(bars)
    has_others = len(grouped) > MAX_EVENT_TYPES
    named = grouped[:-1] if has_others else grouped
    # The scale follows the named event types: a long tail summed into "others" can be many times the
    # largest of them and would squash every other bar to a sliver. A longer "others" bar is cut at the
    # edge and says so. (Some bar has bookings, so the most booked one, a named one, has.)
    right = max(bar.bookings for bar in named) * 1.25  # room on the right for "NN% cancelled"

    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    figure = _figure(FIGSIZE)
    ax = figure.add_subplot()
    # Numeric positions, not the labels: two event types with the same (truncated) title would
    # otherwise share one bar.
    positions = list(range(len(grouped)))
    colors = ["C0"] * len(named) + ["0.7"] * has_others  # grey: "others" is a sum, not an event type
    container = ax.barh(positions, [bar.bookings for bar in grouped], color=colors, height=0.7)
    ax.set_yticks(positions, [truncate(bar.label) for bar in grouped])
    ax.invert_yaxis()  # most booked on top
    rates = [
        "" if bar.cancellation_rate is None else f"{bar.cancellation_rate:.0%} cancelled" for bar in grouped
    ]
    if has_others and grouped[-1].bookings > right:
        text = " · ".join(filter(None, [f"{grouped[-1].bookings:,} bookings (bar cut)", rates[-1]]))
        ax.text(right, positions[-1], text + " ", ha="right", va="center", fontsize=8, color="0.1")
        rates[-1] = ""
    ax.bar_label(container, labels=rates, padding=3, fontsize=8, color="0.3")
    ax.set_xlim(0, right)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "2.5 bookings" ticks
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(axis="y", visible=False)
    ax.set_title(EVENT_TYPE_TITLE)
    ax.set_xlabel("bookings")
    ax.set_ylabel("event type")
    return figure
