"""`archive.records`: the threads an application's own message log became (`export --from-records`).

Owns the tables `record_rows` (every row of the log verbatim, beside the objects made of it; a raw
table, so the content hash, verify and merge see it) and `record_threads` (one digest per thread made
from records, and where its rows were read). A changed thread is replaced whole, in one transaction
with its `done` mark and its digest: the log says what the thread is now, so objects of rows that
left it must go too. A thread the archive holds from another source (an API export, a dump) has no
`record_threads` row and is never replaced by log rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrator.archive.room import Room, chunks, marks
from migrator.archive.types import Anomaly, RecordThread, ThreadResult

if TYPE_CHECKING:
    from migrator.archive.database import Archive

__all__ = ["FOREIGN", "RECORDS_ENTITY", "SKIPPED_ROW", "RecordThreads"]

SKIPPED_ROW = "record_row_skipped"  # the anomaly kind of a log row that could not be used
RECORDS_ENTITY = "records"  # the anomaly entity of a log row (its id: "<source>#<row number>")
FOREIGN = ""  # what `held` says of a thread the archive holds from another source


class RecordThreads(Room):
    def __init__(self, archive: Archive) -> None:
        super().__init__(archive)
        self._storing = False  # inside `storing`: `replace` writes into its transaction

    def held(self, thread_ids: Iterable[str]) -> dict[str, str]:
        """For each id the archive knows: the digest stored from records, or FOREIGN when the archive
        holds the thread from another source. Ids it does not know are left out."""
        out: dict[str, str] = {}
        for chunk in chunks(sorted(set(thread_ids))):
            m = marks(len(chunk))
            for (tid,) in self.db.execute(f"select id from threads where id in ({m})", chunk):
                out[tid] = FOREIGN
            for tid, digest in self.db.execute(
                f"select thread_id, hash from record_threads where thread_id in ({m})", chunk
            ):
                out[tid] = digest
        return out

    @contextmanager
    def storing(self) -> Iterator[None]:
        """One transaction for several `replace` calls: each batch's threads are still whole with
        their `done` marks, and a commit holds whole batches only.

        Message ids are digests that land at random in their index: a commit writes every index page
        its batch touched, nearly the whole index once it is large. Fewer commits write each page once
        for many batches (at a million log rows, gigabytes less WAL and checkpoint traffic). The
        batches write straight into this transaction, never in savepoints: SQLite copies every page a
        savepoint first touches into its statement journal."""
        conn = self.db.conn
        # What a single statement's journal needs (a REPLACE), in memory rather than a temporary file.
        temp_store = conn.execute("PRAGMA temp_store").fetchone()[0]
        conn.execute("PRAGMA temp_store = MEMORY")
        try:
            with self.archive.atomic():
                self._storing = True
                try:
                    yield
                finally:
                    self._storing = False
        finally:
            conn.execute(f"PRAGMA temp_store = {int(temp_store)}")

    def replace(self, threads: Iterable[RecordThread], new: frozenset[str] = frozenset()) -> None:
        """Store these threads whole, in one transaction (the one `storing` holds, or its own): each
        one's old objects and rows go, its new ones, its `done` mark (its session stale) and its
        digest come. `new`: ids the archive does not hold at all (nothing to delete)."""
        threads = list(threads)
        if self._storing:
            self._replace(threads, new)
            return
        with self.storing():
            self._replace(threads, new)

    def _replace(self, threads: list[RecordThread], new: frozenset[str]) -> None:
        """Inside the caller's transaction."""
        archive = self.archive
        conn = self.db.conn
        held = [t.thread_id for t in threads if t.thread_id not in new]
        if held:
            archive.raw.drop_threads_rows(held)
            archive.files.drop_refs_of("thread", held)
            conn.executemany("delete from record_rows where thread_id = ?", [(tid,) for tid in held])
        archive.work.enlist(t.thread_id for t in threads)
        archive.raw.put_threads(
            [
                ThreadResult(
                    t.thread_id,
                    "done",
                    thread=t.thread,
                    messages=t.messages,
                    runs=t.runs,
                    steps=t.steps,
                    file_refs=set(t.file_refs),
                    messages_seen=len(t.messages),
                    runs_seen=len(t.runs),
                    steps_seen=len(t.steps),
                )
                for t in threads
            ]
        )
        # The rows and digests of every thread at once: one statement each, not one a thread.
        conn.executemany(
            "insert into record_rows(thread_id, position, raw, hash) values (?, ?, ?, ?)",
            [(t.thread_id, i, raw, digest) for t in threads for i, (raw, digest) in enumerate(t.rows)],
        )
        conn.executemany(
            "insert or replace into record_threads(thread_id, hash, rows, source) values (?, ?, ?, ?)",
            [(t.thread_id, t.digest, len(t.rows), t.source) for t in threads],
        )

    def set_skipped(self, source: str, anomalies: Iterable[Anomaly]) -> None:
        """The rows of this source that could not be used, as found by this read (earlier findings of
        the same source are replaced: a rerun reads every row again)."""
        findings = self.archive.findings
        with self.archive.atomic():
            findings.drop_anomalies(RECORDS_ENTITY, SKIPPED_ROW, f"{source}#")
            findings.add_anomalies(anomalies)

    def count(self) -> int:
        return self.db.execute("select count(*) from record_threads").fetchone()[0]

    def merge_from_attached(self, schema: str = "src") -> None:
        """Fold an attached archive's record threads in (inside the caller's transaction; merge copies
        `record_rows` with the other raw tables): a thread made from log rows stays the log's to
        rewrite on a rerun of --from-records."""
        self.db.execute(f"insert or replace into record_threads select * from {schema}.record_threads")
