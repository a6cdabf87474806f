"""Epoch-second helpers: the demo keeps every timestamp as an int and formats it only on output."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_DAY_PREFIX: dict[int, str] = {}
_HHMM = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]


def iso(epoch: int) -> str:
    """Format epoch seconds the way the API does: `2026-03-29T07:30:00.000Z`.

    Hot path (four timestamps per booking served), hence the per-day prefix cache.
    """
    day, second = divmod(epoch, 86_400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    minute, second = divmod(second, 60)
    return f"{prefix}{_HHMM[minute]}:{second:02d}.000Z"


def iso_or_none(epoch: int) -> str | None:
    """`iso`, with -1 (the demo's null marker) mapped to None."""
    return None if epoch < 0 else iso(epoch)


def to_epoch(value: datetime) -> int:
    """Whole epoch seconds of an aware datetime (naive ones are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def parse_iso(text: str) -> int:
    """Parse an ISO 8601 query value (`2026-03-01`, `...T10:00:00Z`, `...+02:00`) to epoch seconds.

    Raises ValueError on anything else, which the app turns into a 400.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty date")
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    return to_epoch(parsed)


def day_starts(year: int) -> list[int]:
    """Epoch seconds of 00:00 UTC for every day of `year`."""
    first = date(year, 1, 1)
    days = (date(year + 1, 1, 1) - first).days
    base = to_epoch(datetime(year, 1, 1, tzinfo=UTC))
    return [base + 86_400 * d for d in range(days)]


def noon_offsets(tz_name: str, year: int) -> list[int]:
    """UTC offset in seconds at local noon for each day of `year`.

    DST switches happen at night, so the noon offset is right for every working-hours booking;
    precomputing it keeps a million start times cheap to generate.
    """
    tz = ZoneInfo(tz_name)
    first = datetime(year, 1, 1, 12, tzinfo=tz)
    out = []
    day = first
    while day.year == year:
        offset = day.utcoffset()
        out.append(int(offset.total_seconds()) if offset else 0)
        day = (day + timedelta(days=1)).replace(hour=12)
    return out
