"""Turn API records into explicitly typed Polars frames (one per page), keeping whatever does not fit.

Columns come from `columns.FIELDS`, never from the first rows. A value whose type does not fit its
column is converted when that loses nothing ("30" -> 30 for an integer column); otherwise the column
gets null and the original value is kept verbatim in `_extra`, so nothing the API sent is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl

from sched_assets.frames.columns import EXTRA_COLUMN, FIELDS, SYNCED_AT_COLUMN, Kind, snake_case

POLARS_TYPES: dict[Kind, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "json": pl.String(),
}

_MISFIT = object()  # marks a value that cannot be converted without loss
_INT_TEXT = re.compile(r"^[+-]?\d{1,18}$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _MISFIT
    if isinstance(value, float):
        return int(value) if value.is_integer() and _INT64_MIN <= value <= _INT64_MAX else _MISFIT
    if isinstance(value, str) and _INT_TEXT.match(value.strip()):
        return int(value.strip())
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else _MISFIT
    return _MISFIT


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _MISFIT
    if isinstance(value, int):
        return float(value) if abs(value) < 2**53 else _MISFIT
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return _MISFIT
        return number if repr(number) == value.strip() or str(number) == value.strip() else _MISFIT
    return _MISFIT


def _to_bool(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _MISFIT


def _to_str(value: Any) -> Any:
    # Numbers and booleans read back the same as text; objects and lists do not belong in a text column.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _MISFIT


def _to_ts(value: Any) -> Any:
    if not isinstance(value, str):
        return _MISFIT
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return _MISFIT
    # The API sends UTC; a naive timestamp is read as UTC rather than the machine's zone.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_NATIVE: dict[Kind, tuple[type, ...]] = {
    "int": (int,),
    "float": (float,),
    "bool": (bool,),
    "str": (str,),
}
_CONVERT: dict[Kind, Callable[[Any], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "ts": _to_ts,
}


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass
class FrameStats:
    """What typing did to one resource's records, reported as asset metadata."""

    rows: int = 0
    converted: int = 0
    kept_in_extra: int = 0
    unknown_fields: set[str] = field(default_factory=set)
    misfit_fields: set[str] = field(default_factory=set)

    def merge(self, other: FrameStats) -> None:
        self.rows += other.rows
        self.converted += other.converted
        self.kept_in_extra += other.kept_in_extra
        self.unknown_fields |= other.unknown_fields
        self.misfit_fields |= other.misfit_fields


def empty_frame(resource: str) -> pl.DataFrame:
    """A frame with the resource's columns and no rows."""
    schema = {snake_case(name): POLARS_TYPES[kind] for name, kind in FIELDS[resource].items()}
    schema[EXTRA_COLUMN] = pl.String()
    schema[SYNCED_AT_COLUMN] = pl.Datetime("us", "UTC")
    return pl.DataFrame(schema=schema)


def build_frame(
    resource: str, records: Sequence[dict[str, Any]], synced_at: datetime, stats: FrameStats | None = None
) -> pl.DataFrame:
    """One typed frame for `records` of `resource` (see the module docstring for the rules)."""
    fields = FIELDS[resource]
    page_stats = FrameStats(rows=len(records))
    extras: list[dict[str, Any] | None] = [None] * len(records)
    known = fields.keys()
    for i, record in enumerate(records):
        unknown = record.keys() - known
        if unknown:
            extras[i] = {name: record[name] for name in unknown}
            page_stats.unknown_fields |= unknown

    columns: dict[str, pl.Series] = {}
    for name, kind in fields.items():
        values = [record.get(name) for record in records]
        if kind == "json":
            # A field that is JSON text in our table keeps whatever JSON the API sent.
            series = pl.Series(
                snake_case(name), [None if v is None else _json_text(v) for v in values], dtype=pl.String
            )
        else:
            native = _NATIVE.get(kind)
            convert = _CONVERT[kind]
            for i, value in enumerate(values):
                if value is None or (native is not None and type(value) in native):
                    continue
                converted = convert(value)
                if converted is _MISFIT:
                    values[i] = None
                    extras[i] = {**(extras[i] or {}), name: value}
                    page_stats.kept_in_extra += 1
                    page_stats.misfit_fields.add(name)
                elif native is not None:
                    values[i] = converted
                    page_stats.converted += 1
                else:
                    values[i] = converted  # timestamps: parsed, not counted as a conversion
            series = pl.Series(snake_case(name), values, dtype=POLARS_TYPES[kind], strict=False)
        columns[series.name] = series

    columns[EXTRA_COLUMN] = pl.Series(
        EXTRA_COLUMN, [None if e is None else _json_text(e) for e in extras], dtype=pl.String
    )
    columns[SYNCED_AT_COLUMN] = pl.Series(
        SYNCED_AT_COLUMN, [synced_at] * len(records), dtype=pl.Datetime("us", "UTC")
    )
    if stats is not None:
        stats.merge(page_stats)
    return pl.DataFrame(columns)
