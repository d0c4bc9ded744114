"""The dump layout `migrate dump` writes and `--from-dump` reads back, and its naming rules.

```
DIR/migrate-dump.json                 manifest (written last, atomically: a dump without it was cut short)
DIR/.migrate-dump.partial             present only while the dump is being written
DIR/threads.jsonl                     {"thread_id": ..., **extra} per dumped thread (a --threads file)
DIR/assistants.json                   list page of every assistant
DIR/threads/<thread_id>/thread.json   the thread object
DIR/threads/<thread_id>/messages.json list page (runs.json, steps.json likewise)
DIR/vector_stores/<vs_id>/vector_store.json, files.json (list page of vector_store.file)
DIR/files.jsonl                       one file object a line
DIR/files/<file_id>                   downloaded bytes
DIR/parsed_text/<file_id>.json        vector_store.file_content.page holding a file's parsed text
DIR/versions.jsonl                    {"raw_table", "id", "parent_id", "origin", "raw"} per other version
                                      of an object (raw_versions): read as versions, never as current
```
List pages are the API's shape (`object: list`, `data`, `first_id`, `last_id`, `has_more`) plus two
hints for pages that may be empty: `thread_id`/`vector_store_id` (the parent) and `item_object`
(what `data` holds). Names come from ids only after `safe_name` accepted them; any other id (or one
that collides on a case-insensitive disk) is written under `fallback_name(id)`.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "DUMP_FORMAT",
    "FILES_DIR",
    "MANIFEST",
    "PARTIAL",
    "MANIFEST_OBJECT",
    "THREAD_LIST",
    "VERSIONS",
    "HINT_ITEM_OBJECT",
    "fallback_name",
    "is_safe_name",
    "names_for_id",
]

MANIFEST = "migrate-dump.json"
PARTIAL = ".migrate-dump.partial"
MANIFEST_OBJECT = "migrator.dump"
DUMP_FORMAT = "migrator.dump/v1"
THREAD_LIST = "threads.jsonl"
VERSIONS = "versions.jsonl"
FILES_DIR = "files"
HINT_ITEM_OBJECT = "item_object"

# Ids as the API issues them (asst_…, thread_…, file-…, vs_…, Azure's assistant-…): letters, digits,
# `_` and `-`, no dots, so no `..`, no hidden names, no separators, no drive letters.
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Names Windows refuses whatever the extension.
_RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])", re.IGNORECASE)


def is_safe_name(object_id: str) -> bool:
    return bool(_SAFE.fullmatch(object_id)) and not _RESERVED.fullmatch(object_id)


def fallback_name(object_id: str) -> str:
    """A name derived from the id's digest, for ids that cannot be names themselves."""
    return "id-sha256-" + hashlib.sha256(object_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def names_for_id(object_id: str) -> list[str]:
    """The names a dump may have saved this id's bytes under, in the order to try them."""
    names = [object_id] if is_safe_name(object_id) else []
    return [*names, fallback_name(object_id)]
