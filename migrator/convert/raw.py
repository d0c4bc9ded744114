"""Type-safe reads of raw objects. Look-alike servers send nulls, strings and lists where the spec
has objects; the converter reads such a field as empty instead of crashing on one odd thread."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["SYNTHESIZED", "as_dict", "as_list", "as_str", "dicts", "epoch_seconds", "oid"]

# Past this, a timestamp is in milliseconds (a look-alike's): 10**11 seconds is the year 5138.
_MILLIS_FROM = 10**11


def epoch_seconds(value: Any) -> int | None:
    """A `created_at` in seconds, whether the source wrote seconds or milliseconds; None if not an int."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value // 1000 if value >= _MILLIS_FROM else value


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def as_list(value: Any) -> list[Any] | tuple[()]:
    return value if isinstance(value, list) else ()


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The object items of a list field, skipping anything else."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def oid(obj: Mapping[str, Any]) -> str:
    return as_str(obj.get("id"))


# The key a thread object made up from its messages carries (a dump that saved messages.list pages
# only): the converter warns `thread_synthesized`, and a real thread object replaces it.
SYNTHESIZED = "x_migrate_synthesized"
