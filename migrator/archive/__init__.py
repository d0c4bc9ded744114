"""The SQLite archive: one `Archive` owning the connection, and small rooms owning its tables.

Imports nothing else of the project but the error tree (`migrator.errors`, a leaf). See
docs/architecture.md for which room owns which table.
"""

from migrator.archive.canonical import canonical_json, digest, object_hash
from migrator.archive.database import Archive
from migrator.archive.schema import RAW_TABLES
from migrator.archive.types import (
    Anomaly,
    ConversationLink,
    Failure,
    FileContent,
    LooseObject,
    ReplayRow,
    SessionRow,
    SessionState,
    StoredFile,
    ThreadRaw,
    ThreadResult,
    ThreadSettlement,
)

__all__ = [
    "Archive",
    "Anomaly",
    "ConversationLink",
    "Failure",
    "FileContent",
    "LooseObject",
    "RAW_TABLES",
    "ReplayRow",
    "SessionRow",
    "SessionState",
    "StoredFile",
    "ThreadRaw",
    "ThreadResult",
    "ThreadSettlement",
    "canonical_json",
    "digest",
    "object_hash",
]
