"""`Archive`: the one owner of the SQLite file and its connection; the tables live in rooms.

It opens, creates and checks archives, applies pending migrations when it opens (a new file and an
old one behave the same), keeps `meta`, holds the writer lock (`lock.py`) from before the first write
until it closes, and owns the transactions: every multi-row write sits inside one `atomic()`, begun
IMMEDIATE. Each concern is a small object with the tables it owns, reached as an attribute:

    archive.work      the work list and thread statuses            (work.py)
    archive.raw       raw objects in the source's order            (raw.py)
    archive.loose     raw objects that arrive one by one (dumps)    (loose.py)
    archive.files     files, blobs, file references                 (files.py)
    archive.findings  failures and page anomalies                   (findings.py)
    archive.sessions  derived sessions, warnings, tool definitions  (sessions.py)
    archive.ledger    the replay ledger                             (ledger.py)
    archive.links     the thread -> conversation map                (links.py)
    archive.records   the rows of an application's message log      (records.py)
    archive.vector_map  vector stores and files rebuilt on targets  (vector_map.py)

Owns the tables `meta` and `_sqlite_migrations`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlite_utils import Database

from migrator.archive.connection import SQLITE_MAGIC, applied_names, read_only_connection, refuse_unless_ours
from migrator.archive.files import Files
from migrator.archive.findings import Findings
from migrator.archive.ledger import ReplayLedger
from migrator.archive.links import ConversationLinks
from migrator.archive.lock import ArchiveLock
from migrator.archive.loose import LooseObjects
from migrator.archive.raw import RawObjects
from migrator.archive.records import RecordThreads
from migrator.archive.schema import MIGRATIONS, RAW_TABLES
from migrator.archive.sessions import Sessions
from migrator.archive.vector_map import VectorStoreMap
from migrator.archive.versions import RawVersions
from migrator.archive.work import WorkList
from migrator.errors import ArchiveLockedError, NotAnArchiveError, WriteError

__all__ = ["Archive", "applied_names"]

# A write waits this long for a lock another process holds on the archive (saying so every
# LOCK_POLL_SECONDS through `Archive.on_lock_wait`), then stops with ArchiveLockedError.
LOCK_WAIT_SECONDS = 600.0
LOCK_POLL_SECONDS = 5.0
# Measured on a 34,000-thread dump: 1,512 bytes a message at 4 KiB pages, 1,428 at 8 KiB, 1,395 at 16 KiB.
PAGE_SIZE = 16384


class Archive:
    """An open archive. Use `Archive.create()` (export, merge) or `Archive.open()` (everything else)."""

    def __init__(
        self, path: Path, db: Database, lock: ArchiveLock | None = None, *, read_only: bool = False
    ) -> None:
        self.path = path
        self.db = db
        # Held by a writer (`open(..., writer=...)`) from before the first write until close().
        self.lock = lock
        # Told how long a write has waited for another process's lock (the CLI prints it).
        self.on_lock_wait: Callable[[float], None] | None = None
        # A write the disk refused: from then on nothing more is written, not even at close.
        self.write_failed = False
        # A reader's connection is SQLite's read-only one: it cannot migrate, switch to WAL or write.
        self.read_only = read_only
        if not read_only:
            MIGRATIONS.apply(db)
        self.work = WorkList(self)
        self.raw = RawObjects(self)
        self.versions = RawVersions(self)
        self.loose = LooseObjects(self)
        self.files = Files(self)
        self.findings = Findings(self)
        self.sessions = Sessions(self)
        self.ledger = ReplayLedger(self)
        self.links = ConversationLinks(self)
        self.records = RecordThreads(self)
        self.vector_map = VectorStoreMap(self)

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, *, writer: str | None = None) -> Archive:
        """Open an archive, creating it (mode 0600) when the path does not exist yet.

        `writer` names the command: it takes the archive's writer lock first (see `lock.py`), so a
        second writer is refused before it creates, migrates or writes anything.
        """
        path = Path(path)
        # Before the lock file is made beside it: a mistaken path leaves nothing behind.
        if path.is_dir():
            raise NotAnArchiveError(
                f"{path}: is a folder; give the archive's file name (e.g. {path / 'support.db'})"
            )
        if not path.exists() and path.parent and not path.parent.exists():
            raise NotAnArchiveError(f"{path}: the folder {path.parent} does not exist")
        if writer and not os.access(path.parent, os.W_OK | os.X_OK):
            raise NotAnArchiveError(
                f"{path}: cannot write in the folder {path.parent} (permission denied; a writer keeps its lock file there)"
            )

        def private() -> None:
            if not path.exists():
                # Created with 0600 before SQLite touches it: the archive holds private conversations.
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))

        return cls._locked(path, writer, private)

    @classmethod
    def open(cls, path: str | Path, *, writer: str | None = None, held: ArchiveLock | None = None) -> Archive:
        """Open an existing archive; never creates one. `writer`: as for `create`; `held`: its
        writer lock, already taken (`ArchiveLock.adopt`).

        Without `writer` the archive is opened to read, through SQLite's read-only mode: no lock,
        no migrations, no WAL switch, no fold at close, so it works while a writer holds the archive
        (and sees what that writer has committed), on a `chmod 444` file and on a read-only mount.
        An archive that needs a schema upgrade is refused, naming the command that upgrades it.
        """
        path = Path(path)
        if not path.exists():
            raise NotAnArchiveError(
                f"{path}: no such archive (only `migrate export` and `migrate merge` create one)"
            )
        if path.is_dir():
            raise NotAnArchiveError(f"{path}: is a folder, not an archive file")
        if writer and not os.access(path.parent, os.W_OK | os.X_OK):
            raise NotAnArchiveError(
                f"{path}: cannot write in the folder {path.parent} (permission denied); `migrate {writer}` "
                "writes the archive and keeps its lock file beside it"
            )
        if path.stat().st_size == 0:
            # SQLite would take an empty file for a new database; only export and merge create one.
            raise NotAnArchiveError(f"{path}: an empty file, not an archive")
        return cls._locked(path, writer, read_only=writer is None, held=held)

    @classmethod
    def _locked(
        cls,
        path: Path,
        writer: str | None,
        first: Callable[[], None] = lambda: None,
        *,
        read_only: bool = False,
        held: ArchiveLock | None = None,
    ) -> Archive:
        """Connect holding the writer lock when `writer` names one; a refusal drops the lock again."""
        lock = held or (ArchiveLock(path, writer).acquire() if writer else None)
        try:
            first()
            return cls._connect(path, lock, read_only=read_only)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

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
            refuse_unless_ours(path, conn)
        except sqlite3.DatabaseError as exc:
            raise NotAnArchiveError(f"{path}: not an archive ({exc})") from None
        finally:
            conn.close()

    @classmethod
    def _connect(cls, path: Path, lock: ArchiveLock | None, *, read_only: bool = False) -> Archive:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise NotAnArchiveError(f"{path}: not an archive (not a SQLite file)")
        if read_only:
            try:
                conn = read_only_connection(path)
            except sqlite3.DatabaseError as exc:
                raise NotAnArchiveError(f"{path}: cannot be read ({exc})") from None
        else:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            # Checked before anything is written: a foreign database is refused untouched.
            refuse_unless_ours(path, conn, read_only=read_only)
            if read_only:
                return cls(path, Database(conn), read_only=True)
            if lock is not None:
                if path.stat().st_size == 0:
                    # A new archive: rows of raw JSON are hundreds of bytes to kilobytes, and a 4 KiB page
                    # leaves a tenth of itself empty around them; larger pages waste less. Only a new file
                    # takes it (SQLite fixes the page size at the first write).
                    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
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
            # After a refused write the WAL holds committed pages the main file does not: folding it
            # into a full disk could leave neither whole, so the pair stays as it is (moved together,
            # it resumes).
            if self.lock is not None and not self.write_failed:
                try:
                    self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self.db.execute("PRAGMA journal_mode = DELETE")
                except sqlite3.OperationalError:
                    pass  # a reader still has it open; SQLite folds the WAL when the last one closes
            self.db.conn.close()
        finally:
            if self.lock is not None:
                self.lock.release()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions and paging ---------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction, begun IMMEDIATE: it takes the write lock before its first read,
        so contention waits for the busy timeout instead of failing when the read snapshot is
        outdated at the first write (what sqlite-utils' deferred `db.atomic()` would do). Nested
        calls become savepoints."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        if self.write_failed:
            raise self._write_error()
        self._begin_immediate(conn)
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _disk_refused(exc):
                self.write_failed = True
                raise self._write_error() from None
            raise

    @contextmanager
    def paced_commits(self) -> Iterator[Callable[[], None]]:
        """One write transaction that the caller commits and begins anew where it chooses (the
        function yielded); what comes after the last call commits at the end. Nested `atomic()`
        blocks inside are savepoints.

        For bulk writes whose keys land at random in an index: a commit writes every page the
        transaction dirtied, so fewer commits write each page fewer times."""
        conn = self.db.conn

        def commit() -> None:
            conn.execute("COMMIT")
            self._begin_immediate(conn)

        with self.atomic():
            yield commit

    def _write_error(self) -> WriteError:
        name = self.path.name
        return WriteError(
            f"disk full writing {name}: free space, or move {name} and {name}-wal together, "
            "then run the same command"
        )

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, waiting for another process's lock in short slices so the wait is shown,
        then ArchiveLockedError (never a bare "database is locked")."""
        waited = 0.0
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_POLL_SECONDS * 1000)}")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                waited += LOCK_POLL_SECONDS
                if waited >= LOCK_WAIT_SECONDS:
                    raise ArchiveLockedError(
                        f"{self.path}: locked by another process for {waited:.0f} s; nothing was lost",
                        hint=None,
                    ) from None
                if self.on_lock_wait is not None:
                    self.on_lock_wait(waited)
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")

    @contextmanager
    def bulk_write(self, cache_mib: int, checkpoint_pages: int) -> Iterator[None]:
        """A larger page cache and rarer WAL checkpoints while a bulk write runs, then the settings
        before (SQLite frees the cache above them).

        A million log rows become a million messages whose ids (digests) land at random in their
        index: with SQLite's 2 MB cache nearly every insert read a 16 KB page and wrote one out, and
        each commit's checkpoint copied the same index pages into the file again (23 GB read and 18
        GB written for one ingest; 8 and 9 with 32 MB and a checkpoint every 8,000 pages)."""
        conn = self.db.conn
        cache = int(conn.execute("PRAGMA cache_size").fetchone()[0])
        checkpoint = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        conn.execute(f"PRAGMA cache_size = {-1024 * int(cache_mib)}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA cache_size = {cache}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")

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

    def keyset(
        self, sql: str, params: Iterable[Any] = (), *, key: int = 0, batch: int = 1000
    ) -> Iterator[list[Any]]:
        """Pages of rows of a query ordered by a unique key, streamed: one index seek a page.

        `sql` ends with `<key> > ? order by <key> limit ?`; those two come after `params`.
        """
        after = ""
        while rows := self.db.execute(sql, [*params, after, batch]).fetchall():
            yield rows
            after = rows[-1][key]

    # -- schema and meta ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS.applied(self.db))

    def applied_migrations(self) -> set[str]:
        return {m.name for m in MIGRATIONS.applied(self.db)}

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("select value from meta where key = ?", [key]).fetchone()
        return orjson.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.atomic():
            self.db.execute(
                "insert or replace into meta(key, value) values (?, ?)", [key, orjson.dumps(value).decode()]
            )

    # -- the whole archive ---------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """The figures `migrate stats` reports (the names are part of the CLI contract)."""
        raw, work = self.raw, self.work.counts()
        return {
            "assistants": raw.count("assistants"),
            "threads": raw.count("threads"),
            "threads_requested": sum(work.values()),
            "threads_done": work["done"],
            "threads_pending": work["pending"],
            "threads_failed": work["failed"],
            "threads_missing": work["missing"],
            **{
                t: raw.count(t)
                for t in ("messages", "runs", "run_steps", "vector_stores", "vector_store_files")
            },
            **self.files.counts(),
            **self.sessions.counts(),
            **self.findings.counts(),
            "warnings": self.sessions.warning_totals(),
        }

    def content_hash(self) -> str:
        """One digest over the logical content: every raw object's canonical hash, in key order.

        Two archives with the same objects have the same content hash, however they were filled.
        """
        h = hashlib.sha256()
        for table, keys in RAW_TABLES.items():
            order = ", ".join(keys)
            for row in self.db.execute(f"select {order}, hash from {table} order by {order}"):
                h.update(orjson.dumps([table, *row]))
                h.update(b"\n")
        for (sha,) in self.db.execute("select sha256 from blobs order by sha256"):
            h.update(b"blob " + sha.encode() + b"\n")
        for row in self.versions.hashes():
            h.update(orjson.dumps(["version", *row]))
            h.update(b"\n")
        return "sha256:" + h.hexdigest()


def _disk_refused(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL), or the OS saying no space is left."""
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == 13
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
