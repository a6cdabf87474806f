"""`DemoApi`: the HTTP behaviour of the scheduling API, independent of any transport.

`handle(method, path, query, headers)` returns a `DemoResponse`; `transport.py` (in-process httpx)
and `server.py` (a real socket) only translate it. Everything the real service does that a client
must survive lives here: auth, version-dependent shapes, paging, filters, rate limiting, faults.
Routing is in `routes.py`, bookings pages in `pages.py`, the `/_demo/` test hooks in `admin.py`.

One `DemoApi` serves one account (`DemoApi(account, api_key=...)`) or several, one key each
(`DemoApi(accounts=...)`, see `accounts.py`): every key then has its own data, rate-limit window,
fault dice, `fail_after` count, live changes and stats; an unknown key gets 401.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from sched_assets.api.specs import ENDPOINTS, EndpointSpec
from sched_assets.demo.accounts import DemoAccountKey
from sched_assets.demo.admin import ADMIN_PREFIX, admin_response
from sched_assets.demo.faults import FaultDice, Faults, Roll
from sched_assets.demo.generator import DemoAccount
from sched_assets.demo.live import apply_live_changes
from sched_assets.demo.pages import ServedPage, bookings_body
from sched_assets.demo.query import BookingIndex, QueryError
from sched_assets.demo.ratelimit import UNLIMITED, Decision, RateLimit, RateLimiter
from sched_assets.demo.routes import TEAM_EVENT_TYPES, Route, Router
from sched_assets.demo.shapes import error_body, gateway_html

DEMO_API_KEY = "cal_demo_public_key"  # public on purpose; never `cal_live_...`
DEFAULT_RESIDENT_ACCOUNTS = 32  # multi-account: accounts whose data and rendered bookings stay built
JSON_TYPE = "application/json; charset=utf-8"
EVENT_TYPES_VERSION = "2024-06-14"  # the documented GET /event-types shape; anything else: legacy
_INTEGER = re.compile(r"-?\d+")
Action = Literal["ok", "reset", "truncate", "timeout"]
# What `DemoApi(accounts=...)` takes per key: an account, or a function building it on first use.
AccountSource = DemoAccount | Callable[[], DemoAccount]


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


class _Bodies:
    """An account's data and the bodies rendered from it once (unpaged resources, the bookings index)."""

    def __init__(self, account: DemoAccount, specs: Sequence[EndpointSpec]) -> None:
        self.account = account
        self.index = BookingIndex(account)
        catalog = account.catalog
        # Unpaged resources answer the same body to every request: rendered once.
        self.static = {
            spec.name: _success(account.response_data(spec))
            for spec in specs
            if not spec.paged and spec.name != "event_types"
        }
        # GET /event-types: its shape depends on the version header (and the legacy knob), not the spec.
        self.event_types = _success(catalog.event_types_documented())
        self.legacy_event_types = _success(catalog.event_types_data())
        self.team_event_types = {t: _success(catalog.team_event_types(t)) for t in catalog.teams}
        self.legacy_schedules = _success([s.legacy_record() for s in catalog.schedules])
        # Drift starts halfway through the initial bookings, i.e. mid-stream of a full sync.
        self.drift_from = account.id_base + account.initial // 2


class _Lane:
    """What one API key has to itself: its account, stats, fault dice, rate-limit window, counters.

    Unknown keys share one lane without an account (single-account mode: the account's own lane).
    An account given as a `DemoAccount` is held as is ("pinned"); one given as a function is built on
    its first request and may be dropped again while unchanged (`DemoApi.resident_accounts`).
    """

    def __init__(self, name: str, api_key: str | None, source: AccountSource | None, salt: str) -> None:
        self.name = name
        self.api_key = api_key
        self.salt = salt  # fault and live-change sequences of its own
        self.factory = None if source is None or isinstance(source, DemoAccount) else source
        self.account = source if isinstance(source, DemoAccount) else None
        self.pinned = self.factory is None
        self.bodies: _Bodies | None = None
        self.stats = Stats()
        self.successes = 0
        self.faults = Faults()
        self.dice = FaultDice(self.faults, salt)
        self.rate_limit: RateLimit | None = None
        self.limiter = RateLimiter(UNLIMITED, enforce=False)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self.dice = FaultDice(faults, self.salt)

    def set_rate_limit(self, rule: RateLimit | None) -> None:
        self.rate_limit = rule
        self.limiter = RateLimiter(rule or UNLIMITED, enforce=rule is not None)


class DemoApi:
    """The fake API. Thread-safe: one lock serialises request handling and mutations.

    One account: `DemoApi(account, api_key=...)`. Several: `DemoApi(accounts=...)` with a mapping of
    API key -> `DemoAccount` (or a function returning one; the key is then also its name), or
    `DemoAccountKey`s (`demo_accounts(...)`). Each key has its own data, rate-limit window (the same
    `rate_limit` rule for all), fault dice (the same `faults` settings for all, each its own random
    sequence), `fail_after` count, live changes and stats (`account_stats`); `stats` counts every
    request. Accounts built from a function stay built for the `resident_accounts` (default 32)
    most recently used keys: beyond that the least recent is dropped if unchanged (rebuilt, byte-
    identical, on its next request) or else loses its rendered-bookings cache; None keeps all.

    `wall_clock` (epoch seconds) only feeds the `reset_header="epoch"` fault knob; `clock` drives
    the rate limiter and the stats.
    """

    def __init__(
        self,
        account: DemoAccount | None = None,
        api_key: str = DEMO_API_KEY,
        root: str = "/v2",
        faults: Faults | None = None,
        rate_limit: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
        resources: Sequence[EndpointSpec] = ENDPOINTS,
        wall_clock: Callable[[], float] = time.time,
        *,
        accounts: Mapping[str, AccountSource] | Iterable[DemoAccountKey] | None = None,
        resident_accounts: int | None = DEFAULT_RESIDENT_ACCOUNTS,
    ) -> None:
        if (account is None) == (accounts is None):
            raise ValueError("pass either one `account` or `accounts=` (several, one key each)")
        if resident_accounts is not None and resident_accounts < 1:
            raise ValueError("resident_accounts must be at least 1 (or None: keep every account)")
        self.root = "/" + root.strip("/") if root.strip("/") else ""
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = Stats()
        self.lock = threading.RLock()
        self._router = Router(self.root, resources)
        self.resident_accounts = resident_accounts
        self._resident: OrderedDict[str, _Lane] = OrderedDict()  # built, unpinned lanes, LRU first
        self._lanes: dict[str, _Lane] = {}  # API key -> lane
        self._names: dict[str, _Lane] = {}  # account name -> lane
        if account is not None:
            lane = _Lane("default", api_key, account, salt="")
            lane.stats = self.stats  # one account: its stats are the server's
            lane.bodies = _Bodies(account, self._router.specs)
            self.multi = False
            self._add_lane(lane)
            self._shared = lane  # requests with a wrong key count against the same budget, as before
        else:
            assert accounts is not None
            self.multi = True
            for key, source in _sources(accounts):
                self._add_lane(_Lane(key[0], key[1], source, salt=f":{key[0]}"))
            if not self._lanes:
                raise ValueError("accounts= is empty")
            self._shared = _Lane("(unknown keys)", None, None, salt=":(unknown)")
        self.faults = faults or Faults()
        self.rate_limit = rate_limit

    def _add_lane(self, lane: _Lane) -> None:
        assert lane.api_key is not None
        if lane.api_key in self._lanes or lane.name in self._names:
            raise ValueError(f"account {lane.name!r}: its name or API key is used twice")
        self._lanes[lane.api_key] = lane
        self._names[lane.name] = lane

    # ---- accounts ---------------------------------------------------------------------------

    @property
    def account(self) -> DemoAccount:
        """The account (one-account mode); with several, use `account_for(name or key)`."""
        if self.multi:
            raise AttributeError(f"this DemoApi serves {len(self._lanes)} accounts: use account_for(name)")
        return self._single.bodies.account  # type: ignore[union-attr]

    @property
    def api_key(self) -> str:
        """The key (one-account mode); with several, each `DemoAccountKey` has its own."""
        if self.multi:
            raise AttributeError(f"this DemoApi serves {len(self._lanes)} accounts, one key each")
        return self._single.api_key  # type: ignore[return-value]

    @property
    def _single(self) -> _Lane:
        return next(iter(self._lanes.values()))

    @property
    def account_names(self) -> list[str]:
        """Names of the served accounts in order (one account: `["default"]`)."""
        return list(self._names)

    def _lane(self, account: str | None) -> _Lane:
        """The lane of an account by name or API key; None only in one-account mode. KeyError if unknown."""
        if account is None:
            if self.multi:
                raise KeyError(
                    f"name the account (one of {len(self._names)}, e.g. {next(iter(self._names))})"
                )
            return self._single
        lane = self._names.get(account) or self._lanes.get(account)
        if lane is None:
            raise KeyError(f"unknown account {account!r}")
        return lane

    def account_for(self, account: str, pin: bool = True) -> DemoAccount:
        """The account served under `account` (name or API key), built if needed.

        `pin` (default) keeps it built from then on, so changes made through the returned object
        are the ones served; `pin=False` only looks (it may be dropped and rebuilt later).
        """
        with self.lock:
            lane = self._lane(account)
            bodies = self._bodies(lane)
            if pin and not lane.pinned:
                lane.pinned = True
                self._resident.pop(lane.api_key or "", None)
            return bodies.account

    def account_key(self, account: str) -> str:
        """The API key of an account (by name)."""
        return self._lane(account).api_key or ""

    def account_stats(self, account: str | None = None) -> Stats:
        """The request counters of one account (name or key); one-account mode: `stats`."""
        with self.lock:
            return self._lane(account).stats

    def resident(self) -> list[str]:
        """Names of the accounts whose data is built right now."""
        with self.lock:
            return [lane.name for lane in self._names.values() if lane.bodies is not None]

    def _bodies(self, lane: _Lane) -> _Bodies:
        """The lane's account and bodies, building them on first use; keeps the resident set bounded."""
        bodies = lane.bodies
        if bodies is None:
            account = lane.account if lane.account is not None else lane.factory()  # type: ignore[misc]
            bodies = lane.bodies = _Bodies(account, self._router.specs)
        if lane.pinned:
            return bodies
        key = lane.api_key or ""
        self._resident[key] = lane
        self._resident.move_to_end(key)
        limit = self.resident_accounts
        while limit is not None and len(self._resident) > limit:
            _, old = self._resident.popitem(last=False)
            if old.bodies is None:
                continue
            if old.bodies.account.generation == 0:
                old.bodies = None  # unchanged: rebuilt byte-identical on its next request
            else:
                old.bodies.account.drop_caches()  # changed: keep the data, forget rendered bookings
        return bodies

    # ---- configuration ----------------------------------------------------------------------

    def _all_lanes(self) -> Iterator[_Lane]:
        yield from self._lanes.values()
        if self._shared.api_key is None:
            yield self._shared

    @property
    def faults(self) -> Faults:
        """The fault settings of every account (`set_faults(..., account=)` overrides one)."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self.lock:
            self._faults = faults
            for lane in self._all_lanes():
                lane.set_faults(faults)

    def set_faults(self, faults: Faults, account: str | None = None) -> None:
        """Faults for one account (name or key) only; `account=None` is `api.faults = faults`."""
        with self.lock:
            if account is None:
                self.faults = faults
            else:
                self._lane(account).set_faults(faults)

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rule every key is limited by, each in its own window (None: not enforced)."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, rule: RateLimit | None) -> None:
        with self.lock:
            self._rate_limit = rule
            for lane in self._all_lanes():
                lane.set_rate_limit(rule)

    def set_rate_limit(self, rule: RateLimit | None, account: str | None = None) -> None:
        """A different rule (and a fresh window) for one account only; `account=None`: every key."""
        with self.lock:
            if account is None:
                self.rate_limit = rule
            else:
                self._lane(account).set_rate_limit(rule)

    def reset_stats(self) -> None:
        """Zero the counters (and the `fail_after` success counts)."""
        with self.lock:
            self.stats = Stats()
            for lane in self._all_lanes():
                lane.stats = self.stats if not self.multi else Stats()
                lane.successes = 0

    def reset_limits(self, account: str | None = None) -> None:
        """Forget every key's window and block (or only those of one account, by name or key)."""
        with self.lock:
            lanes = self._all_lanes() if account is None else [self._lane(account)]
            for lane in lanes:
                lane.limiter.reset()

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
            token = _bearer(lowered.get("authorization"))
            tenant = self._lanes.get(token) if token else None
            lane = tenant or self._shared
            counters = self._counters(lane)
            for stats in counters:
                stats.requests += 1
                stats.by_path[path] += 1
            decision = lane.limiter.hit(token or "anonymous", now)
            if not decision.allowed:
                if decision.blocked_before:
                    for stats in counters:
                        stats.blocked_times.append(now)
                return self._finish(now, method, path, self._error(429, path, decision, lane), lane)
            route = self._router.resolve(path)
            roll = lane.dice.roll()
            response = self._respond(method, path, query, lowered, tenant, lane, route, roll, decision)
            response.delay = lane.faults.latency + (lane.faults.spike_latency if roll.spike else 0.0)
            return self._finish(now, method, path, response, lane)

    def _counters(self, lane: _Lane) -> tuple[Stats, ...]:
        """The stats a request of `lane` counts in: the server's, and the account's own."""
        return (self.stats,) if lane.stats is self.stats else (self.stats, lane.stats)

    def _respond(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        tenant: _Lane | None,
        lane: _Lane,
        route: Route | None,
        roll: Roll,
        decision: Decision,
    ) -> DemoResponse:
        faults = lane.faults
        targeted = faults.resources is None or (route is not None and route.name in faults.resources)
        kind = roll.kind if targeted else "ok"
        if faults.fail_after is not None and lane.successes >= faults.fail_after:
            return self._error(503, path, decision, lane, "Service Unavailable (fail_after)")
        if kind == "reset":
            return DemoResponse(0, {}, b"", "reset")
        if kind == "error":
            if roll.html:
                headers_ = {"Content-Type": "text/html", **self._limit_headers(decision, lane)}
                return DemoResponse(roll.error_status, headers_, gateway_html(roll.error_status))
            return self._error(roll.error_status, path, decision, lane)
        if route is None or method != "GET":
            return self._error(404, path, decision, lane, f"Cannot {method} {path}")
        if tenant is None:
            return self._error(401, path, decision, lane)
        if route.name in faults.fail_status:
            return self._error(faults.fail_status[route.name], path, decision, lane)
        try:
            body = self._body(tenant, route, query, headers)
        except QueryError as exc:
            details = {"message": [str(exc)], "error": "Bad Request", "statusCode": 400}
            return self._error(400, path, decision, lane, str(exc), details)
        except _Refused as refused:
            return self._error(refused.status, path, decision, lane, refused.message, refused.details)
        headers_ = {"Content-Type": JSON_TYPE, **self._limit_headers(decision, lane)}
        response = DemoResponse(200, headers_, body)
        if kind == "timeout":
            response.action = "timeout"
        elif kind == "truncate":
            response.body, response.action = body[: len(body) // 2], "truncate"
        return response

    def _limit_headers(self, decision: Decision, lane: _Lane) -> dict[str, str]:
        epoch = self.wall_clock() if lane.faults.reset_header == "epoch" else None
        return decision.headers(epoch)

    def _error(
        self,
        status: int,
        path: str,
        decision: Decision,
        lane: _Lane,
        message: str | None = None,
        details: Any = None,
    ) -> DemoResponse:
        headers = {"Content-Type": JSON_TYPE, **self._limit_headers(decision, lane)}
        return DemoResponse(status, headers, error_body(status, path, message, details))

    def _finish(
        self, now: float, method: str, path: str, response: DemoResponse, lane: _Lane
    ) -> DemoResponse:
        for stats in self._counters(lane):
            stats.by_action[response.action] += 1
            if response.action != "reset":
                stats.by_status[response.status] += 1
            stats.log.append((now, method, path, response.status, response.action))
        if response.action != "reset" and 200 <= response.status < 300:
            lane.successes += 1
        return response

    # ---- bodies -----------------------------------------------------------------------------

    def _body(
        self, tenant: _Lane, route: Route, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        version = headers.get("cal-api-version")
        bodies = self._bodies(tenant)
        faults = tenant.faults
        if route.name == TEAM_EVENT_TYPES:
            return self._team_body(bodies, faults, route.team_id or "")
        spec = route.spec
        assert spec is not None
        if spec.name == "bookings":
            versioned = version == spec.version
            body, served = bookings_body(
                bodies.account, bodies.index, query, versioned, faults, bodies.drift_from
            )
            self._live_changes(tenant, bodies.account, served)
            return body
        if spec.name == "event_types":
            legacy = faults.legacy_event_types and version != EVENT_TYPES_VERSION
            return bodies.legacy_event_types if legacy else bodies.event_types
        if spec.name == "schedules" and version != spec.version:
            return bodies.legacy_schedules  # missing/unknown/quoted version: the old shape, silently
        # The other resources ignore every query parameter: each `skip` returns the same full list.
        return bodies.static[spec.name]

    def _live_changes(self, tenant: _Lane, account: DemoAccount, served: ServedPage) -> None:
        """After a bookings page (its body is built, the answer is 200): the live-change knobs."""
        f = tenant.faults
        if (f.edits_per_page or f.deletes_per_page) and tenant.stats.requests > f.live_changes_after:
            edited, deleted = apply_live_changes(account, served, f, tenant.dice.live)
            for stats in self._counters(tenant):
                stats.edited += edited
                stats.deleted += deleted

    def _team_body(self, bodies: _Bodies, faults: Faults, raw: str) -> bytes:
        if not _INTEGER.fullmatch(raw):  # the service's ParseIntPipe
            message = "Validation failed (numeric string is expected)"
            raise _Refused(400, message, {"message": message, "error": "Bad Request", "statusCode": 400})
        team_id = int(raw)
        body = bodies.team_event_types.get(team_id)
        if body is None:
            raise _Refused(404, f"Team with id {team_id} not found")
        if team_id in faults.fail_team_ids:
            raise _Refused(500, f"Internal server error (fail_team_ids: team {team_id})")
        return body


def _sources(
    accounts: Mapping[str, AccountSource] | Iterable[DemoAccountKey],
) -> Iterator[tuple[tuple[str, str], AccountSource]]:
    """((name, api key), account or builder) per account: a mapping is keyed by API key (= the name)."""
    if isinstance(accounts, Mapping):
        for api_key, source in accounts.items():
            yield (api_key, api_key), source
        return
    for key in accounts:
        yield (key.name, key.api_key), key.build_account


class _Refused(Exception):
    """An error answer decided while building a body (bad path parameter, unknown team, forced failure)."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details
