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


Fetch = Callable[[str | None], Awaitable[dict[str, Any]]]


async def collect(fetch: Fetch, after: str | None = None, backward: Fetch | None = None) -> Listing:
    """Every item of a list endpoint, in the order served (ascending), each id once.

    Stops when `has_more` is false. When a cursor repeats or a page is empty while claiming more,
    the pages cannot be trusted to end; with `backward` (the same list, newest first) the rest is
    listed from the other end until the two meet (an item already held, or the `after` cursor, or
    the oldest end): the listing is then whole, kept and returned. Otherwise, or when the backward
    pages break too, raises PageAnomaly with what was collected attached as `.listing`.
    """
    listing = Listing()
    seen_ids: set[str] = set()
    try:
        await _pages(fetch, after, listing, seen_ids)
    except PageAnomaly as exc:
        if backward is None or not await _meet(backward, after, listing, seen_ids):
            exc.listing = listing  # type: ignore[attr-defined]
            raise
    return listing


async def _pages(fetch: Fetch, after: str | None, listing: Listing, seen_ids: set[str]) -> None:
    cursors: set[str | None] = {after}
    while True:
        page = await fetch(after)
        listing.pages += 1
        data = page.get("data")
        if not isinstance(data, list):
            raise PageAnomaly("malformed_page", f"page after {after!r} has no data list")
        _take(data, listing, seen_ids, listing.items)
        if not page.get("has_more"):
            return
        if not data:
            raise PageAnomaly("empty_page_has_more", f"empty page after {after!r} claims has_more")
        cursor = page.get("last_id") or data[-1].get("id")
        if cursor in cursors:
            raise PageAnomaly("repeated_cursor", f"cursor {cursor!r} came back after {listing.pages} pages")
        cursors.add(cursor)
        after = cursor


async def _meet(backward: Fetch, start: str | None, listing: Listing, seen_ids: set[str]) -> bool:
    """List newest first until reaching what the forward pages held: True when they met."""
    newer: list[dict[str, Any]] = []  # newest first
    forward = set(seen_ids)  # meeting an item this backward walk took itself proves nothing
    cursors: set[str | None] = {None}
    before: str | None = None
    while True:
        page = await backward(before)
        listing.pages += 1
        data = page.get("data")
        if not isinstance(data, list):
            return False
        ids = [item.get("id") if isinstance(item, dict) else None for item in data]
        met_at = next(
            (i for i, item_id in enumerate(ids) if item_id in forward or (start and item_id == start)), None
        )
        _take(data if met_at is None else data[:met_at], listing, seen_ids, newer)
        if met_at is not None or not page.get("has_more"):
            listing.items.extend(reversed(newer))  # back into the source's ascending order
            return True
        cursor = page.get("last_id") or (ids[-1] if ids else None)
        if not data or cursor in cursors:
            return False
        cursors.add(cursor)
        before = cursor


def _take(data: list[Any], listing: Listing, seen_ids: set[str], into: list[dict[str, Any]]) -> None:
    for item in data:
        item_id = item.get("id") if isinstance(item, dict) else None
        if item_id is None or item_id not in seen_ids:
            listing.served += 1
        if item_id is not None and item_id not in seen_ids:
            seen_ids.add(item_id)
            into.append(item)
