"""The warehouse as a Dagster resource: dagster-duckdb's `DuckDBResource`, with our lock and limits on top.

SQL assets and checks use it as the docs projects use `DuckDBResource`:
`with warehouse.get_connection() as con: ...`. The IO manager takes the same object, so one
configuration (file, lock timeout, memory limits) serves every reader and writer.

Importing this module does not load DuckDB (~0.1 s): dagster-duckdb does `import duckdb` at the top
of its modules but uses it only inside functions (`get_connection`), so it is imported here with a
stand-in bound to that name, which imports the real `duckdb` the first time anything is used on it.
Code that imports `duckdb` itself gets the real module as usual.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field

from .lake import WarehouseLocation
from .locking import RetryPolicy
from .warehouse import Warehouse

if TYPE_CHECKING:
    import duckdb


class _DeferredModule(types.ModuleType):
    """Stands in for a module not imported yet: the first attribute read imports it and forwards."""

    def __getattr__(self, attr: str) -> Any:  # only called for names the stand-in itself lacks
        name = self.__name__
        if sys.modules.get(name) is self:  # still inside the deferred import: load the real one now
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)


def _import_deferring(module: str, dependency: str) -> types.ModuleType:
    """Import `module`, letting its top-level `import <dependency>` bind a `_DeferredModule`.

    Only when neither is imported yet; the stand-in is in `sys.modules` just for the duration of the
    import, so nothing imported later sees it.
    """
    if module in sys.modules or dependency in sys.modules:
        return importlib.import_module(module)
    stand_in = _DeferredModule(dependency)
    sys.modules[dependency] = stand_in
    try:
        return importlib.import_module(module)
    finally:
        if sys.modules.get(dependency) is stand_in:
            del sys.modules[dependency]


if TYPE_CHECKING:
    from dagster_duckdb import DuckDBResource
else:
    DuckDBResource = _import_deferring("dagster_duckdb", "duckdb").DuckDBResource


class WarehouseResource(DuckDBResource):
    """The warehouse: a DuckDB file, or a DuckLake catalog. File connections take the cross-process lock,
    so keep them short.

    `database` and `connection_config` (extra DuckDB settings) are `DuckDBResource`'s fields; the
    memory and thread limits below are applied on top of `connection_config`. `database` is a file
    path, or `ducklake:postgres:<conninfo>` / `ducklake:sqlite:<path>` with `ducklake_data_path`.
    Queries (checks, derived tables) use `get_connection()` / `get_warehouse()`; the IO manager's
    table writes use `get_write_warehouse()`, with the write limits. In messages, show `location`
    (never `database`: a Postgres connection string may hold a password).
    """

    lock_timeout_seconds: float = Field(
        default=300.0, description="How long to wait for another process to release the database."
    )
    memory_limit: str | None = Field(
        default=None, description="DuckDB memory_limit for queries (checks, derived tables), e.g. '256MB'."
    )
    threads: int | None = Field(
        default=None, description="DuckDB threads for queries; fewer threads need less memory."
    )
    write_memory_limit: str | None = Field(
        default=None, description="DuckDB memory_limit for the IO manager's table writes, e.g. '96MB'."
    )
    write_threads: int | None = Field(
        default=None, description="DuckDB threads for the IO manager's table writes."
    )
    ducklake_data_path: str | None = Field(
        default=None,
        description="DuckLake only: the folder (or object-storage URL) of the data files, the same for "
        "every process (SCHED_DUCKLAKE_DATA_PATH). Ignored for a DuckDB file.",
    )
    commit_attempts: int = Field(
        default=RetryPolicy.attempts,
        ge=1,
        description="DuckLake only: how often a write that conflicts with another writer's commit runs in "
        "all before the step fails.",
    )

    @property
    def location(self) -> WarehouseLocation:
        """`database` parsed; `str()` of it hides any password (use it in logs and messages)."""
        return WarehouseLocation.parse(self.database)

    @contextlib.contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for the duration of the block, under the lock (shared when `read_only`)."""
        with self.get_warehouse().connect(read_only=read_only) as con:
            yield con

    def get_warehouse(self) -> Warehouse:
        """The warehouse with the query limits."""
        return self._warehouse(self.memory_limit, self.threads)

    def get_write_warehouse(self) -> Warehouse:
        """The warehouse with the write limits, for the IO manager."""
        return self._warehouse(self.write_memory_limit, self.write_threads)

    def _warehouse(self, memory_limit: str | None, threads: int | None) -> Warehouse:
        return Warehouse(
            self.database,
            lock_timeout=self.lock_timeout_seconds,
            memory_limit=memory_limit,
            threads=threads,
            config=self.connection_config,
            data_path=self.ducklake_data_path,
            commit_attempts=self.commit_attempts,
        )
