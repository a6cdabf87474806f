"""Booking filters and ordering over the account's index arrays (never over record dicts).

A query resolves to a sequence of slots; the result is cached per (query, account generation), so
paging through a filtered million-booking result costs one scan, then a slice per page.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sched_assets.demo.bookings import AWAITING_HOST, CANCELLED, PENDING, REJECTED
from sched_assets.demo.generator import AS_OF_EPOCH, DemoAccount
from sched_assets.demo.timefmt import parse_iso

# Query parameter -> account field it sorts on; the real API accepts these four.
SORT_PARAMS = {"sortStart": "start", "sortEnd": "end", "sortCreated": "created", "sortUpdatedAt": "updated"}
# The `status` filter names views of bookings, not booking statuses (several: comma-separated, OR-ed).
STATUS_FILTERS = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
# "Now" for upcoming/past: the generated history's end, the instant every demo timestamp is relative to.
NOW = AS_OF_EPOCH


class QueryError(ValueError):
    """A query parameter the real API would reject with 400."""


@dataclass(frozen=True)
class BookingQuery:
    """Filters and order of one GET /bookings request (paging is applied by the caller)."""

    after_updated: int | None = None
    after_created: int | None = None
    after_start: int | None = None
    before_end: int | None = None
    statuses: frozenset[str] | None = None  # STATUS_FILTERS names
    sort: str | None = None  # account field, or None for id order
    descending: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> BookingQuery:
        """Parse query parameters; unknown ones (e.g. the guide's `limit`) are ignored like the API does."""

        def when(name: str) -> int | None:
            raw = params.get(name)
            if raw is None:
                return None
            try:
                return parse_iso(raw)
            except ValueError:
                raise QueryError(f"{name} must be a valid ISO 8601 date string") from None

        statuses = None
        if params.get("status"):
            names = [part.strip() for part in params["status"].split(",") if part.strip()]
            if any(n not in STATUS_FILTERS for n in names):
                allowed = ", ".join(STATUS_FILTERS)
                raise QueryError(f"each value in status must be one of the following values: {allowed}")
            statuses = frozenset(names)
        sort, descending = None, False
        for param, field in SORT_PARAMS.items():
            direction = params.get(param)
            if direction is None:
                continue
            if direction not in ("asc", "desc"):
                raise QueryError(f"{param} must be one of the following values: asc, desc")
            sort, descending = field, direction == "desc"
            break
        return cls(
            after_updated=when("afterUpdatedAt"),
            after_created=when("afterCreatedAt"),
            after_start=when("afterStart"),
            before_end=when("beforeEnd"),
            statuses=statuses,
            sort=sort,
            descending=descending,
        )


class BookingIndex:
    """Resolves `BookingQuery`s against an account, with a small cache of results."""

    def __init__(self, account: DemoAccount, cache_size: int = 8) -> None:
        self.account = account
        self._cache: OrderedDict[tuple[BookingQuery, int], Sequence[int]] = OrderedDict()
        self._cache_size = cache_size

    def select(self, query: BookingQuery) -> Sequence[int]:
        """Slots matching `query`, in the order the API returns them."""
        key = (query, self.account.generation)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        result = self._compute(query)
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _compute(self, q: BookingQuery) -> Sequence[int]:
        acc = self.account
        candidates: Sequence[int]
        if q.sort is not None:
            order, nulls = acc.ordered(q.sort)
            if q.sort == "updated" and q.after_updated is not None:
                # Incremental sync's hot path: a binary search, no scan.
                order = order[bisect_left(order, q.after_updated, key=acc.updated.__getitem__) :]
                nulls = array("q")
            # Postgres puts NULLs last ascending and first descending.
            candidates = (nulls + order[::-1]) if q.descending else (order + nulls)
            after_updated = None if q.sort == "updated" else q.after_updated
        else:
            candidates, after_updated = acc.live_slots(), q.after_updated
            if after_updated is not None:
                order, _ = acc.ordered("updated")
                lo = bisect_left(order, after_updated, key=acc.updated.__getitem__)
                if len(order) - lo < len(candidates) // 4:  # selective: sort the few matches by id
                    candidates, after_updated = array("q", sorted(order[lo:])), None
        return _filter(acc, candidates, q, after_updated)


def _filter(
    acc: DemoAccount, slots: Sequence[int], q: BookingQuery, after_updated: int | None
) -> Sequence[int]:
    # One pass per active filter keeps each comprehension simple and fast.
    if after_updated is not None:
        upd = acc.updated
        slots = array("q", [s for s in slots if upd[s] >= after_updated and upd[s] >= 0])
    if q.after_created is not None:
        created, t = acc.created, q.after_created
        slots = array("q", [s for s in slots if created[s] >= t])
    if q.after_start is not None:
        start, t = acc.start, q.after_start
        slots = array("q", [s for s in slots if start[s] >= t])
    if q.before_end is not None:
        end, t = acc.end, q.before_end
        slots = array("q", [s for s in slots if end[s] <= t])
    if q.statuses:
        keep = _status_filter(acc, q.statuses)
        slots = array("q", [s for s in slots if keep(s)])
    return slots


def _status_filter(acc: DemoAccount, names: frozenset[str]) -> Callable[[int], bool]:
    """The service's meaning of each `status` filter value, OR-ed, as a predicate over slots."""
    status, end, recurring = acc.status, acc.end, acc.factory.recurring_uid
    dead = (CANCELLED, REJECTED)
    tests: list[Callable[[int], bool]] = []
    if "upcoming" in names:
        tests.append(lambda s: end[s] > NOW and status[s] not in dead)
    if "past" in names:
        tests.append(lambda s: end[s] <= NOW and status[s] not in dead)
    if "cancelled" in names:
        tests.append(lambda s: status[s] in dead)
    if "unconfirmed" in names:
        tests.append(lambda s: status[s] in (PENDING, AWAITING_HOST))
    if "recurring" in names:
        tests.append(lambda s: recurring(s) is not None)
    return lambda s: any(test(s) for test in tests)
