"""The SQLite archive: one `Archive` owning the connection, and small rooms owning its tables.

Imports nothing else of the project but the error tree (`migrator.errors`, a leaf). See
docs/architecture.md for which room owns which table.
"""

from migrator.archive import types
from migrator.archive.canonical import canonical_json, digest, object_hash
from migrator.archive.database import Archive
from migrator.archive.schema import RAW_TABLES
from migrator.archive.types import *  # noqa: F403  the dataclasses the rooms take and give

__all__ = ["Archive", "RAW_TABLES", "canonical_json", "digest", "object_hash", *types.__all__]
