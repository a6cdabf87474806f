"""Mapping of Polars dtypes to DuckDB column types (for writes of DataFrames)."""

from __future__ import annotations

import polars as pl

from .errors import InvalidWriteError

_INTEGER_TYPES: dict[type[pl.DataType], str] = {
    pl.Int8: "INTEGER",
    pl.Int16: "INTEGER",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Int128: "HUGEINT",
    pl.UInt8: "INTEGER",
    pl.UInt16: "INTEGER",
    pl.UInt32: "BIGINT",
    pl.UInt64: "UBIGINT",
}

_SIMPLE_TYPES: dict[type[pl.DataType], str] = {
    pl.Float32: "DOUBLE",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
    pl.String: "VARCHAR",
    pl.Categorical: "VARCHAR",
    pl.Enum: "VARCHAR",
    pl.Binary: "BLOB",
    pl.Date: "DATE",
    pl.Time: "TIME",
    pl.Duration: "INTERVAL",
    pl.Null: "VARCHAR",  # an all-null column says nothing about its type; text loses nothing
}


def is_nested(dtype: pl.DataType) -> bool:
    """Lists, arrays and structs: stored as JSON text."""
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def duckdb_type(dtype: pl.DataType, column: str = "?") -> str:
    """The DuckDB column type for a Polars dtype, used when a column has no declared type."""
    base = dtype.base_type()
    if base in _INTEGER_TYPES:
        return _INTEGER_TYPES[base]
    if base in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[base]
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision or 38},{dtype.scale})"
    if is_nested(dtype):
        return "JSON"
    raise InvalidWriteError(f"column {column!r} has dtype {dtype}, which cannot be stored in DuckDB")
