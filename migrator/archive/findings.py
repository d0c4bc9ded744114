"""`archive.findings`: what went wrong while reading the source, kept as rows, never only as log lines.

Owns the tables `failures` (entity, id, error class, message, status code, attempts: a thread, a file,
a listing that could not be read) and `anomalies` (pages that ended abnormally: a repeated cursor, an
empty page claiming has_more). A later success clears its failure in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from migrator.archive.room import Room, marks
from migrator.archive.types import Anomaly, Failure
from migrator.redact import redact

__all__ = ["PAGE_ANOMALIES", "Findings"]

# What `source.paging` records of a list whose pages would not end: stale once the list is read whole.
PAGE_ANOMALIES = ("repeated_cursor", "empty_page_has_more", "malformed_page")

_FAILURE_COLUMNS = "entity, entity_id, error_class, message, status_code, attempts"


class Findings(Room):
    def record_failure(self, failure: Failure) -> None:
        with self.archive.atomic():
            self.put_failure(failure)

    def failures(self) -> list[Failure]:
        return list(self.iter_failures())

    def iter_failures(self) -> Iterator[Failure]:
        for row in self.db.execute(f"select {_FAILURE_COLUMNS} from failures order by entity, entity_id"):
            yield Failure(*row)

    def iter_anomalies(self) -> Iterator[Anomaly]:
        for row in self.db.execute("select entity, entity_id, kind, detail from anomalies order by 1, 2, 3"):
            yield Anomaly(*row)

    def counts(self) -> dict[str, int]:
        return {
            "failures": self.db.execute("select count(*) from failures").fetchone()[0],
            "anomalies": self.db.execute("select count(*) from anomalies").fetchone()[0],
        }

    # -- inside the caller's transaction -----------------------------------------------------------

    def put_failure(self, failure: Failure) -> None:
        """Record a failure; one already held for the entity counts its attempts on (inside the
        caller's transaction)."""
        self.db.execute(
            f"insert into failures({_FAILURE_COLUMNS}) "
            "values (?, ?, ?, ?, ?, ?) on conflict(entity, entity_id) do update set "
            "error_class = excluded.error_class, message = excluded.message, "
            "status_code = excluded.status_code, attempts = failures.attempts + excluded.attempts",
            [
                failure.entity,
                failure.entity_id,
                failure.error_class,
                redact(failure.message),
                failure.status_code,
                failure.attempts,
            ],
        )

    def clear_failure(self, entity: str, entity_id: str) -> None:
        """Forget the entity's failure: it was read since (inside the caller's transaction)."""
        self.db.execute("delete from failures where entity = ? and entity_id = ?", [entity, entity_id])

    def add_anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        """Inside the caller's transaction."""
        self.db.conn.executemany(
            "insert or replace into anomalies(entity, entity_id, kind, detail) values (?, ?, ?, ?)",
            ((a.entity, a.entity_id, a.kind, redact(a.detail)) for a in anomalies),
        )

    def clear_anomalies(self, entity_id: str, kinds: tuple[str, ...], *, entity: str = "thread") -> None:
        """Forget these kinds of a thread's (or other entity's) anomalies (inside the caller's transaction)."""
        self.db.execute(
            f"delete from anomalies where entity = ? and entity_id = ? and kind in ({marks(len(kinds))})",
            [entity, entity_id, *kinds],
        )

    def drop_anomalies(self, entity: str, kind: str, id_prefix: str) -> None:
        """Forget this kind of anomaly of every entity whose id starts with the prefix (inside the
        caller's transaction): a rerun over the same source finds them again."""
        self.db.execute(
            "delete from anomalies where entity = ? and kind = ? and substr(entity_id, 1, ?) = ?",
            [entity, kind, len(id_prefix), id_prefix],
        )

    def clear_failures(self, entity: str, entity_ids: Iterable[str]) -> None:
        """`clear_failure` for many (inside the caller's transaction)."""
        self.db.conn.executemany(
            "delete from failures where entity = ? and entity_id = ?", ((entity, i) for i in entity_ids)
        )

    def clear_anomalies_of(self, owned: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        """`clear_anomalies` for many (thread_id, kinds) pairs (inside the caller's transaction)."""
        self.db.conn.executemany(
            "delete from anomalies where entity = 'thread' and entity_id = ? and kind = ?",
            ((tid, kind) for tid, kinds in owned for kind in kinds),
        )
