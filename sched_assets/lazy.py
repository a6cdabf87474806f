"""Package attributes imported on first use, so importing a package (and the definitions) stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: attribute name -> submodule it lives in (`io_manager`)."""

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module("." + modules[name].lstrip("."), package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
