"""The small, static part of the demo account: profile, event types, and the `Catalog` that holds it all.

Everything here is built once from the seed and is tiny (even 300 event types). Event types are kept
as legacy records (the grouped, header-less shape); `event_types.py` derives the documented shapes
from them, so both describe the same account. Bookings are generated lazily (`generator.py`).

The account `shape` (one of `SHAPES`) picks how much nested data bookings carry; here the "nested"
shape adds extra questions to every event type's booking form and makes about half the bookable
event types seated (ids, lengths and schedules stay, so bookings keep their times).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import NamedTuple

from sched_assets.demo.event_types import own_event_type, team_event_type, team_record
from sched_assets.demo.integrations import calendars, conferencing
from sched_assets.demo.people import (
    DEFAULT_SCHEDULE_ID,
    DOMAIN,
    OWNER_ID,
    SALES_TEAM_ID,
    SUPPORT_TEAM_ID,
    Json,
    Person,
    person_name,
    slugify,
)
from sched_assets.demo.schedules import Schedule, build_schedules

# Account shapes: "standard" (the default data set) and "nested" (many attendees and seats, many
# custom answers of mixed JSON types, rich metadata), so benchmarks are not tuned to one data set.
SHAPES: tuple[str, ...] = ("standard", "nested")
# The "nested" shape asks these questions on every event type, after the event type's own ones.
NESTED_FIELDS: tuple[str, ...] = (
    "jobTitle",
    "headcount",
    "acceptTerms",
    "interests",
    "contactMethod",
    "officeAddress",
    "website",
    "mobile",
)
# Nested shape: these canonical event types become seated too (with Office Hours, ~45% of bookings);
# extra event types (index >= 8) are seated every other one. Never the first two, so the account's
# first seated event type (which the generator forces into some slots) is the same in both shapes.
_NESTED_SEATED_SLUGS = frozenset({"deep-dive-us", "onboarding", "evening-call", "support-triage"})
_NESTED_SEATS = 12


def check_shape(shape: str) -> str:
    """`shape` itself if it is one of `SHAPES`; a ValueError naming the allowed shapes otherwise."""
    if shape not in SHAPES:
        raise ValueError(f"unknown demo account shape {shape!r}; expected one of: {', '.join(SHAPES)}")
    return shape


@dataclass(frozen=True)
class EventType:
    """One event type plus what the booking generator needs to know about it."""

    index: int
    record: Json
    hosts: tuple[Person, ...]
    schedule: Schedule
    custom_fields: tuple[str, ...]
    location_kinds: tuple[str, ...]

    @property
    def id(self) -> int:
        return self.record["id"]

    @property
    def slug(self) -> str:
        return self.record["slug"]

    @property
    def length(self) -> int:
        return self.record["length"]

    @property
    def seated(self) -> bool:
        return self.record["seatsPerTimeSlot"] is not None

    @property
    def collective(self) -> bool:
        return self.record["schedulingType"] == "COLLECTIVE"


class _Spec(NamedTuple):
    title: str
    slug: str
    length: int
    team: int | None = None
    schedule_id: int | None = None  # None: the owner's (or team's) default schedule
    seats: int | None = None
    hidden: bool = False
    scheduling: str | None = None  # ROUND_ROBIN | COLLECTIVE for team event types
    locations: tuple[str, ...] = ("google_meet",)
    custom_fields: tuple[str, ...] = ()


# The default account's event types, in order: personal, team, seated, other time zone, hidden.
_CANONICAL: tuple[_Spec, ...] = (
    _Spec("30 Min Meeting", "30min", 30, locations=("google_meet", "zoom"), custom_fields=("company", "notes")),
    _Spec("Sales Demo", "sales-demo", 30, SALES_TEAM_ID, scheduling="ROUND_ROBIN", locations=("zoom",),
          custom_fields=("company", "teamSize", "budget")),
    _Spec("Office Hours", "office-hours", 45, schedule_id=703, seats=6, custom_fields=("topics",)),
    _Spec("15 Min Intro", "15min", 15, schedule_id=DEFAULT_SCHEDULE_ID, locations=("phone", "google_meet"),
          custom_fields=("newsletter",)),
    _Spec("Deep Dive (US)", "deep-dive-us", 60, schedule_id=702, locations=("zoom", "in_person"),
          custom_fields=("company", "topics", "teamSize")),
    _Spec("Customer Onboarding", "onboarding", 60, SALES_TEAM_ID, scheduling="COLLECTIVE",
          custom_fields=("company", "teamSize")),
    _Spec("Evening Call", "evening-call", 30, schedule_id=703, hidden=True, locations=("phone",),
          custom_fields=("notes",)),
    _Spec("Support Triage", "support-triage", 20, SUPPORT_TEAM_ID, scheduling="ROUND_ROBIN",
          locations=("google_meet", "link"), custom_fields=("priority", "newsletter")),
)  # fmt: skip
_TOPICS = ("Strategy", "Review", "Planning", "Check-in", "Workshop", "Consultation", "Interview", "Retro")
_LOCATIONS: dict[str, Json] = {
    "google_meet": {"type": "integrations:google:meet"},
    "zoom": {"type": "integrations:zoom"},
    "phone": {"type": "phone"},
    "in_person": {
        "type": "inPerson",
        "address": "Torstraße 109, 10119 Berlin",
        "displayLocationPublicly": True,
    },
    "link": {"type": "link", "link": "https://demo.example/support-room"},
}
_FIELD_SPECS: dict[str, Json] = {
    "company": {"type": "text", "label": "Company"},
    "notes": {"type": "textarea", "label": "Additional notes"},
    "teamSize": {"type": "select", "label": "Team size", "options": ["1-10", "11-50", "51-200", "200+"]},
    "budget": {"type": "number", "label": "Budget (EUR)"},
    "topics": {"type": "multiselect", "label": "Topics", "options": ["billing", "api", "onboarding", "sso"]},
    "newsletter": {"type": "boolean", "label": "Subscribe to newsletter"},
    "priority": {"type": "radio", "label": "Priority", "options": ["low", "normal", "urgent"]},
    # The "nested" shape's extra questions (NESTED_FIELDS): one of every documented answer type.
    "jobTitle": {"type": "text", "label": "Job title"},
    "headcount": {"type": "number", "label": "How many people will join?"},
    "acceptTerms": {"type": "boolean", "label": "I accept the terms"},
    "interests": {
        "type": "checkbox",
        "label": "Interests",
        "options": ["analytics", "integrations", "security", "pricing", "support"],
    },
    "contactMethod": {"type": "radio", "label": "Preferred contact", "options": ["email", "phone", "chat"]},
    "officeAddress": {"type": "address", "label": "Office address"},
    "website": {"type": "url", "label": "Company website"},
    "mobile": {"type": "phone", "label": "Mobile number"},
}


def _booking_fields(custom: tuple[str, ...]) -> list[Json]:
    fields: list[Json] = [
        {"name": "name", "type": "name", "defaultLabel": "your_name", "required": True, "editable": "system"},
        {
            "name": "email",
            "type": "email",
            "defaultLabel": "email_address",
            "required": True,
            "editable": "system",
        },
        {
            "name": "location",
            "type": "radioInput",
            "defaultLabel": "location",
            "required": False,
            "editable": "system",
        },
    ]
    for name in custom:
        spec = _FIELD_SPECS[name]
        fields.append({"name": name, "required": False, "editable": "user", **spec})
    return fields


@dataclass
class Catalog:
    """All static resources of one demo account."""

    owner: Person
    members: tuple[Person, ...]
    teams: dict[int, tuple[str, tuple[Person, ...]]]
    schedules: tuple[Schedule, ...]
    event_types: tuple[EventType, ...]
    calendars: Json = field(default_factory=dict)
    conferencing: list[Json] = field(default_factory=list)

    def schedule(self, schedule_id: int) -> Schedule:
        return next(s for s in self.schedules if s.id == schedule_id)

    def me_record(self) -> Json:
        o = self.owner
        return {
            "id": o.id,
            "email": o.email,
            "name": o.name,
            "username": o.username,
            "timeFormat": 24,
            "defaultScheduleId": DEFAULT_SCHEDULE_ID,
            "weekStart": "Monday",
            "timeZone": o.time_zone,
            "organizationId": None,
            "avatarUrl": f"https://{DOMAIN}/avatars/{o.id}.png",
            "bio": "Runs customer workshops. Book a slot, I'll bring coffee.",
            "locale": "en",
        }

    def event_types_documented(self) -> list[Json]:
        """`data` of GET /event-types with `cal-api-version: 2024-06-14`: the owner's own event types."""
        own = (et.record for et in self.event_types if et.record["teamId"] is None)
        return [own_event_type(record, self.owner) for record in own]

    def teams_data(self) -> list[Json]:
        """`data` of GET /teams: the teams the key's owner belongs to."""
        return [team_record(team_id, name) for team_id, (name, _) in self.teams.items()]

    def team_event_types(self, team_id: int) -> list[Json]:
        """`data` of GET /teams/{team_id}/event-types; KeyError for a team the owner is not in."""
        name, members = self.teams[team_id]
        team = team_record(team_id, name)
        return [
            team_event_type(et.record, members, team)
            for et in self.event_types
            if et.record["teamId"] == team_id
        ]

    def event_types_data(self) -> Json:
        """`data` of GET /event-types without the version header (legacy): groups and profiles."""
        owner = self.owner
        groups: list[Json] = [
            {
                "teamId": None,
                "profile": {
                    "slug": owner.username,
                    "name": owner.name,
                    "image": f"https://{DOMAIN}/avatars/{owner.id}.png",
                },
                "metadata": {"membershipCount": 1, "readOnly": False},
                "eventTypes": [et.record for et in self.event_types if et.record["teamId"] is None],
            }
        ]
        profiles: list[Json] = [
            dict(groups[0]["profile"], teamId=None, membershipRole=None, membershipCount=1)
        ]
        for team_id, (team_name, team_members) in self.teams.items():
            profile = {
                "slug": slugify(team_name),
                "name": team_name,
                "image": f"https://{DOMAIN}/teams/{team_id}.png",
            }
            groups.append(
                {
                    "teamId": team_id,
                    "profile": profile,
                    "metadata": {"membershipCount": len(team_members), "readOnly": False},
                    "eventTypes": [et.record for et in self.event_types if et.record["teamId"] == team_id],
                }
            )
            profiles.append(
                dict(profile, teamId=team_id, membershipRole="ADMIN", membershipCount=len(team_members))
            )
        return {"eventTypeGroups": groups, "profiles": profiles}


def _event_type(
    k: int,
    spec: _Spec,
    owner: Person,
    teams: dict[int, tuple[str, tuple[Person, ...]]],
    sched: dict[int, Schedule],
) -> EventType:
    title, slug, length, team, schedule_id, seats, hidden, scheduling, locs, custom = spec
    hosts = teams[team][1] if team else (owner,)
    # Team event types without their own schedule follow the team's usual hours (hosts' defaults).
    effective = schedule_id or {SALES_TEAM_ID: DEFAULT_SCHEDULE_ID, SUPPORT_TEAM_ID: 702}.get(
        team, DEFAULT_SCHEDULE_ID
    )
    metadata: Json | None
    if k % 3 == 0:
        metadata = {"apps": {"stripe": {"enabled": False}}, "multipleDuration": [length, length * 2]}
    elif k % 3 == 1:
        metadata = None
    else:
        metadata = {}
    record: Json = {
        "id": 5001 + k,
        "title": title,
        "slug": slug,
        "length": length,
        "description": f"{title}: pick a slot that suits you." if k % 4 else None,
        "hidden": hidden,
        "position": 0,  # filled per group below
        "metadata": metadata,
        "afterEventBuffer": (0, 5, 10, 15)[k % 4],
        "beforeEventBuffer": (0, 0, 5, 10)[k % 4],
        "assignAllTeamMembers": bool(team) and k % 2 == 1,
        "schedulingType": scheduling,
        "scheduleId": schedule_id,
        "teamId": team,
        "userId": None if team else owner.id,
        "price": 0 if k % 5 else 4900,
        "currency": "eur" if k % 2 else "usd",
        "locations": [_LOCATIONS[name] for name in locs],
        "bookingFields": _booking_fields(custom) if k % 4 != 2 else None,
        "hosts": [{"userId": p.id, "isFixed": scheduling == "COLLECTIVE", "priority": 2} for p in hosts]
        if team
        else [],
        "seatsPerTimeSlot": seats,
        "seatsShowAttendees": bool(seats),
        "minimumBookingNotice": 120,
        "periodType": "UNLIMITED",
        "requiresConfirmation": k % 6 == 5,
        "slotInterval": None,
        "eventName": None,
        "recurringEvent": {"freq": 2, "count": 4, "interval": 1} if k % 7 == 3 else None,
        "lockTimeZoneToggleOnBookingPage": False,
        "successRedirectUrl": None,
    }
    return EventType(k, record, hosts, sched[effective], custom, locs)


def _nested_spec(k: int, spec: _Spec) -> _Spec:
    """`spec` as the nested shape has it: more questions, and seated if picked for seats."""
    seated = spec.slug in _NESTED_SEATED_SLUGS or (k >= len(_CANONICAL) and k % 2 == 0)
    seats = spec.seats or (_NESTED_SEATS if seated else None)
    return spec._replace(custom_fields=spec.custom_fields + NESTED_FIELDS, seats=seats)


def build_catalog(seed: int, event_types: int | None, shape: str = "standard") -> Catalog:
    """Build every static resource for `seed`; `event_types` defaults to the 8 canonical ones.

    `shape="nested"` appends `NESTED_FIELDS` to every event type's custom questions and seats more
    event types (see `_nested_spec`); ids, lengths and schedules are the same in every shape.
    """
    check_shape(shape)
    rng = random.Random(f"demo-catalog:{seed}")
    first, last = person_name(rng)
    owner = Person(OWNER_ID, first, last, "Europe/Berlin")
    zones = ("America/New_York", "Europe/Berlin", "Europe/London", "America/New_York", "Europe/Lisbon")
    members = tuple(Person(OWNER_ID + 1 + i, *person_name(rng), zones[i]) for i in range(5))
    teams = {
        SALES_TEAM_ID: ("Acme Sales", (owner, members[0], members[1], members[2])),
        SUPPORT_TEAM_ID: ("Acme Support", (owner, members[3], members[4])),
    }
    schedules = build_schedules()
    by_id = {s.id: s for s in schedules}
    count = len(_CANONICAL) if event_types is None else max(0, event_types)
    specs = list(_CANONICAL[:count])
    for k in range(len(specs), count):
        # Extra event types for loop-guard tests: half personal, the rest split over the two teams.
        bucket = k % 10
        team = None if bucket < 5 else (SALES_TEAM_ID if bucket < 8 else SUPPORT_TEAM_ID)
        title = f"{_TOPICS[k % len(_TOPICS)]} {k}"
        specs.append(
            _Spec(
                title,
                slugify(title),
                (15, 20, 30, 45, 60, 90)[k % 6],
                team,
                schedule_id=(None, DEFAULT_SCHEDULE_ID, 702, 703, 704)[k % 5],
                hidden=k % 11 == 0,
                scheduling=None if team is None else ("ROUND_ROBIN", "COLLECTIVE")[k % 2],
                locations=(("google_meet",), ("zoom", "phone"), ("in_person",))[k % 3],
                custom_fields=(("company",), ("teamSize", "notes"), ("topics", "newsletter"), ())[k % 4],
            )
        )
    if shape == "nested":
        specs = [_nested_spec(k, spec) for k, spec in enumerate(specs)]
    ets = [_event_type(k, spec, owner, teams, by_id) for k, spec in enumerate(specs)]
    # Cal.com shows higher positions first; number each group independently.
    for team in (None, SALES_TEAM_ID, SUPPORT_TEAM_ID):
        group = [et for et in ets if et.record["teamId"] == team]
        for pos, et in enumerate(group):
            et.record["position"] = len(group) - pos
    catalog = Catalog(owner, members, teams, schedules, tuple(ets))
    catalog.calendars = calendars(owner)
    catalog.conferencing = conferencing(owner)
    return catalog
