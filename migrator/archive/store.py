"""`Archive`: the one class that owns the SQLite file.

It applies pending migrations when it opens, so a new file and an old one behave the same; every
multi-row write sits inside one transaction (`_atomic`, begun IMMEDIATE); a thread's rows and its
status commit together. A writing command opens it with `writer=` and holds the archive's writer
lock (`lock.py`) until it closes; readers take no lock.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlite_utils import Database

from migrator.archive.canonical import dumps, loads, object_hash, sha256_hex
from migrator.archive.lock import ArchiveLock
from migrator.archive.mime import sniff_mime
from migrator.archive.schema import MIGRATION_SET, MIGRATIONS, POSITIONED, known_migration_names
from migrator.errors import NewerSchemaError, NotAnArchiveError

__all__ = [
    "Archive",
    "ConversationLink",
    "Anomaly",
    "Failure",
    "LooseObject",
    "ThreadRaw",
    "ThreadSettlement",
    "FileContent",
    "StoredFile",
    "ThreadResult",
    "SessionRow",
    "RAW_TABLES",
    "ThreadTally",
    "DoneSession",
    "ReplayRow",
    "SessionState",
]

SQLITE_MAGIC = b"SQLite format 3\x00"

# table -> the columns that identify a row, for hashing and merging.
RAW_TABLES: dict[str, tuple[str, ...]] = {
    "assistants": ("id",),
    "threads": ("id",),
    "messages": ("id",),
    "runs": ("id",),
    "run_steps": ("id",),
    "vector_stores": ("id",),
    "vector_store_files": ("vector_store_id", "id"),
    "files": ("id",),
}


@dataclass(frozen=True)
class Failure:
    entity: str  # thread | file | assistants | vector_stores | vector_store
    entity_id: str
    error_class: str
    message: str
    status_code: int | None = None
    attempts: int = 1


@dataclass(frozen=True)
class Anomaly:
    entity: str
    entity_id: str
    kind: str  # repeated_cursor | empty_page_has_more
    detail: str


@dataclass
class ThreadResult:
    """Everything one thread's export produced, committed in one transaction."""

    thread_id: str
    status: str  # done | failed | missing
    thread: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    file_refs: set[str] = field(default_factory=set)  # ids of the files this thread mentions
    failure: Failure | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    messages_seen: int = 0
    runs_seen: int = 0
    steps_seen: int = 0
    # A --refresh delta adds to what was seen before; a full fetch replaces it.
    delta: bool = False


@dataclass(frozen=True)
class FileContent:
    """What we obtained of a file's bytes: the bytes, the vector store's parsed text, or nothing."""

    kind: str  # downloaded | parsed_text | missing
    data: bytes | None = None
    vector_store_id: str | None = None


@dataclass(frozen=True)
class LooseObject:
    """One raw object that arrived on its own (a saved dump), not grouped under its thread."""

    table: str  # a RAW_TABLES name other than `files` (files go through store_file)
    obj: dict[str, Any]
    # The thread (messages, runs, run_steps) or vector store (vector_store_files) it belongs to.
    parent_id: str | None = None
    # Files an assistant's tool resources mention (the refs store_assistants records).
    file_refs: frozenset[str] = frozenset()
    # Where the dump put it (file, then line order): the tie-break between objects of one second.
    position: int | None = None


@dataclass(frozen=True)
class ThreadSettlement:
    """A thread's verdict once every row a dump holds for it is in: its status, refs and findings."""

    thread_id: str
    status: str  # done | pending
    file_refs: frozenset[str] = frozenset()
    anomalies: tuple[Anomaly, ...] = ()
    # Anomaly kinds this verdict owns: cleared first, so a later, fuller dump takes them back.
    owned_kinds: tuple[str, ...] = ()
    # Messages, runs and steps the dump held for the thread but that could not be kept: they count
    # as seen beside the rows held, so verify reports what was lost.
    unkept: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class ThreadRaw:
    """The stored raw text of one thread's rows (the thread itself may be absent), ascending."""

    thread_id: str
    thread: str | None
    messages: list[str]
    runs: list[str]
    steps: list[str]


# The thread id column of the tables whose rows belong to a thread or a vector store.
_PARENT_COLUMN = {
    "threads": "id",
    "messages": "thread_id",
    "runs": "thread_id",
    "run_steps": "thread_id",
    "vector_store_files": "vector_store_id",
}


# The newest row of a thread in the source's order: where the next --refresh starts listing.
_LAST = "select id from {0} where thread_id = :tid order by created_at desc, position desc limit 1"


def _loose_row(item: LooseObject) -> dict[str, Any]:
    """The row store_thread / store_assistants / store_vector_store would write for this object."""
    o, parent = item.obj, item.parent_id
    tail = {"created_at": _created(o), "raw": dumps(o), "hash": object_hash(o)}
    if item.table != "threads":
        tail["position"] = item.position
    if item.table in ("assistants", "threads", "vector_stores"):
        return {"id": o["id"], **tail}
    if item.table == "messages":
        return {"id": o["id"], "thread_id": parent, "run_id": o.get("run_id"), **tail}
    if item.table == "runs":
        return {
            "id": o["id"],
            "thread_id": parent,
            "assistant_id": o.get("assistant_id"),
            "status": o.get("status"),
            "has_tools": int(bool(o.get("tools"))),
            **tail,
        }
    if item.table == "run_steps":
        return {"id": o["id"], "thread_id": parent, "run_id": o.get("run_id"), **tail}
    if item.table == "vector_store_files":
        return {"vector_store_id": parent, "id": o["id"], **tail}
    raise ValueError(f"not a table for loose objects: {item.table}")


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    filename: str | None
    sha256: str | None
    bytes: int | None
    content: str
    mime: str | None


@dataclass(frozen=True)
class SessionRow:
    thread_id: str
    record: dict[str, Any]
    tokens: int
    tools: list[dict[str, Any]]
    warnings: dict[str, int]


@dataclass(frozen=True)
class ThreadTally:
    """One work row next to what the archive actually holds for that thread (for verify)."""

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
    has_session: bool
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


@dataclass(frozen=True)
class SessionState:
    """A thread an import or a replay may send: its work status, whether its session is stale, the
    stored record (None when there is none, or when it was not asked for)."""

    thread_id: str
    status: str | None  # the work status; None for a session with no work row
    stale: bool
    has_session: bool
    record: str | None

    @property
    def unfinished(self) -> bool:
        return self.status is not None and self.status != "done"


@dataclass(frozen=True)
class ReplayRow:
    """One row of the replay ledger: a request (by hash) and what became of it."""

    request_hash: str
    state: str  # batched | sent | done | rejected | failed
    thread_id: str | None = None
    turn: int | None = None
    model: str | None = None
    attempts: int = 0
    status_code: int | None = None
    response: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    via: str | None = None


_STATUS_RANK = {"done": 3, "failed": 2, "missing": 1, "pending": 0}
_CONTENT_RANK = {"downloaded": 2, "parsed_text": 1, "missing": 0}


def _rank(column: str, ranks: dict[str, int]) -> str:
    """A SQL expression ranking a status column (the names are ours, not user input)."""
    return "(case " + " ".join(f"when {column} = '{k}' then {v}" for k, v in ranks.items()) + " else -1 end)"


def _refuse_unless_ours(path: Path, conn: sqlite3.Connection) -> None:
    """An empty file is a new archive; anything else must carry our migrations, none unknown."""
    tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
    if not tables:
        return
    applied = (
        {
            row[0]
            for row in conn.execute(
                "select name from _sqlite_migrations where migration_set = ?", [MIGRATION_SET]
            )
        }
        if "_sqlite_migrations" in tables
        else set()
    )
    if not applied:
        raise NotAnArchiveError(f"{path}: a SQLite file, but not a migrate archive")
    unknown = applied - known_migration_names()
    if unknown:
        raise NewerSchemaError(
            f"{path}: written by a newer migrate (schema steps {', '.join(sorted(unknown))}); upgrade migrate to read it"
        )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _created(obj: dict[str, Any]) -> int:
    value = obj.get("created_at")
    return int(value) if isinstance(value, int | float) else 0


class Archive:
    """An open archive. Use `Archive.create()` (export, merge) or `Archive.open()` (everything else)."""

    def __init__(self, path: Path, db: Database, lock: ArchiveLock | None = None) -> None:
        self.path = path
        self.db = db
        # Held by a writer (`open(..., writer=...)`) from before the first write until close().
        self.lock = lock
        MIGRATIONS.apply(db)

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, *, writer: str | None = None) -> Archive:
        """Open an archive, creating it (mode 0600) when the path does not exist yet.

        `writer` names the command: it takes the archive's writer lock first (see `lock.py`), so a
        second writer is refused before it creates, migrates or writes anything.
        """
        path = Path(path)
        if not path.exists() and path.parent and not path.parent.exists():
            raise NotAnArchiveError(f"{path}: the folder {path.parent} does not exist")
        lock = cls._lock(path, writer)
        try:
            if not path.exists():
                # Created with 0600 before SQLite touches it: the archive holds private conversations.
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return cls._connect(path, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def open(cls, path: str | Path, *, writer: str | None = None) -> Archive:
        """Open an existing archive; never creates one. `writer`: as for `create`.

        Without `writer` the archive is opened to read: no lock, no WAL switch, no fold at close,
        so it works while a writer holds the archive and sees what that writer has committed.
        """
        path = Path(path)
        if not path.exists():
            raise NotAnArchiveError(
                f"{path}: no such archive (only `migrate export` and `migrate merge` create one)"
            )
        if path.is_dir():
            raise NotAnArchiveError(f"{path}: is a folder, not an archive file")
        if path.stat().st_size == 0:
            # SQLite would take an empty file for a new database; only export and merge create one.
            raise NotAnArchiveError(f"{path}: an empty file, not an archive")
        lock = cls._lock(path, writer)
        try:
            return cls._connect(path, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @staticmethod
    def _lock(path: Path, writer: str | None) -> ArchiveLock | None:
        return ArchiveLock(path, writer).acquire() if writer else None

    @classmethod
    def check(cls, path: str | Path) -> None:
        """Refuse what is not an archive of a schema we know, reading only (for merge's sources)."""
        path = Path(path)
        if not path.is_file() or path.stat().st_size == 0:
            raise NotAnArchiveError(f"{path}: no such archive")
        with open(path, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise NotAnArchiveError(f"{path}: not an archive (not a SQLite file)")
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            _refuse_unless_ours(path, conn)
        except sqlite3.DatabaseError as exc:
            raise NotAnArchiveError(f"{path}: not an archive ({exc})") from None
        finally:
            conn.close()

    @classmethod
    def _connect(cls, path: Path, lock: ArchiveLock | None) -> Archive:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise NotAnArchiveError(f"{path}: not an archive (not a SQLite file)")
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            # Checked before anything is written: a foreign database is refused untouched.
            _refuse_unless_ours(path, conn)
            if lock is not None:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise NotAnArchiveError(f"{path}: cannot be opened for writing (journal mode {mode})")
            # WAL + NORMAL survives a killed process (not a power cut) and keeps commits cheap.
            conn.execute("PRAGMA synchronous = NORMAL")
            return cls(path, Database(conn), lock)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise NotAnArchiveError(f"{path}: not an archive ({exc})") from None
        except BaseException:
            conn.close()  # a refused file must not stay open (or locked) behind the error
            raise

    def close(self) -> None:
        """A writer folds the WAL back so the archive is one file again, then drops its lock."""
        try:
            if self.lock is not None:
                try:
                    self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self.db.execute("PRAGMA journal_mode = DELETE")
                except sqlite3.OperationalError:
                    pass  # a reader still has it open; SQLite folds the WAL when the last one closes
            self.db.conn.close()
        finally:
            if self.lock is not None:
                self.lock.release()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """One write transaction, begun IMMEDIATE: it takes the write lock before its first read,
        so contention waits for the busy timeout instead of failing when the read snapshot is
        outdated at the first write (what sqlite-utils' deferred `db.atomic()` would do). Nested
        calls become savepoints."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS.applied(self.db))

    def _keyset(
        self, sql: str, params: Iterable[Any] = (), *, key: int = 0, batch: int = 1000
    ) -> Iterator[list[Any]]:
        """Pages of rows of a query ordered by a unique key, streamed: one index seek a page.

        `sql` ends with `<key> > ? order by <key> limit ?`; those two come after `params`.
        """
        after = ""
        while rows := self.db.execute(sql, [*params, after, batch]).fetchall():
            yield rows
            after = rows[-1][key]

    # -- meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("select value from meta where key = ?", [key]).fetchone()
        return orjson.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self._atomic():
            self._set_meta(key, value)

    def _set_meta(self, key: str, value: Any) -> None:
        self.db.execute(
            "insert or replace into meta(key, value) values (?, ?)", [key, orjson.dumps(value).decode()]
        )

    # -- the work list -----------------------------------------------------------------------------

    def add_threads(self, items: Iterable[tuple[str, dict[str, Any]]], batch: int = 5000) -> int:
        """Register requested thread ids as pending (known ones are left as they are)."""
        added = 0
        chunk: list[tuple[str, str]] = []

        def flush() -> int:
            with self._atomic():
                before = self.db.conn.total_changes
                self.db.conn.executemany("insert or ignore into work(thread_id, extra) values (?, ?)", chunk)
                return self.db.conn.total_changes - before

        for thread_id, extra in items:
            chunk.append((thread_id, orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode()))
            if len(chunk) >= batch:
                added += flush()
                chunk = []
        if chunk:
            added += flush()
        return added

    def threads_to_export(
        self, *, refresh: bool = False
    ) -> Iterator[tuple[str, str, str | None, str | None]]:
        """(thread_id, status, last_message_id, last_run_id) still to fetch, in a stable order.

        Pending, failed and missing threads are fetched (a missing one costs one request, and a
        corrected --base-url brings it back); done ones only with `refresh`.
        """
        statuses = ("pending", "failed", "missing", "done") if refresh else ("pending", "failed", "missing")
        marks = ",".join("?" * len(statuses))
        sql = (
            "select thread_id, status, last_message_id, last_run_id from work "
            f"where status in ({marks}) and thread_id > ? order by thread_id limit ?"
        )
        for rows in self._keyset(sql, statuses):
            yield from rows

    def work_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "done": 0, "failed": 0, "missing": 0}
        for status, n in self.db.execute("select status, count(*) from work group by status"):
            counts[status] = n
        return counts

    def thread_extra(self, thread_id: str) -> dict[str, Any]:
        row = self.db.execute("select extra from work where thread_id = ?", [thread_id]).fetchone()
        return orjson.loads(row[0]) if row and row[0] else {}

    # -- writing source objects ------------------------------------------------------------------

    def _upsert_raw(
        self,
        table: str,
        columns: tuple[str, ...],
        rows: Iterable[tuple[Any, ...]],
        *,
        keep: tuple[str, ...] = (),
    ) -> None:
        """Insert or replace rows; a row already held keeps its `keep` columns (e.g. its position)."""
        cols = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        if not keep:
            self.db.conn.executemany(f"insert or replace into {table} ({cols}) values ({marks})", rows)
            return
        keys = ", ".join(RAW_TABLES[table])
        update = ", ".join(
            f"{c} = excluded.{c}" for c in columns if c not in keep and c not in RAW_TABLES[table]
        )
        self.db.conn.executemany(
            f"insert into {table} ({cols}) values ({marks}) on conflict({keys}) do update set {update}", rows
        )

    def store_assistants(
        self, assistants: list[dict[str, Any]], file_refs: set[tuple[str, str]], *, complete: bool = True
    ) -> None:
        """Assistants and the (file_id, assistant_id) pairs their tool resources mention.

        Sessions of threads that ran a new or changed assistant become stale (the converter reads
        the assistant's tools, model and instructions). A complete listing marks the assistants
        exported and clears an earlier listing failure, in the same transaction.
        """
        with self._atomic():
            changed = [
                a["id"] for a in assistants if self._stored_hash("assistants", a["id"]) != object_hash(a)
            ]
            self._upsert_raw(
                "assistants",
                ("id", "created_at", "position", "raw", "hash"),
                ((a["id"], _created(a), i, dumps(a), object_hash(a)) for i, a in enumerate(assistants)),
            )
            self._add_refs(file_refs, "assistant")
            for chunk in _chunks(changed, 500):
                marks = ",".join("?" * len(chunk))
                self.db.execute(
                    "update work set session_stale = 1 where status = 'done' and thread_id in "
                    f"(select thread_id from runs where assistant_id in ({marks}) union "
                    f"select thread_id from messages where json_extract(raw, '$.assistant_id') in ({marks}))",
                    [*chunk, *chunk],
                )
            if complete:
                self._set_meta("assistants_exported", True)
                self._clear_failure("assistants", "list")

    def vector_stores_listed(self) -> None:
        """Every vector store was listed: mark it, and forget an earlier listing failure."""
        with self._atomic():
            self._set_meta("vector_stores_exported", True)
            self._clear_failure("vector_stores", "list")

    def _stored_hash(self, table: str, object_id: str) -> str | None:
        row = self.db.execute(f"select hash from {table} where id = ?", [object_id]).fetchone()
        return row[0] if row else None

    def _count_held(self, table: str, ids: list[str]) -> int:
        """How many of these (distinct) ids the table holds already."""
        known = 0
        for chunk in _chunks(sorted(set(ids)), 500):
            marks = ",".join("?" * len(chunk))
            known += self.db.execute(f"select count(*) from {table} where id in ({marks})", chunk).fetchone()[
                0
            ]
        return known

    def next_position(self) -> int:
        """One past the highest list position any raw row holds: objects read now go after them."""
        return max(
            self.db.execute(f"select coalesce(max(position), -1) + 1 from {table}").fetchone()[0]
            for table in POSITIONED
        )

    def unfinished_objects(self, thread_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(message ids, run ids) of this thread stored while still in progress: --refresh reads them again."""
        messages = self.db.execute(
            "select id from messages where thread_id = ? and json_extract(raw, '$.status') = 'in_progress' "
            "order by created_at, position",
            [thread_id],
        ).fetchall()
        runs = self.db.execute(
            "select id from runs where thread_id = ? and status in "
            "('queued', 'in_progress', 'requires_action', 'cancelling') order by created_at, position",
            [thread_id],
        ).fetchall()
        return tuple(r[0] for r in messages), tuple(r[0] for r in runs)

    def store_vector_store(
        self,
        store: dict[str, Any],
        files: list[dict[str, Any]],
        *,
        anomalies: list[Anomaly] = (),
        position: int | None = None,
    ) -> None:
        """A vector store (at `position` in the stores' listing) and its files, in listing order."""
        with self._atomic():
            self._upsert_raw(
                "vector_stores",
                ("id", "created_at", "position", "raw", "hash"),
                [(store["id"], _created(store), position, dumps(store), object_hash(store))],
            )
            self._upsert_raw(
                "vector_store_files",
                ("vector_store_id", "id", "created_at", "position", "raw", "hash"),
                (
                    (store["id"], f["id"], _created(f), i, dumps(f), object_hash(f))
                    for i, f in enumerate(files)
                ),
            )
            self._add_refs({(f["id"], store["id"]) for f in files}, "vector_store")
            self._store_anomalies(anomalies)
            self._clear_failure("vector_store", store["id"])

    def _add_refs(self, refs: Iterable[tuple[str, str]], owner_kind: str) -> None:
        self.db.conn.executemany(
            "insert or ignore into file_refs(file_id, owner_kind, owner_id) values (?, ?, ?)",
            ((file_id, owner_kind, owner_id) for file_id, owner_id in refs),
        )

    def _store_anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        self.db.conn.executemany(
            "insert or replace into anomalies(entity, entity_id, kind, detail) values (?, ?, ?, ?)",
            ((a.entity, a.entity_id, a.kind, a.detail) for a in anomalies),
        )

    def _clear_failure(self, entity: str, entity_id: str) -> None:
        self.db.execute("delete from failures where entity = ? and entity_id = ?", [entity, entity_id])

    def _store_failure(self, failure: Failure) -> None:
        self.db.execute(
            "insert into failures(entity, entity_id, error_class, message, status_code, attempts) "
            "values (?, ?, ?, ?, ?, ?) on conflict(entity, entity_id) do update set "
            "error_class = excluded.error_class, message = excluded.message, "
            "status_code = excluded.status_code, attempts = failures.attempts + excluded.attempts",
            [
                failure.entity,
                failure.entity_id,
                failure.error_class,
                failure.message,
                failure.status_code,
                failure.attempts,
            ],
        )

    def record_failure(self, failure: Failure) -> None:
        with self._atomic():
            self._store_failure(failure)

    def store_thread(self, result: ThreadResult) -> None:
        """A thread's rows, its file references and its status, in one transaction.

        Each row's `position` is its index in the list as the source returned it. A --refresh delta
        appends: rows new to the archive go after every row held, rows held keep their position.
        """
        tid = result.thread_id
        with self._atomic():
            if result.delta:
                # What the delta's pages held that we did not hold yet (refetched unfinished objects
                # replace their rows and were counted already); an object the pages held but the list
                # lost still counts, so verify sees it missing.
                seen = (
                    result.messages_seen - self._count_held("messages", [m["id"] for m in result.messages]),
                    result.runs_seen - self._count_held("runs", [r["id"] for r in result.runs]),
                    result.steps_seen - self._count_held("run_steps", [st["id"] for st in result.steps]),
                )
                base = self._next_positions(tid)
            else:
                seen = (result.messages_seen, result.runs_seen, result.steps_seen)
                base = (0, 0, 0)
            if result.thread is not None:
                t = result.thread
                self._upsert_raw(
                    "threads",
                    ("id", "created_at", "raw", "hash"),
                    [(tid, _created(t), dumps(t), object_hash(t))],
                )
            keep = ("position",) if result.delta else ()
            self._upsert_raw(
                "messages",
                ("id", "thread_id", "run_id", "created_at", "position", "raw", "hash"),
                (
                    (m["id"], tid, m.get("run_id"), _created(m), base[0] + i, dumps(m), object_hash(m))
                    for i, m in enumerate(result.messages)
                ),
                keep=keep,
            )
            self._upsert_raw(
                "runs",
                (
                    "id",
                    "thread_id",
                    "assistant_id",
                    "created_at",
                    "status",
                    "has_tools",
                    "position",
                    "raw",
                    "hash",
                ),
                (
                    (
                        r["id"],
                        tid,
                        r.get("assistant_id"),
                        _created(r),
                        r.get("status"),
                        int(bool(r.get("tools"))),
                        base[1] + i,
                        dumps(r),
                        object_hash(r),
                    )
                    for i, r in enumerate(result.runs)
                ),
                keep=keep,
            )
            self._upsert_raw(
                "run_steps",
                ("id", "thread_id", "run_id", "created_at", "position", "raw", "hash"),
                (
                    (s["id"], tid, s.get("run_id"), _created(s), base[2] + i, dumps(s), object_hash(s))
                    for i, s in enumerate(result.steps)
                ),
                keep=keep,
            )
            self._add_refs(((file_id, tid) for file_id in result.file_refs), "thread")
            self._store_anomalies(result.anomalies)
            add = "coalesce({0}, 0) + :{1}" if result.delta else ":{1}"
            # The newest stored ids are read back: where the next --refresh starts listing.
            self.db.execute(
                "update work set status = :status, attempts = attempts + 1, "
                f"messages_seen = {add.format('messages_seen', 'm')}, runs_seen = {add.format('runs_seen', 'r')}, "
                f"steps_seen = {add.format('steps_seen', 's')}, "
                f"last_message_id = ({_LAST.format('messages')}), last_run_id = ({_LAST.format('runs')}), "
                "session_stale = 1 where thread_id = :tid",
                {"status": result.status, "m": seen[0], "r": seen[1], "s": seen[2], "tid": tid},
            )
            if result.failure is not None:
                self._store_failure(result.failure)
            else:
                self._clear_failure("thread", tid)

    def _next_positions(self, thread_id: str) -> tuple[int, int, int]:
        """For messages, runs and steps of a thread: the position after every one held."""
        return tuple(  # type: ignore[return-value]
            self.db.execute(
                f"select coalesce(max(position), -1) + 1 from {table} where thread_id = ?", [thread_id]
            ).fetchone()[0]
            for table in ("messages", "runs", "run_steps")
        )

    def unfetched_file_ids(self, *, include_missing: bool = False) -> Iterator[str]:
        """Referenced files we hold no metadata for yet; with `include_missing`, also those whose
        content is recorded `missing` (the export asks for them again on every run)."""
        missing = " or f.content = 'missing'" if include_missing else ""
        sql = (
            "select distinct r.file_id from file_refs r left join files f on f.id = r.file_id "
            f"where (f.id is null{missing}) and r.file_id > ? order by r.file_id limit ?"
        )
        for rows in self._keyset(sql):
            yield from (file_id for (file_id,) in rows)

    def vector_stores_holding(self, file_id: str) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "select vector_store_id from vector_store_files where id = ? order by vector_store_id",
                [file_id],
            )
        ]

    def has_file(self, file_id: str, *, with_content: bool = False) -> bool:
        """A file row exists; with `with_content`, one holding its bytes or parsed text."""
        content = " and content != 'missing'" if with_content else ""
        return self.db.execute(f"select 1 from files where id = ?{content}", [file_id]).fetchone() is not None

    def store_file(self, meta: dict[str, Any], content: FileContent) -> None:
        """A file's metadata and what we got of its bytes; threads that use it get stale sessions."""
        blob_sha = None
        with self._atomic():
            if content.data is not None:
                blob_sha = sha256_hex(content.data)
                mime = sniff_mime(content.data, meta.get("filename"))
                if content.kind == "parsed_text":
                    mime = "text/plain; charset=utf-8"
                self.db.execute(
                    "insert or ignore into blobs(sha256, bytes, mime, data) values (?, ?, ?, ?)",
                    [blob_sha, len(content.data), mime, content.data],
                )
            self.db.execute(
                "insert or replace into files(id, raw, hash, content, blob_sha256, text_from_vector_store) "
                "values (?, ?, ?, ?, ?, ?)",
                [meta["id"], dumps(meta), object_hash(meta), content.kind, blob_sha, content.vector_store_id],
            )
            self.db.execute(
                "update work set session_stale = 1 where thread_id in "
                "(select owner_id from file_refs where file_id = ? and owner_kind = 'thread')",
                [meta["id"]],
            )
            self._clear_failure("file", meta["id"])

    # -- objects that arrive one by one (saved dumps) ----------------------------------------------

    def store_loose_objects(self, items: Iterable[LooseObject]) -> list[str]:
        """Upsert objects read one by one, in one transaction; per item "new", "same" or "changed".

        Each lands in exactly the row the export's store methods write. "same" means a row with the
        same canonical hash is already held (kept as it is). A thread that gains or changes a row
        becomes stale and stops being `done` until `settle_thread` rules on it, so a kill in the
        middle of an ingest never leaves a done thread holding only part of its rows.
        """
        outcomes: list[str] = []
        touched: set[str] = set()
        conn = self.db.conn
        with self._atomic():
            for item in items:
                row = _loose_row(item)
                keys = RAW_TABLES[item.table]
                where = " and ".join(f"{k} = ?" for k in keys)
                key = [row[k] for k in keys]
                position = "position" if item.table != "threads" else "null"
                held = conn.execute(
                    f"select hash, {position} from {item.table} where {where}", key
                ).fetchone()
                if held is not None and held[0] == row["hash"]:
                    outcomes.append("same")
                else:
                    outcomes.append("new" if held is None else "changed")
                    if held is not None and held[1] is not None:
                        row["position"] = held[1]  # a newer copy of an object keeps its place in the list
                    marks = ", ".join("?" * len(row))
                    columns = ", ".join(row)
                    conn.execute(
                        f"insert or replace into {item.table} ({columns}) values ({marks})",
                        list(row.values()),
                    )
                    if item.table in ("threads", "messages", "runs", "run_steps"):
                        touched.add(row[_PARENT_COLUMN[item.table]])
                if item.table == "assistants":
                    self._add_refs(((file_id, row["id"]) for file_id in item.file_refs), "assistant")
                elif item.table == "vector_store_files":
                    self._add_refs([(row["id"], row["vector_store_id"])], "vector_store")
            ids = [(tid,) for tid in sorted(touched)]
            conn.executemany("insert or ignore into work(thread_id) values (?)", ids)
            conn.executemany(
                "update work set session_stale = 1, "
                "status = case when status = 'done' then 'pending' else status end where thread_id = ?",
                ids,
            )
        return outcomes

    def settle_thread(self, settlement: ThreadSettlement) -> None:
        """Record a dumped thread's status, refs and findings; seen counts are the rows now held."""
        tid = settlement.thread_id
        m, r, st = settlement.unkept
        with self._atomic():
            self.db.execute("insert or ignore into work(thread_id) values (?)", [tid])
            self._add_refs(((file_id, tid) for file_id in settlement.file_refs), "thread")
            if settlement.owned_kinds:
                marks = ", ".join("?" * len(settlement.owned_kinds))
                self.db.execute(
                    f"delete from anomalies where entity = 'thread' and entity_id = ? and kind in ({marks})",
                    [tid, *settlement.owned_kinds],
                )
            self._store_anomalies(settlement.anomalies)
            self.db.execute(
                "update work set status = :status, attempts = attempts + 1, session_stale = 1, "
                "messages_seen = (select count(*) from messages where thread_id = :tid) + :m, "
                "runs_seen = (select count(*) from runs where thread_id = :tid) + :r, "
                "steps_seen = (select count(*) from run_steps where thread_id = :tid) + :s, "
                f"last_message_id = coalesce(({_LAST.format('messages')}), last_message_id), "
                f"last_run_id = coalesce(({_LAST.format('runs')}), last_run_id) where thread_id = :tid",
                {"status": settlement.status, "tid": tid, "m": m, "r": r, "s": st},
            )
            if settlement.status == "done":
                self._clear_failure("thread", tid)

    def thread_raw(self, thread_id: str) -> ThreadRaw:
        """The raw text of a thread's rows, even when the thread object itself is not held."""

        def texts(table: str) -> list[str]:
            return [
                row[0]
                for row in self.db.execute(
                    f"select raw from {table} where thread_id = ? order by created_at, position", [thread_id]
                )
            ]

        row = self.db.execute("select raw from threads where id = ?", [thread_id]).fetchone()
        thread = row[0] if row else None
        return ThreadRaw(thread_id, thread, texts("messages"), texts("runs"), texts("run_steps"))

    def thread_ids_with_rows(self) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
        """(thread_id, work status or None, extra) of every thread any raw row belongs to, in id order.

        One index seek per table and thread, so it streams however many threads there are.
        """
        sql = (
            "select min(t) from (select min(id) as t from threads where id > :last "
            "union all select min(thread_id) from messages where thread_id > :last "
            "union all select min(thread_id) from runs where thread_id > :last "
            "union all select min(thread_id) from run_steps where thread_id > :last)"
        )
        last = ""
        while (tid := self.db.execute(sql, {"last": last}).fetchone()[0]) is not None:
            work = self.db.execute("select status, extra from work where thread_id = ?", [tid]).fetchone()
            yield tid, work[0] if work else None, orjson.loads(work[1]) if work and work[1] else {}
            last = tid

    def iter_raw(self, table: str, parent_id: str | None = None) -> Iterator[str]:
        """Raw text of a table's rows (of one thread or vector store), oldest first, streamed."""
        if table not in RAW_TABLES:
            raise ValueError(f"not a raw table: {table}")
        order = {"files": "id", "threads": "created_at, id"}.get(table, "created_at, position")
        if parent_id is None:
            rows = self.db.execute(f"select raw from {table} order by {order}")
        else:
            rows = self.db.execute(
                f"select raw from {table} where {_PARENT_COLUMN[table]} = ? order by {order}", [parent_id]
            )
        for (raw,) in rows:
            yield raw

    def vector_store_ids(self) -> Iterator[str]:
        """Every vector store id the archive holds a store or a store's file for, sorted."""
        for (vs_id,) in self.db.execute(
            "select id from vector_stores union select vector_store_id from vector_store_files order by 1"
        ):
            yield vs_id

    def raw_of(self, table: str, key: str) -> str | None:
        """One object's raw text by id (tables keyed by id alone)."""
        if RAW_TABLES.get(table) != ("id",):
            raise ValueError(f"not a table keyed by id: {table}")
        row = self.db.execute(f"select raw from {table} where id = ?", [key]).fetchone()
        return row[0] if row else None

    def count_rows(self, table: str, parent_id: str | None = None) -> int:
        if table not in RAW_TABLES:
            raise ValueError(f"not a raw table: {table}")
        if parent_id is None:
            return self.db.execute(f"select count(*) from {table}").fetchone()[0]
        return self.db.execute(
            f"select count(*) from {table} where {_PARENT_COLUMN[table]} = ?", [parent_id]
        ).fetchone()[0]

    def file_record(self, file_id: str) -> tuple[dict[str, Any], FileContent] | None:
        """A stored file's metadata and content (bytes included), as store_file was given them."""
        row = self.db.execute(
            "select f.raw, f.content, b.data, f.text_from_vector_store from files f "
            "left join blobs b on b.sha256 = f.blob_sha256 where f.id = ?",
            [file_id],
        ).fetchone()
        if row is None:
            return None
        return loads(row[0]), FileContent(row[1], row[2], row[3])

    def iter_file_ids(self) -> Iterator[str]:
        for (file_id,) in self.db.execute("select id from files order by id"):
            yield file_id

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

    # -- reading -----------------------------------------------------------------------------------

    def _raw_rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return [loads(row[0]) for row in self.db.execute(sql, params)]

    def thread_objects(self, thread_id: str) -> dict[str, Any] | None:
        """The raw objects of one thread, in the API's ascending order."""
        row = self.db.execute("select raw from threads where id = ?", [thread_id]).fetchone()
        if row is None:
            return None
        return {
            "thread": loads(row[0]),
            "messages": self._raw_rows(
                "select raw from messages where thread_id = ? order by created_at, position", [thread_id]
            ),
            "runs": self._raw_rows(
                "select raw from runs where thread_id = ? order by created_at, position", [thread_id]
            ),
            "steps": self._raw_rows(
                "select raw from run_steps where thread_id = ? order by created_at, position", [thread_id]
            ),
        }

    def assistants(self) -> dict[str, dict[str, Any]]:
        return {row[0]: loads(row[1]) for row in self.db.execute("select id, raw from assistants")}

    def files_for(
        self, file_ids: Iterable[str], *, with_data_for_images: bool = True
    ) -> dict[str, StoredFile]:
        out: dict[str, StoredFile] = {}
        for file_id in file_ids:
            row = self.db.execute(
                "select f.raw, f.content, f.blob_sha256, b.bytes, b.mime from files f "
                "left join blobs b on b.sha256 = f.blob_sha256 where f.id = ?",
                [file_id],
            ).fetchone()
            if row is None:
                continue
            meta = loads(row[0])
            out[file_id] = StoredFile(
                file_id=file_id,
                filename=meta.get("filename"),
                sha256=row[2],
                bytes=row[3] if row[3] is not None else meta.get("bytes"),
                content=row[1],
                mime=row[4],
            )
        return out

    def blob(self, sha256: str) -> bytes | None:
        row = self.db.execute("select data from blobs where sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

    def file_refs_of(self, owner_id: str) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "select distinct file_id from file_refs where owner_id = ? order by file_id", [owner_id]
            )
        ]

    def counts(self) -> dict[str, Any]:
        """The figures `migrate stats` reports (the names are part of the CLI contract)."""

        def scalar(sql: str) -> int:
            return self.db.execute(sql).fetchone()[0]

        work = self.work_counts()
        return {
            "assistants": scalar("select count(*) from assistants"),
            "threads": scalar("select count(*) from threads"),
            "threads_requested": sum(work.values()),
            "threads_done": work["done"],
            "threads_pending": work["pending"],
            "threads_failed": work["failed"],
            "threads_missing": work["missing"],
            "messages": scalar("select count(*) from messages"),
            "runs": scalar("select count(*) from runs"),
            "run_steps": scalar("select count(*) from run_steps"),
            "vector_stores": scalar("select count(*) from vector_stores"),
            "vector_store_files": scalar("select count(*) from vector_store_files"),
            "files": scalar("select count(*) from files"),
            "files_downloaded": scalar("select count(*) from files where content = 'downloaded'"),
            "files_parsed_text": scalar("select count(*) from files where content = 'parsed_text'"),
            "files_missing": scalar("select count(*) from files where content = 'missing'"),
            "files_unfetched": scalar(
                "select count(distinct r.file_id) from file_refs r left join files f on f.id = r.file_id "
                "where f.id is null"
            ),
            "sessions": scalar("select count(*) from sessions"),
            "tool_definitions": scalar("select count(*) from tool_definitions"),
            "failures": scalar("select count(*) from failures"),
            "anomalies": scalar("select count(*) from anomalies"),
            "warnings": {
                code: n
                for code, n in self.db.execute(
                    "select code, sum(count) from session_warnings group by code order by code"
                )
            },
        }

    def failures(self) -> list[Failure]:
        return [
            Failure(*row)
            for row in self.db.execute(
                "select entity, entity_id, error_class, message, status_code, attempts from failures "
                "order by entity, entity_id"
            )
        ]

    def content_hash(self) -> str:
        """One digest over the logical content: every raw object's canonical hash, in key order.

        Two archives with the same objects have the same content hash, however they were filled.
        """
        import hashlib

        h = hashlib.sha256()
        for table, keys in RAW_TABLES.items():
            order = ", ".join(keys)
            for row in self.db.execute(f"select {order}, hash from {table} order by {order}"):
                h.update(orjson.dumps([table, *row]))
                h.update(b"\n")
        for (sha,) in self.db.execute("select sha256 from blobs order by sha256"):
            h.update(b"blob " + sha.encode() + b"\n")
        return "sha256:" + h.hexdigest()

    def record_conversion_options(self, key: str, value: dict[str, Any]) -> bool:
        """Record the options sessions are built with; when they change, every session is stale.

        One transaction: a kill can never leave new options recorded beside sessions of the old ones.
        """
        with self._atomic():
            before = self.get_meta(key)
            if before == value:
                return False
            self._set_meta(key, value)
            if before is not None:
                self.db.execute("update work set session_stale = 1 where status = 'done'")
            return True

    def showcase_thread(self, warning: str, min_messages: int, max_messages: int) -> str | None:
        """A session of modest length that raised this conversion warning (for the demo)."""
        row = self.db.execute(
            "select s.thread_id from sessions s join session_warnings w on w.thread_id = s.thread_id "
            "where w.code = ? and s.messages between ? and ? order by s.thread_id limit 1",
            [warning, min_messages, max_messages],
        ).fetchone()
        return row[0] if row else None

    def _same_schema(self, other: Path) -> bool:
        conn = sqlite3.connect(f"{other.resolve().as_uri()}?mode=ro", uri=True)
        try:
            theirs = {
                r[0]
                for r in conn.execute(
                    "select name from _sqlite_migrations where migration_set = ?", [MIGRATION_SET]
                )
            }
        finally:
            conn.close()
        return theirs == {m.name for m in MIGRATIONS.applied(self.db)}

    # -- merging shards ---------------------------------------------------------------------------

    def merge_from(self, other: Path) -> dict[str, int]:
        """Fold another archive (a shard) into this one; merging the same file twice changes nothing.

        Raw objects are upserted; for a thread the better status wins (done > failed > missing >
        pending); for a file the better content wins (downloaded > parsed_text > missing).
        """
        Archive.check(other)
        if not self._same_schema(other):
            # An older shard: bring it up to our schema first (the one write merge makes to a source).
            Archive.open(other, writer="merge").close()
        before = {table: self.db[table].count for table in RAW_TABLES}
        self.db.execute("attach database ? as src", [str(other)])
        try:
            with self._atomic():
                for table in RAW_TABLES:
                    if table == "files":
                        continue
                    cols = ", ".join(c.name for c in self.db[table].columns)
                    self.db.execute(f"insert or replace into {table} ({cols}) select {cols} from src.{table}")
                self.db.execute("insert or ignore into blobs select * from src.blobs")
                self.db.execute(
                    "insert into files select * from src.files where true on conflict(id) do update set "
                    "raw = excluded.raw, hash = excluded.hash, content = excluded.content, "
                    "blob_sha256 = excluded.blob_sha256, text_from_vector_store = excluded.text_from_vector_store "
                    f"where {_rank('excluded.content', _CONTENT_RANK)} > {_rank('files.content', _CONTENT_RANK)}"
                )
                for table in ("file_refs", "anomalies"):
                    self.db.execute(f"insert or ignore into {table} select * from src.{table}")
                cols = ", ".join(c.name for c in self.db["work"].columns)
                self.db.execute(
                    f"insert into work ({cols}) select {cols} from src.work where true "
                    "on conflict(thread_id) do update set "
                    + ", ".join(
                        f"{c.name} = excluded.{c.name}"
                        for c in self.db["work"].columns
                        if c.name != "thread_id"
                    )
                    + f" where {_rank('excluded.status', _STATUS_RANK)} > {_rank('work.status', _STATUS_RANK)}"
                )
                self.db.execute(
                    "update work set session_stale = 1 where thread_id in (select thread_id from src.work)"
                )
                self.db.execute("insert or ignore into failures select * from src.failures")
                self.db.execute(
                    "delete from failures where entity = 'thread' and entity_id in "
                    "(select thread_id from work where status = 'done')"
                )
                self.db.execute(
                    "delete from failures where entity = 'file' and entity_id in (select id from files)"
                )
                for key in ("assistants_exported", "vector_stores_exported", "conversion_options"):
                    self.db.execute("insert or ignore into meta select * from src.meta where key = ?", [key])
        finally:
            self.db.execute("detach database src")
        return {table: self.db[table].count - n for table, n in before.items()}

    # -- derived tables ----------------------------------------------------------------------------

    def stale_session_thread_ids(self, batch: int = 100) -> Iterator[list[str]]:
        """Done threads whose session must be (re)built, in batches, resumable by design."""
        sql = (
            "select thread_id from work where session_stale = 1 and status = 'done' and thread_id > ? "
            "order by thread_id limit ?"
        )
        for rows in self._keyset(sql, batch=batch):
            yield [r[0] for r in rows]

    def mark_all_sessions_stale(self) -> None:
        with self._atomic():
            self.db.execute("update work set session_stale = 1 where status = 'done'")

    def store_sessions(self, rows: list[SessionRow]) -> None:
        """Replace these threads' sessions, their tool links and warning counts, in one transaction."""
        with self._atomic():
            for row in rows:
                record_json = orjson.dumps(row.record, option=orjson.OPT_SORT_KEYS)
                tid = row.thread_id
                self.db.execute(
                    "insert or replace into sessions(thread_id, record, hash, messages, tokens) "
                    "values (?, ?, ?, ?, ?)",
                    [
                        tid,
                        record_json.decode(),
                        "sha256:" + sha256_hex(record_json),
                        len(row.record.get("messages", [])),
                        row.tokens,
                    ],
                )
                self.db.execute("delete from session_tools where thread_id = ?", [tid])
                self.db.execute("delete from session_warnings where thread_id = ?", [tid])
                for tool in row.tools:
                    name = tool.get("function", {}).get("name") or tool.get("type", "?")
                    tool_hash = object_hash(tool)
                    self.db.execute(
                        "insert or ignore into tool_definitions(name, hash, definition) values (?, ?, ?)",
                        [name, tool_hash, orjson.dumps(tool, option=orjson.OPT_SORT_KEYS).decode()],
                    )
                    self.db.execute(
                        "insert or replace into session_tools(thread_id, name, hash) values (?, ?, ?)",
                        [tid, name, tool_hash],
                    )
                self.db.conn.executemany(
                    "insert into session_warnings(thread_id, code, count) values (?, ?, ?)",
                    [(tid, code, n) for code, n in sorted(row.warnings.items())],
                )
                self.db.execute("update work set session_stale = 0 where thread_id = ?", [tid])

    def drop_orphan_tool_definitions(self) -> None:
        with self._atomic():
            self.db.execute(
                "delete from tool_definitions where not exists (select 1 from session_tools s "
                "where s.name = tool_definitions.name and s.hash = tool_definitions.hash)"
            )

    def iter_session_records(self, thread_ids: Iterable[str] | None = None) -> Iterator[tuple[str, bytes]]:
        """(thread_id, canonical record JSON) sorted by thread id, streamed."""
        if thread_ids is not None:
            for tid in thread_ids:
                row = self.db.execute("select record from sessions where thread_id = ?", [tid]).fetchone()
                if row:
                    yield tid, row[0].encode()
            return
        sql = "select thread_id, record from sessions where thread_id > ? order by thread_id limit ?"
        for rows in self._keyset(sql, batch=500):
            yield from ((tid, record.encode()) for tid, record in rows)

    # -- verification reads (streamed: an archive may hold 340,000 threads) -------------------

    def integrity_errors(self) -> list[str]:
        """What `PRAGMA integrity_check` reports besides "ok" (empty when the file is sound)."""
        rows = [row[0] for row in self.db.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    def applied_migrations(self) -> set[str]:
        return {m.name for m in MIGRATIONS.applied(self.db)}

    def iter_raw_hashes(self, table: str) -> Iterator[tuple[str, Any, Any, str | None]]:
        """(row key, raw JSON text, stored hash, thread id or None) of every row of a raw table, streamed."""
        if table not in RAW_TABLES:
            raise ValueError(f"not a raw table: {table}")
        key = " || '/' || ".join(RAW_TABLES[table])
        thread = {"threads": "id", "messages": "thread_id", "runs": "thread_id", "run_steps": "thread_id"}
        yield from self.db.execute(f"select {key}, raw, hash, {thread.get(table, 'null')} from {table}")

    def iter_blobs(self) -> Iterator[tuple[str, int | None, bytes | None]]:
        """(sha256 key, recorded size, data) of every blob, streamed one at a time."""
        yield from self.db.execute("select sha256, bytes, data from blobs")

    def thread_tallies(self, batch: int = 1000) -> Iterator[ThreadTally]:
        """Every work row with the counts of the rows stored for it, in thread id order."""
        sql = (
            "select w.thread_id, w.status, coalesce(w.messages_seen, 0), coalesce(w.runs_seen, 0), "
            "coalesce(w.steps_seen, 0), coalesce(w.session_stale, 0), "
            "exists(select 1 from threads t where t.id = w.thread_id), "
            "(select count(*) from messages m where m.thread_id = w.thread_id), "
            "(select count(*) from runs r where r.thread_id = w.thread_id), "
            "(select count(*) from run_steps s where s.thread_id = w.thread_id), "
            "exists(select 1 from sessions x where x.thread_id = w.thread_id), f.error_class, f.message "
            "from work w left join failures f on f.entity = 'thread' and f.entity_id = w.thread_id "
            "where w.thread_id > ? order by w.thread_id limit ?"
        )
        for rows in self._keyset(sql, batch=batch):
            for row in rows:
                yield ThreadTally(
                    row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]),
                    row[7], row[8], row[9], bool(row[10]), row[11], row[12],
                )  # fmt: skip

    def iter_thread_ids(self, status: str, batch: int = 5000) -> Iterator[str]:
        """The requested thread ids with this work status, in id order, keyset-paged."""
        sql = "select thread_id from work where status = ? and thread_id > ? order by thread_id limit ?"
        for rows in self._keyset(sql, [status], batch=batch):
            yield from (thread_id for (thread_id,) in rows)

    def iter_anomalies(self) -> Iterator[Anomaly]:
        for row in self.db.execute("select entity, entity_id, kind, detail from anomalies order by 1, 2, 3"):
            yield Anomaly(*row)

    def iter_failures(self) -> Iterator[Failure]:
        for row in self.db.execute(
            "select entity, entity_id, error_class, message, status_code, attempts from failures order by 1, 2"
        ):
            yield Failure(*row)

    def iter_orphans(self) -> Iterator[tuple[str, str, str, str, str | None]]:
        """(table, row id, parent kind, parent id, thread id) for rows whose parent is not stored.

        Messages and runs need their thread; steps their thread and run; a message that names the
        run that wrote it needs that run; a `message_creation` step needs the message it placed.
        """
        queries = (
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
        for sql in queries:
            yield from self.db.execute(sql)

    def runs_missing_steps(self) -> Iterator[tuple[str, str]]:
        """(thread_id, run_id) of completed runs that declared tools (so their steps were listed) but
        have none. Only completed runs: one always has a step (its message_creation), while a run that
        failed, was cancelled or expired before doing anything legitimately has none."""
        yield from self.db.execute(
            "select r.thread_id, r.id from runs r where r.has_tools = 1 and r.status = 'completed' "
            # thread_id first, so the lookup uses the (thread_id, run_id, ...) index, not a scan per run.
            "and not exists (select 1 from run_steps s where s.thread_id = r.thread_id and s.run_id = r.id) "
            "order by r.thread_id, r.id"
        )

    def file_gaps(self) -> Iterator[tuple[str, str, str]]:
        """(file_id, problem, first owner) for referenced files we could not (fully) obtain.

        problem: `unfetched` (no metadata), `missing` (the source gave neither bytes nor parsed
        text), `no_blob` (content recorded as obtained but its blob row is gone).
        """
        yield from self.db.execute(
            "select r.file_id, 'unfetched', min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
            "where not exists (select 1 from files f where f.id = r.file_id) group by r.file_id order by r.file_id"
        )
        yield from self.db.execute(
            "select f.id, 'missing', (select min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
            "where r.file_id = f.id) from files f where f.content = 'missing' order by f.id"
        )
        yield from self.db.execute(
            "select f.id, 'no_blob', (select min(r.owner_kind || ' ' || r.owner_id) from file_refs r "
            "where r.file_id = f.id) from files f where f.content in ('downloaded', 'parsed_text') "
            "and (f.blob_sha256 is null or not exists (select 1 from blobs b where b.sha256 = f.blob_sha256)) "
            "order by f.id"
        )

    def done_sessions(self, batch: int = 200) -> Iterator[DoneSession]:
        """Every done thread with its stored session (if any), in thread id order, in batches."""
        sql = (
            "select w.thread_id, coalesce(w.session_stale, 0), s.record, s.hash, s.tokens from work w "
            "left join sessions s on s.thread_id = w.thread_id "
            "where w.status = 'done' and w.thread_id > ? order by w.thread_id limit ?"
        )
        for rows in self._keyset(sql, batch=batch):
            yield from (DoneSession(row[0], bool(row[1]), row[2], row[3], row[4]) for row in rows)

    def session_states(
        self, thread_ids: Iterable[str] | None = None, *, include_unfinished: bool, records: bool = True
    ) -> Iterator[SessionState]:
        """Every thread with a stored session or a done status, sorted by id, streamed (only these
        threads, when given). Sessions of threads that are not done come only with `include_unfinished`.
        `records=False` leaves the record out (for choosing a sample)."""
        columns = "t.thread_id, w.status, coalesce(w.session_stale, 0), s.thread_id is not null, " + (
            "s.record" if records else "null"
        )
        joins = (
            "left join work w on w.thread_id = t.thread_id left join sessions s on s.thread_id = t.thread_id"
        )
        keep = "" if include_unfinished else " and (w.status is null or w.status = 'done')"
        if thread_ids is not None:
            sql = f"select {columns} from (select ? as thread_id) t {joins} where (s.thread_id is not null or w.status = 'done'){keep}"
            for tid in thread_ids:
                if row := self.db.execute(sql, [tid]).fetchone():
                    yield SessionState(row[0], row[1], bool(row[2]), bool(row[3]), row[4])
            return
        # ?1 is the page's lower bound, ?2 its size (see _keyset); the filter sits inside the union so
        # that every page is full until the end.
        # Each branch is cut to one page before the union, so a page costs two index walks of its
        # size, not a sort of the whole archive.
        sessions = (
            "select * from (select s.thread_id from sessions s left join work w on w.thread_id = s.thread_id "
            f"where s.thread_id > ?1{keep} order by s.thread_id limit ?2)"
        )
        done = "select * from (select thread_id from work where status = 'done' and thread_id > ?1 order by thread_id limit ?2)"
        sql = f"select {columns} from ({sessions} union {done} order by 1 limit ?2) t {joins} order by t.thread_id"
        for rows in self._keyset(sql, batch=500):
            yield from (SessionState(r[0], r[1], bool(r[2]), bool(r[3]), r[4]) for r in rows)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one committed state of the archive, however a writer commits meanwhile."""
        if self.db.conn.in_transaction:
            yield
            return
        self.db.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.db.conn.in_transaction:
                self.db.conn.execute("COMMIT")

    def orphan_sessions(self) -> Iterator[tuple[str, str | None]]:
        """(thread_id, work status or None) of stored sessions whose thread is not done."""
        yield from self.db.execute(
            "select s.thread_id, w.status from sessions s left join work w on w.thread_id = s.thread_id "
            "where w.status is null or w.status != 'done' order by s.thread_id"
        )

    def warning_totals(self) -> dict[str, int]:
        """Conversion warnings per code, over every stored session."""
        return {
            code: n
            for code, n in self.db.execute(
                "select code, sum(count) from session_warnings group by code order by code"
            )
        }

    # -- the replay ledger (`migrate replay`) -----------------------------------------------------

    _REPLAY_COLUMNS = (
        "request_hash, state, thread_id, turn, model, attempts, status_code, response, error, "
        "latency_ms, prompt_tokens, completion_tokens, via"
    )

    def replay_rows(self, hashes: Iterable[str]) -> dict[str, ReplayRow]:
        """The ledger rows of these request hashes (hashes with no row are left out)."""
        out: dict[str, ReplayRow] = {}
        wanted = list(hashes)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"select {self._REPLAY_COLUMNS} from replay_ledger where request_hash in ({marks})", chunk
            ):
                out[row[0]] = ReplayRow(*row)
        return out

    def replay_begin(self, request_hash: str, thread_id: str, turn: int, model: str) -> None:
        """Commit `sent` for one request before it goes out (a resumed in-flight one counts twice)."""
        with self._atomic():
            self.db.execute(
                "insert into replay_ledger(request_hash, thread_id, turn, model, state, attempts, via, "
                "updated_at) values (?, ?, ?, ?, 'sent', 1, 'live', ?) on conflict(request_hash) do update "
                "set state = 'sent', attempts = replay_ledger.attempts + 1, via = 'live', "
                "thread_id = excluded.thread_id, turn = excluded.turn, model = excluded.model, "
                "updated_at = excluded.updated_at",
                [request_hash, thread_id, turn, model, time.time()],
            )

    def replay_finish(self, row: ReplayRow) -> None:
        """Record what the target answered to one request (done | rejected | failed)."""
        with self._atomic():
            self.db.execute(
                "update replay_ledger set state = ?, status_code = ?, response = ?, error = ?, "
                "latency_ms = ?, prompt_tokens = ?, completion_tokens = ?, updated_at = ? "
                "where request_hash = ?",
                [
                    row.state,
                    row.status_code,
                    row.response,
                    row.error,
                    row.latency_ms,
                    row.prompt_tokens,
                    row.completion_tokens,
                    time.time(),
                    row.request_hash,
                ],
            )

    def replay_mark_batched(self, items: Iterable[tuple[str, str, int, str]]) -> None:
        """(hash, thread_id, turn, model) written to batch files; a finished row keeps its result."""
        with self._atomic():
            self.db.conn.executemany(
                "insert into replay_ledger(request_hash, thread_id, turn, model, state, via, updated_at) "
                "values (?, ?, ?, ?, 'batched', 'batch', ?) on conflict(request_hash) do update "
                "set state = 'batched', via = 'batch', updated_at = excluded.updated_at "
                "where replay_ledger.state not in ('done', 'rejected')",
                ((h, tid, turn, model, time.time()) for h, tid, turn, model in items),
            )

    def replay_ingest(self, rows: Iterable[ReplayRow]) -> tuple[int, int]:
        """Batch results, in one transaction: (stored, skipped because already finished)."""
        stored = skipped = 0
        with self._atomic():
            for row in rows:
                before = self.db.conn.total_changes
                self.db.execute(
                    "insert into replay_ledger(request_hash, state, status_code, response, error, "
                    "prompt_tokens, completion_tokens, via, updated_at) values (?, ?, ?, ?, ?, ?, ?, 'batch', ?) "
                    "on conflict(request_hash) do update set state = excluded.state, "
                    "status_code = excluded.status_code, response = excluded.response, error = excluded.error, "
                    "latency_ms = null, prompt_tokens = excluded.prompt_tokens, "
                    "completion_tokens = excluded.completion_tokens, via = 'batch', "
                    "updated_at = excluded.updated_at where replay_ledger.state not in ('done', 'rejected')",
                    [
                        row.request_hash,
                        row.state,
                        row.status_code,
                        row.response,
                        row.error,
                        row.prompt_tokens,
                        row.completion_tokens,
                        time.time(),
                    ],
                )
                if self.db.conn.total_changes > before:
                    stored += 1
                else:
                    skipped += 1
        return stored, skipped

    def replay_link(self, items: Iterable[tuple[str, str, int, str]]) -> None:
        """Name the turn of rows a batch result created before this archive built their request."""
        with self._atomic():
            self.db.conn.executemany(
                "update replay_ledger set thread_id = ?, turn = ?, model = coalesce(model, ?) "
                "where request_hash = ? and thread_id is null",
                ((tid, turn, model, h) for h, tid, turn, model in items),
            )

    def replay_unlinked(self) -> int:
        """Ledger rows no built request has claimed (batch results of some other selection)."""
        return self.db.execute("select count(*) from replay_ledger where thread_id is null").fetchone()[0]

    # -- import to the Conversations API: the thread -> conversation map -----------------------

    def session_count(self) -> int:
        return self.db.execute("select count(*) from sessions").fetchone()[0]

    def iter_session_thread_ids(self, batch: int = 5000) -> Iterator[str]:
        """The thread id of every stored session, sorted, streamed (no records read)."""
        sql = "select thread_id from sessions where thread_id > ? order by thread_id limit ?"
        for rows in self._keyset(sql, batch=batch):
            yield from (row[0] for row in rows)

    def conversation_link(self, target: str, thread_id: str) -> ConversationLink | None:
        row = self.db.execute(
            f"select {_LINK_COLUMNS} from conversation_map where target = ? and thread_id = ?",
            [target, thread_id],
        ).fetchone()
        return ConversationLink(*row) if row else None

    def conversation_intent(
        self, target: str, thread_id: str, *, idempotency_key: str, items_total: int, metadata_dropped: str
    ) -> ConversationLink:
        """Record that a create is about to be sent (committed before it is); returns the row.

        A row still `creating` when this is called again means an earlier create's outcome was never
        learned (the process died): it counts as unconfirmed. A row keeps its first idempotency key.
        """
        with self._atomic():
            self.db.execute(
                "insert into conversation_map(target, thread_id, status, idempotency_key, items_total, "
                "metadata_dropped) values (?, ?, 'creating', ?, ?, ?) on conflict(target, thread_id) do update "
                "set unconfirmed_creates = unconfirmed_creates + (status = 'creating'), status = 'creating', "
                "items_total = excluded.items_total, metadata_dropped = excluded.metadata_dropped, error = null "
                "where conversation_id is null",
                [target, thread_id, idempotency_key, items_total, metadata_dropped],
            )
        link = self.conversation_link(target, thread_id)
        assert link is not None
        return link

    def conversation_unconfirmed(self, target: str, thread_id: str) -> None:
        """A create sent in this run whose outcome is unknown (timeout, dropped connection, 5xx)."""
        with self._atomic():
            self.db.execute(
                "update conversation_map set unconfirmed_creates = unconfirmed_creates + 1 "
                "where target = ? and thread_id = ?",
                [target, thread_id],
            )

    def conversation_progress(
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
        with self._atomic():
            self.db.execute(
                "update conversation_map set conversation_id = coalesce(?, conversation_id), status = ?, "
                "items_sent = ?, sent_digest = ?, items_total = ?, error = null "
                "where target = ? and thread_id = ?",
                [conversation_id, status, items_sent, sent_digest, items_total, target, thread_id],
            )

    def conversation_failed(self, target: str, thread_id: str, error: str, *, status: str = "failed") -> None:
        """The import of this thread stopped: `failed` (the target refused it; the next run retries,
        with the same idempotency key if the create was refused), or `diverged` (its session changed
        under it and no longer starts with the items sent)."""
        with self._atomic():
            self.db.execute(
                "update conversation_map set error = ?, status = ? where target = ? and thread_id = ?",
                [error, status, target, thread_id],
            )

    def iter_conversation_links(
        self, target: str, thread_ids: Iterable[str] | None = None
    ) -> Iterator[ConversationLink]:
        """The map rows of one target, sorted by thread id (only these threads, when given)."""
        if thread_ids is not None:
            for tid in thread_ids:
                link = self.conversation_link(target, tid)
                if link is not None:
                    yield link
            return
        sql = (
            f"select {_LINK_COLUMNS} from conversation_map where target = ? and thread_id > ? "
            "order by thread_id limit ?"
        )
        for rows in self._keyset(sql, [target], key=1):
            yield from (ConversationLink(*row) for row in rows)


@dataclass(frozen=True)
class ConversationLink:
    """One row of the thread -> conversation map (see m004_create_conversation_map)."""

    target: str
    thread_id: str
    conversation_id: str | None
    status: str  # creating | open | done | failed | diverged
    idempotency_key: str
    unconfirmed_creates: int
    items_total: int | None
    items_sent: int
    sent_digest: str | None
    metadata_dropped: str | None
    error: str | None


_LINK_COLUMNS = (
    "target, thread_id, conversation_id, status, idempotency_key, unconfirmed_creates, items_total, "
    "items_sent, sent_digest, metadata_dropped, error"
)
