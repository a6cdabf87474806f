"""Table names and SQL quoting: every identifier and literal we splice into SQL goes through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidWriteError

DEFAULT_SCHEMA = "main"  # DuckDB's default schema, for a bare table name
# Schemas of the warehouse: API resources land in `raw`, derived tables in `analytics`.
RAW_SCHEMA = "raw"
ANALYTICS_SCHEMA = "analytics"
HISTORY_SCHEMA = "history"


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB, so any column name (spaces, keywords, quotes) is safe."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for DuckDB (used for file paths in `read_parquet([...])`)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class TableName:
    """A table addressed as `schema.name`."""

    schema: str
    name: str

    @classmethod
    def parse(cls, table: str | TableName) -> TableName:
        """Parse `"schema.name"`; a bare `"name"` lives in DuckDB's default schema `main`."""
        if isinstance(table, TableName):
            return table
        parts = table.split(".")
        if len(parts) == 1 and parts[0]:
            return cls(DEFAULT_SCHEMA, parts[0])
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1])
        raise InvalidWriteError(f"table name must look like 'schema.name', got {table!r}")

    @property
    def sql(self) -> str:
        """The quoted, schema-qualified name for use in SQL."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def table_for_key(path: Sequence[str]) -> TableName:
    """The table of an asset key path: `<path[-2]>.<path[-1]>` (`raw/bookings` -> `raw.bookings`).

    A one-part key `[name]` is `main.name`, as `TableName.parse("name")` is; longer keys use their
    last two parts.
    """
    if not path or not all(path[-2:]):
        raise InvalidWriteError(f"cannot name a table after asset key {list(path)!r}")
    return TableName(path[-2], path[-1]) if len(path) >= 2 else TableName(DEFAULT_SCHEMA, path[-1])
