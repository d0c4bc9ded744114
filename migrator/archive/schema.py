"""The archive's schema, as forward migrations.

Append `m00N_verb_noun` functions; never edit one that has shipped. Each runs in a transaction
together with its bookkeeping row in `_sqlite_migrations` (sqlite-utils does that).
"""

from __future__ import annotations

import orjson
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

__all__ = [
    "MIGRATIONS",
    "MIGRATION_SET",
    "ORDER_NOTE",
    "PARENT_COLUMN",
    "POSITIONED",
    "RAW_TABLES",
    "known_migration_names",
]

MIGRATION_SET = "migrate-archive"
MIGRATIONS = Migrations(MIGRATION_SET)

# Every raw table keeps the object exactly as the source sent it (`raw`, JSON text) and the digest
# of its canonical form (`hash`), so verify can re-derive it and nothing the converter does not
# understand is ever lost. Other columns are indexes into the raw JSON, never a replacement for it.
_RAW = {"raw": str, "hash": str}

# The raw tables -> the columns that identify a row, for hashing and merging.
RAW_TABLES: dict[str, tuple[str, ...]] = {
    "assistants": ("id",),
    "threads": ("id",),
    "messages": ("id",),
    "runs": ("id",),
    "run_steps": ("id",),
    "vector_stores": ("id",),
    "vector_store_files": ("vector_store_id", "id"),
    "files": ("id",),
    # Rows of an application's own message log (`export --from-records`), verbatim; owned by
    # `archive.records`.
    "record_rows": ("thread_id", "position"),
}

# The column naming the thread (or vector store) a row of these raw tables belongs to.
PARENT_COLUMN: dict[str, str] = {
    "threads": "id",
    "messages": "thread_id",
    "runs": "thread_id",
    "run_steps": "thread_id",
    "vector_store_files": "vector_store_id",
    "record_rows": "thread_id",
}


@MIGRATIONS()
def m001_create_archive(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")

    db["assistants"].create({"id": str, "created_at": int, **_RAW}, pk="id")
    db["threads"].create({"id": str, "created_at": int, **_RAW}, pk="id")
    db["messages"].create({"id": str, "thread_id": str, "run_id": str, "created_at": int, **_RAW}, pk="id")
    db["messages"].create_index(["thread_id", "created_at", "id"])
    db["runs"].create(
        {
            "id": str,
            "thread_id": str,
            "assistant_id": str,
            "created_at": int,
            "status": str,
            # Steps are listed only for runs that declared tools; this says whether we should have them.
            "has_tools": int,
            **_RAW,
        },
        pk="id",
    )
    db["runs"].create_index(["thread_id", "created_at", "id"])
    db["run_steps"].create({"id": str, "thread_id": str, "run_id": str, "created_at": int, **_RAW}, pk="id")
    db["run_steps"].create_index(["thread_id", "run_id", "created_at", "id"])
    db["vector_stores"].create({"id": str, "created_at": int, **_RAW}, pk="id")
    db["vector_store_files"].create(
        {"vector_store_id": str, "id": str, "created_at": int, **_RAW}, pk=("vector_store_id", "id")
    )
    db["vector_store_files"].create_index(["id"])
    db["files"].create(
        {
            "id": str,
            **_RAW,
            # downloaded | parsed_text | missing: what we could get of the bytes, and from where.
            "content": str,
            "blob_sha256": str,
            # The vector store whose parsed text stands in when the source refused the download.
            "text_from_vector_store": str,
        },
        pk="id",
    )
    # Content-addressed: no name from the source is ever used as a path or a key.
    db["blobs"].create({"sha256": str, "bytes": int, "mime": str, "data": bytes}, pk="sha256")
    # Which objects mention which files, written with the object's rows, so the file phase can
    # resume from the archive alone.
    db["file_refs"].create(
        {"file_id": str, "owner_kind": str, "owner_id": str}, pk=("file_id", "owner_kind", "owner_id")
    )
    db["file_refs"].create_index(["owner_id"])

    # The resume checkpoint lives beside the data: one row per requested thread, its status
    # committed in the same transaction as the thread's rows.
    db["work"].create(
        {
            "thread_id": str,
            "status": str,  # pending | done | failed | missing
            "attempts": int,
            "extra": str,  # JSON: the other fields of the user's --threads line (e.g. user_id)
            # What the source's pages reported, to check the stored rows against.
            "messages_seen": int,
            "runs_seen": int,
            "steps_seen": int,
            "last_message_id": str,
            "last_run_id": str,
            # Set when raw rows (or files they use) change, cleared when the session is rebuilt.
            "session_stale": int,
        },
        pk="thread_id",
        defaults={"status": "pending", "attempts": 0, "extra": "{}", "session_stale": 1},
        not_null={"status", "attempts"},
    )
    db["work"].create_index(["status"])
    db["work"].create_index(["session_stale"])
    db["failures"].create(
        {
            "entity": str,
            "entity_id": str,
            "error_class": str,
            "message": str,
            "status_code": int,
            "attempts": int,
        },
        pk=("entity", "entity_id"),
    )
    # Pages that ended abnormally (a repeated cursor, an empty page claiming has_more).
    db["anomalies"].create(
        {"entity": str, "entity_id": str, "kind": str, "detail": str}, pk=("entity", "entity_id", "kind")
    )

    # Derived tables: rebuilt from the raw rows by `migrate rebuild`, offline.
    db["sessions"].create(
        {
            "thread_id": str,
            "record": str,  # canonical JSON of the migrator.session/v1 record
            "hash": str,
            "messages": int,
            "tokens": int,
        },
        pk="thread_id",
    )
    db["session_warnings"].create({"thread_id": str, "code": str, "count": int}, pk=("thread_id", "code"))
    # One row per distinct definition; a name with two rows is a schema conflict across threads.
    db["tool_definitions"].create({"name": str, "hash": str, "definition": str}, pk=("name", "hash"))
    db["session_tools"].create({"thread_id": str, "name": str, "hash": str}, pk=("thread_id", "name"))
    db["session_tools"].create_index(["name", "hash"])


def known_migration_names() -> set[str]:
    return {m.name for m in MIGRATIONS._migrations}


@MIGRATIONS()
def m003_create_replay_ledger(db: Database) -> None:
    # `migrate replay`: one row per distinct chat-completions request, keyed by the sha256 of its
    # canonical body (also the batch `custom_id`). The row is committed *before* the request is
    # sent and updated with the answer after, so a resumed replay never sends a completed request
    # twice and the report can be rebuilt offline from the sessions and this table.
    db["replay_ledger"].create(
        {
            "request_hash": str,
            # Which turn the request replays; null for a batch result ingested before this
            # archive built the request it answers.
            "thread_id": str,
            "turn": int,
            "model": str,
            "state": str,  # batched | sent | done | rejected | failed
            # Times we handed the request to the target; > 1 only for one killed mid-flight.
            "attempts": int,
            "status_code": int,
            "response": str,  # the target's body verbatim: a chat.completion or its error body
            "error": str,  # one line: the target's error message, or why no answer came
            "latency_ms": float,  # live replays only; null for batch results
            "prompt_tokens": int,
            "completion_tokens": int,
            "via": str,  # live | batch: who carried the request
            "updated_at": float,
        },
        pk="request_hash",
        defaults={"attempts": 0},
        not_null={"state", "attempts"},
    )
    db["replay_ledger"].create_index(["thread_id", "turn"])
    db["replay_ledger"].create_index(["state"])


@MIGRATIONS()
def m004_create_conversation_map(db: Database) -> None:
    # `migrate import --to conversations`: which conversation each thread became on which target and how
    # far its items got, written before the create and after every chunk, so an interrupted import
    # resumes without creating a conversation twice or sending an item twice.
    db["conversation_map"].create(
        {
            # The target's base URL: the same thread may be imported into several servers or projects.
            "target": str,
            "thread_id": str,
            "conversation_id": str,  # null while the create is in flight (the intent row)
            "status": str,  # creating | open | done | failed | diverged
            # Sent with every create of this row: a server that honours it never creates twice.
            "idempotency_key": str,
            # Creates whose outcome we never learned (a kill, a timeout, a 5xx): each may have left an
            # unmapped conversation on a server that ignores the idempotency key. Reported, never hidden.
            "unconfirmed_creates": int,
            "items_total": int,
            "items_sent": int,
            # Digest of the items sent so far: a session rebuilt since is continued only if it still
            # starts with exactly these items.
            "sent_digest": str,
            "metadata_dropped": str,  # the session metadata keys that did not fit the target's limits
            "error": str,
        },
        pk=("target", "thread_id"),
        defaults={"status": "creating", "unconfirmed_creates": 0, "items_sent": 0},
        not_null={"status", "unconfirmed_creates", "items_sent"},
    )
    db["conversation_map"].create_index(["conversation_id"])


# The raw tables whose rows come from a list, and what each list belongs to (None: one global list).
POSITIONED: dict[str, str | None] = {
    "assistants": None,
    "vector_stores": None,
    "vector_store_files": "vector_store_id",
    "messages": "thread_id",
    "runs": "thread_id",
    "run_steps": "thread_id",
}
ORDER_NOTE = "order_ties_ambiguous"


@MIGRATIONS()
def m005_add_list_positions(db: Database) -> None:
    # `created_at` has one-second resolution and real ids are random, so the only true tie-break is
    # where the source listed an object: `position` (ascending pages, page order; for a dump, its file
    # and line order). Everything orders by (created_at, position), never by id.
    for table, parent in POSITIONED.items():
        db[table].add_column("position", int)
        partition = f"partition by {parent} " if parent else ""
        # Rows stored before this step carry no list order: their stored order, (created_at, id), is
        # the best that is left, and ties among them stay a guess (recorded below).
        db.execute(
            f"update {table} set position = o.n from (select rowid as r, "
            f"row_number() over ({partition}order by created_at, id) - 1 as n from {table}) as o "
            f"where o.r = {table}.rowid"
        )
    for table, columns in (
        ("messages", ["thread_id", "created_at"]),
        ("runs", ["thread_id", "created_at"]),
        ("run_steps", ["thread_id", "run_id", "created_at"]),
    ):
        db.execute(f"drop index if exists idx_{table}_{'_'.join(columns)}_id")
        db[table].create_index([*columns, "position"])
    tied = db.execute(
        "select count(distinct thread_id) from ("
        "select thread_id from messages group by thread_id, created_at having count(*) > 1 union all "
        "select thread_id from runs group by thread_id, created_at having count(*) > 1 union all "
        "select thread_id from run_steps group by thread_id, run_id, created_at having count(*) > 1)"
    ).fetchone()[0]
    if tied:
        db.execute(
            "insert or replace into meta(key, value) values (?, ?)",
            [
                ORDER_NOTE,
                orjson.dumps(
                    {
                        "threads": tied,
                        "detail": "upgraded from an archive without list positions: objects of these "
                        "threads that share a second were ordered by id, which may not be the source's order",
                    }
                ).decode(),
            ],
        )


@MIGRATIONS()
def m006_create_raw_versions(db: Database) -> None:
    # Every distinct version of an object the source gave more than once (a run saved at each poll:
    # queued, requires_action, completed; one id in two files with other content). The raw table
    # holds the version chosen as current; this holds them all, verbatim, so none is lost: the
    # function calls of a run whose steps were never saved live only in its requires_action version.
    # Only ids seen in two or more versions have rows here.
    db["raw_versions"].create(
        {
            "raw_table": str,  # the raw table of the current version: runs, messages, assistants, ...
            "id": str,
            "hash": str,  # the canonical hash of this version
            "parent_id": str,  # its thread (vector store for vector_store_files), to read a thread's at once
            "raw": str,
            "origin": str,  # where it was read (file and line), for the report; null when unknown
        },
        pk=("raw_table", "id", "hash"),
    )
    db["raw_versions"].create_index(["parent_id", "raw_table"])


@MIGRATIONS()
def m007_create_record_tables(db: Database) -> None:
    # `export --from-records`: an application's own message log, turned into Assistants objects.
    # Every row of the log is kept verbatim (`raw`, its columns as read, with the canonical `hash`),
    # beside the objects made of it; `position` is its place in its thread's (created_at, row order).
    db["record_rows"].create(
        {"thread_id": str, "position": int, "raw": str, "hash": str}, pk=("thread_id", "position")
    )
    # One row per thread made from records: the digest of everything stored for it, so a rerun
    # rewrites only the threads whose rows changed, and knows which threads are records' to rewrite
    # (a thread exported from an API has no row here and is never replaced by log rows).
    db["record_threads"].create(
        {
            "thread_id": str,
            "hash": str,
            "rows": int,
            "source": str,  # the file, or the database URL with its password masked
        },
        pk="thread_id",
    )


@MIGRATIONS()
def m008_create_vector_map(db: Database) -> None:
    # `migrate import --to vector-stores`: what each source vector store, file and attachment became on
    # which target. A row is committed (status `creating`/`attaching`) before its create is sent and
    # updated with the target's id after, so an interrupted import resumes without making anything twice:
    # a row still creating is first looked up on the target (a file by filename and size, a store by its
    # `source_vector_store_id` metadata, an attachment by its id in the store).
    db["vector_map"].create(
        {
            "target": str,  # the target's base URL: one archive may be rebuilt on several servers
            "kind": str,  # store | file | attachment
            "source_store_id": str,  # '' on file rows (a file is uploaded once, whatever stores hold it)
            "source_file_id": str,  # '' on store rows
            # The target's store id (store), file id (file, attachment); null while the create is in flight.
            "target_id": str,
            # store: creating | created | failed; file: creating | uploaded | failed | skipped;
            # attachment: attaching | in_progress | completed | failed | cancelled (the target's ingestion)
            "status": str,
            # File rows: what was sent. `parsed_text` when the source refused the download and the
            # vector store's text went instead, under a text filename derived from the original.
            "content": str,
            "upload_name": str,
            "bytes": int,
            "sha256": str,
            # Creates whose answer never came (a kill, a timeout, a 5xx): each was looked up on the target
            # before anything was sent again; counted so a report can say so.
            "unconfirmed_creates": int,
            "error": str,
        },
        pk=("target", "kind", "source_store_id", "source_file_id"),
        defaults={"unconfirmed_creates": 0},
        not_null={"kind", "status", "unconfirmed_creates"},
    )


@MIGRATIONS()
def m009_add_replay_target(db: Database) -> None:
    # Which target answered: another target (base URL) is another replay, so the ledger is keyed by
    # (request, target). The request hash already covers the model (it is in the body). Batch rows
    # have the target `batch`; rows of archives replayed before this migration did not record theirs,
    # so they get the target '' and are replayed again against any named target rather than reporting
    # some earlier target's answers as this one's.
    db["replay_ledger"].add_column("target", str, not_null_default="")
    db["replay_ledger"].transform(pk=("request_hash", "target"))
    db.execute("update replay_ledger set target = 'batch' where via = 'batch'")


@MIGRATIONS()
def m010_shrink_session_warnings_and_stale_index(db: Database) -> None:
    # Size at scale (issue 18). `session_warnings` is nothing but its key and a count: as a rowid table
    # it was stored twice (the table and the index of its primary key), 12% of a two-message archive's
    # indexes. Keyed by itself (WITHOUT ROWID) it is stored once, in the same key order.
    db.execute(
        "create table session_warnings_new (thread_id text, code text, count integer, "
        "primary key (thread_id, code)) without rowid"
    )
    db.execute(
        "insert into session_warnings_new (thread_id, code, count) "
        "select thread_id, code, count from session_warnings order by thread_id, code"
    )
    db.execute("drop table session_warnings")
    db.execute("alter table session_warnings_new rename to session_warnings")
    # The stale sessions are only ever read as "done and stale, in id order" (`work.stale_batches`): a small
    # index of just those rows, empty once every session is built, instead of one entry a thread.
    db.execute("drop index if exists idx_work_session_stale")
    db.execute(
        "create index idx_work_stale_done on work (thread_id) where session_stale = 1 and status = 'done'"
    )
