"""Builds one booking record (v2 `2024-08-13` shape) on demand from (seed, slot, version).

The account stores only the few numbers every filter needs (times, status, event type, version); the
rest of a booking (people, answers, locations) is re-derived here from a per-slot RNG whenever it is
served, so a million bookings cost a few arrays, not a million dicts.

The "nested" account shape draws more of everything per booking (3-12 attendees, a dozen custom
answers of mixed JSON types, rich metadata); those draws happen only in nested branches, so the
"standard" shape consumes exactly the random numbers it always did and stays byte-identical.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sched_assets.demo.catalog import Catalog, EventType, check_shape
from sched_assets.demo.people import (
    ATTENDEE_ZONES,
    EMAIL_PART,
    LANGUAGES,
    Json,
    person_name,
    pick,
    slugify,
)
from sched_assets.demo.timefmt import iso, iso_or_none

STATUSES: tuple[str, ...] = ("accepted", "cancelled", "rejected", "pending", "awaiting_host")
ACCEPTED, CANCELLED, REJECTED, PENDING, AWAITING_HOST = range(5)
STATUS_CODES: dict[str, int] = {name: code for code, name in enumerate(STATUSES)}

# Bookings of an event type that was deleted since: the id exists nowhere in /event-types.
UNKNOWN_EVENT_TYPE_ID = 4999
UNKNOWN_EVENT_TYPE_SLUG = "retired-consultation"
UNKNOWN_LENGTH = 30

RESCHEDULE_PERIOD = 53  # slot % 53 == 11 is rescheduled into slot + 1
RESCHEDULE_OFFSET = 11
# Seated bookings with slot % 7 == 3 hide their attendees: the key may not see other seats.
HIDDEN_SEATS_PERIOD, HIDDEN_SEATS_OFFSET = 7, 3
# Recurring series: groups of four consecutive slots, one group in 17, only late in the stream.
RECURRING_PERIOD, RECURRING_OFFSET = 17, 5

_CANCEL_REASONS = (
    "Something came up at work",
    "Double booked, sorry!",
    None,
    "Illness",
    "We found another solution",
)
_RESCHEDULE_REASONS = ("Traffic, need a later slot", "Conflict with an all-hands", "Moved to next week")
_COMPANIES = ("Acme GmbH", "Globex", "Initech", "Umbrella Labs", "Hooli", "Vandelay Industries", "Stark & Co")
_NOTES = (
    "Looking forward to it!",
    "Please send the agenda beforehand.",
    "We would like to discuss pricing for 40 seats.",
    "Can we record the session?",
)
# Nested shape: attendees per booking (a seated booking also stops at its event type's seat count).
NESTED_ATTENDEES = (3, 12)
_JOB_TITLES = ("Head of Operations", "CTO", "Account Executive", "Data Engineer", "Office Manager", "Founder")
_INTERESTS = ("analytics", "integrations", "security", "pricing", "support")
_CONTACT_METHODS = ("email", "phone", "chat")
_OFFICES = (  # street, postal code, city, country, latitude, longitude
    ("Torstraße 109", "10119", "Berlin", "DE", 52.5291, 13.4013),
    ("350 5th Ave", "10118", "New York", "US", 40.7484, -73.9857),
    ("1 Canada Square", "E14 5AB", "London", "GB", 51.5049, -0.0195),
    ("Rua Augusta 24", "1100-053", "Lisboa", "PT", 38.7101, -9.1366),
)
_SOURCES = ("booking_page", "embed", "api", "routing_form")
_CAMPAIGNS = ("spring-webinar", "q3-outbound", "partner-referral", "newsletter-42")
_TICKET_TIERS = ("free", "standard", "vip")


def slot_key(seed: int, slot: int) -> int:
    """The RNG seed of one booking slot; distinct for every (seed, slot)."""
    return seed * 4_294_967_296 + slot


def _uid_from(rng: random.Random) -> str:
    raw = base64.b64encode(rng.getrandbits(132).to_bytes(17, "big"), altchars=b"xZ")
    return raw[:22].decode()


def booking_uid(seed: int, slot: int) -> str:
    """The booking's `uid` (the first draw of its RNG, so records and cross-references agree)."""
    return _uid_from(random.Random(slot_key(seed, slot)))


def is_reschedule_source(slot: int, initial: int) -> bool:
    """True for the cancelled half of a reschedule pair (the new booking is `slot + 1`)."""
    return slot % RESCHEDULE_PERIOD == RESCHEDULE_OFFSET and slot + 1 < initial


def _custom_value(rng: random.Random, key: str) -> Any:
    # The same custom question is answered with different JSON types across bookings, as in the real API.
    roll = rng.random()
    if key == "company":
        return pick(rng, _COMPANIES)
    if key == "notes":
        return pick(rng, _NOTES)
    if key == "teamSize":
        options = ("1-10", "11-50", "51-200", "200+")
        return (
            pick(rng, options)
            if roll < 0.6
            else (rng.randint(2, 400) if roll < 0.85 else [pick(rng, options)])
        )
    if key == "budget":
        value = rng.randrange(500, 20_000, 250)
        return value if roll < 0.6 else (str(value) if roll < 0.9 else value + 0.5)
    if key == "topics":
        topics = ("billing", "api", "onboarding", "sso")
        return rng.sample(topics, rng.randint(1, 3)) if roll < 0.7 else pick(rng, topics)
    if key == "newsletter":
        return roll < 0.5 if roll < 0.8 else "on"
    if key == "priority":
        value = pick(rng, ("low", "normal", "urgent"))
        return value if roll < 0.7 else {"value": value, "label": value.title()}
    if key in _NESTED_ANSWERS:
        return _NESTED_ANSWERS[key](rng, roll)
    return pick(rng, _NOTES)


def _phone(rng: random.Random) -> str:
    return f"+49 151 {rng.randrange(10_000_000, 99_999_999)}"


def _headcount(rng: random.Random, roll: float) -> Any:
    value = rng.randint(2, 40)
    return value if roll < 0.8 else str(value)  # number fields sometimes arrive as strings


def _interests(rng: random.Random, roll: float) -> Any:
    return rng.sample(_INTERESTS, rng.randint(1, 4))


def _contact_method(rng: random.Random, roll: float) -> Any:
    # Answered like the location question ({value, optionValue}) by newer booking forms.
    method = pick(rng, _CONTACT_METHODS)
    if roll < 0.3:
        return method
    return {"value": method, "optionValue": _phone(rng) if method == "phone" else ""}


def _office_address(rng: random.Random, roll: float) -> Any:
    street, code, city, country, lat, lng = pick(rng, _OFFICES)
    if roll < 0.25:  # a typed-in one-liner; the rest come from an address autocomplete
        return f"{street}, {code} {city}"
    return {
        "street": street,
        "postalCode": code,
        "city": city,
        "country": country,
        "geo": {"lat": lat, "lng": lng},
    }


def _website(rng: random.Random, roll: float) -> Any:
    return f"https://www.{slugify(pick(rng, _COMPANIES))}.example"


# The nested shape's extra questions (catalog.NESTED_FIELDS): text, numbers, booleans, option lists
# and objects, several with a type that varies between bookings.
_NESTED_ANSWERS: dict[str, Callable[[random.Random, float], Any]] = {
    "jobTitle": lambda rng, roll: pick(rng, _JOB_TITLES),
    "headcount": _headcount,
    "acceptTerms": lambda rng, roll: roll < 0.9,
    "interests": _interests,
    "contactMethod": _contact_method,
    "officeAddress": _office_address,
    "website": _website,
    "mobile": lambda rng, roll: _phone(rng),
}


def _rich_metadata(rng: random.Random) -> Json:
    """The nested shape's booking metadata: tracking and CRM keys of mixed scalar types."""
    synced = rng.random() < 0.7
    return {
        "source": pick(rng, _SOURCES),
        "utm_source": pick(rng, ("google", "linkedin", "newsletter", "partner")),
        "utm_medium": pick(rng, ("cpc", "email", "social", "referral")),
        "utm_campaign": pick(rng, _CAMPAIGNS),
        "crmContactId": f"{rng.getrandbits(40):010x}",
        "crmSynced": synced if rng.random() < 0.8 else str(synced).lower(),
        "leadScore": rng.randint(0, 100),
        "referrer": f"https://{pick(rng, ('www.google.com', 'www.linkedin.com', 'demo.example'))}/",
    }


def _seat_metadata(rng: random.Random, seat: int) -> Json:
    """The nested shape's per-seat metadata."""
    return {
        "seatNumber": seat,
        "ticketTier": pick(rng, _TICKET_TIERS),
        "checkedIn": rng.random() < 0.4,
        "dietary": pick(rng, ("", "vegetarian", "vegan", "gluten-free")),
    }


_LETTERS = str.maketrans("0123456789abcdef", "qwertyuiopasdfgh")


@dataclass(frozen=True)
class _Where:
    location: str | None
    meeting_url: str | None
    response: Json


def _where(rng: random.Random, kind: str) -> _Where:
    if kind == "google_meet":
        code = f"{rng.getrandbits(50):013x}".translate(_LETTERS)
        url = f"https://meet.google.com/{code[:3]}-{code[3:7]}-{code[7:10]}"
        return _Where(url, url, {"value": "integrations:google:meet", "optionValue": ""})
    if kind == "zoom":
        url = f"https://us05web.zoom.us/j/{rng.randrange(10**9, 10**10)}?pwd=demo"
        return _Where(url, url, {"value": "integrations:zoom", "optionValue": ""})
    if kind == "phone":
        number = f"+49 30 {rng.randrange(1_000_000, 9_999_999)}"
        return _Where(number, None, {"value": "phone", "optionValue": number})
    if kind == "in_person":
        address = "Torstraße 109, 10119 Berlin"
        return _Where(address, None, {"value": "inPerson", "optionValue": address})
    url = "https://demo.example/support-room"
    return _Where(url, url, {"value": "link", "optionValue": ""})


class BookingFactory:
    """Turns a slot's stored numbers into the full record the API would return (2024-08-13 shape).

    As the service does: `hosts` is the organizer alone; `meetingUrl` is a (deprecated) copy of
    `location`; non-seated bookings always carry `cancellationReason`/`cancelledByEmail` ("" when
    there is none); seated bookings carry answers per seat and no top-level `guests` or answers.
    """

    def __init__(self, catalog: Catalog, seed: int, initial: int, shape: str = "standard") -> None:
        self.catalog = catalog
        self.seed = seed
        self.initial = initial
        self.nested = check_shape(shape) == "nested"
        # Rarely-present fields (rating, recurringBookingUid) start only after this slot, so a client
        # that infers its schema from the first pages meets them deep into the sync.
        self.late_from = int(initial * 0.6)

    def recurring_uid(self, slot: int) -> str | None:
        """The series uid of a recurring booking, None for one-off bookings (filters use it too)."""
        if slot < self.late_from or (slot // 4) % RECURRING_PERIOD != RECURRING_OFFSET:
            return None
        group = (slot // 4) * 0x9E3779B97F4A7C15 + self.seed * 0xBF58476D1CE4E5B9
        return str(uuid.UUID(int=group & (2**128 - 1), version=4))

    def _nested_attendee_count(self, rng: random.Random, et: EventType | None) -> int:
        """3-12 attendees; a seated booking fills at most its event type's seats."""
        low, high = NESTED_ATTENDEES
        seats = et.record["seatsPerTimeSlot"] if et is not None else None
        return rng.randint(low, max(low, min(high, seats))) if seats else rng.randint(low, high)

    def _attendee(self, rng: random.Random) -> tuple[Json, str, str]:
        first, last = person_name(rng)
        email = f"{EMAIL_PART[first]}.{EMAIL_PART[last]}{rng.getrandbits(7)}@example.com"
        attendee: Json = {
            "name": f"{first} {last}",
            "email": email,
            "displayEmail": email,
            "timeZone": pick(rng, ATTENDEE_ZONES),
            "language": pick(rng, LANGUAGES),
            "absent": rng.random() < 0.04,
        }
        if rng.random() < 0.2:
            attendee["phoneNumber"] = f"+1 212 555 {rng.randrange(1000, 9999)}"
        return attendee, first, last

    def _responses(
        self,
        rng: random.Random,
        first: str,
        last: str,
        email: str | None,
        et: EventType | None,
        where: _Where,
    ) -> Json:
        name: str | Json = (
            f"{first} {last}" if rng.random() < 0.65 else {"firstName": first, "lastName": last}
        )
        out: Json = {"name": name, "location": dict(where.response)}
        if email is not None:  # a seat's answers come without the email (it is on the attendee)
            out["email"] = email
        for key in et.custom_fields if et else ():
            if rng.random() < 0.75:
                out[key] = _custom_value(rng, key)
        return out

    def build(
        self,
        slot: int,
        booking_id: int,
        start: int,
        end: int,
        created: int,
        updated: int,
        status: int,
        et_index: int,
        version: int,
    ) -> Json:
        """The v2 record of one booking; deterministic in (seed, slot, stored numbers)."""
        rng = random.Random(slot_key(self.seed, slot))
        uid = _uid_from(rng)
        et = self.catalog.event_types[et_index] if et_index >= 0 else None
        # The organizer: a round-robin pick, a collective event's first host, or the owner.
        if et is None:
            organizer = self.catalog.owner
        elif et.collective:
            organizer = et.hosts[0]
        else:
            organizer = pick(rng, et.hosts)
        seated = et is not None and et.seated
        kind = pick(rng, et.location_kinds) if et else "google_meet"
        where = _where(rng, kind)

        roll = rng.random()
        if self.nested:
            n_attendees = self._nested_attendee_count(rng, et)
        else:
            n_attendees = 2 + rng.randrange(3) if seated else (1 if roll < 0.8 else 2 if roll < 0.95 else 3)
        people = [self._attendee(rng) for _ in range(n_attendees)]
        attendees = [p[0] for p in people]
        guests = [a["email"] for a in attendees[1:]]
        et_title = et.record["title"] if et else "Consultation"
        title = f"{et_title} between {organizer.name} and {attendees[0]['name']}"
        description = pick(rng, ("", "", "Agenda: intro, demo, Q&A.", "Follow-up on our last call."))
        if version:
            # A touched booking visibly changed, not only its updatedAt.
            title = f"{title} (updated)"
            description = f"Updated by the host (revision {version})."

        record: Json = {
            "id": booking_id,
            "uid": uid,
            "title": title,
            "description": description,
            "hosts": [organizer.host()],
            "status": STATUSES[status],
        }
        reschedule_source = is_reschedule_source(slot, self.initial) and status == CANCELLED
        if status == CANCELLED:
            reason = "Rescheduled" if reschedule_source else pick(rng, _CANCEL_REASONS)
            record["cancellationReason"] = reason or ""
            record["cancelledByEmail"] = pick(rng, (organizer.email, attendees[0]["email"]))
        elif not seated:
            record["cancellationReason"] = record["cancelledByEmail"] = ""
        if reschedule_source:
            record["rescheduledToUid"] = booking_uid(self.seed, slot + 1)
        elif slot >= 1 and slot < self.initial and is_reschedule_source(slot - 1, self.initial):
            record["reschedulingReason"] = pick(rng, _RESCHEDULE_REASONS)
            record["rescheduledFromUid"] = booking_uid(self.seed, slot - 1)
        record.update(
            {
                "start": iso(start),
                "end": iso(end),
                "duration": (end - start) // 60,
                "eventTypeId": et.id if et else UNKNOWN_EVENT_TYPE_ID,
                "eventType": {"id": et.id, "slug": et.slug}
                if et
                else {"id": UNKNOWN_EVENT_TYPE_ID, "slug": UNKNOWN_EVENT_TYPE_SLUG},
                "meetingUrl": where.location,
                "location": where.location,
                "absentHost": rng.random() < 0.03,
                "createdAt": iso(created),
                "updatedAt": iso_or_none(updated),
                "metadata": {"videoCallUrl": where.meeting_url}
                if where.meeting_url and rng.random() < 0.1
                else {},
            }
        )
        if self.nested:
            record["metadata"].update(_rich_metadata(rng))
        late = slot >= self.late_from
        if late and status == ACCEPTED and rng.random() < 0.45:
            record["rating"] = rng.randint(1, 5)
        record["icsUid"] = f"{uid}@Cal.com"
        if seated:
            # Answers per seat, never at the top level; and no `guests` (every seat is an attendee).
            for seat, (attendee, first, last) in enumerate(people, 1):
                attendee["seatUid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                attendee["bookingFieldsResponses"] = self._responses(rng, first, last, None, et, where)
                attendee["metadata"] = _seat_metadata(rng, seat) if self.nested else {}
            hidden = slot % HIDDEN_SEATS_PERIOD == HIDDEN_SEATS_OFFSET
            record["attendees"] = [] if hidden else attendees
        else:
            record["attendees"] = attendees
            record["guests"] = guests
            _, first, last = people[0]
            responses = self._responses(rng, first, last, attendees[0]["email"], et, where)
            if guests:
                responses["guests"] = guests
            if rng.random() < 0.3:
                responses["notes"] = pick(rng, _NOTES)
            record["bookingFieldsResponses"] = responses
        series = self.recurring_uid(slot)
        if series is not None:
            record["recurringBookingUid"] = series
        return record
