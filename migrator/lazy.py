"""Package attributes imported when first named (PEP 562). A leaf: it imports nothing of the project.

A package's `__init__` names what it offers; the rooms behind the openai SDK (50 MB a process) are
imported only by the code that reaches for them, so a command that never talks to an API (a file
import, --from-records, a session build) starts without them."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: each name in `modules` comes from the module named."""

    def __getattr__(name: str) -> object:
        if name in modules:
            return getattr(importlib.import_module(modules[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
