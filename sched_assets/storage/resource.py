"""A Dagster resource that hands out the `Warehouse`, for asset checks and SQL-built derived assets."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from .warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file, for code that runs SQL directly.

    Usage: `with warehouse.get_warehouse().connect(read_only=True) as con: ...`. Connections take
    the same cross-process lock as the IO manager, so keep them short.
    """

    database: str = Field(description="Path of the DuckDB database file.")
    lock_timeout_seconds: float = Field(
        default=300.0, description="How long to wait for another process to release the database."
    )
    memory_limit: str | None = Field(
        default=None, description="DuckDB memory_limit for this resource's connections, e.g. '2GB'."
    )
    threads: int | None = Field(
        default=None,
        description="DuckDB threads for this resource's connections; fewer threads need less memory.",
    )

    def get_warehouse(self) -> Warehouse:
        """A `Warehouse` on the configured file."""
        return Warehouse(
            self.database,
            lock_timeout=self.lock_timeout_seconds,
            memory_limit=self.memory_limit,
            threads=self.threads,
        )
