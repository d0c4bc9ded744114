"""`archive.versions`: every distinct version of an object read more than once.

Owns `raw_versions`, the raw room's companion: `archive.raw` holds the current version of each object.

A saved dump may hold one id several times with other content: a polling loop saves a run at each
state (queued, requires_action, completed), two exports of one thread disagree. The raw table keeps
the version the caller chose as current (see `Preference`); `raw_versions` keeps every distinct one,
verbatim, in the order they arrived. Ids seen in one version only have no rows here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from migrator.archive.canonical import loads
from migrator.archive.room import Room, chunks, marks

__all__ = ["Preference", "LaterWins", "RawVersion", "RawVersions"]


class Preference(Protocol):
    """Which of two versions of one object is current, and which objects are the source's own."""

    def prefer(self, held: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """True when `new` should replace `held` as the current version."""
        ...

    def genuine(self, obj: Mapping[str, Any]) -> bool:
        """False for an object we made up (a synthesised thread): current until the real one comes, never
        kept as a version."""
        ...


class LaterWins:
    """The version read last is current (what a re-export of the same object means)."""

    def prefer(self, held: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return True

    def genuine(self, obj: Mapping[str, Any]) -> bool:
        return True


@dataclass(frozen=True)
class RawVersion:
    raw_table: str
    id: str
    hash: str
    parent_id: str | None
    raw: str
    origin: str | None = None


class RawVersions(Room):
    """The `raw_versions` table. Writes join the caller's transaction (`keep`) or open one (`add`)."""

    def keep(self, conn: sqlite3.Connection, versions: Iterable[RawVersion]) -> int:
        """Insert versions not held yet, inside the caller's transaction; how many were new."""
        before = conn.total_changes
        conn.executemany(
            "insert or ignore into raw_versions (raw_table, id, hash, parent_id, raw, origin) "
            "values (?, ?, ?, ?, ?, ?)",
            ((v.raw_table, v.id, v.hash, v.parent_id, v.raw, v.origin) for v in versions),
        )
        return conn.total_changes - before

    def add(self, versions: Iterable[RawVersion]) -> int:
        """Versions read on their own (a dump's versions file): never current, one transaction."""
        with self.archive.atomic():
            return self.keep(self.db.conn, versions)

    def of_parent(self, raw_table: str, parent_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every version of the table's objects under one thread (or vector store), by id, in arrival order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for object_id, raw in self.db.execute(
            "select id, raw from raw_versions where parent_id = ? and raw_table = ? order by rowid",
            [parent_id, raw_table],
        ):
            out.setdefault(object_id, []).append(loads(raw))
        return out

    def of_parents(self, raw_table: str, parent_ids: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """`of_parent` of many parents at once (those without a version are left out)."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for chunk in chunks(sorted(set(parent_ids)), 500):
            for parent_id, object_id, raw in self.db.execute(
                f"select parent_id, id, raw from raw_versions where parent_id in ({marks(len(chunk))}) "
                "and raw_table = ? order by rowid",
                [*chunk, raw_table],
            ):
                out.setdefault(parent_id, {}).setdefault(object_id, []).append(loads(raw))
        return out

    def iter_all(self) -> Iterator[RawVersion]:
        """Every version, by table, parent and arrival (for `migrate dump`)."""
        for row in self.db.execute(
            "select raw_table, id, hash, parent_id, raw, origin from raw_versions "
            "order by raw_table, parent_id, rowid"
        ):
            yield RawVersion(*row)

    def count(self) -> int:
        return self.db.execute("select count(*) from raw_versions").fetchone()[0]

    def hashes(self) -> Iterator[tuple[str, str, str]]:
        """(table, id, hash) of every version in key order: part of the archive's content hash."""
        yield from self.db.execute("select raw_table, id, hash from raw_versions order by 1, 2, 3")

    def merge_from_attached(self, schema: str = "src") -> None:
        """Fold an attached archive's versions in (inside the caller's transaction)."""
        self.db.execute(
            "insert or ignore into raw_versions (raw_table, id, hash, parent_id, raw, origin) "
            f"select raw_table, id, hash, parent_id, raw, origin from {schema}.raw_versions order by rowid"
        )
