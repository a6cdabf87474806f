"""The documented (2024-06-14) shapes of event types and teams, derived from the legacy records.

`catalog.py` keeps one legacy record per event type (the grouped shape GET /event-types answers with
no version header). Everything here is computed from those records, so both shapes describe the
same event types: same ids, titles, slugs, lengths, schedules, buffers, prices, hosts.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import orjson

from sched_assets.demo.people import DOMAIN, Json, Person, slugify

SCHEDULING_TYPES = {"ROUND_ROBIN": "roundRobin", "COLLECTIVE": "collective", "MANAGED": "managed"}
_PRIORITIES = ("lowest", "low", "medium", "high", "highest")  # legacy hosts number them 0..4
_FREQUENCIES = ("yearly", "monthly", "weekly")  # rrule numbering of the legacy recurringEvent.freq
_INTEGRATIONS = {"integrations:google:meet": "google-meet", "integrations:zoom": "zoom"}
_LABELS = {"name": "Your name", "email": "Email address", "location": "Location"}
_BRAND = {"brandColor": "#292929", "darkBrandColor": "#fafafa"}
_WITH_PLACEHOLDER = {"text", "textarea", "number", "select", "phone", "address", "url", "multiemail"}
# Default fields the documented shape always lists (unless a custom field already uses the slug).
_TRAILING_DEFAULTS: tuple[Json, ...] = (
    {"type": "textarea", "slug": "notes", "label": "Additional notes"},
    {"type": "multiemail", "slug": "guests", "label": "Add guests"},
    {"type": "textarea", "slug": "rescheduleReason", "label": "Reason for reschedule"},
)


def avatar(person: Person) -> str:
    return f"https://{DOMAIN}/avatars/{person.id}.png"


def team_record(team_id: int, name: str) -> Json:
    """One team of GET /teams (`TeamOutputDto`)."""
    return {
        "id": team_id,
        "name": name,
        "slug": slugify(name),
        "logoUrl": f"https://{DOMAIN}/teams/{team_id}.png",
        "bannerUrl": f"https://{DOMAIN}/teams/{team_id}-banner.png",
        "bio": f"{name}: book a slot with whoever is free.",
        "hideBranding": False,
        "isOrganization": False,
        "isPrivate": False,
        "hideBookATeamMember": False,
        "metadata": {},
        "theme": "light",
        **_BRAND,
        "timeFormat": 24,
        "timeZone": "Europe/Berlin",
        "weekStart": "Monday",
    }


def own_event_type(record: Json, owner: Person) -> Json:
    """The key owner's event type as GET /event-types answers with `cal-api-version: 2024-06-14`."""
    out = _base(record)
    out["ownerId"] = record["userId"]
    out["users"] = [
        {
            "id": owner.id,
            "name": owner.name,
            "username": owner.username,
            "avatarUrl": avatar(owner),
            "weekStart": "Monday",
            **_BRAND,
            "metadata": {},
        }
    ]
    out["bookingUrl"] = f"https://{DOMAIN}/{owner.username}/{record['slug']}"
    return out


def team_event_type(record: Json, hosts: Sequence[Person], team: Json) -> Json:
    """A team's event type as GET /teams/{teamId}/event-types answers (`TeamEventTypeOutput_2024_06_14`)."""
    out = _base(record)
    by_id = {person.id: person for person in hosts}
    out.update(
        {
            "teamId": record["teamId"],
            "ownerId": None,  # team event types belong to the team, not to a user
            "parentEventTypeId": None,  # only the per-user copies of a managed event type have one
            "hosts": [_team_host(h, by_id[h["userId"]]) for h in record["hosts"]],
            "assignAllTeamMembers": record["assignAllTeamMembers"],
            "schedulingType": SCHEDULING_TYPES[record["schedulingType"]],
            "team": {k: team[k] for k in ("id", "slug", "bannerUrl", "name", "logoUrl", "weekStart", "theme")}
            | _BRAND,
        }
    )
    return out


def _team_host(legacy: Json, person: Person) -> Json:
    return {
        "userId": person.id,
        "name": person.name,
        "username": person.username,
        "avatarUrl": avatar(person),
        "mandatory": legacy["isFixed"],
        "priority": _PRIORITIES[legacy["priority"]],
        "weight": 100,
    }


def _base(r: Json) -> Json:
    """The fields both documented variants share, renamed and retyped from the legacy record."""
    metadata = copy.deepcopy(r["metadata"]) or {}  # a copy: callers may reshape what they get
    seats = r["seatsPerTimeSlot"]
    out: Json = {
        "id": r["id"],
        "title": r["title"],
        "slug": r["slug"],
        "lengthInMinutes": r["length"],
    }
    if metadata.get("multipleDuration"):
        out["lengthInMinutesOptions"] = list(metadata["multipleDuration"])
    out.update(
        {
            "description": r["description"] or "",
            "locations": [_location(loc) for loc in r["locations"]],
            "bookingFields": _booking_fields(r["bookingFields"], len(r["locations"])),
            "disableGuests": False,
            "slotInterval": r["slotInterval"],
            "minimumBookingNotice": r["minimumBookingNotice"],
            "beforeEventBuffer": r["beforeEventBuffer"],
            "afterEventBuffer": r["afterEventBuffer"],
            "recurrence": _recurrence(r["recurringEvent"]),
            "metadata": metadata,
            "price": r["price"],
            "currency": r["currency"],
            "lockTimeZoneToggleOnBookingPage": r["lockTimeZoneToggleOnBookingPage"],
            "seatsPerTimeSlot": seats,
            "forwardParamsSuccessRedirect": True,
            "successRedirectUrl": r["successRedirectUrl"],
            "isInstantEvent": False,
            "seatsShowAvailabilityCount": True if seats else None,
            "scheduleId": r["scheduleId"],  # null: the owner's default schedule
            "bookerLayouts": {"defaultLayout": "month", "enabledLayouts": ["month", "week", "column"]},
            "requiresBookerEmailVerification": False,
            "hideCalendarNotes": False,
            "hidden": r["hidden"],
            "bookingRequiresAuthentication": False,
        }
    )
    if seats:
        out["seats"] = {
            "seatsPerTimeSlot": seats,
            "showAttendeeInfo": r["seatsShowAttendees"],
            "showAvailabilityCount": True,
        }
    if r["requiresConfirmation"]:
        out["confirmationPolicy"] = {"type": "always", "blockUnconfirmedBookingsInBooker": False}
    return out


def _location(loc: Json) -> Json:
    kind = loc["type"]
    if kind in _INTEGRATIONS:
        return {"type": "integration", "integration": _INTEGRATIONS[kind]}
    if kind == "phone":  # the attendee gives their number when booking
        return {"type": "attendeePhone"}
    if kind == "inPerson":
        return {"type": "address", "address": loc["address"], "public": loc["displayLocationPublicly"]}
    if kind == "link":
        return {"type": "link", "link": loc["link"], "public": True}
    return {"type": "unknown", "location": orjson.dumps(loc).decode()}


def _recurrence(rule: Json | None) -> Json | None:
    if rule is None:
        return None
    return {
        "interval": rule["interval"],
        "occurrences": rule["count"],
        "frequency": _FREQUENCIES[rule["freq"]],
    }


def _booking_fields(legacy: list[Json] | None, locations: int) -> list[Json]:
    """Documented booking fields: system defaults (with their documented labels) plus custom ones.

    A legacy `null` means "defaults only"; the location choice is listed only with several locations.
    """
    fields: list[Json] = [
        {
            "type": "name",
            "slug": "name",
            "label": _LABELS["name"],
            "placeholder": "",
            "required": True,
            "disableOnPrefill": False,
            "isDefault": True,
        },
        {
            "type": "email",
            "slug": "email",
            "label": _LABELS["email"],
            "placeholder": "",
            "required": True,
            "hidden": False,
            "isDefault": True,
        },
    ]
    if locations > 1:
        fields.append(
            {
                "type": "radioInput",
                "slug": "location",
                "label": _LABELS["location"],
                "required": False,
                "hidden": False,
                "isDefault": True,
            }
        )
    custom = [f for f in legacy or () if f["editable"] == "user"]
    fields += [_custom_field(f) for f in custom]
    taken = {f["slug"] for f in fields}
    for default in _TRAILING_DEFAULTS:
        if default["slug"] not in taken:
            extra: dict[str, Any] = {"placeholder": "", "disableOnPrefill": False}
            fields.append({**default, "required": False, "hidden": False, **extra, "isDefault": True})
    return fields


def _custom_field(f: Json) -> Json:
    out: Json = {"type": f["type"], "slug": f["name"], "label": f["label"], "required": f["required"]}
    if f["type"] in _WITH_PLACEHOLDER:
        out["placeholder"] = ""
    if "options" in f:
        out["options"] = list(f["options"])
    out.update({"hidden": False, "isDefault": False, "disableOnPrefill": False})
    return out
