"""Booking filters and ordering over the account's index arrays (never over record dicts).

A query resolves to a sequence of slots; the result is cached per (query, account generation), so
paging through a filtered million-booking result costs one scan, then a slice per page. A keyset
query (sorted by createdAt or updatedAt, bounded by after/before on the same field, nothing else)
is two binary searches and a copy-free `Window`: O(log n + take) per page, no scan.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sched_assets.demo.bookings import AWAITING_HOST, CANCELLED, PENDING, REJECTED
from sched_assets.demo.generator import AS_OF_EPOCH, DemoAccount
from sched_assets.demo.orders import Window
from sched_assets.demo.timefmt import parse_iso

# Query parameter -> account field it sorts on; the real API accepts these four.
SORT_PARAMS = {"sortStart": "start", "sortEnd": "end", "sortCreated": "created", "sortUpdatedAt": "updated"}
# Account fields with inclusive after/before filters (null updatedAt matches neither).
RANGE_FIELDS = ("updated", "created")
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
    before_updated: int | None = None
    after_created: int | None = None
    before_created: int | None = None
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
            before_updated=when("beforeUpdatedAt"),
            after_created=when("afterCreatedAt"),
            before_created=when("beforeCreatedAt"),
            after_start=when("afterStart"),
            before_end=when("beforeEnd"),
            statuses=statuses,
            sort=sort,
            descending=descending,
        )

    def bounds(self, field: str) -> tuple[int | None, int | None]:
        """(after, before) on a RANGE_FIELDS field, both inclusive; (None, None) for other fields."""
        if field == "updated":
            return self.after_updated, self.before_updated
        if field == "created":
            return self.after_created, self.before_created
        return None, None


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
        done = None  # the range field already applied by a binary search
        if q.sort is not None:
            maintained = acc.field_order(q.sort)
            order, nulls = maintained.order, maintained.nulls
            lo, hi = 0, len(order)
            if q.bounds(q.sort) != (None, None):  # keyset read: bisect, no scan
                lo, hi = _range(order, maintained.values, *q.bounds(q.sort))
                nulls, done = array("q"), q.sort  # a bound never matches a null
            candidates = Window(order, lo, hi, nulls, q.descending)
        else:
            candidates = acc.live_slots()
            for field in RANGE_FIELDS:
                if q.bounds(field) == (None, None):
                    continue
                maintained = acc.field_order(field)
                lo, hi = _range(maintained.order, maintained.values, *q.bounds(field))
                if hi - lo < len(candidates) // 4:  # selective: sort the few matches by id
                    candidates, done = array("q", sorted(maintained.order[lo:hi])), field
                    break
        return _filter(acc, candidates, q, done)


def _range(
    order: Sequence[int], values: Sequence[int], after: int | None, before: int | None
) -> tuple[int, int]:
    """[lo, hi) of the slots in `order` (ascending by `values`) with after <= value <= before."""
    key = values.__getitem__
    lo = 0 if after is None else bisect_left(order, after, key=key)
    hi = len(order) if before is None else bisect_right(order, before, key=key)
    return lo, max(lo, hi)


def _filter(acc: DemoAccount, slots: Sequence[int], q: BookingQuery, done: str | None) -> Sequence[int]:
    # One pass per active filter keeps each comprehension simple and fast.
    for field in RANGE_FIELDS:
        after, before = q.bounds(field)
        if field == done or (after is None and before is None):
            continue
        values = getattr(acc, field)
        low = max(0, after or 0)  # null (-1) is below every bound, so it never matches
        high = before if before is not None else 2**62
        slots = array("q", [s for s in slots if low <= values[s] <= high])
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
