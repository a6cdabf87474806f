"""`DemoAccount`: a deterministic, realistic scheduling account that scales to a million bookings.

Static resources (profile, schedules, event types, calendars, conferencing) come from `catalog.py`.
Bookings are "slots": per slot the account keeps only compact arrays (start, end, createdAt,
updatedAt, status, event type, version); the full record is rebuilt on demand by `BookingFactory`.
Mutations (`touch`, `delete`, `add`) edit those arrays, so tests can simulate a live account.

Two account shapes (`SHAPES`): "standard", and "nested" with far more nested data per booking (many
attendees, seated bookings with per-seat answers, custom answers of mixed types, rich metadata).
"""

from __future__ import annotations

import random
import threading
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import orjson

from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME, EndpointSpec
from sched_assets.demo.bookings import (
    ACCEPTED,
    AWAITING_HOST,
    CANCELLED,
    PENDING,
    REJECTED,
    UNKNOWN_LENGTH,
    BookingFactory,
    is_reschedule_source,
    slot_key,
)
from sched_assets.demo.catalog import SHAPES, Catalog, build_catalog, check_shape
from sched_assets.demo.integrations import DEMO_OAUTH_TOKEN, DEMO_REFRESH_TOKEN, DEMO_SECRETS
from sched_assets.demo.orders import FieldOrder, remove_sorted
from sched_assets.demo.people import DEFAULT_SCHEDULE_ID, Json
from sched_assets.demo.schedules import Schedule
from sched_assets.demo.timefmt import day_starts, noon_offsets, to_epoch

__all__ = [
    "AS_OF",
    "BOOKING_ID_BASE",
    "DEMO_OAUTH_TOKEN",
    "DEMO_REFRESH_TOKEN",
    "DEMO_SECRETS",
    "RESOURCES",
    "SHAPES",
    "DemoAccount",
]

# The generated history ends here: every createdAt/updatedAt is at or before it (starts run to the
# end of 2026, i.e. some bookings are still upcoming). Mutations without `at` happen after it.
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF_EPOCH = to_epoch(AS_OF)
YEAR = 2026
BOOKING_ID_BASE = 40_001  # booking id = BOOKING_ID_BASE + slot (an account's `booking_id_base`)
RESOURCES = tuple(spec.name for spec in ENDPOINTS)
ORDER_FIELDS = ("start", "end", "created", "updated")

_DAY = 86_400
# Status mix of a real account: mostly accepted, every other status present.
_STATUS_WEIGHTS = ((ACCEPTED, 740), (CANCELLED, 120), (REJECTED, 40), (PENDING, 60), (AWAITING_HOST, 40))
# Guarantees for tiny accounts: within every 100 slots these positions hold these quirks.
_FORCED_STATUS = {1: AWAITING_HOST, 2: PENDING, 3: REJECTED, 4: CANCELLED}
_FORCED_SEATED = 6
_FORCED_NULL_UPDATED = 9
_UNKNOWN_ET_PERIOD, _UNKNOWN_ET_OFFSET = 250, 17


def _weighted_table(weights: Sequence[float], size: int) -> list[int]:
    """A lookup table so that `table[random bits]` picks index i with probability ~ weights[i]."""
    total = sum(weights)
    cumulative, acc = [], 0.0
    for w in weights:
        acc += w
        cumulative.append(acc)
    return [min(bisect_right(cumulative, (i + 0.5) * total / size), len(weights) - 1) for i in range(size)]


class _ScheduleTable:
    """Per-day bookable start minutes and UTC offsets of one schedule, precomputed for the year."""

    def __init__(self, schedule: Schedule) -> None:
        days = day_starts(YEAR)
        self.offsets = noon_offsets(schedule.time_zone, YEAR)
        first_weekday = datetime(YEAR, 1, 1).weekday()
        overrides = {day: (s, e) for day, s, e in schedule.overrides}
        self.slots: list[list[int]] = []
        for d in range(len(days)):
            weekday = (first_weekday + d) % 7
            iso_day = datetime.fromtimestamp(days[d], UTC).strftime("%Y-%m-%d")
            if iso_day in overrides:  # an override replaces the weekly hours; 00:00-00:00 is a day off
                s, e = overrides[iso_day]
                minutes = set(range(s, e - 14, 15))
            else:
                minutes = {
                    m for w in schedule.windows if weekday in w.days for m in range(w.start, w.end - 14, 15)
                }
            self.slots.append(sorted(minutes))
        # Days without hours borrow the next bookable day, so the year keeps its weekly rhythm.
        self.remap = list(range(len(days)))
        for d in range(len(days)):
            nxt = d
            while not self.slots[nxt % len(days)]:
                nxt += 1
            self.remap[d] = nxt % len(days)


class DemoAccount:
    """A deterministic demo account. Same arguments, byte-identical data.

    `bookings` is the initial booking count (up to millions), `event_types` the number of event types
    (default 8, spread over the personal group and two teams), `seed` varies names and bookings.
    `shape` (one of `SHAPES`) is how much nested data each booking carries: "standard" (the default)
    or "nested" (3-12 attendees, ~45% seated bookings, a dozen custom answers, rich metadata). Both
    shapes have the same slots: ids, times, statuses, updatedAt and event type ids agree booking by
    booking, so only the payload differs.

    Booking ids are `booking_id_base + slot` (default `BOOKING_ID_BASE`); accounts served side by
    side get disjoint ranges (`accounts.py`), and `max_bookings` (default: no limit) caps how many
    slots `add` may create, so an account never grows into the next one's range.
    """

    def __init__(
        self,
        bookings: int = 2000,
        event_types: int | None = None,
        seed: int = 7,
        shape: str = "standard",
        booking_id_base: int = BOOKING_ID_BASE,
        max_bookings: int | None = None,
    ) -> None:
        if bookings < 0:
            raise ValueError("bookings must be >= 0")
        if max_bookings is not None and bookings > max_bookings:
            raise ValueError(f"bookings ({bookings}) must be <= max_bookings ({max_bookings})")
        self.shape = check_shape(shape)
        self.seed = seed
        self.id_base = booking_id_base
        self.max_bookings = max_bookings
        self.initial = bookings
        self.catalog: Catalog = build_catalog(seed, event_types, shape)
        self.factory = BookingFactory(self.catalog, seed, bookings, shape)
        self.lock = threading.RLock()
        self.generation = 0  # bumped on every mutation; caches key on it
        self.start = array("q")
        self.end = array("q")
        self.created = array("q")
        self.updated = array("q")  # -1 = null
        self.status = bytearray()
        self.event_type = array("h")  # index into catalog.event_types; -1 = unknown event type
        self.version = array("I")
        self._deleted: set[int] = set()
        self._live: array | None = None
        self._orders: dict[str, FieldOrder] = {}
        self._clock = AS_OF_EPOCH  # the latest instant a mutation used
        # slot -> (version, JSON bytes): a served booking is rendered once until it changes.
        self._rendered: dict[int, tuple[int, bytes]] = {}
        self._generate(bookings)

    # ---- generation -------------------------------------------------------------------------

    def _generate(self, count: int) -> None:
        ets = self.catalog.event_types
        schedules = {s.id: _ScheduleTable(s) for s in self.catalog.schedules}
        default = schedules[DEFAULT_SCHEDULE_ID]
        # Per event type (and, at index -1, the unknown one): schedule table and length in seconds.
        et_sched = [schedules[et.schedule.id] for et in ets] + [default]
        et_len = [et.length * 60 for et in ets] + [UNKNOWN_LENGTH * 60]
        et_table = (
            _weighted_table([1.0 / (k + 1) ** 0.7 for k in range(len(ets))], 4096) if ets else [-1] * 4096
        )
        seated = next((et.index for et in ets if et.seated), -1)
        status_table = _weighted_table([w for _, w in _STATUS_WEIGHTS], 1024)
        status_codes = [code for code, _ in _STATUS_WEIGHTS]
        days = day_starts(YEAR)

        rng = random.Random(f"demo-bookings:{self.seed}")
        bits = rng.getrandbits
        push_start, push_end = self.start.append, self.end.append
        push_created, push_updated = self.created.append, self.updated.append
        push_status, push_et = self.status.append, self.event_type.append
        for s in range(count):
            r, q = bits(64), bits(64)
            e = et_table[r & 4095]
            r >>= 12
            if s % _UNKNOWN_ET_PERIOD == _UNKNOWN_ET_OFFSET:
                e = -1
            elif s % 100 == _FORCED_SEATED and seated >= 0:
                e = seated
            table = et_sched[e]
            r, d = divmod(r, 365)
            d = table.remap[d]
            if (r & 31) == 0:  # ~3% late-evening bookings, outside the schedule
                minute = 19 * 60 + ((r >> 5) % 12) * 15
            else:
                options = table.slots[d]
                minute = options[(r >> 5) % len(options)]
            r >>= 16
            start = days[d] + minute * 60 - table.offsets[d]
            created = start - 1800 - (r % 5760) * 900  # booked 30 min to 60 days ahead
            r >>= 13
            if created > AS_OF_EPOCH:  # upcoming bookings were made before the snapshot
                created = AS_OF_EPOCH - 60 - (r % (20 * _DAY))
            status = _FORCED_STATUS.get(s % 100, status_codes[status_table[q & 1023]])
            q >>= 10
            if q % 20 == 0 or s % 100 == _FORCED_NULL_UPDATED:
                updated = -1  # ~5% legacy rows without updatedAt
            elif status in (CANCELLED, REJECTED) or (q & 0x30) == 0:
                updated = created + (q >> 6) % max(1, min(start, AS_OF_EPOCH) - created)
            else:
                updated = min(created + (q >> 6) % 120, AS_OF_EPOCH)
            push_start(start)
            push_end(start + et_len[e])
            push_created(created)
            push_updated(updated)
            push_status(status)
            push_et(e)
        # Reschedules: the old booking is cancelled when the new one (next slot) is created.
        for s in range(11, count - 1, 53):
            if is_reschedule_source(s, self.initial):
                self.status[s] = CANCELLED
                self.status[s + 1] = ACCEPTED
                self.updated[s] = max(self.created[s], min(self.created[s + 1], AS_OF_EPOCH))
        self.version = array("I", bytes(4 * count))

    # ---- bookings: lookup -------------------------------------------------------------------

    def live_slots(self) -> Sequence[int]:
        """Slots of existing bookings in id order (a `range` until something is deleted)."""
        if not self._deleted:
            return range(len(self.start))
        if self._live is None:
            gone = self._deleted
            self._live = array("q", [s for s in range(len(self.start)) if s not in gone])
        return self._live

    def slot_of(self, booking_id: int) -> int:
        """The slot of an existing booking; KeyError if it never existed or was deleted."""
        slot = booking_id - self.id_base
        if not 0 <= slot < len(self.start) or slot in self._deleted:
            raise KeyError(booking_id)
        return slot

    def record_json(self, slot: int) -> bytes:
        """`record(slot)` as JSON bytes, cached per (slot, version): touch/add change the version."""
        version = self.version[slot]
        cached = self._rendered.get(slot)
        if cached is not None and cached[0] == version:
            return cached[1]
        # orjson's bytes keep its growth buffer (~8 KB for a 1.3 KB booking): cache an exact copy.
        rendered = memoryview(orjson.dumps(self.record(slot))).tobytes()
        self._rendered[slot] = (version, rendered)
        return rendered

    def prerender(self) -> None:
        """Render every booking now, so serving a page only joins bytes (benchmarks measure clients)."""
        with self.lock:
            for slot in self.live_slots():
                self.record_json(slot)

    def drop_caches(self) -> None:
        """Forget rendered bookings (they are re-rendered on demand); the data itself stays."""
        with self.lock:
            self._rendered.clear()

    def record(self, slot: int) -> Json:
        """The v2 record of a slot, exactly as GET /bookings returns it."""
        return self.factory.build(
            slot,
            self.id_base + slot,
            self.start[slot],
            self.end[slot],
            self.created[slot],
            self.updated[slot],
            self.status[slot],
            self.event_type[slot],
            self.version[slot],
        )

    def booking(self, booking_id: int) -> Json:
        """One booking by id (KeyError when missing or deleted)."""
        return self.record(self.slot_of(booking_id))

    @property
    def booking_count(self) -> int:
        return len(self.start) - len(self._deleted)

    def ordered(self, field: str) -> tuple[array, array]:
        """Live slots sorted ascending by `field` (ties by id), plus the slots where it is null.

        Built lazily once, then maintained by every mutation (see `orders.FieldOrder`).
        """
        maintained = self.field_order(field)
        return maintained.order, maintained.nulls

    def field_order(self, field: str) -> FieldOrder:
        """The maintained order of `field` (one of ORDER_FIELDS)."""
        cached = self._orders.get(field)
        if cached is None:
            cached = self._orders[field] = FieldOrder(getattr(self, field), self.live_slots())
        return cached

    # ---- bookings: mutations ----------------------------------------------------------------

    def _instant(self, at: datetime | None) -> int:
        # Without an explicit time, mutations happen one minute after the previous one (deterministic).
        epoch = to_epoch(at) if at is not None else self._clock + 60
        self._clock = max(self._clock, epoch)
        return epoch

    def touch(self, target: float | Iterable[int], at: datetime | None = None) -> list[int]:
        """Modify bookings: a deterministic `fraction` of them, or the given ids. Returns touched ids.

        Each gets updatedAt = `at` (default: one minute after the previous mutation, after AS_OF), a
        bumped version (title/description change) and sometimes a new status (accepted -> cancelled,
        pending/awaiting_host -> accepted).
        """
        with self.lock:
            if isinstance(target, int | float) and not isinstance(target, bool):
                live = self.live_slots()
                k = min(len(live), round(float(target) * len(live)))
                picker = random.Random(f"demo-touch:{self.seed}:{self.generation}")
                slots = sorted(live[i] for i in picker.sample(range(len(live)), k))
            else:
                slots = sorted({b - self.id_base for b in target if self._exists(b)})
            when = self._instant(at)
            order = self._orders.get("updated")
            if order is not None:
                order.remove(slots)  # found by their old updatedAt, placed again by the new one
            for slot in slots:
                self.updated[slot] = when
                self.version[slot] += 1
                roll = random.Random(slot_key(self.seed, slot) ^ (self.version[slot] << 40)).random()
                if roll < 0.25:
                    if self.status[slot] == ACCEPTED:
                        self.status[slot] = CANCELLED
                    elif self.status[slot] in (PENDING, AWAITING_HOST):
                        self.status[slot] = ACCEPTED
            if order is not None:
                order.insert(slots)
            self.generation += 1
            return [self.id_base + s for s in slots]

    def _exists(self, booking_id: int) -> bool:
        slot = booking_id - self.id_base
        return 0 <= slot < len(self.start) and slot not in self._deleted

    def delete(self, ids: Iterable[int]) -> int:
        """Hard-delete bookings (they vanish without a trace). Returns how many existed."""
        with self.lock:
            slots = {b - self.id_base for b in ids if self._exists(b)}
            if not slots:
                return 0
            if self._live is not None:
                self._live = remove_sorted(self._live, slots, int)
            self._deleted |= slots
            for order in self._orders.values():
                order.remove(slots)
            self.generation += 1
            return len(slots)

    def add(self, n: int, at: datetime | None = None, null_updated_at: bool = False) -> list[int]:
        """Create `n` new bookings at `at` (upcoming, accepted or pending). Returns their ids.

        `null_updated_at` makes them legacy-style rows without `updatedAt`: no `afterUpdatedAt`
        filter ever matches them, so only a full refresh can find them.
        """
        with self.lock:
            first = len(self.start)
            if self.max_bookings is not None and first + n > self.max_bookings:
                raise ValueError(
                    f"cannot add {n} bookings: this account holds at most {self.max_bookings} "
                    f"(its booking ids end at {self.id_base + self.max_bookings - 1})"
                )
            when = self._instant(at)
            ets = self.catalog.event_types
            for slot in range(first, first + n):
                rng = random.Random(slot_key(self.seed, slot) ^ 0xADD)
                e = rng.randrange(len(ets)) if ets else -1
                length = (ets[e].length if e >= 0 else UNKNOWN_LENGTH) * 60
                start = (when + 3600 + rng.randrange(30 * 96) * 900) // 900 * 900
                self.start.append(start)
                self.end.append(start + length)
                self.created.append(when)
                self.updated.append(-1 if null_updated_at else when)
                self.status.append(ACCEPTED if rng.random() < 0.85 else PENDING)
                self.event_type.append(e)
                self.version.append(0)
            new = list(range(first, first + n))
            if self._live is not None:
                self._live.extend(new)
            for order in self._orders.values():
                order.insert(new)
            self.generation += 1
            return [self.id_base + s for s in new]

    # ---- the five small resources -----------------------------------------------------------

    def response_data(self, spec: EndpointSpec | str) -> Json | list[Json]:
        """The `data` member of an unpaged resource's response, exactly as the endpoint sends it."""
        spec = ENDPOINTS_BY_NAME[spec] if isinstance(spec, str) else spec
        if spec.demo_data is None:
            raise KeyError(f"{spec.name} has no demo data in its spec")
        return spec.demo_data(self.catalog)
