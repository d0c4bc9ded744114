"""List parameters and cursor pagination exactly as the spec describes them.

`limit` 1..100 (default 20), `order` asc|desc (default desc) by `created_at`, `after`/`before`
object-id cursors, answered as `{object: "list", data, first_id, last_id, has_more}`. A cursor is
found by its position in the list, never by comparing ids. An unknown cursor is a 400, so a
client that loses its place hears about it instead of silently getting a short list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from migrator.sandbox.errors import bad_request

Query = dict[str, list[str]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListParams:
    limit: int
    order: str
    after: str | None
    before: str | None


def one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def parse_limit(query: Query, default: int, maximum: int) -> int:
    raw = one(query, "limit")
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.", "limit", "invalid_type"
        ) from None
    if limit < 1:
        raise bad_request(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {limit} instead.",
            "limit",
            "integer_below_min_value",
        )
    if limit > maximum:
        raise bad_request(
            f"Invalid 'limit': integer above maximum value. Expected a value <= {maximum}, but got {limit} instead.",
            "limit",
            "integer_above_max_value",
        )
    return limit


def parse_order(query: Query) -> str:
    order = one(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise bad_request(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", "order", "invalid_value"
        )
    return order


def parse(query: Query, *, default: int = 20, maximum: int = 100, before: bool = True) -> ListParams:
    return ListParams(
        limit=parse_limit(query, default, maximum),
        order=parse_order(query),
        after=one(query, "after") or None,
        before=(one(query, "before") or None) if before else None,
    )


def _id(obj: Any) -> str:
    return obj["id"]


def page(items: Sequence[T], params: ListParams, key: Callable[[T], str] = _id) -> tuple[list[T], bool]:
    """The page of `items` (ascending by created_at) that `params` asks for, and has_more."""
    seq: Sequence[T] = items if params.order == "asc" else items[::-1]
    start, end = 0, len(seq)
    if params.after is not None or params.before is not None:
        positions = {key(obj): i for i, obj in enumerate(seq)}
        if params.after is not None:
            if params.after not in positions:
                raise bad_request(
                    f"Invalid 'after': no object with id '{params.after}' in this list.", "after"
                )
            start = positions[params.after] + 1
        if params.before is not None:
            if params.before not in positions:
                raise bad_request(
                    f"Invalid 'before': no object with id '{params.before}' in this list.", "before"
                )
            end = positions[params.before]
    window = seq[start:end] if start < end else []
    if params.before is not None and params.after is None:
        chosen = list(window[-params.limit :]) if window else []  # the items right before the cursor
    else:
        chosen = list(window[: params.limit])
    return chosen, len(window) > params.limit


def page_indexed(n: int, params: ListParams, index_of: Callable[[str], int | None]) -> tuple[list[int], bool]:
    """`page` over the items 0..n-1 (ascending) known only by `index_of(id)`: builds no item to find a cursor."""
    asc = params.order == "asc"

    def position(name: str, cursor: str) -> int:
        index = index_of(cursor)
        if index is None:
            raise bad_request(f"Invalid '{name}': no object with id '{cursor}' in this list.", name)
        return index if asc else n - 1 - index

    start = position("after", params.after) + 1 if params.after is not None else 0
    end = position("before", params.before) if params.before is not None else n
    size = max(0, end - start)
    only_before = params.before is not None and params.after is None
    first = max(start, end - params.limit) if only_before else start  # before: the items right before it
    chosen = range(first, min(end, first + params.limit)) if size else range(0)
    return [i if asc else n - 1 - i for i in chosen], size > params.limit


def envelope(data: list[dict[str, Any]], has_more: bool, empty_id: str | None = "") -> dict[str, Any]:
    """The list object. An empty list answers first_id/last_id with `empty_id` ("" by default)."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else empty_id,
        "last_id": data[-1]["id"] if data else empty_id,
        "has_more": has_more,
    }
