"""Every field the official schemas document has a typed column (or a stated reason why not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sched_assets.api.specs import ENDPOINTS, ENDPOINTS_BY_NAME

OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "openapi"

# Resource -> (schema file, path from `data` to one record); `[]` steps into array items.
RECORD_SCHEMAS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "event_types": [("event_types", ("[]",)), ("team_event_types", ("[]",))],
    "teams": [("teams", ("[]",))],
    "my_profile": [("me", ())],
    "schedules": [("schedules", ("[]",))],
    "calendars": [("calendars", ("connectedCalendars", "[]", "calendars", "[]"))],
    "bookings": [("bookings", ("[]",))],
    "conferencing": [("conferencing", ("[]",))],
}

# Documented fields deliberately stored in `_extra` instead of a typed column, with the reason.
UNTYPED: dict[str, dict[str, str]] = {}


def _properties(schema: dict[str, Any]) -> list[str]:
    """Property names of an object schema, through oneOf/anyOf/allOf variants."""
    names = list(schema.get("properties", {}))
    for combinator in ("oneOf", "anyOf", "allOf"):
        for variant in schema.get(combinator, []):
            names += [name for name in _properties(variant) if name not in names]
    return names


def documented_fields(resource: str) -> list[str]:
    if not OPENAPI.is_dir():
        pytest.fail(f"the official schemas are missing: expected {OPENAPI} (../shared/openapi)")
    fields: list[str] = []
    for file, steps in RECORD_SCHEMAS[resource]:
        node = json.loads((OPENAPI / f"{file}.json").read_text())["response_200_schema"]["properties"]["data"]
        for step in steps:
            node = node["items"] if step == "[]" else node["properties"][step]
        fields += [name for name in _properties(node) if name not in fields]
    return fields


def test_every_resource_is_mapped_to_its_schema():
    assert set(RECORD_SCHEMAS) == {spec.name for spec in ENDPOINTS}


@pytest.mark.parametrize("resource", sorted(RECORD_SCHEMAS))
def test_documented_fields_have_typed_columns(resource):
    spec = ENDPOINTS_BY_NAME[resource]
    documented = documented_fields(resource)
    assert documented, resource
    missing = [
        name for name in documented if name not in spec.columns and name not in UNTYPED.get(resource, {})
    ]
    assert missing == [], f"{resource}: documented fields without a typed column: {missing}"
    # A justification for a field that now has a column (or is no longer documented) is stale.
    stale = [name for name in UNTYPED.get(resource, {}) if name in spec.columns or name not in documented]
    assert stale == []
