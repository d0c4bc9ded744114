"""`archive.links`: which conversation each thread became on which target (`import --to conversations`).

Owns the table `conversation_map`: per (target, thread), the conversation id, how far its items got
and the idempotency key of its create. The intent is committed before the create is sent and the
progress after every chunk, so an interrupted import resumes without creating a conversation twice
or sending an item twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from migrator.archive.room import Room
from migrator.archive.types import ConversationLink
from migrator.redact import redact

__all__ = ["ConversationLinks"]

_COLUMNS = (
    "target, thread_id, conversation_id, status, idempotency_key, unconfirmed_creates, items_total, "
    "items_sent, sent_digest, metadata_dropped, error"
)


class ConversationLinks(Room):
    def get(self, target: str, thread_id: str) -> ConversationLink | None:
        row = self.db.execute(
            f"select {_COLUMNS} from conversation_map where target = ? and thread_id = ?", [target, thread_id]
        ).fetchone()
        return ConversationLink(*row) if row else None

    def of_target(self, target: str, thread_ids: Iterable[str] | None = None) -> Iterator[ConversationLink]:
        """The map rows of one target, sorted by thread id (only these threads, when given)."""
        if thread_ids is not None:
            for tid in thread_ids:
                link = self.get(target, tid)
                if link is not None:
                    yield link
            return
        sql = f"select {_COLUMNS} from conversation_map where target = ? and thread_id > ? order by thread_id limit ?"
        for rows in self.archive.keyset(sql, [target], key=1):
            yield from (ConversationLink(*row) for row in rows)

    def intent(
        self, target: str, thread_id: str, *, idempotency_key: str, items_total: int, metadata_dropped: str
    ) -> ConversationLink:
        """Record that a create is about to be sent (committed before it is); returns the row.

        A row still `creating` when this is called again means an earlier create's outcome was never
        learned (the process died): it counts as unconfirmed. A row keeps its first idempotency key.
        """
        with self.archive.atomic():
            self.db.execute(
                "insert into conversation_map(target, thread_id, status, idempotency_key, items_total, "
                "metadata_dropped) values (?, ?, 'creating', ?, ?, ?) on conflict(target, thread_id) do update "
                "set unconfirmed_creates = unconfirmed_creates + (status = 'creating'), status = 'creating', "
                "items_total = excluded.items_total, metadata_dropped = excluded.metadata_dropped, error = null "
                "where conversation_id is null",
                [target, thread_id, idempotency_key, items_total, metadata_dropped],
            )
        link = self.get(target, thread_id)
        assert link is not None
        return link

    def unconfirmed(self, target: str, thread_id: str) -> None:
        """A create sent in this run whose outcome is unknown (timeout, dropped connection, 5xx)."""
        with self.archive.atomic():
            self.db.execute(
                "update conversation_map set unconfirmed_creates = unconfirmed_creates + 1 "
                "where target = ? and thread_id = ?",
                [target, thread_id],
            )

    def progress(
        self,
        target: str,
        thread_id: str,
        *,
        items_sent: int,
        sent_digest: str,
        items_total: int,
        conversation_id: str | None = None,
    ) -> None:
        """After the create (with its conversation id) and after every chunk: how far the items got."""
        status = "done" if items_sent >= items_total else "open"
        with self.archive.atomic():
            self.db.execute(
                "update conversation_map set conversation_id = coalesce(?, conversation_id), status = ?, "
                "items_sent = ?, sent_digest = ?, items_total = ?, error = null "
                "where target = ? and thread_id = ?",
                [conversation_id, status, items_sent, sent_digest, items_total, target, thread_id],
            )

    def failed(self, target: str, thread_id: str, error: str, *, status: str = "failed") -> None:
        """The import of this thread stopped: `failed` (the target refused it; the next run retries,
        with the same idempotency key if the create was refused), or `diverged` (its session changed
        under it and no longer starts with the items sent)."""
        with self.archive.atomic():
            self.db.execute(
                "update conversation_map set error = ?, status = ? where target = ? and thread_id = ?",
                [redact(error), status, target, thread_id],
            )
