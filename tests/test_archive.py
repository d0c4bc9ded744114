from __future__ import annotations

import sqlite3
import stat

import orjson
import pytest
from sqlite_utils import Database

from migrator.archive import Archive, FileContent, ThreadResult
from migrator.archive.schema import MIGRATIONS
from migrator.errors import NewerSchemaError, NotAnArchiveError
from migrator.merge import merge_from

# The final schema is part of the contract: a change here must come with a new migration.
FINAL_SCHEMA = {
    "_sqlite_migrations": ["id INTEGER pk1", "migration_set TEXT", "name TEXT", "applied_at TEXT"],
    "anomalies": ["entity TEXT pk1", "entity_id TEXT pk2", "kind TEXT pk3", "detail TEXT"],
    "assistants": ["id TEXT pk1", "created_at INTEGER", "raw TEXT", "hash TEXT", "position INTEGER"],
    "blobs": ["sha256 TEXT pk1", "bytes INTEGER", "mime TEXT", "data BLOB"],
    "conversation_map": [
        "target TEXT pk1",
        "thread_id TEXT pk2",
        "conversation_id TEXT",
        "status TEXT not null default 'creating'",
        "idempotency_key TEXT",
        "unconfirmed_creates INTEGER not null default 0",
        "items_total INTEGER",
        "items_sent INTEGER not null default 0",
        "sent_digest TEXT",
        "metadata_dropped TEXT",
        "error TEXT",
    ],
    "failures": [
        "entity TEXT pk1",
        "entity_id TEXT pk2",
        "error_class TEXT",
        "message TEXT",
        "status_code INTEGER",
        "attempts INTEGER",
    ],
    "file_refs": ["file_id TEXT pk1", "owner_kind TEXT pk2", "owner_id TEXT pk3"],
    "files": [
        "id TEXT pk1",
        "raw TEXT",
        "hash TEXT",
        "content TEXT",
        "blob_sha256 TEXT",
        "text_from_vector_store TEXT",
    ],
    "messages": [
        "id TEXT pk1",
        "thread_id TEXT",
        "run_id TEXT",
        "created_at INTEGER",
        "raw TEXT",
        "hash TEXT",
        "position INTEGER",
    ],
    "meta": ["key TEXT pk1", "value TEXT"],
    "record_rows": ["thread_id TEXT pk1", "position INTEGER pk2", "raw TEXT", "hash TEXT"],
    "record_threads": ["thread_id TEXT pk1", "hash TEXT", "rows INTEGER", "source TEXT"],
    "replay_ledger": [
        "request_hash TEXT pk1",
        "thread_id TEXT",
        "turn INTEGER",
        "model TEXT",
        "state TEXT not null",
        "attempts INTEGER not null default '0'",
        "status_code INTEGER",
        "response TEXT",
        "error TEXT",
        "latency_ms REAL",
        "prompt_tokens INTEGER",
        "completion_tokens INTEGER",
        "via TEXT",
        "updated_at REAL",
        "target TEXT pk2 not null default ''",
    ],
    "raw_versions": [
        "raw_table TEXT pk1",
        "id TEXT pk2",
        "hash TEXT pk3",
        "parent_id TEXT",
        "raw TEXT",
        "origin TEXT",
    ],
    "run_steps": [
        "id TEXT pk1",
        "thread_id TEXT",
        "run_id TEXT",
        "created_at INTEGER",
        "raw TEXT",
        "hash TEXT",
        "position INTEGER",
    ],
    "runs": [
        "id TEXT pk1",
        "thread_id TEXT",
        "assistant_id TEXT",
        "created_at INTEGER",
        "status TEXT",
        "has_tools INTEGER",
        "raw TEXT",
        "hash TEXT",
        "position INTEGER",
    ],
    "session_tools": ["thread_id TEXT pk1", "name TEXT pk2", "hash TEXT"],
    # Keyed by itself (m010): stored once, not as a table and the index of its key.
    "session_warnings": [
        "thread_id TEXT pk1 not null",
        "code TEXT pk2 not null",
        "count INTEGER",
        "WITHOUT ROWID",
    ],
    "sessions": ["thread_id TEXT pk1", "record TEXT", "hash TEXT", "messages INTEGER", "tokens INTEGER"],
    "threads": ["id TEXT pk1", "created_at INTEGER", "raw TEXT", "hash TEXT"],
    "tool_definitions": ["name TEXT pk1", "hash TEXT pk2", "definition TEXT"],
    "vector_store_files": [
        "vector_store_id TEXT pk1",
        "id TEXT pk2",
        "created_at INTEGER",
        "raw TEXT",
        "hash TEXT",
        "position INTEGER",
    ],
    "vector_map": [
        "target TEXT pk1",
        "kind TEXT pk2 not null",
        "source_store_id TEXT pk3",
        "source_file_id TEXT pk4",
        "target_id TEXT",
        "status TEXT not null",
        "content TEXT",
        "upload_name TEXT",
        "bytes INTEGER",
        "sha256 TEXT",
        "unconfirmed_creates INTEGER not null default 0",
        "error TEXT",
    ],
    "vector_stores": ["id TEXT pk1", "created_at INTEGER", "raw TEXT", "hash TEXT", "position INTEGER"],
    "work": [
        "thread_id TEXT pk1",
        "status TEXT not null default 'pending'",
        "attempts INTEGER not null default 0",
        "extra TEXT default '{}'",
        "messages_seen INTEGER",
        "runs_seen INTEGER",
        "steps_seen INTEGER",
        "last_message_id TEXT",
        "last_run_id TEXT",
        "session_stale INTEGER default 1",
    ],
}
FINAL_INDEXES = [
    "idx__sqlite_migrations_migration_set_name",
    "idx_conversation_map_conversation_id",
    "idx_file_refs_owner_id",
    "idx_messages_thread_id_created_at_position",
    "idx_raw_versions_parent_id_raw_table",
    "idx_replay_ledger_state",
    "idx_replay_ledger_thread_id_turn",
    "idx_run_steps_thread_id_run_id_created_at_position",
    "idx_runs_thread_id_created_at_position",
    "idx_session_tools_name_hash",
    "idx_vector_store_files_id",
    "idx_work_stale_done where session_stale = 1 and status = 'done'",
    "idx_work_status",
]


def schema_of(db) -> tuple[dict[str, list[str]], list[str]]:
    tables = [
        r[0]
        for r in db.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
        )
    ]
    schema = {}
    for table in sorted(tables):
        cols = []
        for _cid, name, typ, notnull, default, pk in db.execute(f"pragma table_info('{table}')"):
            cols.append(
                f"{name} {typ}"
                + (f" pk{pk}" if pk else "")
                + (" not null" if notnull else "")
                + (f" default {default}" if default is not None else "")
            )
        sql = db.execute("select sql from sqlite_master where name = ?", [table]).fetchone()[0]
        schema[table] = cols + (["WITHOUT ROWID"] if sql.lower().rstrip().endswith("without rowid") else [])
    indexes = [
        name + (" where " + sql.split(" where ", 1)[1] if " where " in sql else "")
        for name, sql in db.execute(
            "select name, sql from sqlite_master where type = 'index' and sql is not null order by name"
        )
    ]
    return schema, indexes


def test_the_oldest_schema_upgrades_on_open_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    oldest = Database(conn)
    MIGRATIONS.apply(oldest, stop_before=[m.name for m in MIGRATIONS._migrations[1:]])
    assert [m.name for m in MIGRATIONS.applied(oldest)] == ["m001_create_archive"]
    conn.execute("insert into work(thread_id) values ('thread_old')")
    conn.close()
    with Archive.open(path, writer="test") as archive:
        assert schema_of(archive.db.conn) == (FINAL_SCHEMA, FINAL_INDEXES)
        assert archive.work.counts()["pending"] == 1


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


def test_new_archive_is_private_single_file_with_the_final_schema(tmp_path):
    path = tmp_path / "a.db"
    with Archive.create(path) as archive:
        assert schema_of(archive.db.conn) == (FINAL_SCHEMA, FINAL_INDEXES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "a.db-wal").exists()


def test_thread_rows_and_status_commit_together_and_upserts_never_duplicate(tmp_path):
    with Archive.create(tmp_path / "a.db") as archive:
        archive.work.add([("thread_1", {"user": "u"}), ("thread_2", {})])
        archive.raw.store_thread(thread("thread_1"))
        archive.raw.store_thread(thread("thread_1"))
        counts = archive.counts()
        assert (counts["messages"], counts["threads_done"], counts["threads_pending"]) == (2, 1, 1)
        assert [row[0] for row in archive.work.to_export()] == ["thread_2"]
        assert archive.work.extra("thread_1") == {"user": "u"}


def test_content_hash_ignores_key_order_and_history(tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    with Archive.create(first) as a, Archive.create(second) as b:
        a.work.add([("thread_1", {})])
        b.work.add([("thread_1", {})])
        a.raw.store_thread(thread("thread_1"))
        reordered = thread("thread_1")
        reordered.messages = [dict(reversed(list(m.items()))) for m in reordered.messages]
        b.raw.store_thread(ThreadResult("thread_1", "failed"))
        b.raw.store_thread(reordered)
        assert a.content_hash() == b.content_hash()
        b.raw.store_thread(thread("thread_1", n=3))
        assert a.content_hash() != b.content_hash()


def test_blobs_are_content_addressed_and_mime_comes_from_the_bytes(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    with Archive.create(tmp_path / "a.db") as archive:
        archive.files.store(
            {"id": "file-1", "filename": "../../etc/passwd.txt"}, FileContent("downloaded", png)
        )
        archive.files.store({"id": "file-2", "filename": "copy.bin"}, FileContent("downloaded", png))
        rows = list(archive.db.execute("select mime, bytes from blobs"))
        assert rows == [("image/png", len(png))]
        assert archive.files.stored(["file-1"])["file-1"].mime == "image/png"


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
        a.work.add([("thread_1", {})])
        a.raw.store_thread(thread("thread_1"))
    with Archive.create(shard2) as b:
        b.work.add([("thread_1", {}), ("thread_2", {})])
        b.raw.store_thread(thread("thread_2"))
    with Archive.create(merged) as m:
        merge_from(m, shard2)
        merge_from(m, shard1)
        first = (m.content_hash(), m.work.counts())
        merge_from(m, shard1)
        merge_from(m, shard2)
        assert (m.content_hash(), m.work.counts()) == first
        assert m.work.counts() == {"pending": 0, "done": 2, "failed": 0, "missing": 0}


def test_an_empty_file_is_not_an_archive_and_stays_empty(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(NotAnArchiveError, match="empty file"):
        Archive.open(empty)
    assert empty.stat().st_size == 0


def test_a_complete_assistant_listing_clears_its_earlier_failure_and_marks_sessions_stale(tmp_path):
    from migrator.archive import Failure

    with Archive.create(tmp_path / "a.db") as archive:
        archive.findings.record_failure(Failure("assistants", "list", "APIConnectionError", "dropped"))
        archive.work.add([("thread_1", {})])
        result = thread("thread_1")
        result.runs = [{"id": "run_1", "object": "thread.run", "created_at": 101, "assistant_id": "asst_1"}]
        archive.raw.store_thread(result)
        archive.db.execute("update work set session_stale = 0")
        archive.raw.store_assistants(
            [{"id": "asst_1", "created_at": 1, "model": "gpt-4.1"}], set(), complete=False
        )
        assert [f.entity for f in archive.findings.failures()] == [
            "assistants"
        ]  # a partial listing clears nothing
        assert archive.get_meta("assistants_exported") is None
        archive.db.execute("update work set session_stale = 0")
        archive.raw.store_assistants([{"id": "asst_1", "created_at": 1, "model": "gpt-4.1"}], set())
        stale = archive.db.execute("select session_stale from work").fetchone()[0]
        assert archive.findings.failures() == [] and archive.get_meta("assistants_exported") is True
        assert stale == 0  # the same assistant again: nothing to rebuild
        archive.raw.store_assistants([{"id": "asst_1", "created_at": 1, "model": "gpt-4o"}], set())
        assert archive.db.execute("select session_stale from work").fetchone()[0] == 1


def test_building_sessions_stops_between_batches_when_asked(tmp_path):
    from migrator.convert import ConversionOptions
    from migrator.sessions import build_sessions

    with Archive.create(tmp_path / "a.db") as archive:
        archive.work.add([(f"thread_{i:03d}", {}) for i in range(250)])
        for i in range(250):
            archive.raw.store_thread(thread(f"thread_{i:03d}", n=1))
        calls = iter([False, True])
        summary = build_sessions(archive, ConversionOptions(), stop=lambda: next(calls, True), batch=100)
        assert summary.interrupted and summary.sessions == 100  # one batch, then the stop
        assert build_sessions(archive, ConversionOptions()).sessions == 150  # the rest, on resume


def _tables(archive: Archive) -> dict[str, list[tuple[object, ...]]]:
    names = [r[0] for r in archive.db.execute("select name from sqlite_master where type = 'table'")]
    out = {}
    for t in names:
        if t not in ("meta", "_sqlite_migrations"):  # in the order written, where there is a rowid
            sql = archive.db.execute("select lower(sql) from sqlite_master where name = ?", [t]).fetchone()[0]
            order = "1, 2, 3" if "without rowid" in sql else "rowid"
            out[t] = archive.db.execute(f"select * from [{t}] order by {order}").fetchall()
    return out


def test_whole_threads_stored_together_are_stored_as_one_by_one(tmp_path):
    from migrator.archive import Anomaly, Failure

    def results() -> list[ThreadResult]:
        rich = thread("thread_1", n=3)
        rich.runs = [
            {"id": "run_1", "object": "thread.run", "created_at": 101, "status": "completed", "tools": [1]}
        ]
        rich.steps = [
            {"id": "step_1", "run_id": "run_1", "created_at": 101},
            {"id": "step_0", "created_at": 100},
        ]
        rich.file_refs = {"file-b", "file-a"}
        rich.anomalies = [Anomaly("thread", "thread_1", "malformed_page", "page 2")]
        failed = ThreadResult("thread_3", "failed", failure=Failure("thread", "thread_3", "APIError", "boom"))
        return [rich, thread("thread_2", n=1), failed]

    one, many = tmp_path / "one.db", tmp_path / "many.db"
    with Archive.create(one) as a, Archive.create(many) as b:
        for archive in (a, b):
            archive.work.add([("thread_1", {}), ("thread_2", {}), ("thread_3", {})])
            with archive.atomic():  # what an earlier, broken read left: cleared by the whole read
                archive.findings.add_anomalies([Anomaly("thread", "thread_2", "repeated_cursor", "p1")])
                archive.findings.put_failure(Failure("thread", "thread_2", "APIError", "earlier"))
        for result in results():
            a.raw.store_thread(result)
        with b.atomic():
            b.raw.put_threads(results())
        assert _tables(a) == _tables(b)
        assert b.work.counts() == {"pending": 0, "done": 2, "failed": 1, "missing": 0}
        assert [f.entity_id for f in b.findings.failures()] == ["thread_3"]
        with pytest.raises(ValueError, match="delta"):
            b.raw.put_threads([ThreadResult("thread_1", "done", delta=True)])


def test_a_work_list_keeps_the_first_entry_of_an_id_and_rows_land_in_id_order(tmp_path):
    with Archive.create(tmp_path / "a.db") as archive:
        listed = [("thread_d", {"n": 1}), ("thread_b", {}), ("thread_a", {}), ("thread_d", {"n": 2})]
        assert archive.work.add(listed, batch=2) == 3
        assert archive.work.add([("thread_c", {}), ("thread_a", {"n": 9})]) == 1
        assert archive.work.extra("thread_d") == {"n": 1} and archive.work.extra("thread_a") == {}
        # rowids in id order within one call however the list ran, so that later updates of the
        # threads in id order walk the table in order
        rows = archive.db.conn.execute("select thread_id from work order by rowid").fetchall()
        assert [r[0] for r in rows] == ["thread_a", "thread_b", "thread_d", "thread_c"]

        def broken():
            yield ("thread_e", {})
            raise ValueError("the list broke")

        with pytest.raises(ValueError):
            archive.work.add(broken())
        assert archive.work.add([("thread_f", {})]) == 1  # nothing of the broken call came along
        assert archive.db.conn.execute(
            "select count(*) from work where thread_id = 'thread_e'"
        ).fetchone() == (0,)


def test_paced_commits_are_seen_by_another_connection_before_the_block_ends(tmp_path):
    with Archive.create(tmp_path / "a.db") as archive:
        other = sqlite3.connect(tmp_path / "a.db")
        with archive.paced_commits() as commit:
            archive.work.add([("thread_1", {})])
            assert other.execute("select count(*) from work").fetchone() == (0,)
            commit()
            assert other.execute("select count(*) from work").fetchone() == (1,)
            archive.work.add([("thread_2", {})])
            assert other.execute("select count(*) from work").fetchone() == (1,)
        assert other.execute("select count(*) from work").fetchone() == (2,)
        other.close()


def test_a_threads_outline_holds_its_columns_and_the_text_only_of_rows_that_can_name_a_file(tmp_path):
    from migrator.refs import thread_file_refs

    held = thread("thread_1", n=4)
    held.messages[0]["attachments"] = [{"file_id": "file-att", "tools": []}]
    held.messages[1]["content"] = [{"type": "text", "text": {"value": 'say "file_id"', "annotations": []}}]
    held.messages[2]["run_id"] = "run_1"
    held.runs = [
        {"id": "run_1", "object": "thread.run", "created_at": 101, "status": "completed", "tools": [1]}
    ]
    held.steps = [
        {"id": "step_1", "run_id": "run_1", "created_at": 101, "step_details": {"type": "message_creation"}},
        {
            "id": "step_2",
            "run_id": "run_1",
            "created_at": 102,
            "step_details": {
                "tool_calls": [{"type": "file_search", "file_search": {"results": [{"file_id": "file-hit"}]}}]
            },
        },
    ]
    with Archive.create(tmp_path / "a.db") as archive:
        archive.raw.store_thread(held)
        # A row some other writer stored with its key spelled by an escape still counts as naming one.
        archive.db.conn.execute(
            "update messages set raw = ? where id = ?",
            [
                '{"id":"' + held.messages[3]["id"] + '","attachments":[{"file\\u005fid":"file-esc"}]}',
                held.messages[3]["id"],
            ],
        )
        (outline,) = archive.raw.threads_outline(["thread_1"])
        (nothing,) = archive.raw.threads_outline(["thread_none"])
    assert sorted(outline.message_runs, key=str) == [None, None, None, "run_1"]
    assert outline.runs == [("run_1", "completed", 1)] and outline.step_runs == ["run_1", "run_1"]
    assert len(outline.message_texts) == 3  # the attachment, the text that only says "file_id", the escape
    assert len(outline.step_texts) == 1
    refs = thread_file_refs(
        None, [orjson.loads(t) for t in outline.message_texts], [orjson.loads(t) for t in outline.step_texts]
    )
    assert refs == {"file-att", "file-esc", "file-hit"}
    assert nothing.thread is None and nothing.message_runs == [] and nothing.message_texts == []
