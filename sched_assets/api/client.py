"""HTTP client for the scheduling API: auth, record selection, paging, retries and rate-limit pacing.

Plain Python (httpx, msgspec). It knows nothing about Dagster, DuckDB or Polars.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import msgspec

from sched_assets import __version__
from sched_assets.api.errors import (
    ApiError,
    ConfigError,
    RetriesExhaustedError,
    UnexpectedResponseError,
    describe_body,
    error_for_status,
)
from sched_assets.api.ratelimit import RateLimitPacer, retry_after_seconds
from sched_assets.api.selector import select_records, selector_matches
from sched_assets.api.specs import MAX_PAGE_SIZE, EndpointSpec, LegacyShape

if TYPE_CHECKING:
    import ssl

    from sched_assets.api.views import RecordView

USER_AGENT = f"sched_assets/{__version__} (python-httpx/{httpx.__version__})"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOG = logging.getLogger(__name__)

Record = dict[str, Any]


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs; validated when built, so before any request is sent."""

    base_url: str
    api_key: str = field(repr=False)
    page_size: int = 100
    max_retries: int = 3
    backoff_factor: float = 2.0
    max_backoff_seconds: float = 60.0
    rate_limit_wait_seconds: float = 60.0
    max_rate_limit_wait_seconds: float = 180.0
    rate_limit_reserve: int = 1
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"SCHED_API_BASE_URL {self.base_url!r} is not an http(s) URL. "
                "Set it to the API root including the version prefix, e.g. https://api.cal.com/v2."
            )
        if not self.api_key or not self.api_key.strip():
            raise ConfigError(
                "No API key: set SCHED_API_KEY to your API key (Settings > Developer > API keys)."
            )
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE} (the API's limit); got {self.page_size}."
            )
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more; got {self.max_retries}.")
        if self.backoff_factor < 0 or self.max_backoff_seconds < 0:
            raise ConfigError("backoff_factor and max_backoff_seconds must not be negative.")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1; got {self.concurrency}.")
        if self.connect_timeout_seconds <= 0 or self.read_timeout_seconds <= 0:
            raise ConfigError("Timeouts must be positive numbers of seconds.")


class StopReason(StrEnum):
    """Why paging of one resource ended."""

    UNPAGED = "unpaged"
    EMPTY_PAGE = "empty page"
    SHORT_PAGE = "short page"
    NO_NEXT_PAGE = "hasNextPage is false"
    TOTAL_REACHED = "skip reached totalItems"
    # The server answered a page that repeats an earlier one (it ignores `skip`): the read is a prefix.
    LOOP_GUARD = "loop guard: page repeats an earlier page"


class ResponseShape(StrEnum):
    """Which shape a resource's responses came in."""

    DOCUMENTED = "documented"
    LEGACY = "legacy"


@dataclass
class SyncStats:
    """Counters for one resource's fetch, reported as asset metadata.

    `complete` is False when paging stopped before the end of the resource (see StopReason.LOOP_GUARD):
    such a read must not delete rows or advance a cursor.
    """

    requests: int = 0
    retries: int = 0
    pages: int = 0
    records: int = 0
    throttled: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    stopped_by: StopReason | None = None
    complete: bool = True
    shapes: set[ResponseShape] = field(default_factory=set)
    rows_counted_after: int | None = None  # keyset full reads: the server's count after the read
    started: float = field(default_factory=time.monotonic)
    elapsed_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def note_shape(self, shape: ResponseShape) -> bool:
        """Record a response shape; True the first time it is seen."""
        with self._lock:
            new = shape not in self.shapes
            self.shapes.add(shape)
            return new


@dataclass
class Page:
    """The records of one response, already selected and stripped of secrets: dicts, or `RecordView`s
    (read with `get`) from a client made with `record_views`."""

    number: int
    records: list[Record] | list[RecordView]
    skip: int | None = None
    pagination: Mapping[str, Any] | None = None


class _Response:
    __slots__ = ("body", "headers")

    def __init__(self, body: Any, headers: httpx.Headers) -> None:
        self.body = body
        self.headers = headers


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client: building one (loading the CA bundle) costs
    ~20 ms of CPU under the GIL, and a run of many accounts builds a client per account."""
    return httpx.create_ssl_context()


class SchedApiClient:
    """Reads the API's resources; one instance per sync, shared by its worker threads."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        logger: logging.Logger | Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        record_views: bool = False,
    ) -> None:
        """`record_views`: paged records come as `views.RecordView`s (declared fields as the server's JSON
        text, for the spill) where a page fits that path, else as dicts; dicts always when False."""
        self.config = config
        self.record_views = record_views
        self.log = logger or _LOG  # the run's logger; readers built on the client (keyset) share it
        self._sleep = sleep
        self._random = random.Random()
        self._shared: dict[tuple[str, tuple[tuple[str, str], ...]], Future[tuple[list[Record], set]]] = {}
        self._shared_lock = threading.Lock()
        self.pacer = RateLimitPacer(
            reserve=config.rate_limit_reserve,
            max_wait=config.max_rate_limit_wait_seconds,
            clock=clock,
            sleep=sleep,
            on_wait=self._log_pacing,
        )
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {config.api_key}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(
                config.read_timeout_seconds, connect=config.connect_timeout_seconds, pool=None
            ),
            limits=httpx.Limits(
                max_connections=config.concurrency + 1, max_keepalive_connections=config.concurrency + 1
            ),
            transport=transport,
            follow_redirects=False,
            verify=_tls_context(),
        )

    def __repr__(self) -> str:
        return f"SchedApiClient(base_url={self.config.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SchedApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- public reading API -------------------------------------------------------------------

    def iter_pages(
        self, spec: EndpointSpec, params: Mapping[str, str] | None = None, stats: SyncStats | None = None
    ) -> Iterator[Page]:
        """Every page of `spec`, in order. Unpaged endpoints are requested exactly once; a spec with a
        fan-out then reads its parent resource and one more endpoint per parent record."""
        stats = stats if stats is not None else SyncStats()
        try:
            if spec.paged:
                yield from self._iter_paged(spec, dict(params or {}), stats)
            else:
                page = Page(1, self._unpaged_records(spec, dict(params or {}), stats))
                stats.add(pages=1, records=len(page.records))
                stats.stopped_by = StopReason.UNPAGED
                yield page
                if spec.fan_out is not None:
                    yield from self._iter_fan_out(spec, stats)
        finally:
            self.finish_stats(stats)

    def finish_stats(self, stats: SyncStats) -> None:
        """Close one read's counters: pacing waits so far and the read's elapsed time."""
        stats.rate_limit_waits = self.pacer.waits
        stats.rate_limit_wait_seconds = round(self.pacer.waited_seconds, 3)
        stats.elapsed_seconds = round(time.monotonic() - stats.started, 3)

    def _unpaged_records(
        self, spec: EndpointSpec, params: dict[str, str], stats: SyncStats, *, own: bool = True
    ) -> list[Record]:
        """The records of one unpaged request, fetched once per client and shared.

        The teams listing is both a resource of its own and the parent of the team event types; the two
        reads run in parallel threads of one sync and share a single request (and its failure).
        """
        key = (spec.path, tuple(sorted(params.items())))
        with self._shared_lock:
            shared = self._shared.get(key)
            owner = shared is None
            if owner:
                shared = self._shared[key] = Future()
        assert shared is not None
        if owner:
            try:
                response = self._get(spec, params, stats)
                seen = SyncStats()
                shared.set_result((self._records(spec, response.body, seen), seen.shapes))
            except BaseException as exc:
                shared.set_exception(exc)
        records, shapes = shared.result()
        if own:
            for shape in shapes:
                stats.note_shape(shape)
        return [dict(record) for record in records]

    # ---- fan-out (team event types) -----------------------------------------------------------

    def _iter_fan_out(self, spec: EndpointSpec, stats: SyncStats) -> Iterator[Page]:
        """One request per parent record (e.g. per team), `concurrency` at a time, inside the shared budget.

        Any failing request fails the whole read, naming the parent record, so nothing partial is written.
        """
        fan_out = spec.fan_out
        assert fan_out is not None
        parents = self._unpaged_records(fan_out.parent, {}, stats, own=False)
        children = [(parent, fan_out.as_spec(spec, parent)) for parent in parents]
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="sched-fan") as pool:
            futures = [pool.submit(self._get, child, {}, stats) for _, child in children]
            try:
                for number, ((parent, child), future) in enumerate(zip(children, futures, strict=True), 2):
                    try:
                        response = future.result()
                        records = self._records(child, response.body, SyncStats())  # shape: own endpoint only
                    except ApiError as exc:
                        label = ", ".join(f"{k}={parent.get(k)!r}" for k in fan_out.parent.primary_key)
                        raise type(exc)(
                            f"{spec.name}: reading {fan_out.parent.name} {label} failed: {exc}",
                            status=exc.status,
                            code=exc.code,
                            path=child.path,
                        ) from exc
                    for record in records:
                        for field_name, parent_field in fan_out.stamp.items():
                            if record.get(field_name) is None:
                                record[field_name] = parent.get(parent_field)
                    stats.add(pages=1, records=len(records))
                    yield Page(number, records)
            finally:
                for future in futures:
                    future.cancel()

    # ---- paging -------------------------------------------------------------------------------

    def _iter_paged(self, spec: EndpointSpec, params: dict[str, str], stats: SyncStats) -> Iterator[Page]:
        """Offset paging that follows what the server says, not what was asked.

        `skip` advances by the records a page actually returned; paging ends on `hasNextPage: false`,
        `skip >= totalItems`, an empty page or a repeated page, and on a short page only when the server
        sends no pagination. A server that serves fewer records than `take` is paged by its own size.
        Up to `concurrency` pages are in flight, sized by that real page size; if a guess was wrong, the
        gap is requested before going on, so no record is skipped.
        """
        take = self.config.page_size
        size = take  # records a page really holds, learned from the server
        seen_pages: set[int] = set()
        need = 0  # the first offset not covered yet
        total: int | None = None
        number = 0
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="sched-page") as pool:
            pending: list[tuple[int, Future[Page]]] = []
            try:
                while True:
                    while pending and pending[0][0] < need:  # overlaps what is covered: drop it
                        pending.pop(0)[1].cancel()
                    if not pending or pending[0][0] != need:
                        number += 1
                        future = pool.submit(self._fetch_page, spec, params, need, take, number, stats)
                        pending.insert(0, (need, future))
                    # More pages in flight while the announced total says there are more; past it (or
                    # without a total) one page at a time, so a growing account still ends.
                    window = self.config.concurrency if total is not None and need < total else 1
                    next_skip = pending[-1][0] + size
                    while len(pending) < window and total is not None and next_skip < total:
                        number += 1
                        pending.append(
                            (
                                next_skip,
                                pool.submit(self._fetch_page, spec, params, next_skip, take, number, stats),
                            )
                        )
                        next_skip += size
                    _, future = pending.pop(0)
                    page = future.result()
                    reason = self._stop_reason(spec, page, take, seen_pages, stats)
                    if reason is StopReason.LOOP_GUARD:
                        return  # its records repeat a page already yielded
                    yield page
                    if reason:
                        return
                    pagination = page.pagination or {}
                    total = _int_or_none(pagination.get("totalItems"))
                    returned = len(page.records)
                    need = (page.skip or 0) + returned
                    if returned < size:
                        size = returned
                        announced = _int_or_none(pagination.get("itemsPerPage"))
                        self.log.warning(
                            f"{spec.name}: the server serves at most {returned} records a page "
                            f"(asked for {take}; it announces itemsPerPage={announced}). Paging by what it "
                            "returns."
                        )
            finally:
                for _, future in pending:
                    future.cancel()

    def _fetch_page(
        self, spec: EndpointSpec, params: dict[str, str], skip: int, take: int, number: int, stats: SyncStats
    ) -> Page:
        return self.fetch_page(spec, {**params, "take": str(take), "skip": str(skip)}, number, stats)

    def fetch_page(self, spec: EndpointSpec, params: dict[str, str], number: int, stats: SyncStats) -> Page:
        """One page: its records (selected, secrets removed) and the server's pagination facts."""
        skip = _int_or_none(params.get("skip"))
        views = _views_of(spec) if self.record_views else None
        if views is None:
            body = self._get(spec, params, stats).body
        else:
            from sched_assets.api.views import DecodedPage

            body = self._get(spec, params, stats, parse=views).body
            if isinstance(body, DecodedPage):
                stats.note_shape(ResponseShape.DOCUMENTED)
                pagination = body.pagination
                return Page(number, body.records, skip, pagination if isinstance(pagination, dict) else None)
        pagination = body.get("pagination") if isinstance(body, dict) else None
        return Page(
            number,
            self._records(spec, body, stats),
            skip,
            pagination if isinstance(pagination, dict) else None,
        )

    def _stop_reason(
        self, spec: EndpointSpec, page: Page, take: int, seen_pages: set[int], stats: SyncStats
    ) -> StopReason | None:
        """The stop rule this page triggers (None to go on); recorded in the stats."""
        keys = tuple(record_key(spec, r) for r in page.records)
        signature = hash(keys)
        reason: StopReason | None = None
        if not page.records:
            reason = StopReason.EMPTY_PAGE
        elif signature in seen_pages:
            # A server that ignores `skip` returns the same page forever.
            reason = StopReason.LOOP_GUARD
            stats.complete = False
            self.log.warning(
                f"{spec.name}: page {page.number} (skip={page.skip}) repeats an earlier page; "
                "the server seems to ignore `skip`. Stopping paging here."
            )
        else:
            seen_pages.add(signature)
            stats.add(pages=1, records=len(page.records))
            pagination = page.pagination
            if pagination is None:
                # Without pagination facts a short page is the only sign of the end.
                if len(page.records) < take:
                    reason = StopReason.SHORT_PAGE
            else:
                total = _int_or_none(pagination.get("totalItems"))
                if pagination.get("hasNextPage") is False:
                    reason = StopReason.NO_NEXT_PAGE
                elif total is not None and page.skip is not None and page.skip + len(page.records) >= total:
                    reason = StopReason.TOTAL_REACHED
        if reason:
            stats.stopped_by = reason
        return reason

    def _records(self, spec: EndpointSpec, body: Any, stats: SyncStats) -> list[Record]:
        """The records of a response, in the documented shape or (normalised) a legacy one.

        A body in neither shape is an error, never an empty list: an empty table would look like a
        successful sync of an account with nothing in it.
        """
        if selector_matches(body, spec.selector):
            records = select_records(body, spec.selector)
            stats.note_shape(ResponseShape.DOCUMENTED)
        elif spec.legacy is not None and selector_matches(body, spec.legacy.selector):
            records = [_normalised(r, spec.legacy) for r in select_records(body, spec.legacy.selector)]
            if stats.note_shape(ResponseShape.LEGACY):
                self.log.warning(
                    f"{spec.name}: GET {spec.path} answered in the {spec.legacy.name} shape although "
                    f"{_header_note(spec)} was sent; reading it and renaming its fields to the documented ones."
                )
        else:
            raise UnexpectedResponseError(
                f"{spec.name}: GET {spec.path} with {_header_note(spec)} answered in an unknown shape: no "
                f"records at `{spec.selector}`"
                + (f" nor at `{spec.legacy.selector}` ({spec.legacy.name})" if spec.legacy else "")
                + f"; top-level keys {sorted(body) if isinstance(body, dict) else type(body).__name__}. "
                "Check SCHED_API_BASE_URL points at the API root (e.g. https://api.cal.com/v2).",
                path=spec.path,
            )
        secret = spec.secret_fields
        if secret:
            # OAuth tokens must not leave the client: not in tables, logs or metadata.
            records = [{k: v for k, v in r.items() if k not in secret} for r in records]
        return records

    # ---- one request with retries -------------------------------------------------------------

    def _get(
        self,
        spec: EndpointSpec,
        params: dict[str, str],
        stats: SyncStats,
        parse: Callable[[bytes], Any] | None = None,
    ) -> _Response:
        path = spec.path
        last_problem = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                stats.add(retries=1)
            self.pacer.acquire()
            stats.add(requests=1)
            try:
                response = self._http.get(path, params=params, headers=spec.headers)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                self.pacer.release(None)
                last_problem = f"{type(exc).__name__} talking to the API"
                self._retry_wait(spec, attempt, last_problem)
                continue
            except BaseException:
                self.pacer.release(None)
                raise
            self.pacer.release(response.headers)
            status = response.status_code
            if status == 429:
                stats.add(throttled=1)
                wait = retry_after_seconds(
                    response.headers,
                    self.config.rate_limit_wait_seconds,
                    self.config.max_rate_limit_wait_seconds,
                )
                self.pacer.block_for(wait)
                code, message = describe_body(response.content, response.headers.get("content-type", ""))
                last_problem = f"HTTP 429 ({code or 'rate limited'}: {message})"
                self.log.warning(
                    f"{spec.name}: rate limited (HTTP 429); waiting {wait:.0f} s for the block to end "
                    f"(retry {attempt + 1} of {self.config.max_retries})."
                )
                continue
            if status in RETRYABLE_STATUSES:
                code, message = describe_body(response.content, response.headers.get("content-type", ""))
                last_problem = f"HTTP {status} ({code + ': ' if code else ''}{message})"
                self._retry_wait(spec, attempt, last_problem, response.headers.get("retry-after"))
                continue
            if not 200 <= status < 300:
                raise error_for_status(
                    status, response.content, response.headers.get("content-type", ""), spec.name, path
                )
            try:
                body = (parse or _parse_json)(response.content)
            except ValueError:
                last_problem = "a 200 response whose body is not valid JSON (truncated?)"
                self._retry_wait(spec, attempt, last_problem)
                continue
            # Per-request lines go to the module logger, not the run's log: a Dagster event per request
            # would cost more than the request itself.
            _LOG.debug("%s: GET %s %s (%d bytes)", spec.name, path, status, len(response.content))
            return _Response(body, response.headers)
        raise RetriesExhaustedError(
            f"{spec.name}: GET {path} still failing after {self.config.max_retries} retries; last problem: "
            f"{last_problem}. The API or the network is having trouble: try again later, or raise "
            "max_retries / backoff_factor in the resource config.",
            path=path,
        )

    def _retry_wait(
        self, spec: EndpointSpec, attempt: int, problem: str, retry_after: str | None = None
    ) -> None:
        if attempt >= self.config.max_retries:
            return
        base = self.config.backoff_factor * (2**attempt)
        wait = min(base + self._random.uniform(0, base / 2), self.config.max_backoff_seconds)
        if retry_after is not None:
            # A 503 saying when to come back (maintenance, overload) knows better than our backoff.
            wait = max(
                wait,
                retry_after_seconds(
                    {"retry-after": retry_after}, 0.0, self.config.max_rate_limit_wait_seconds
                ),
            )
        self.log.warning(
            f"{spec.name}: {problem}; retry {attempt + 1} of {self.config.max_retries} in {wait:.1f} s."
        )
        self._sleep(wait)

    def _log_pacing(self, wait: float, why: str) -> None:
        self.log.info(f"Pacing requests: {why} ({wait:.1f} s).")


def _views_of(spec: EndpointSpec) -> Callable[[bytes], Any] | None:
    """`spec`'s page parser giving views (`api.views`, decoders built once per resource), falling back
    to `_parse_json` for a page that does not fit; None when the resource never fits."""
    from sched_assets.api.views import page_decoder

    orders = (spec.incremental_order, spec.full_order)
    decode = page_decoder(spec, values=[order.field for order in orders if order is not None])
    if decode is None:
        return None

    def parse(content: bytes) -> Any:
        page = decode(content)
        return page if page is not None else _parse_json(content)

    return parse


def _parse_json(content: bytes) -> Any:
    """msgspec: as fast as orjson, and exact for integers beyond 64 bits (orjson 3.13 reads those as
    floats, silently); the stdlib for valid JSON msgspec refuses (NaN, lone surrogate escapes)."""
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return json.loads(content)


def record_key(spec: EndpointSpec, record: Record) -> tuple[Any, ...]:
    """The primary key of a record as a hashable tuple."""
    return tuple(_hashable(record.get(name)) for name in spec.primary_key)


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value, order="sorted")  # exact for integers of any size
    return value


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


__all__ = ["ApiError", "ClientConfig", "Page", "SchedApiClient", "StopReason", "SyncStats", "record_key"]


def _normalised(record: Record, legacy: LegacyShape) -> Record:
    """A legacy record with its fields renamed (and values recoded) to the documented ones."""
    out = {legacy.renames.get(name, name): value for name, value in record.items()}
    for name, mapping in legacy.values.items():
        value = out.get(name)
        if isinstance(value, str) and value in mapping:
            out[name] = mapping[value]
    return out


def _header_note(spec: EndpointSpec) -> str:
    return f"header `cal-api-version: {spec.version}`" if spec.version else "no version header"
