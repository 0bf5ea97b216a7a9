"""Lazy package exports (PEP 562), so `practicum --help` does not import torch.

A package lists what it exports and from where; the submodule is imported the first time one
of its names is used. Export names must not equal a submodule's name (Python would bind the
submodule to the package attribute on import and shadow the export).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[Callable, Callable, list[str]]:
    """Return `(__getattr__, __dir__, __all__)` for `package`; `exports` maps submodule → names."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}
    clashes = sorted(set(where) & set(exports))
    if clashes:
        raise ImportError(f"{package}: exports {clashes} share a name with a submodule")

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
