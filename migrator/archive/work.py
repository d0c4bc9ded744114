"""`archive.work`: the work list, one row per requested thread, and its statuses.

Owns the table `work`: a thread's status (pending | done | failed | missing), what the source's pages
said it holds (the `*_seen` counts verify checks the rows against), the newest stored ids a --refresh
lists after, and `session_stale`, set whenever the rows a session is derived from change. The resume
checkpoint lives here, beside the data: a thread's status commits in the transaction of its rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from migrator.archive.room import Room, chunks, marks

__all__ = ["WorkList"]

# The newest row of a thread in the source's order: where the next --refresh starts listing.
_LAST = "select id from {0} where thread_id = :tid order by created_at desc, position desc limit 1"


def _finish_sql(delta: bool) -> str:
    add = "coalesce({0}, 0) + :{1}" if delta else ":{1}"
    return (
        "update work set status = :status, attempts = attempts + 1, "
        f"messages_seen = {add.format('messages_seen', 'm')}, runs_seen = {add.format('runs_seen', 'r')}, "
        f"steps_seen = {add.format('steps_seen', 's')}, "
        f"last_message_id = ({_LAST.format('messages')}), last_run_id = ({_LAST.format('runs')}), "
        "session_stale = 1 where thread_id = :tid"
    )


def _finish_params(thread_id: str, status: str, seen: tuple[int, int, int]) -> dict[str, Any]:
    return {"status": status, "m": seen[0], "r": seen[1], "s": seen[2], "tid": thread_id}


class WorkList(Room):
    def add(self, items: Iterable[tuple[str, dict[str, Any]]], batch: int = 5000) -> int:
        """Register requested thread ids as pending (known ones are left as they are), in one
        transaction.

        The ids are gathered in a temporary table first and then inserted in id order (of two
        entries of one id the first still wins): a list's order is whatever the user's program
        wrote, and rows inserted at random put each page of the key under a write of every commit
        (8 GB written for a dump's list of 340,000 new threads), and, their rowids following that
        order, every later update of the threads, in id order, at random too."""
        conn = self.db.conn
        with self.archive.atomic():
            conn.execute("create temp table if not exists work_add (thread_id text, extra text)")
            entries = self._entries(items)
            while chunk := list(itertools.islice(entries, batch)):
                conn.executemany("insert into temp.work_add values (?, ?)", chunk)
            before = conn.total_changes
            conn.execute(
                "insert or ignore into work (thread_id, extra) "
                "select thread_id, extra from temp.work_add order by thread_id, rowid"
            )
            added = conn.total_changes - before
            conn.execute("delete from temp.work_add")
        return added

    @staticmethod
    def _entries(items: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, str]]:
        for thread_id, extra in items:
            yield thread_id, orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode() if extra else "{}"

    def to_export(self, *, refresh: bool = False) -> Iterator[tuple[str, str, str | None, str | None]]:
        """(thread_id, status, last_message_id, last_run_id) still to fetch, in a stable order.

        Pending, failed and missing threads are fetched (a missing one costs one request, and a
        corrected --base-url brings it back); done ones only with `refresh`.
        """
        statuses = ("pending", "failed", "missing", "done") if refresh else ("pending", "failed", "missing")
        sql = (
            "select thread_id, status, last_message_id, last_run_id from work "
            f"where status in ({marks(len(statuses))}) and thread_id > ? order by thread_id limit ?"
        )
        for rows in self.archive.keyset(sql, statuses):
            yield from rows

    def counts(self) -> dict[str, int]:
        counts = {"pending": 0, "done": 0, "failed": 0, "missing": 0}
        for status, n in self.db.execute("select status, count(*) from work group by status"):
            counts[status] = n
        return counts

    def extra(self, thread_id: str) -> dict[str, Any]:
        """The other fields of the thread's --threads line (they become session metadata)."""
        row = self.db.execute("select extra from work where thread_id = ?", [thread_id]).fetchone()
        return orjson.loads(row[0]) if row and row[0] else {}

    def extras(self, thread_ids: list[str]) -> dict[str, dict[str, Any]]:
        """`extra` of many threads at once (those with none are left out)."""
        out: dict[str, dict[str, Any]] = {}
        for chunk in chunks(sorted(set(thread_ids)), 500):
            for tid, extra in self.db.execute(
                f"select thread_id, extra from work where thread_id in ({marks(len(chunk))})", chunk
            ):
                if extra and extra != "{}":
                    out[tid] = orjson.loads(extra)
        return out

    def ids(self, status: str, batch: int = 5000) -> Iterator[str]:
        """The requested thread ids with this work status, in id order, keyset-paged."""
        sql = "select thread_id from work where status = ? and thread_id > ? order by thread_id limit ?"
        for rows in self.archive.keyset(sql, [status], batch=batch):
            yield from (thread_id for (thread_id,) in rows)

    def stale_count(self) -> int:
        """How many sessions a build has to make (its progress total)."""
        # The partial index of stale done threads (see stale_batches): 90 ms at 340,000 threads through
        # the index on status, nothing through this one.
        sql = "select count(*) from work indexed by idx_work_stale_done where session_stale = 1 and status = 'done'"
        return int(self.archive.db.execute(sql).fetchone()[0])

    def stale_batches(self, batch: int = 500) -> Iterator[list[str]]:
        """Done threads whose session must be (re)built, in batches, resumable by design."""
        # Named, because SQLite would rather take the index on status: through it every page sorted
        # all the done threads again (quadratic: 500 s at 340,000 threads). The partial index holds
        # the stale done threads only, in id order: a page is one seek, and a rerun with nothing to
        # build reads nothing (the primary key's walk read all 340,000 rows: 1.3 s).
        sql = (
            "select thread_id from work indexed by idx_work_stale_done "
            "where session_stale = 1 and status = 'done' and thread_id > ? order by thread_id limit ?"
        )
        for rows in self.archive.keyset(sql, batch=batch):
            yield [r[0] for r in rows]

    def statuses_without_rows(self) -> dict[str, int]:
        """Work rows by status whose thread has no raw row at all (missing, failed before any fetch…)."""
        return dict(
            self.db.execute(
                "select status, count(*) from work w where not exists (select 1 from threads where id = w.thread_id) "
                "and not exists (select 1 from messages where thread_id = w.thread_id) "
                "and not exists (select 1 from runs where thread_id = w.thread_id) "
                "and not exists (select 1 from run_steps where thread_id = w.thread_id) group by status"
            ).fetchall()
        )

    def mark_all_stale(self) -> None:
        with self.archive.atomic():
            self.stale_done()

    # -- the pieces other rooms' writes are made of (inside the caller's transaction) ------------

    def stale_done(self) -> None:
        """Every done thread's session must be rebuilt (inside the caller's transaction)."""
        self.db.execute("update work set session_stale = 1 where status = 'done'")

    def stale_using_assistants(self, assistant_ids: list[str]) -> None:
        """Done threads that ran one of these assistants get stale sessions (inside the caller's
        transaction): the converter reads the assistant's tools, model and instructions."""
        for chunk in chunks(assistant_ids, 500):
            m = marks(len(chunk))
            self.db.execute(
                "update work set session_stale = 1 where status = 'done' and thread_id in "
                f"(select thread_id from runs where assistant_id in ({m}) union "
                f"select thread_id from messages where json_extract(raw, '$.assistant_id') in ({m}))",
                [*chunk, *chunk],
            )

    def stale_using_file(self, file_id: str) -> None:
        """Threads that mention this file get stale sessions (inside the caller's transaction)."""
        self.db.execute(
            "update work set session_stale = 1 where thread_id in "
            "(select owner_id from file_refs where file_id = ? and owner_kind = 'thread')",
            [file_id],
        )

    def fresh(self, thread_id: str) -> None:
        """The thread's session was just built (inside the caller's transaction)."""
        self.db.execute("update work set session_stale = 0 where thread_id = ?", [thread_id])

    def fresh_many(self, thread_ids: list[str]) -> None:
        """These threads' sessions were just built (inside the caller's transaction); their rows are
        updated in the order they sit in the table. Work rows sit in request order, not id order (an
        archive made before `add` sorted its ids, or ids listed page by page): updated by id, each row
        is on another page, and every page is read and written again for each of its rows."""
        rowids: list[int] = []
        for chunk in chunks(sorted(set(thread_ids)), 500):
            sql = f"select rowid from work where thread_id in ({marks(len(chunk))})"
            rowids += [rowid for (rowid,) in self.db.execute(sql, chunk)]
        rowids.sort()
        self.db.conn.executemany("update work set session_stale = 0 where rowid = ?", ((r,) for r in rowids))

    def finish(self, thread_id: str, status: str, seen: tuple[int, int, int], *, delta: bool) -> None:
        """A fetched thread's status and seen counts (a --refresh delta adds to them) and its newest
        stored ids, read back (inside the caller's transaction, the one of its rows)."""
        self.db.execute(_finish_sql(delta), _finish_params(thread_id, status, seen))

    def finish_many(self, verdicts: Iterable[tuple[str, str, tuple[int, int, int]]]) -> None:
        """`finish` of many whole threads, (thread_id, status, seen), in one statement (inside the
        caller's transaction)."""
        self.db.conn.executemany(
            _finish_sql(False), (_finish_params(tid, status, seen) for tid, status, seen in verdicts)
        )

    def enlist(self, thread_ids: Iterable[str]) -> None:
        """Register threads not requested by a list (made from log rows), inside the caller's
        transaction; known ones are left as they are."""
        self.db.conn.executemany(
            "insert or ignore into work(thread_id) values (?)", ((t,) for t in thread_ids)
        )

    def settle(self, verdicts: Iterable[tuple[str, str, tuple[int, int, int]]]) -> None:
        """Dumped threads' statuses, (thread_id, status, unkept); their seen counts are the rows now
        held plus those that could not be kept (inside the caller's transaction)."""
        params = [
            {"status": status, "tid": tid, "m": m, "r": r, "s": st} for tid, status, (m, r, st) in verdicts
        ]
        self.db.conn.executemany("insert or ignore into work(thread_id) values (:tid)", params)
        self.db.conn.executemany(
            "update work set status = :status, attempts = attempts + 1, session_stale = 1, "
            "messages_seen = (select count(*) from messages where thread_id = :tid) + :m, "
            "runs_seen = (select count(*) from runs where thread_id = :tid) + :r, "
            "steps_seen = (select count(*) from run_steps where thread_id = :tid) + :s, "
            f"last_message_id = coalesce(({_LAST.format('messages')}), last_message_id), "
            f"last_run_id = coalesce(({_LAST.format('runs')}), last_run_id) where thread_id = :tid",
            params,
        )

    def touched(self, thread_ids: Iterable[str]) -> None:
        """Threads that gained or changed a row one by one: known, stale, and no longer done until
        settled (inside the caller's transaction), so a kill mid-ingest never leaves a done thread
        holding only part of its rows."""
        # One upsert a thread: a dump of 340,000 threads touches each of them twice or more.
        self.db.conn.executemany(
            "insert into work(thread_id) values (?) on conflict(thread_id) do update set session_stale = 1, "
            "status = case when status = 'done' then 'pending' else status end",
            [(tid,) for tid in sorted(thread_ids)],
        )
