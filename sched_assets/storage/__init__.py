"""DuckDB storage: transactional, schema-evolving table writes and the Dagster IO manager on top.

The plain layer (`Warehouse`, `TableWrite`, `WriteResult`) has no Dagster imports; `DuckDBIOManager`
and `WarehouseResource` adapt it to Dagster. Those two are imported lazily, so plain users (benchmarks,
scripts) do not pay for `import dagster`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import InvalidWriteError, TableNotFoundError, WarehouseError, WarehouseLockedError
from .warehouse import Warehouse
from .write import PAUSE_ENV_VAR, TableWrite, WriteMode, WriteResult

if TYPE_CHECKING:
    from .io_manager import DuckDBIOManager, output_metadata
    from .resource import WarehouseResource

_DAGSTER_NAMES = {
    "DuckDBIOManager": ".io_manager",
    "output_metadata": ".io_manager",
    "WarehouseResource": ".resource",
}

__all__ = [
    "PAUSE_ENV_VAR",
    "DuckDBIOManager",
    "InvalidWriteError",
    "TableNotFoundError",
    "TableWrite",
    "Warehouse",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseResource",
    "WriteMode",
    "WriteResult",
    "output_metadata",
]


def __getattr__(name: str) -> Any:
    if name in _DAGSTER_NAMES:
        return getattr(importlib.import_module(_DAGSTER_NAMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
