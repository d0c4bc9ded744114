"""`Room`: the base of the archive's table objects (the way sqlite-utils' `Database` hands out
`Table` objects): one concern, the tables it owns, on the archive's one connection.

A room's method that writes opens `archive.atomic()` itself, unless its docstring says it writes
"inside the caller's transaction": those are the pieces another room's write is made of (a thread's
rows, its file references, its findings and its status commit together). Owns no table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrator.archive.database import Archive

__all__ = ["Room", "chunks", "marks"]


class Room:
    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.db = archive.db


def chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """Slices of at most `size`: SQLite caps the `?` of one statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(n: int) -> str:
    return ",".join("?" * n)
