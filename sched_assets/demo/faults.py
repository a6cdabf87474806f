"""Fault knobs for the demo API. All are off by default and deterministic given `seed`."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

RANDOM_STATUSES = (500, 502, 503, 504)


@dataclass
class Faults:
    """What can go wrong, and how often.

    Rates are fractions of requests (0..1). Random faults apply to API requests only (never to the
    `/_demo/` admin endpoints) and, when `resources` is set, only to those resource names
    (`bookings`, `event_types`, `teams`, `team_event_types`, ...). The sequence of faults depends only
    on `seed` and the order of requests.

    Shape knobs: `legacy_event_types` (default on, like the service) answers GET /event-types without
    the exact `cal-api-version: 2024-06-14` in the old grouped shape; off, it always answers in the
    documented flat shape. `max_take` caps the bookings page size below what the client asked for,
    and the pagination says so (`itemsPerPage`). `reset_header` picks what `X-RateLimit-Reset-Default`
    carries: `"seconds"` until the reset, or the reset's Unix `"epoch"` time (sources disagree).

    Live-change knobs (the account changes while it is read; see `live.py`): after serving each
    bookings page that has rows (200 only), `edits_per_page` bookings (on average, drawn from the
    seed) are edited: updatedAt becomes a new latest instant, version and title change, sometimes
    status. `deletes_per_page` bookings are hard-deleted among those BEFORE the page in the query's
    order (already read: offset paging then skips the row at the next page boundary).
    `edit_targets` picks edited rows from `"any"` live row or the `"unread"` ones after the page.
    Neither applies until `live_changes_after` requests have been served (counted like
    `stats.requests`: since start or the last reset-stats), so a test can sync first.
    """

    seed: int = 0
    error_rate: float = 0.0  # answered 500/502/503/504 instead of the real response
    html_fraction: float = 0.5  # of those errors, the share with an HTML gateway page body
    latency: float = 0.0  # seconds added to every request
    spike_rate: float = 0.0  # share of requests that get `spike_latency` more
    spike_latency: float = 2.0
    truncate_rate: float = 0.0  # 200 with the body cut in half (invalid JSON)
    reset_rate: float = 0.0  # connection reset, no response
    timeout_rate: float = 0.0  # the server stalls longer than any sane client timeout
    # resource name (also `teams`, `team_event_types`) -> status, every time
    fail_status: dict[str, int] = field(default_factory=dict)
    fail_team_ids: frozenset[int] = frozenset()  # GET /teams/{id}/event-types answers 500 for these
    fail_after: int | None = None  # after N successful requests, every request gets 503
    ignore_skip: bool = False  # bookings: every page is the first page
    overstate_total: int = 0  # bookings: pagination.totalItems lies by this much
    drift: bool = False  # bookings: new fields and changed types midway through the stream
    max_take: int | None = None  # bookings: pages hold at most this many, whatever `take` asked
    legacy_event_types: bool = True  # GET /event-types without the exact header: the old grouped shape
    reset_header: str = "seconds"  # X-RateLimit-Reset-Default: "seconds" until reset, or "epoch" time
    resources: frozenset[str] | None = None  # limit the random faults to these resources
    edits_per_page: float = 0.0  # bookings: rows edited after each page (mean)
    deletes_per_page: float = 0.0  # bookings: already-read rows hard-deleted after each page (mean)
    edit_targets: str = "any"  # "any" live row, or "unread": after the page in the query's order
    live_changes_after: int = 0  # requests served before edits/deletes start

    def __post_init__(self) -> None:
        if self.reset_header not in RESET_HEADERS:
            raise ValueError(f"reset_header must be one of {', '.join(RESET_HEADERS)}")
        if self.max_take is not None and self.max_take < 1:
            raise ValueError("max_take must be at least 1")
        if self.edit_targets not in EDIT_TARGETS:
            raise ValueError(f"edit_targets must be one of {', '.join(EDIT_TARGETS)}")
        if min(self.edits_per_page, self.deletes_per_page, self.live_changes_after) < 0:
            raise ValueError("edits_per_page, deletes_per_page and live_changes_after must be >= 0")


RESET_HEADERS = ("seconds", "epoch")
EDIT_TARGETS = ("any", "unread")
_BOOL_FIELDS = {"ignore_skip", "drift", "legacy_event_types"}
_INT_FIELDS = {"seed", "overstate_total", "live_changes_after"}
_OPTIONAL_INT_FIELDS = {"fail_after", "max_take"}


def faults_from_params(params: Mapping[str, str]) -> Faults:
    """Build `Faults` from string parameters (admin endpoint, CLI): `error_rate=0.2&drift=1&...`.

    `fail_status` is `bookings=403,team_event_types=404`; `resources` and `fail_team_ids` are comma
    lists; `reset_header` is `seconds` or `epoch`; `edit_targets` is `any` or `unread`. Unknown names (or values) raise ValueError.
    """
    names = {f.name for f in fields(Faults)}
    unknown = set(params) - names
    if unknown:
        raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    for name, raw in params.items():
        if name in _BOOL_FIELDS:
            values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif name in _INT_FIELDS:
            values[name] = int(raw)
        elif name in _OPTIONAL_INT_FIELDS:
            values[name] = None if raw.strip().lower() in ("", "none") else int(raw)
        elif name == "fail_status":
            pairs = (item.split("=", 1) for item in raw.split(",") if item.strip())
            values[name] = {key.strip(): int(status) for key, status in pairs}
        elif name == "resources":
            values[name] = frozenset(r.strip() for r in raw.split(",") if r.strip()) or None
        elif name == "fail_team_ids":
            values[name] = frozenset(int(t) for t in raw.split(",") if t.strip())
        elif name in ("reset_header", "edit_targets"):
            values[name] = raw.strip().lower()
        else:
            values[name] = float(raw)
    return Faults(**values)  # type: ignore[arg-type]


def faults_json(faults: Faults) -> dict[str, Any]:
    """`faults` as JSON-friendly values (sets as sorted lists), for the admin endpoint's answer."""
    out = asdict(faults)
    for name, value in out.items():
        if isinstance(value, frozenset):
            out[name] = sorted(value)
    return out


@dataclass(frozen=True)
class Roll:
    """The fault draws for one request (always the same number of draws, so sequences are stable)."""

    kind: str  # "ok" | "reset" | "timeout" | "error" | "truncate"
    error_status: int
    html: bool
    spike: bool


class FaultDice:
    """Draws a `Roll` per request from the faults' seed; `live` is the live changes' own stream
    (separate, so turning live changes on does not shift the sequence of faults). A `salt` (an
    account's name when one server serves several) gives each account its own sequences."""

    def __init__(self, faults: Faults, salt: str = "") -> None:
        self.faults = faults
        self._rng = random.Random(f"demo-faults:{faults.seed}{salt}")
        self.live = random.Random(f"demo-live:{faults.seed}{salt}")

    def roll(self) -> Roll:
        f, rng = self.faults, self._rng
        pick, status_draw, html_draw, spike_draw = rng.random(), rng.random(), rng.random(), rng.random()
        kind = "ok"
        edge = 0.0
        for name, rate in (
            ("reset", f.reset_rate),
            ("timeout", f.timeout_rate),
            ("error", f.error_rate),
            ("truncate", f.truncate_rate),
        ):
            edge += rate
            if pick < edge:
                kind = name
                break
        return Roll(
            kind=kind,
            error_status=RANDOM_STATUSES[int(status_draw * len(RANDOM_STATUSES))],
            html=html_draw < f.html_fraction,
            spike=spike_draw < f.spike_rate,
        )
