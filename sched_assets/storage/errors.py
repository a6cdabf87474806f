"""Errors raised by the storage layer, each with a message that says what to do next."""

from __future__ import annotations


class WarehouseError(Exception):
    """The DuckDB warehouse cannot be opened, written or read."""


class WarehouseLockedError(WarehouseError):
    """Another process kept the database busy for longer than the lock timeout."""


class InvalidWriteError(WarehouseError, ValueError):
    """A write was refused before anything changed (bad mode, missing or null keys, bad columns)."""


class TableNotFoundError(WarehouseError, LookupError):
    """The requested table does not exist (yet) in the database."""
