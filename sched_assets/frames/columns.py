"""Explicit column types of every raw table, so frames never depend on what the first rows looked like.

Each entry maps the API's camelCase field to its kind. Kinds map to one Polars dtype and one DuckDB type;
`json` columns hold nested objects and lists as JSON text (DuckDB `JSON`).
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["int", "float", "bool", "str", "ts", "json"]

# DuckDB column type for each kind; Polars dtypes live in frames.build.
DUCKDB_TYPES: dict[Kind, str] = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "str": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "json": "JSON",
}

FIELDS: dict[str, dict[str, Kind]] = {
    "event_types": {
        "id": "int",
        "title": "str",
        "slug": "str",
        "length": "int",
        "description": "str",
        "hidden": "bool",
        "position": "int",
        "metadata": "json",
        "afterEventBuffer": "int",
        "beforeEventBuffer": "int",
        "assignAllTeamMembers": "bool",
        "schedulingType": "str",
        "scheduleId": "int",
        "teamId": "int",
        "userId": "int",
        "price": "float",
        "currency": "str",
        "locations": "json",
        "bookingFields": "json",
        "hosts": "json",
        "seatsPerTimeSlot": "int",
    },
    "my_profile": {
        "id": "int",
        "email": "str",
        "name": "str",
        "username": "str",
        "timeFormat": "int",
        "defaultScheduleId": "int",
        "weekStart": "str",
        "timeZone": "str",
        "organizationId": "int",
        "avatarUrl": "str",
        "bio": "str",
    },
    "schedules": {
        "id": "int",
        "ownerId": "int",
        "name": "str",
        "timeZone": "str",
        "isDefault": "bool",
        "availability": "json",
        "overrides": "json",
    },
    "calendars": {
        "credentialId": "int",
        "externalId": "str",
        "integration": "str",
        "name": "str",
        "primary": "bool",
        "readOnly": "bool",
        "email": "str",
        "isSelected": "bool",
        "delegationCredentialId": "str",
    },
    "bookings": {
        "id": "int",
        "uid": "str",
        "title": "str",
        "description": "str",
        "hosts": "json",
        "status": "str",
        "cancellationReason": "str",
        "cancelledByEmail": "str",
        "reschedulingReason": "str",
        "rescheduledFromUid": "str",
        "rescheduledToUid": "str",
        "start": "ts",
        "end": "ts",
        "duration": "int",
        "eventTypeId": "int",
        "eventType": "json",
        "meetingUrl": "str",
        "location": "str",
        "absentHost": "bool",
        "createdAt": "ts",
        "updatedAt": "ts",
        "metadata": "json",
        "rating": "float",
        "icsUid": "str",
        "attendees": "json",
        "guests": "json",
        "bookingFieldsResponses": "json",
        "recurringBookingUid": "str",
    },
    "conferencing": {
        "id": "int",
        "type": "str",
        "userId": "int",
        "teamId": "int",
        "appId": "str",
        "invalid": "bool",
        "subscriptionId": "str",
        "paymentStatus": "str",
        "billingCycleStart": "int",
        "delegationCredentialId": "str",
    },
}

EXTRA_COLUMN = "_extra"
SYNCED_AT_COLUMN = "_synced_at"

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`eventTypeId` -> `event_type_id`, `bookingFieldsResponses` -> `booking_fields_responses`."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def column_types(resource: str) -> dict[str, str]:
    """snake_case column -> DuckDB type for one raw table, bookkeeping columns included."""
    types = {snake_case(field): DUCKDB_TYPES[kind] for field, kind in FIELDS[resource].items()}
    types[EXTRA_COLUMN] = "JSON"
    types[SYNCED_AT_COLUMN] = "TIMESTAMPTZ"
    return types
