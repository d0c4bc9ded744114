"""What a file must be to open as an archive: a SQLite file carrying our schema steps, none unknown,
and how a reader connects without ever writing. A leaf of `database.py`; it owns no table."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from migrator.archive.schema import MIGRATION_SET, known_migration_names
from migrator.errors import NewerSchemaError, NotAnArchiveError

__all__ = ["SQLITE_MAGIC", "UPGRADE_COMMAND", "applied_names", "read_only_connection", "refuse_unless_ours"]

SQLITE_MAGIC = b"SQLite format 3\x00"


def applied_names(conn: sqlite3.Connection) -> set[str]:
    """The names of our schema steps applied to the database on this connection."""
    sql = "select name from _sqlite_migrations where migration_set = ?"
    return {row[0] for row in conn.execute(sql, [MIGRATION_SET])}


# The writing command that upgrades an archive offline, named when a reader finds one to upgrade.
UPGRADE_COMMAND = "migrate rebuild"


def refuse_unless_ours(path: Path, conn: sqlite3.Connection, *, read_only: bool = False) -> None:
    """An empty file is a new archive (to a writer); anything else must carry our migrations, none
    unknown. A reader never writes, so it refuses what would need the schema written or upgraded."""
    tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
    if not tables:
        if read_only:
            raise NotAnArchiveError(
                f"{path}: a SQLite file without tables, not an archive (only `migrate export` and "
                "`migrate merge` create one)"
            )
        return
    applied = applied_names(conn) if "_sqlite_migrations" in tables else set()
    if not applied:
        raise NotAnArchiveError(f"{path}: a SQLite file, but not a migrate archive")
    unknown = applied - known_migration_names()
    if unknown:
        raise NewerSchemaError(
            f"{path}: written by a newer migrate (schema steps {', '.join(sorted(unknown))}); upgrade migrate to read it"
        )
    pending = known_migration_names() - applied
    if read_only and pending:
        raise NotAnArchiveError(
            f"{path}: written by an older migrate and not upgraded yet (schema steps "
            f"{', '.join(sorted(pending))} missing); this command only reads it",
            hint=f"`{UPGRADE_COMMAND} {path}` upgrades it offline, as does any command that writes it",
        )


def read_only_connection(path: Path) -> sqlite3.Connection:
    """SQLite's read-only mode (`mode=ro`): nothing can be written through it, whatever a command
    does. Where SQLite cannot even keep its shared-memory index beside the file (a WAL archive in
    a folder we may not write: a read-only mount, a CI artifact), nobody can be writing it either,
    so it is read as immutable."""
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None
    )
