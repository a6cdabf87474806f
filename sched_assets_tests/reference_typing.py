"""The reference typing: records typed in Python into Polars frames, as the sync did before issue 12.

Kept only as the oracle the DuckDB typing (`sched_assets.frames.typed_sql`) is checked against: both
must give the same typed values and `_extra` for the same records.

Columns come from the resource spec's declared `columns`, never from the first rows. A value whose type does not fit its
column is converted when that loses nothing ("30" -> 30 for an integer column); otherwise the column
gets null and the original value is kept verbatim in `_extra`, so nothing the API sent is lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl

from sched_assets.api.specs import EndpointSpec, Kind
from sched_assets.frames.columns import EXTRA_COLUMN, SYNCED_AT_COLUMN, snake_case
from sched_assets.frames.spill import TypingStats

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
    return _dumps(value).decode()


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # Integers beyond 64 bits (parsed by the stdlib fallback) are valid JSON; keep them exactly.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class FrameStats(TypingStats):
    """The same counts as the DuckDB typing reports, summed page by page."""

    def merge(self, other: FrameStats) -> None:
        self.rows += other.rows
        self.converted += other.converted
        self.kept_in_extra += other.kept_in_extra
        self.unknown_fields |= other.unknown_fields
        self.misfit_fields |= other.misfit_fields


def empty_frame(spec: EndpointSpec) -> pl.DataFrame:
    """A frame with the resource's columns and no rows."""
    schema = {snake_case(name): POLARS_TYPES[kind] for name, kind in spec.columns.items()}
    schema[EXTRA_COLUMN] = pl.String()
    schema[SYNCED_AT_COLUMN] = pl.Datetime("us", "UTC")
    return pl.DataFrame(schema=schema)


def build_frame(
    spec: EndpointSpec,
    records: Sequence[dict[str, Any]],
    synced_at: datetime,
    stats: FrameStats | None = None,
) -> pl.DataFrame:
    """One typed frame for `records` of `resource` (see the module docstring for the rules).

    Hot path of every sync: values are checked with one comprehension per column and handed to
    Polars' strict (fast) constructors; only the rare misfits take the per-value slow path.
    """
    fields = spec.columns
    page_stats = FrameStats(rows=len(records))
    extras: dict[int, dict[str, Any]] = {}
    known = fields.keys()
    for i, record in enumerate(records):
        if len(record.keys() - known):
            unknown = record.keys() - known
            extras[i] = {name: record[name] for name in unknown}
            page_stats.unknown_fields |= unknown

    columns: dict[str, pl.Series] = {}
    for name, kind in fields.items():
        column = snake_case(name)
        values = [record.get(name) for record in records]
        if kind == "json":
            columns[column] = _json_series(column, values)
            continue
        if kind == "ts":
            columns[column] = _timestamp_series(column, name, values, extras, page_stats)
            continue
        native = _NATIVE[kind][0]
        odd = [i for i, v in enumerate(values) if v is not None and type(v) is not native]
        if kind == "int":
            # Python ints are unbounded; BIGINT is not. Out-of-range ones take the misfit path.
            odd += [i for i, v in enumerate(values) if type(v) is int and not _INT64_MIN <= v <= _INT64_MAX]
        for i in odd:
            converted = _CONVERT[kind](values[i])
            if converted is _MISFIT:
                _keep_in_extra(extras, i, name, values[i], page_stats)
                values[i] = None
            else:
                values[i] = converted
                page_stats.converted += 1
        columns[column] = pl.Series(column, values, dtype=POLARS_TYPES[kind], strict=True)

    extra_texts = [None] * len(records)
    for i, extra in extras.items():
        extra_texts[i] = _json_text(extra)
    columns[EXTRA_COLUMN] = pl.Series(EXTRA_COLUMN, extra_texts, dtype=pl.String)
    columns[SYNCED_AT_COLUMN] = pl.repeat(
        synced_at, len(records), dtype=pl.Datetime("us", "UTC"), eager=True
    ).alias(SYNCED_AT_COLUMN)
    if stats is not None:
        stats.merge(page_stats)
    return pl.DataFrame(columns)


def _keep_in_extra(
    extras: dict[int, dict[str, Any]], row: int, name: str, value: Any, stats: FrameStats
) -> None:
    extras.setdefault(row, {})[name] = value
    stats.kept_in_extra += 1
    stats.misfit_fields.add(name)


def _json_series(column: str, values: list[Any]) -> pl.Series:
    # Absent stays SQL NULL (not JSON null) so "not sent" and "sent as null" read the same downstream.
    dumps, option = orjson.dumps, orjson.OPT_NON_STR_KEYS
    try:
        texts = [None if v is None else dumps(v, option=option) for v in values]
    except TypeError:
        texts = [None if v is None else _dumps(v) for v in values]
    return pl.Series(column, texts, dtype=pl.Binary).cast(pl.String)


_ISO_UTC = "%Y-%m-%dT%H:%M:%S%.fZ"


def _timestamp_series(
    column: str, name: str, values: list[Any], extras: dict[int, dict[str, Any]], stats: FrameStats
) -> pl.Series:
    texts = [v if type(v) is str else None for v in values]
    # Vectorized parse of the API's usual form; anything else (offsets, odd formats) goes per value.
    parsed = pl.Series(column, texts, dtype=pl.String).str.to_datetime(
        _ISO_UTC, strict=False, time_unit="us", time_zone="UTC"
    )
    missed = (
        [i for i, v in enumerate(values) if v is not None and parsed[i] is None]
        if parsed.null_count()
        else []
    )
    if not missed:
        return parsed
    fixed = parsed.to_list()
    for i in missed:
        converted = _to_ts(values[i])
        if converted is _MISFIT:
            _keep_in_extra(extras, i, name, values[i], stats)
        else:
            fixed[i] = converted
    return pl.Series(column, fixed, dtype=pl.Datetime("us", "UTC"))
