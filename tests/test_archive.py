from __future__ import annotations

import sqlite3
import stat

import pytest

from migrator.archive import Archive, FileContent, ThreadResult
from migrator.archive.schema import MIGRATIONS
from migrator.errors import NewerSchemaError, NotAnArchiveError

# The final schema is part of the contract: a change here must come with a new migration.
EXPECTED_TABLES = {
    "_sqlite_migrations",
    "meta",
    "assistants",
    "threads",
    "messages",
    "runs",
    "run_steps",
    "vector_stores",
    "vector_store_files",
    "files",
    "blobs",
    "file_refs",
    "work",
    "failures",
    "anomalies",
    "sessions",
    "session_warnings",
    "tool_definitions",
    "session_tools",
}


def thread(tid: str, n: int = 2) -> ThreadResult:
    messages = [
        {
            "id": f"msg_{tid}_{i}",
            "object": "thread.message",
            "created_at": 100 + i,
            "thread_id": tid,
            "run_id": None,
        }
        for i in range(n)
    ]
    return ThreadResult(
        tid,
        "done",
        thread={"id": tid, "object": "thread", "created_at": 1},
        messages=messages,
        messages_seen=n,
    )


def test_new_archive_is_private_single_file_with_the_full_schema(tmp_path):
    path = tmp_path / "a.db"
    with Archive.create(path) as archive:
        assert set(archive.db.table_names()) >= EXPECTED_TABLES
        assert archive.schema_version == len(MIGRATIONS._migrations)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "a.db-wal").exists()


def test_thread_rows_and_status_commit_together_and_upserts_never_duplicate(tmp_path):
    with Archive.create(tmp_path / "a.db") as archive:
        archive.add_threads([("thread_1", {"user": "u"}), ("thread_2", {})])
        archive.store_thread(thread("thread_1"))
        archive.store_thread(thread("thread_1"))
        counts = archive.counts()
        assert (counts["messages"], counts["threads_done"], counts["threads_pending"]) == (2, 1, 1)
        assert [row[0] for row in archive.threads_to_export()] == ["thread_2"]
        assert archive.thread_extra("thread_1") == {"user": "u"}


def test_content_hash_ignores_key_order_and_history(tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    with Archive.create(first) as a, Archive.create(second) as b:
        a.add_threads([("thread_1", {})])
        b.add_threads([("thread_1", {})])
        a.store_thread(thread("thread_1"))
        reordered = thread("thread_1")
        reordered.messages = [dict(reversed(list(m.items()))) for m in reordered.messages]
        b.store_thread(ThreadResult("thread_1", "failed"))
        b.store_thread(reordered)
        assert a.content_hash() == b.content_hash()
        b.store_thread(thread("thread_1", n=3))
        assert a.content_hash() != b.content_hash()


def test_blobs_are_content_addressed_and_mime_comes_from_the_bytes(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    with Archive.create(tmp_path / "a.db") as archive:
        archive.store_file(
            {"id": "file-1", "filename": "../../etc/passwd.txt"}, FileContent("downloaded", png)
        )
        archive.store_file({"id": "file-2", "filename": "copy.bin"}, FileContent("downloaded", png))
        rows = list(archive.db.execute("select mime, bytes from blobs"))
        assert rows == [("image/png", len(png))]
        assert archive.files_for(["file-1"])["file-1"].mime == "image/png"


def test_open_refuses_missing_foreign_and_newer_files(tmp_path):
    with pytest.raises(NotAnArchiveError, match="no such archive"):
        Archive.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(NotAnArchiveError, match="not a SQLite file"):
        Archive.open(text)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("create table x (y)").connection.commit()
    before = foreign.read_bytes()
    with pytest.raises(NotAnArchiveError, match="not a migrate archive"):
        Archive.open(foreign)
    with pytest.raises(NotAnArchiveError, match="not a migrate archive"):
        Archive.create(foreign)
    assert foreign.read_bytes() == before  # refused untouched: not even switched to WAL
    newer = tmp_path / "newer.db"
    Archive.create(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute(
        "insert into _sqlite_migrations(migration_set, name, applied_at) values ('migrate-archive', 'm999_future', 'x')"
    )
    conn.commit()
    conn.close()
    with pytest.raises(NewerSchemaError, match="newer migrate"):
        Archive.open(newer)


def test_merge_is_idempotent_and_prefers_done_threads(tmp_path):
    shard1, shard2, merged = tmp_path / "s1.db", tmp_path / "s2.db", tmp_path / "all.db"
    with Archive.create(shard1) as a:
        a.add_threads([("thread_1", {})])
        a.store_thread(thread("thread_1"))
    with Archive.create(shard2) as b:
        b.add_threads([("thread_1", {}), ("thread_2", {})])
        b.store_thread(thread("thread_2"))
    with Archive.create(merged) as m:
        m.merge_from(shard2)
        m.merge_from(shard1)
        first = (m.content_hash(), m.work_counts())
        m.merge_from(shard1)
        m.merge_from(shard2)
        assert (m.content_hash(), m.work_counts()) == first
        assert m.work_counts() == {"pending": 0, "done": 2, "failed": 0, "missing": 0}
