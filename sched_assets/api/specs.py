"""The one table that describes the six API resources; everything else reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointSpec:
    """How one API resource is fetched and keyed.

    `selector` uses the config guide's syntax: dot-separated keys, `*` for "every item of this list".
    `primary_key` names API (camelCase) fields; storage turns them into snake_case columns.
    """

    name: str
    path: str
    selector: str
    primary_key: tuple[str, ...]
    version: str | None = None
    paged: bool = False
    description: str = ""

    @property
    def headers(self) -> dict[str, str]:
        # A missing or quoted version silently selects an older response shape, so send it exactly.
        return {"cal-api-version": self.version} if self.version else {}


ENDPOINTS: tuple[EndpointSpec, ...] = (
    EndpointSpec(
        name="event_types",
        path="/event-types",
        selector="data.eventTypeGroups.*.eventTypes.*",
        primary_key=("id",),
        description="One row per event type (personal and team groups).",
    ),
    EndpointSpec(
        name="my_profile",
        path="/me",
        selector="data",
        primary_key=("id",),
        description="One row: the profile of the API key's user.",
    ),
    EndpointSpec(
        name="schedules",
        path="/schedules",
        selector="data.*",
        primary_key=("id",),
        version="2024-06-11",
        description="One row per availability schedule, with its weekly windows and date overrides.",
    ),
    EndpointSpec(
        name="calendars",
        path="/calendars",
        selector="data.connectedCalendars.*.calendars.*",
        primary_key=("credentialId", "externalId"),
        description="One row per calendar of every connected calendar credential.",
    ),
    EndpointSpec(
        name="bookings",
        path="/bookings",
        selector="data.*",
        primary_key=("id",),
        version="2024-08-13",
        paged=True,
        description="One row per booking, in every status.",
    ),
    EndpointSpec(
        name="conferencing",
        path="/conferencing",
        selector="data.*",
        primary_key=("id",),
        description="One row per installed conferencing app (OAuth tokens removed).",
    ),
)

ENDPOINTS_BY_NAME: dict[str, EndpointSpec] = {spec.name: spec for spec in ENDPOINTS}

# Fields removed from records before they leave the client: they hold OAuth tokens.
SECRET_FIELDS: dict[str, frozenset[str]] = {"conferencing": frozenset({"key"})}

MAX_PAGE_SIZE = 250
DEFAULT_PAGE_SIZE = 100
