"""`archive.vector_map`: what each vector store, file and attachment became on which target
(`import --to vector-stores`).

Owns the table `vector_map`: per target and source object, the target's id and status. Stores and
files are keyed (target, kind, source store, source file): a store row has no file, a file row no store
(a file held by two stores is uploaded once), an attachment row has both. The intent is committed before
each create and the outcome after, so an interrupted import resumes without creating anything twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from migrator.archive.room import Room
from migrator.archive.types import VectorLink
from migrator.errors import UsageError

__all__ = ["IN_FLIGHT", "VectorStoreMap", "target_key"]

_COLUMNS = (
    "target, kind, source_store_id, source_file_id, target_id, status, content, upload_name, bytes, sha256, "
    "unconfirmed_creates, error"
)
_KEY = "target = ? and kind = ? and source_store_id = ? and source_file_id = ?"
IN_FLIGHT = ("creating", "attaching")  # an intent whose create may or may not have happened


def target_key(base_url: str) -> str:
    """The map's name for a target: its base URL without a trailing slash (as the SDK may add one)."""
    return base_url.rstrip("/")


class VectorStoreMap(Room):
    def get(self, target: str, kind: str, store_id: str = "", file_id: str = "") -> VectorLink | None:
        row = self.db.execute(
            f"select {_COLUMNS} from vector_map where {_KEY}", [target, kind, store_id, file_id]
        ).fetchone()
        return VectorLink(*row) if row else None

    def rows(self, target: str) -> Iterator[VectorLink]:
        """Every row of one target: stores, then files, then attachments, each sorted by source ids."""
        order = "case kind when 'store' then 0 when 'file' then 1 else 2 end, source_store_id, source_file_id"
        for row in self.db.execute(
            f"select {_COLUMNS} from vector_map where target = ? order by {order}", [target]
        ):
            yield VectorLink(*row)

    def intent(
        self,
        target: str,
        kind: str,
        store_id: str = "",
        file_id: str = "",
        *,
        status: str,
        content: str | None = None,
        upload_name: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
    ) -> None:
        """Record that a create is about to be sent (committed before it is).

        A row still in flight when this is called again means an earlier create's outcome was never
        learned (the process died, or no answer came): it counts as unconfirmed.
        """
        with self.archive.atomic():
            self.db.execute(
                "insert into vector_map(target, kind, source_store_id, source_file_id, status, content, "
                "upload_name, bytes, sha256) values (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict(target, kind, source_store_id, source_file_id) do update set "
                "unconfirmed_creates = unconfirmed_creates + (status in ('creating', 'attaching')), "
                "status = excluded.status, content = excluded.content, upload_name = excluded.upload_name, "
                "bytes = excluded.bytes, sha256 = excluded.sha256, error = null where target_id is null",
                [target, kind, store_id, file_id, status, content, upload_name, size, sha256],
            )

    def settle(
        self,
        target: str,
        kind: str,
        store_id: str = "",
        file_id: str = "",
        *,
        status: str,
        target_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """The outcome: the target's id (kept when not given) and the status, or why it failed."""
        with self.archive.atomic():
            self.db.execute(
                "insert into vector_map(target, kind, source_store_id, source_file_id, target_id, status, error) "
                "values (?, ?, ?, ?, ?, ?, ?) on conflict(target, kind, source_store_id, source_file_id) do update "
                "set target_id = coalesce(excluded.target_id, target_id), status = excluded.status, "
                "error = excluded.error",
                [target, kind, store_id, file_id, target_id, status, error],
            )

    def unconfirmed(self, target: str, kind: str, store_id: str = "", file_id: str = "") -> None:
        """A create sent in this run whose outcome is unknown (timeout, dropped connection, 5xx)."""
        with self.archive.atomic():
            self.db.execute(
                f"update vector_map set unconfirmed_creates = unconfirmed_creates + 1 where {_KEY}",
                [target, kind, store_id, file_id],
            )

    def mapped_ids(self, target: str, kind: str) -> set[str]:
        """The target ids already claimed by a row of this kind (never adopted for another source)."""
        sql = "select target_id from vector_map where target = ? and kind = ? and target_id is not null"
        return {row[0] for row in self.db.execute(sql, [target, kind])}

    def rebuilt_stores(self, target: str) -> dict[str, str]:
        """Source vector store id -> the id of its rebuilt store on `target` (created ones only)."""
        sql = (
            "select source_store_id, target_id from vector_map where target = ? and kind = 'store' "
            "and status = 'created' and target_id is not null"
        )
        return dict(self.db.execute(sql, [target]).fetchall())

    def targets(self) -> list[str]:
        """Every target some store was rebuilt on, sorted."""
        sql = "select distinct target from vector_map where kind = 'store' and status = 'created' order by 1"
        return [row[0] for row in self.db.execute(sql)]

    def target_for(self, base_url: str | None) -> str | None:
        """The target whose rebuilt stores a request binds: the one named, else the only one mapped.

        None when no store was rebuilt anywhere (or on the target named); several and none named is a
        usage error, since binding to the wrong project's stores would retrieve nothing.
        """
        if base_url:
            return target_key(base_url)
        targets = self.targets()
        if len(targets) > 1:
            raise UsageError(
                f"the archive holds vector stores rebuilt on {len(targets)} targets ({', '.join(targets)})",
                hint="pass --target-base-url URL to say whose stores to bind",
            )
        return targets[0] if targets else None
