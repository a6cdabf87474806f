"""GET /bookings bodies: validation of paging parameters, filters, the page, its pagination block."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sched_assets.api.specs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from sched_assets.demo.faults import Faults
from sched_assets.demo.generator import DemoAccount
from sched_assets.demo.query import BookingIndex, BookingQuery, QueryError
from sched_assets.demo.shapes import drift_booking, legacy_booking


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
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


@dataclass(frozen=True)
class ServedPage:
    """What a bookings request read: its filters and order, and the slots of the page it got."""

    query: BookingQuery
    page: Sequence[int]


def bookings_body(
    account: DemoAccount,
    index: BookingIndex,
    query: Mapping[str, str],
    versioned: bool,
    faults: Faults,
    drift_from: int,
) -> tuple[bytes, ServedPage]:
    """One page of bookings (and what it served); QueryError for parameters the service rejects with 400."""
    take = int_param(query, "take", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    skip = int_param(query, "skip", 0, 0, None)
    wanted = BookingQuery.from_params(query)
    if faults.max_take is not None:
        take = min(take, faults.max_take)  # silently: only `itemsPerPage` tells the client
    if faults.ignore_skip:
        skip = 0
    with account.lock:
        slots = index.select(wanted)
        total = len(slots)
        page = slots[skip : skip + take]
        served = ServedPage(wanted, page)
        if versioned and not faults.drift:
            # Fast path: cached JSON of each booking, joined (the body is byte-identical).
            chunks = [account.record_json(s) for s in page]
            pagination = orjson.dumps(_pagination(total, skip, take, len(chunks), faults))
            head = b'{"status":"success","data":['
            return head + b",".join(chunks) + b'],"pagination":' + pagination + b"}", served
        records = [account.record(s) for s in page]
    if faults.drift:
        records = [drift_booking(r, drift_from) for r in records]
    if not versioned:
        more = skip + take < total
        legacy = [legacy_booking(r) for r in records]
        data = {"bookings": legacy, "recurringInfo": [], "nextCursor": skip + take if more else None}
        return orjson.dumps({"status": "success", "data": data}), served
    pagination = _pagination(total, skip, take, len(records), faults)
    return orjson.dumps({"status": "success", "data": records, "pagination": pagination}), served


def _pagination(total: int, skip: int, take: int, returned: int, faults: Faults) -> dict[str, Any]:
    reported = total + faults.overstate_total  # a lying server keeps promising more pages
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
