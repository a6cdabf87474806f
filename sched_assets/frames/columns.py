"""Column names and DuckDB types of the raw tables, from the resource specs' declared field kinds.

Columns never depend on what the first rows looked like. Each kind maps to one DuckDB type (typed by
`frames.typed_sql`); `json` columns hold nested objects and lists as JSON text (DuckDB `JSON`).
"""

from __future__ import annotations

import re

from sched_assets.api.specs import EndpointSpec, Kind

# DuckDB column type for each kind.
DUCKDB_TYPES: dict[Kind, str] = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "str": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "json": "JSON",
}

EXTRA_COLUMN = "_extra"
SYNCED_AT_COLUMN = "_synced_at"

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`eventTypeId` -> `event_type_id`, `bookingFieldsResponses` -> `booking_fields_responses`."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def column_types(spec: EndpointSpec) -> dict[str, str]:
    """snake_case column -> DuckDB type for one raw table, bookkeeping columns included."""
    types = {snake_case(field): DUCKDB_TYPES[kind] for field, kind in spec.columns.items()}
    types[EXTRA_COLUMN] = "JSON"
    types[SYNCED_AT_COLUMN] = "TIMESTAMPTZ"
    return types


def key_columns(spec: EndpointSpec) -> tuple[str, ...]:
    """The raw table's primary-key columns (snake_case)."""
    return tuple(snake_case(field) for field in spec.primary_key)
