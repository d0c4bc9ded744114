"""`migrate merge`: fold shard archives (from `export --shard K/N`) into one; idempotent.

Raw objects are upserted; for a thread the better status wins (done > failed > missing > pending);
for a file the better content wins (downloaded > parsed_text > suspect bytes > missing). Reads the source through
SQL on the target's connection (`attach`), one transaction a source.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.archive import RAW_TABLES, Archive
from migrator.archive.database import applied_names
from migrator.archive.files import download_suspect_sql
from migrator.errors import UsageError
from migrator.sessions import build_sessions, recorded_options

__all__ = ["MergeSummary", "merge_archives", "merge_from"]

_STATUS_RANK = {"done": 3, "failed": 2, "missing": 1, "pending": 0}
_CONTENT_RANK = {"downloaded": 2, "parsed_text": 1, "missing": 0}
# Meta a shard carries that the merged archive needs (the listing marks, the conversion options).
_META_KEYS = ("assistants_exported", "vector_stores_exported", "conversion_options")


@dataclass
class MergeSummary:
    added: dict[str, int] = field(default_factory=dict)  # raw table -> rows it gained
    sessions_built: int = 0
    counts: dict[str, Any] = field(default_factory=dict)


def check_sources(archive: Path, sources: list[Path]) -> None:
    """Refuse anything that is not an archive (or is the target) before the target is created."""
    for source in sources:
        if source.resolve() == archive.resolve():
            raise UsageError(f"{source}: cannot merge an archive into itself")
        Archive.check(source)


def merge_archives(archive: Archive, sources: list[Path]) -> MergeSummary:
    """Fold every source into `archive`, then build the sessions of what changed."""
    summary = MergeSummary()
    for source in sources:
        for table, n in merge_from(archive, source).items():
            summary.added[table] = summary.added.get(table, 0) + n
    summary.sessions_built = build_sessions(archive, recorded_options(archive)).sessions
    summary.counts = archive.counts()
    return summary


def _file_rank(row: str) -> str:
    """A file row's rank; downloaded bytes not as long as the file object says rank below a parsed
    text (a gateway's error page stored as the file must not win over the real text)."""
    suspect = download_suspect_sql(f"{row}.content", f"{row}.blob_sha256", f"{row}.raw")
    return f"(case when {suspect} then 0.5 else {_rank(f'{row}.content', _CONTENT_RANK)} end)"


def _rank(column: str, ranks: dict[str, int]) -> str:
    """A SQL expression ranking a status column (the names are ours, not user input)."""
    return "(case " + " ".join(f"when {column} = '{k}' then {v}" for k, v in ranks.items()) + " else -1 end)"


def _same_schema(archive: Archive, other: Path) -> bool:
    conn = sqlite3.connect(f"{other.resolve().as_uri()}?mode=ro", uri=True)
    try:
        theirs = applied_names(conn)
    finally:
        conn.close()
    return theirs == archive.applied_migrations()


def merge_from(archive: Archive, other: Path) -> dict[str, int]:
    """Fold another archive (a shard) into this one; merging the same file twice changes nothing."""
    Archive.check(other)
    if not _same_schema(archive, other):
        # An older shard: bring it up to our schema first (the one write merge makes to a source).
        Archive.open(other, writer="merge").close()
    db = archive.db
    before = {table: db[table].count for table in RAW_TABLES}
    db.execute("attach database ? as src", [str(other)])
    try:
        with archive.atomic():
            for table in RAW_TABLES:
                if table == "files":
                    continue
                cols = ", ".join(c.name for c in db[table].columns)
                db.execute(f"insert or replace into {table} ({cols}) select {cols} from src.{table}")
            db.execute("insert or ignore into blobs select * from src.blobs")
            db.execute(
                "insert into files select * from src.files where true on conflict(id) do update set "
                "raw = excluded.raw, hash = excluded.hash, content = excluded.content, "
                "blob_sha256 = excluded.blob_sha256, text_from_vector_store = excluded.text_from_vector_store "
                f"where {_file_rank('excluded')} > {_file_rank('files')}"
            )
            for table in ("file_refs", "anomalies"):
                db.execute(f"insert or ignore into {table} select * from src.{table}")
            archive.versions.merge_from_attached("src")
            archive.records.merge_from_attached("src")
            cols = ", ".join(c.name for c in db["work"].columns)
            db.execute(
                f"insert into work ({cols}) select {cols} from src.work where true "
                "on conflict(thread_id) do update set "
                + ", ".join(
                    f"{c.name} = excluded.{c.name}" for c in db["work"].columns if c.name != "thread_id"
                )
                + f" where {_rank('excluded.status', _STATUS_RANK)} > {_rank('work.status', _STATUS_RANK)}"
            )
            db.execute(
                "update work set session_stale = 1 where thread_id in (select thread_id from src.work)"
            )
            db.execute("insert or ignore into failures select * from src.failures")
            db.execute(
                "delete from failures where entity = 'thread' and entity_id in "
                "(select thread_id from work where status = 'done')"
            )
            db.execute("delete from failures where entity = 'file' and entity_id in (select id from files)")
            for key in _META_KEYS:
                db.execute("insert or ignore into meta select * from src.meta where key = ?", [key])
    finally:
        db.execute("detach database src")
    return {table: db[table].count - n for table, n in before.items()}
