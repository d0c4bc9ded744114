"""Cursor pagination with loop guards: one small function, as the SDK's cursor pages do it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PageAnomaly", "Listing", "collect"]


class PageAnomaly(Exception):
    """The source's pages cannot be trusted to end: a repeated cursor, or an empty page with has_more."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class Listing:
    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    # What the pages held, counted as served (an object served again is not counted twice), not
    # from `items`: an item without an id is served but cannot be kept, and verify must see that.
    served: int = 0


async def collect(
    fetch: Callable[[str | None], Awaitable[dict[str, Any]]], after: str | None = None
) -> Listing:
    """Every item of a list endpoint, in the order served, each id once.

    Stops when `has_more` is false; raises PageAnomaly (with what was collected so far attached as
    `.listing`) when a cursor repeats or a page is empty while claiming more.
    """
    listing = Listing()
    seen_ids: set[str] = set()
    cursors: set[str | None] = {after}
    while True:
        page = await fetch(after)
        listing.pages += 1
        data = page.get("data")
        if not isinstance(data, list):
            raise _anomaly("malformed_page", f"page after {after!r} has no data list", listing)
        for item in data:
            item_id = item.get("id") if isinstance(item, dict) else None
            if item_id is None or item_id not in seen_ids:
                listing.served += 1
            if item_id is not None and item_id not in seen_ids:
                seen_ids.add(item_id)
                listing.items.append(item)
        if not page.get("has_more"):
            return listing
        if not data:
            raise _anomaly("empty_page_has_more", f"empty page after {after!r} claims has_more", listing)
        cursor = page.get("last_id") or data[-1].get("id")
        if cursor in cursors:
            raise _anomaly(
                "repeated_cursor", f"cursor {cursor!r} came back after {listing.pages} pages", listing
            )
        cursors.add(cursor)
        after = cursor


def _anomaly(kind: str, detail: str, listing: Listing) -> PageAnomaly:
    exc = PageAnomaly(kind, detail)
    exc.listing = listing  # type: ignore[attr-defined]
    return exc
