"""`DemoApi`: the HTTP behaviour of the scheduling API, independent of any transport.

`handle(method, path, query, headers)` returns a `DemoResponse`; `transport.py` (in-process httpx)
and `server.py` (a real socket) only translate it. Everything the real service does that a client
must survive lives here: auth, version-dependent shapes, paging, filters, rate limiting, faults.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from sched_assets.api.specs import DEFAULT_PAGE_SIZE, ENDPOINTS, MAX_PAGE_SIZE, EndpointSpec
from sched_assets.demo.faults import FaultDice, Faults, Roll, faults_from_params
from sched_assets.demo.generator import BOOKING_ID_BASE, DemoAccount
from sched_assets.demo.query import BookingIndex, BookingQuery, QueryError
from sched_assets.demo.ratelimit import UNLIMITED, Decision, RateLimit, RateLimiter
from sched_assets.demo.shapes import drift_booking, error_body, gateway_html, legacy_booking
from sched_assets.demo.timefmt import parse_iso

DEMO_API_KEY = "cal_demo_public_key"  # public on purpose; never `cal_live_...`
ADMIN_PREFIX = "/_demo/"
JSON_TYPE = "application/json; charset=utf-8"
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
        }


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer number") from None
    if value < low:
        raise QueryError(f"{name} must not be less than {low}")
    if high is not None and value > high:
        raise QueryError(f"{name} must not be greater than {high}")
    return value


class DemoApi:
    """The fake API. Thread-safe: one lock serialises request handling and mutations."""

    def __init__(
        self,
        account: DemoAccount,
        api_key: str = DEMO_API_KEY,
        root: str = "/v2",
        faults: Faults | None = None,
        rate_limit: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
        resources: Sequence[EndpointSpec] = ENDPOINTS,
    ) -> None:
        self.account = account
        self.api_key = api_key
        self.root = "/" + root.strip("/") if root.strip("/") else ""
        self.clock = clock
        self.stats = Stats()
        self._lock = threading.RLock()
        self._index = BookingIndex(account)
        self._routes: dict[str, EndpointSpec] = {spec.path: spec for spec in resources}
        self._successes = 0
        self.faults = faults or Faults()
        self.rate_limit = rate_limit
        # Unpaged resources answer the same body to every request: rendered once from their spec.
        self._static = {
            spec.name: orjson.dumps({"status": "success", "data": account.response_data(spec)})
            for spec in resources
            if not spec.paged
        }
        legacy = [s.legacy_record() for s in account.catalog.schedules]
        self._legacy_schedules = orjson.dumps({"status": "success", "data": legacy})
        # Drift starts halfway through the initial bookings, i.e. mid-stream of a full sync.
        self._drift_from = BOOKING_ID_BASE + account.initial // 2

    # ---- configuration ----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._dice = FaultDice(faults)

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, rule: RateLimit | None) -> None:
        with self._lock:
            self._rate_limit = rule
            self._limiter = RateLimiter(rule or UNLIMITED, enforce=rule is not None)

    def reset_stats(self) -> None:
        """Zero the counters (and the `fail_after` success count)."""
        with self._lock:
            self.stats = Stats()
            self._successes = 0

    def reset_limits(self) -> None:
        """Forget every key's window and block."""
        with self._lock:
            self._limiter.reset()

    # ---- request handling -------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> DemoResponse:
        """Answer one request. `path` excludes the query string; `query` is already parsed."""
        method = method.upper()
        if path.startswith(ADMIN_PREFIX):
            return self._admin(method, path, query)
        with self._lock:
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
            spec = self._route(path)
            roll = self._dice.roll()
            response = self._respond(method, path, query, lowered, token, spec, roll, decision)
            response.delay = self._faults.latency + (self._faults.spike_latency if roll.spike else 0.0)
            return self._finish(now, method, path, response)

    def _respond(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        token: str | None,
        spec: EndpointSpec | None,
        roll: Roll,
        decision: Decision,
    ) -> DemoResponse:
        faults = self._faults
        targeted = faults.resources is None or (spec is not None and spec.name in faults.resources)
        kind = roll.kind if targeted else "ok"
        if faults.fail_after is not None and self._successes >= faults.fail_after:
            return self._error(503, path, decision, "Service Unavailable (fail_after)")
        if kind == "reset":
            return DemoResponse(0, {}, b"", "reset")
        if kind == "error":
            if roll.html:
                headers_ = {"Content-Type": "text/html", **decision.headers()}
                return DemoResponse(roll.error_status, headers_, gateway_html(roll.error_status))
            return self._error(roll.error_status, path, decision)
        if spec is None or method != "GET":
            return self._error(404, path, decision, f"Cannot {method} {path}")
        if token != self.api_key:
            return self._error(401, path, decision)
        if spec.name in faults.fail_status:
            return self._error(faults.fail_status[spec.name], path, decision)
        try:
            body = self._body(spec, query, headers)
        except QueryError as exc:
            details = {"message": [str(exc)], "error": "Bad Request", "statusCode": 400}
            return self._error(400, path, decision, str(exc), details)
        response = DemoResponse(200, {"Content-Type": JSON_TYPE, **decision.headers()}, body)
        if kind == "timeout":
            response.action = "timeout"
        elif kind == "truncate":
            response.body, response.action = body[: len(body) // 2], "truncate"
        return response

    def _route(self, path: str) -> EndpointSpec | None:
        if self.root and not path.startswith(self.root + "/"):
            return None
        rest = path[len(self.root) :].rstrip("/")
        return self._routes.get(rest)

    def _error(
        self, status: int, path: str, decision: Decision, message: str | None = None, details: Any = None
    ) -> DemoResponse:
        headers = {"Content-Type": JSON_TYPE, **decision.headers()}
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

    def _body(self, spec: EndpointSpec, query: Mapping[str, str], headers: Mapping[str, str]) -> bytes:
        if spec.name == "bookings":
            return self._bookings(query, headers.get("cal-api-version") == spec.version)
        if spec.name == "schedules" and headers.get("cal-api-version") != spec.version:
            return self._legacy_schedules  # missing/unknown/quoted version: the old shape, silently
        # The other resources ignore every query parameter: each `skip` returns the same full list.
        return self._static[spec.name]

    def _bookings(self, query: Mapping[str, str], versioned: bool) -> bytes:
        take = _int_param(query, "take", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        skip = _int_param(query, "skip", 0, 0, None)
        selection = BookingQuery.from_params(query)
        faults = self._faults
        if faults.ignore_skip:
            skip = 0
        account = self.account
        with account.lock:
            slots = self._index.select(selection)
            total = len(slots)
            page = slots[skip : skip + take]
            if versioned and not faults.drift:
                # Fast path: cached JSON of each booking, joined (the body is byte-identical).
                chunks = [account.record_json(s) for s in page]
                records = None
            else:
                records = [account.record(s) for s in page]
        if records is None:
            returned = len(chunks)
            pagination = self._pagination(total, skip, take, returned)
            return (
                b'{"status":"success","data":['
                + b",".join(chunks)
                + b'],"pagination":'
                + orjson.dumps(pagination)
                + b"}"
            )
        if faults.drift:
            records = [drift_booking(r, self._drift_from) for r in records]
        if not versioned:
            more = skip + take < total
            legacy = [legacy_booking(r) for r in records]
            data = {"bookings": legacy, "recurringInfo": [], "nextCursor": skip + take if more else None}
            return orjson.dumps({"status": "success", "data": data})
        pagination = self._pagination(total, skip, take, len(records))
        return orjson.dumps({"status": "success", "data": records, "pagination": pagination})

    def _pagination(self, total: int, skip: int, take: int, returned: int) -> dict[str, Any]:
        reported = total + self._faults.overstate_total  # a lying server keeps promising more pages
        return {
            "totalItems": reported,
            "remainingItems": max(0, reported - skip - returned),
            "returnedItems": returned,
            "itemsPerPage": take,
            "currentPage": skip // take + 1,
            "totalPages": math.ceil(reported / take),
            "hasNextPage": skip + take < reported,
            "hasPreviousPage": skip > 0,
        }

    # ---- admin ------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, query: Mapping[str, str]) -> DemoResponse:
        """Test hooks: no auth, no rate limit, no faults, not counted.

        GET stats; POST reset-stats, reset-limits, faults?error_rate=..&..., rate-limit?value=120/60/60,
        touch?fraction=0.01 (or ids=1,2; optional at=ISO), delete?ids=1,2, add?n=10 (optional at=ISO).
        """
        name = path[len(ADMIN_PREFIX) :].strip("/")
        wanted = {"stats": "GET"}.get(name, "POST")
        known = ("stats", "reset-stats", "reset-limits", "faults", "rate-limit", "touch", "delete", "add")
        if name not in known:
            return DemoResponse(404, {"Content-Type": JSON_TYPE}, orjson.dumps({"error": f"unknown {path}"}))
        if method != wanted:
            return DemoResponse(405, {"Content-Type": JSON_TYPE}, orjson.dumps({"error": f"use {wanted}"}))
        try:
            result = self._admin_action(name, query)
        except (ValueError, KeyError) as exc:
            return DemoResponse(400, {"Content-Type": JSON_TYPE}, orjson.dumps({"error": str(exc)}))
        return DemoResponse(200, {"Content-Type": JSON_TYPE}, orjson.dumps(result))

    def _admin_action(self, name: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            account = self.account
            if name == "stats":
                return {
                    **self.stats.snapshot(),
                    "bookings": account.booking_count,
                    "generation": account.generation,
                }
            if name == "reset-stats":
                self.reset_stats()
                return {"ok": True}
            if name == "reset-limits":
                self.reset_limits()
                return {"ok": True}
            if name == "faults":  # replaces every fault setting; no parameters = all off
                self.faults = faults_from_params(query)
                return {"ok": True, "faults": {**asdict(self.faults), "resources": query.get("resources")}}
            if name == "rate-limit":
                self.rate_limit = RateLimit.parse(query.get("value", "none"))
                return {"ok": True, "rate_limit": asdict(self.rate_limit) if self.rate_limit else None}
            at = datetime.fromtimestamp(parse_iso(query["at"]), tz=UTC) if "at" in query else None
            if name == "touch":
                target = _ids(query["ids"]) if "ids" in query else float(query.get("fraction", "0.01"))
                ids = account.touch(target, at=at)
                return {"touched": len(ids), "ids": ids}
            if name == "delete":
                return {"deleted": account.delete(_ids(query.get("ids", "")))}
            ids = account.add(int(query.get("n", "1")), at=at)
            return {"added": len(ids), "ids": ids}


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]
