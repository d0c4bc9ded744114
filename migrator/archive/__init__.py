"""The SQLite archive: schema, migrations, upserts, queries. Imports nothing else of the project
but the error tree."""

from migrator.archive.canonical import canonical_json, digest, object_hash
from migrator.archive.store import (
    RAW_TABLES,
    Anomaly,
    Archive,
    ConversationLink,
    Failure,
    FileContent,
    SessionRow,
    StoredFile,
    ThreadResult,
)

__all__ = [
    "Archive",
    "Anomaly",
    "ConversationLink",
    "Failure",
    "FileContent",
    "RAW_TABLES",
    "SessionRow",
    "StoredFile",
    "ThreadResult",
    "canonical_json",
    "digest",
    "object_hash",
]
