"""`DemoApi`: the HTTP behaviour of the scheduling API, independent of any transport.

`handle(method, path, query, headers)` returns a `DemoResponse`; `transport.py` (in-process httpx)
and `server.py` (a real socket) only translate it. Everything the real service does that a client
must survive lives here: auth, version-dependent shapes, paging, filters, rate limiting, faults.
Routing is in `routes.py`, bookings pages in `pages.py`, the `/_demo/` test hooks in `admin.py`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from sched_assets.api.specs import ENDPOINTS, EndpointSpec
from sched_assets.demo.admin import ADMIN_PREFIX, admin_response
from sched_assets.demo.faults import FaultDice, Faults, Roll
from sched_assets.demo.generator import BOOKING_ID_BASE, DemoAccount
from sched_assets.demo.live import apply_live_changes
from sched_assets.demo.pages import ServedPage, bookings_body
from sched_assets.demo.query import BookingIndex, QueryError
from sched_assets.demo.ratelimit import UNLIMITED, Decision, RateLimit, RateLimiter
from sched_assets.demo.routes import TEAM_EVENT_TYPES, Route, Router
from sched_assets.demo.shapes import error_body, gateway_html

DEMO_API_KEY = "cal_demo_public_key"  # public on purpose; never `cal_live_...`
JSON_TYPE = "application/json; charset=utf-8"
EVENT_TYPES_VERSION = "2024-06-14"  # the documented GET /event-types shape; anything else: legacy
_INTEGER = re.compile(r"-?\d+")
Action = Literal["ok", "reset", "truncate", "timeout"]


@dataclass
class DemoResponse:
    """What the API answers. `action` tells the transport how to deliver it; `delay` is latency to add."""

    status: int
    headers: dict[str, str]
    body: bytes
    action: Action = "ok"
    delay: float = 0.0

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Stats:
    """Request counters for tests and benchmarks (admin endpoints are not counted)."""

    requests: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_action: Counter[str] = field(default_factory=Counter)
    edited: int = 0  # bookings edited by the live-change knobs
    deleted: int = 0  # bookings hard-deleted by the live-change knobs
    # Clock readings of requests that arrived while their key was blocked: a polite client sends none.
    blocked_times: list[float] = field(default_factory=list)
    # (clock, method, path, status, action) of recent requests, for pacing assertions.
    log: deque[tuple[float, str, str, int, str]] = field(default_factory=lambda: deque(maxlen=100_000))

    @property
    def throttled(self) -> int:
        return self.by_status[429]

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_action": dict(self.by_action),
            "throttled": self.throttled,
            "blocked_requests": len(self.blocked_times),
            "blocked_times": list(self.blocked_times),
            "edited": self.edited,
            "deleted": self.deleted,
        }


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _success(data: Any) -> bytes:
    return orjson.dumps({"status": "success", "data": data})


class DemoApi:
    """The fake API. Thread-safe: one lock serialises request handling and mutations.

    `wall_clock` (epoch seconds) only feeds the `reset_header="epoch"` fault knob; `clock` drives
    the rate limiter and the stats.
    """

    def __init__(
        self,
        account: DemoAccount,
        api_key: str = DEMO_API_KEY,
        root: str = "/v2",
        faults: Faults | None = None,
        rate_limit: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
        resources: Sequence[EndpointSpec] = ENDPOINTS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.api_key = api_key
        self.root = "/" + root.strip("/") if root.strip("/") else ""
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = Stats()
        self.lock = threading.RLock()
        self._index = BookingIndex(account)
        self._router = Router(self.root, resources)
        self._successes = 0
        self.faults = faults or Faults()
        self.rate_limit = rate_limit
        catalog = account.catalog
        # Unpaged resources answer the same body to every request: rendered once.
        self._static = {
            spec.name: _success(account.response_data(spec))
            for spec in self._router.specs
            if not spec.paged and spec.name != "event_types"
        }
        # GET /event-types: its shape depends on the version header (and the legacy knob), not the spec.
        self._event_types = _success(catalog.event_types_documented())
        self._legacy_event_types = _success(catalog.event_types_data())
        self._team_event_types = {t: _success(catalog.team_event_types(t)) for t in catalog.teams}
        self._legacy_schedules = _success([s.legacy_record() for s in catalog.schedules])
        # Drift starts halfway through the initial bookings, i.e. mid-stream of a full sync.
        self._drift_from = BOOKING_ID_BASE + account.initial // 2

    # ---- configuration ----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self.lock:
            self._faults = faults
            self._dice = FaultDice(faults)

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, rule: RateLimit | None) -> None:
        with self.lock:
            self._rate_limit = rule
            self._limiter = RateLimiter(rule or UNLIMITED, enforce=rule is not None)

    def reset_stats(self) -> None:
        """Zero the counters (and the `fail_after` success count)."""
        with self.lock:
            self.stats = Stats()
            self._successes = 0

    def reset_limits(self) -> None:
        """Forget every key's window and block."""
        with self.lock:
            self._limiter.reset()

    # ---- request handling -------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> DemoResponse:
        """Answer one request. `path` excludes the query string; `query` is already parsed."""
        method = method.upper()
        if path.startswith(ADMIN_PREFIX):
            status, answer = admin_response(self, method, path, query)
            return DemoResponse(status, {"Content-Type": JSON_TYPE}, orjson.dumps(answer))
        with self.lock:
            now = self.clock()
            lowered = {k.lower(): v for k, v in headers.items()}
            self.stats.requests += 1
            self.stats.by_path[path] += 1
            token = _bearer(lowered.get("authorization"))
            decision = self._limiter.hit(token or "anonymous", now)
            if not decision.allowed:
                if decision.blocked_before:
                    self.stats.blocked_times.append(now)
                return self._finish(now, method, path, self._error(429, path, decision))
            route = self._router.resolve(path)
            roll = self._dice.roll()
            response = self._respond(method, path, query, lowered, token, route, roll, decision)
            response.delay = self._faults.latency + (self._faults.spike_latency if roll.spike else 0.0)
            return self._finish(now, method, path, response)

    def _respond(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        token: str | None,
        route: Route | None,
        roll: Roll,
        decision: Decision,
    ) -> DemoResponse:
        faults = self._faults
        targeted = faults.resources is None or (route is not None and route.name in faults.resources)
        kind = roll.kind if targeted else "ok"
        if faults.fail_after is not None and self._successes >= faults.fail_after:
            return self._error(503, path, decision, "Service Unavailable (fail_after)")
        if kind == "reset":
            return DemoResponse(0, {}, b"", "reset")
        if kind == "error":
            if roll.html:
                headers_ = {"Content-Type": "text/html", **self._limit_headers(decision)}
                return DemoResponse(roll.error_status, headers_, gateway_html(roll.error_status))
            return self._error(roll.error_status, path, decision)
        if route is None or method != "GET":
            return self._error(404, path, decision, f"Cannot {method} {path}")
        if token != self.api_key:
            return self._error(401, path, decision)
        if route.name in faults.fail_status:
            return self._error(faults.fail_status[route.name], path, decision)
        try:
            body = self._body(route, query, headers)
        except QueryError as exc:
            details = {"message": [str(exc)], "error": "Bad Request", "statusCode": 400}
            return self._error(400, path, decision, str(exc), details)
        except _Refused as refused:
            return self._error(refused.status, path, decision, refused.message, refused.details)
        response = DemoResponse(200, {"Content-Type": JSON_TYPE, **self._limit_headers(decision)}, body)
        if kind == "timeout":
            response.action = "timeout"
        elif kind == "truncate":
            response.body, response.action = body[: len(body) // 2], "truncate"
        return response

    def _limit_headers(self, decision: Decision) -> dict[str, str]:
        epoch = self.wall_clock() if self._faults.reset_header == "epoch" else None
        return decision.headers(epoch)

    def _error(
        self, status: int, path: str, decision: Decision, message: str | None = None, details: Any = None
    ) -> DemoResponse:
        headers = {"Content-Type": JSON_TYPE, **self._limit_headers(decision)}
        return DemoResponse(status, headers, error_body(status, path, message, details))

    def _finish(self, now: float, method: str, path: str, response: DemoResponse) -> DemoResponse:
        stats = self.stats
        stats.by_action[response.action] += 1
        if response.action != "reset":
            stats.by_status[response.status] += 1
            if 200 <= response.status < 300:
                self._successes += 1
        stats.log.append((now, method, path, response.status, response.action))
        return response

    # ---- bodies -----------------------------------------------------------------------------

    def _body(self, route: Route, query: Mapping[str, str], headers: Mapping[str, str]) -> bytes:
        version = headers.get("cal-api-version")
        if route.name == TEAM_EVENT_TYPES:
            return self._team_body(route.team_id or "")
        spec = route.spec
        assert spec is not None
        if spec.name == "bookings":
            versioned = version == spec.version
            body, served = bookings_body(
                self.account, self._index, query, versioned, self._faults, self._drift_from
            )
            self._live_changes(served)
            return body
        if spec.name == "event_types":
            legacy = self._faults.legacy_event_types and version != EVENT_TYPES_VERSION
            return self._legacy_event_types if legacy else self._event_types
        if spec.name == "schedules" and version != spec.version:
            return self._legacy_schedules  # missing/unknown/quoted version: the old shape, silently
        # The other resources ignore every query parameter: each `skip` returns the same full list.
        return self._static[spec.name]

    def _live_changes(self, served: ServedPage) -> None:
        """After a bookings page (its body is built, the answer is 200): the live-change knobs."""
        f = self._faults
        if (f.edits_per_page or f.deletes_per_page) and self.stats.requests > f.live_changes_after:
            edited, deleted = apply_live_changes(self.account, served, f, self._dice.live)
            self.stats.edited += edited
            self.stats.deleted += deleted

    def _team_body(self, raw: str) -> bytes:
        if not _INTEGER.fullmatch(raw):  # the service's ParseIntPipe
            message = "Validation failed (numeric string is expected)"
            raise _Refused(400, message, {"message": message, "error": "Bad Request", "statusCode": 400})
        team_id = int(raw)
        body = self._team_event_types.get(team_id)
        if body is None:
            raise _Refused(404, f"Team with id {team_id} not found")
        if team_id in self._faults.fail_team_ids:
            raise _Refused(500, f"Internal server error (fail_team_ids: team {team_id})")
        return body


class _Refused(Exception):
    """An error answer decided while building a body (bad path parameter, unknown team, forced failure)."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details
