"""The official response schemas (`../shared/openapi/<name>.json`), made checkable, and validation.

The files are extracted mechanically from Cal.com's OpenAPI document, so they carry the generator's
quirks (see `../shared/openapi/README.md`). `documented_schema` repairs those, and only those:

- `nullable: true` (OpenAPI 3.0) becomes a `"null"` alternative;
- `oneOf` becomes `anyOf` everywhere (the variants overlap, so `oneOf` rejects valid records);
- the `TIME_FORMAT_HH_MM` placeholder becomes the `^\\d{2}:\\d{2}$` pattern it stands for;
- an `enum` on an array-typed property (schedule `days`) moves to its items;
- found here, same cause (NestJS swagger without an explicit `type`, per the DTOs in calcom/cal.com
  `packages/platform/types/event-types/event-types_2024_06_14/outputs/`): union- or literal-typed
  properties come out as `type: object` (`isDefault`, email `required`, `ownerId`, `seatsPerTimeSlot`,
  ...) and arrays of DTOs as arrays of strings (own `users`, team `hosts`). They get their DTO's type.

`service_schema` additionally allows what the real service does and the document omits (bookings:
status `awaiting_host`, null `updatedAt`). Calendars without `id` need nothing: no schema requires it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared" / "openapi"
HH_MM = r"^\d{2}:\d{2}$"
NAMES = (
    "event_types",
    "team_event_types",
    "teams",
    "me",
    "schedules",
    "calendars",
    "bookings",
    "conferencing",
)

# Property name -> the type its DTO declares, where the document says `type: object` without properties.
UNION_TYPED: dict[str, str] = {
    "isDefault": "boolean",  # `isDefault = true` (a literal)
    "required": "boolean",  # email field
    "slotInterval": "number",
    "seatsPerTimeSlot": "number",
    "forwardParamsSuccessRedirect": "boolean",
    "successRedirectUrl": "string",
    "redirectUrlOnExit": "string",
    "ownerId": "number",
    "parentEventTypeId": "number",
    "id": "number",  # destinationCalendar.id
}
_NULLABLE_STRING = {"type": ["string", "null"]}
# Property name -> item schema of its DTO, where the document says `items: {type: string}`.
DTO_ITEMS: dict[str, dict[str, Any]] = {
    "users": {  # User_2024_06_14
        "type": "object",
        "properties": {
            "id": {"type": "number"},
            "name": _NULLABLE_STRING,
            "username": _NULLABLE_STRING,
            "avatarUrl": _NULLABLE_STRING,
            "weekStart": {"type": "string"},
            "brandColor": _NULLABLE_STRING,
            "darkBrandColor": _NULLABLE_STRING,
            "metadata": {"type": "object"},
        },
        "required": [
            "id",
            "name",
            "username",
            "avatarUrl",
            "weekStart",
            "brandColor",
            "darkBrandColor",
            "metadata",
        ],
    },
    "hosts": {  # TeamEventTypeResponseHost
        "type": "object",
        "properties": {
            "userId": {"type": "number"},
            "name": {"type": "string"},
            "username": {"type": "string"},
            "avatarUrl": _NULLABLE_STRING,
            "mandatory": {"type": "boolean"},
            "priority": {"type": "string", "enum": ["lowest", "low", "medium", "high", "highest"]},
            "weight": {"type": "number"},
        },
        "required": ["userId", "name", "username"],
    },
}
_DATA_KEYS = ("example", "default", "enum", "const")  # values, not schemas: left alone


class SchemaDirMissing(FileNotFoundError):
    pass


def schema_file(name: str) -> Path:
    path = SCHEMA_DIR / f"{name}.json"
    if not SCHEMA_DIR.is_dir():
        raise SchemaDirMissing(
            f"{SCHEMA_DIR} does not exist: the contract tests validate against the official schemas in "
            "../shared/openapi/ (next to this checkout; CI has them). Check out the shared directory."
        )
    if not path.is_file():
        raise SchemaDirMissing(f"{path} is missing from the shared OpenAPI schemas.")
    return path


@cache
def raw_schema(name: str) -> dict[str, Any]:
    """The 200-response schema exactly as extracted (do not mutate)."""
    return json.loads(schema_file(name).read_text())["response_200_schema"]


def documented_schema(name: str) -> dict[str, Any]:
    """The schema with the generator's quirks repaired (a fresh copy)."""
    return _fix(copy.deepcopy(raw_schema(name)), None)


def service_schema(name: str) -> dict[str, Any]:
    """`documented_schema` plus the service facts the document omits (bookings only)."""
    schema = documented_schema(name)
    if name == "bookings":
        # Deviations of the real service (its source, and ../shared/api-notes.md): a booking can be
        # `awaiting_host`, and legacy rows have a null `updatedAt`. Exactly these two, nothing else.
        for variant in schema["properties"]["data"]["items"]["anyOf"]:
            props = variant["properties"]
            props["status"]["enum"] = [*props["status"]["enum"], "awaiting_host"]
            props["updatedAt"]["type"] = ["string", "null"]
    return schema


def booking_item_schema(*, deviations: bool) -> dict[str, Any]:
    """The schema of one booking in `data` (to check single records)."""
    schema = service_schema("bookings") if deviations else documented_schema("bookings")
    return schema["properties"]["data"]["items"]


@cache
def _validator(name: str, deviations: bool) -> Draft202012Validator:
    schema = service_schema(name) if deviations else documented_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(name: str, body: Any, *, deviations: bool = True) -> list[str]:
    """Every violation of `name`'s schema in a response body, as `path: message` lines."""
    found = _validator(name, deviations).iter_errors(body)
    return sorted(f"{e.json_path}: {e.message[:300]}" for e in found)


def record_errors(schema: dict[str, Any], record: Any) -> list[str]:
    return sorted(
        f"{e.json_path}: {e.message[:300]}" for e in Draft202012Validator(schema).iter_errors(record)
    )


def assert_valid(name: str, body: Any, *, deviations: bool = True) -> None:
    errors = schema_errors(name, body, deviations=deviations)
    assert not errors, f"{name}: {len(errors)} schema violations, e.g.\n" + "\n".join(errors[:10])


def _fix(node: Any, name: str | None) -> Any:
    """Repair the generator's quirks in `node` (the value of property `name`, if it is one)."""
    if isinstance(node, list):
        return [_fix(item, None) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DATA_KEYS:
            out[key] = value
        elif key == "properties":
            out[key] = {prop: _fix(sub, prop) for prop, sub in value.items()}
        else:
            out["anyOf" if key == "oneOf" else key] = _fix(value, None)
    if out.get("pattern") == "TIME_FORMAT_HH_MM":
        out["pattern"] = HH_MM
    if out.get("type") == "array" and "enum" in out:
        out.setdefault("items", {}).setdefault("enum", out["enum"])
        del out["enum"]
    if name in UNION_TYPED and out.get("type") == "object" and "properties" not in out:
        out["type"] = UNION_TYPED[name]
    if name in DTO_ITEMS and out.get("type") == "array" and out.get("items") == {"type": "string"}:
        out["items"] = copy.deepcopy(DTO_ITEMS[name])
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            return {"anyOf": [{"type": "null"}, out]}
    return out
