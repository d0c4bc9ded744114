"""The archive reads only `migrate verify` makes, on the archive's connection, streamed: an archive
may hold 340,000 threads. Each answers one check's question in SQL; the checks judge the rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from migrator.archive import RAW_TABLES, Archive

__all__ = [
    "DoneSession",
    "ThreadTally",
    "blobs",
    "done_session_batches",
    "file_gaps",
    "integrity_errors",
    "integrity_lines",
    "orphans",
    "raw_hashes",
    "runs_missing_steps",
    "thread_tallies",
]


@dataclass(frozen=True)
class ThreadTally:
    """One work row next to what the archive actually holds for that thread."""

    thread_id: str
    status: str
    messages_seen: int
    runs_seen: int
    steps_seen: int
    session_stale: bool
    has_thread: bool
    messages: int
    runs: int
    steps: int
    error_class: str | None
    error_message: str | None


@dataclass(frozen=True)
class DoneSession:
    """A done thread and its stored session row (None fields when there is no session)."""

    thread_id: str
    session_stale: bool
    record: str | None
    hash: str | None
    tokens: int | None
    extra: dict[str, Any] | None = None  # the work row's extra (the re-derivation's metadata), if any
    has_session: bool = False  # a session row, whatever it holds


def integrity_errors(archive: Archive) -> list[str]:
    """What `PRAGMA integrity_check` reports besides "ok" (empty when the file is sound)."""
    return integrity_lines(archive.db.conn)


def integrity_lines(conn: sqlite3.Connection) -> list[str]:
    """`integrity_errors` on a connection of its own (verify runs it in a thread)."""
    rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def raw_hashes(archive: Archive, table: str) -> Iterator[tuple[str, Any, Any, str | None]]:
    """(row key, raw JSON text, stored hash, thread id or None) of every row of a raw table."""
    if table not in RAW_TABLES:
        raise ValueError(f"not a raw table: {table}")
    key = " || '/' || ".join(RAW_TABLES[table])
    thread = {
        "threads": "id",
        "messages": "thread_id",
        "runs": "thread_id",
        "run_steps": "thread_id",
        "record_rows": "thread_id",
    }
    yield from archive.db.execute(f"select {key}, raw, hash, {thread.get(table, 'null')} from {table}")


def blobs(archive: Archive) -> Iterator[tuple[str, int | None, bytes | None]]:
    """(sha256 key, recorded size, data) of every blob, one at a time."""
    yield from archive.db.execute("select sha256, bytes, data from blobs")


def thread_tallies(archive: Archive, batch: int = 1000) -> Iterator[ThreadTally]:
    """Every work row with the counts of the rows stored for it, in thread id order."""
    sql = (
        "select w.thread_id, w.status, coalesce(w.messages_seen, 0), coalesce(w.runs_seen, 0), "
        "coalesce(w.steps_seen, 0), coalesce(w.session_stale, 0), "
        "exists(select 1 from threads t where t.id = w.thread_id), "
        "(select count(*) from messages m where m.thread_id = w.thread_id), "
        "(select count(*) from runs r where r.thread_id = w.thread_id), "
        "(select count(*) from run_steps s where s.thread_id = w.thread_id), "
        "f.error_class, f.message "
        "from work w left join failures f on f.entity = 'thread' and f.entity_id = w.thread_id "
        "where w.thread_id > ? order by w.thread_id limit ?"
    )
    for rows in archive.keyset(sql, batch=batch):
        for row in rows:
            yield ThreadTally(
                row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]),
                row[7], row[8], row[9], row[10], row[11],
            )  # fmt: skip


_ORPHANS = (
    "select 'messages', m.id, 'thread', m.thread_id, m.thread_id from messages m "
    "where not exists (select 1 from threads t where t.id = m.thread_id)",
    "select 'runs', r.id, 'thread', r.thread_id, r.thread_id from runs r "
    "where not exists (select 1 from threads t where t.id = r.thread_id)",
    "select 'run_steps', s.id, 'thread', s.thread_id, s.thread_id from run_steps s "
    "where not exists (select 1 from threads t where t.id = s.thread_id)",
    "select 'run_steps', s.id, 'run', s.run_id, s.thread_id from run_steps s "
    "where not exists (select 1 from runs r where r.id = s.run_id)",
    "select 'messages', m.id, 'run', m.run_id, m.thread_id from messages m "
    "where m.run_id is not null and not exists (select 1 from runs r where r.id = m.run_id)",
    "select 'run_steps', s.id, 'message', json_extract(s.raw, '$.step_details.message_creation.message_id'), "
    "s.thread_id from run_steps s where json_valid(s.raw) "
    "and json_extract(s.raw, '$.step_details.type') = 'message_creation' "
    "and not exists (select 1 from messages m "
    "where m.id = json_extract(s.raw, '$.step_details.message_creation.message_id'))",
    "select 'vector_store_files', f.vector_store_id || '/' || f.id, 'vector_store', f.vector_store_id, null "
    "from vector_store_files f where not exists (select 1 from vector_stores v where v.id = f.vector_store_id)",
)


def orphans(archive: Archive) -> Iterator[tuple[str, str, str, str, str | None]]:
    """(table, row id, parent kind, parent id, thread id) for rows whose parent is not stored.

    Messages and runs need their thread; steps their thread and run; a message that names the
    run that wrote it needs that run; a `message_creation` step needs the message it placed.
    """
    for sql in _ORPHANS:
        yield from archive.db.execute(sql)


def runs_missing_steps(archive: Archive) -> Iterator[tuple[str, str]]:
    """(thread_id, run_id) of completed runs that declared tools (so their steps were listed) but
    have none. Only completed runs: one always has a step (its message_creation), while a run that
    failed, was cancelled or expired before doing anything legitimately has none."""
    yield from archive.db.execute(
        "select r.thread_id, r.id from runs r where r.has_tools = 1 and r.status = 'completed' "
        # thread_id first, so the lookup uses the (thread_id, run_id, ...) index, not a scan per run.
        "and not exists (select 1 from run_steps s where s.thread_id = r.thread_id and s.run_id = r.id) "
        "order by r.thread_id, r.id"
    )


def file_gaps(archive: Archive) -> Iterator[tuple[str, str, str]]:
    """(file_id, problem, first owner) for referenced files we could not (fully) obtain.

    problem: `unfetched` (no metadata), `missing` (the source gave neither bytes nor parsed
    text), `no_blob` (content recorded as obtained but its blob row is gone), `size` (downloaded bytes
    whose length is not the file object's `bytes`: an error page stored as the file, a cut body).
    """
    db = archive.db
    yield from db.execute(
        "select r.file_id, 'unfetched', min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
        "where not exists (select 1 from files f where f.id = r.file_id) group by r.file_id order by r.file_id"
    )
    yield from db.execute(
        "select f.id, 'missing', (select min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
        "where r.file_id = f.id) from files f where f.content = 'missing' order by f.id"
    )
    yield from db.execute(
        "select f.id, 'no_blob', (select min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
        "where r.file_id = f.id) from files f where f.content in ('downloaded', 'parsed_text') "
        "and (f.blob_sha256 is null or not exists (select 1 from blobs b where b.sha256 = f.blob_sha256)) "
        "order by f.id"
    )
    yield from db.execute(
        "select f.id, 'size', (select min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
        "where r.file_id = f.id) from files f join blobs b on b.sha256 = f.blob_sha256 "
        "where f.content = 'downloaded' and json_type(f.raw, '$.bytes') = 'integer' "
        "and b.bytes != json_extract(f.raw, '$.bytes') order by f.id"
    )


def done_session_batches(archive: Archive, batch: int = 500) -> Iterator[list[DoneSession]]:
    """Every done thread with its stored session (if any), in thread id order, in batches."""
    sql = (
        "select w.thread_id, coalesce(w.session_stale, 0), s.record, s.hash, s.tokens, w.extra, "
        "s.thread_id is not null from work w left join sessions s on s.thread_id = w.thread_id "
        # `+`: along the primary key, not through the status index and a sort of every done thread a page.
        "where +w.status = 'done' and w.thread_id > ? order by w.thread_id limit ?"
    )
    for rows in archive.keyset(sql, batch=batch):
        yield [
            DoneSession(
                row[0],
                bool(row[1]),
                row[2],
                row[3],
                row[4],
                orjson.loads(row[5]) if row[5] and row[5] != "{}" else None,
                bool(row[6]),
            )  # fmt: skip
            for row in rows
        ]
