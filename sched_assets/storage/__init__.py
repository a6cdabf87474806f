"""DuckDB storage: transactional, schema-evolving table writes and the Dagster IO manager on top.

The warehouse is a DuckDB file or a DuckLake catalog (`WarehouseLocation`); DuckLake commits that
conflict with another writer are re-run (`retry_conflicts`, `Warehouse.transaction_with_retries`).

The plain layer (`Warehouse`, `TableWrite`, `WriteMode`, `NullKeys`, `WriteResult`) has no Dagster
imports; `WarehouseResource` and `WarehouseIOManager` adapt it to Dagster. Those are imported lazily,
so plain users (benchmarks, scripts) do not pay for `import dagster`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sched_assets.lazy import lazy_attributes

from .errors import InvalidWriteError, TableNotFoundError, WarehouseError, WarehouseLockedError
from .lake import WarehouseKind, WarehouseLocation
from .locking import Retried, RetryPolicy, WarehouseConflictError, conflict_reason, retry_conflicts
from .warehouse import Warehouse
from .write import NullKeys, TableWrite, WriteMode, WriteResult

if TYPE_CHECKING:
    from .io_manager import WarehouseIOManager, output_metadata
    from .resource import WarehouseResource

_DAGSTER_NAMES = {
    "WarehouseIOManager": ".io_manager",
    "output_metadata": ".io_manager",
    "WarehouseResource": ".resource",
}

__all__ = [
    "InvalidWriteError",
    "NullKeys",
    "Retried",
    "RetryPolicy",
    "TableNotFoundError",
    "TableWrite",
    "Warehouse",
    "WarehouseConflictError",
    "WarehouseError",
    "WarehouseIOManager",
    "WarehouseKind",
    "WarehouseLocation",
    "WarehouseLockedError",
    "WarehouseResource",
    "WriteMode",
    "WriteResult",
    "conflict_reason",
    "output_metadata",
    "retry_conflicts",
]


__getattr__ = lazy_attributes(__name__, _DAGSTER_NAMES)
