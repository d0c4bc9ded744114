"""What `--to vector-stores` sends for each store and file: names, bodies, metadata. Pure, no I/O.

- A file goes up as the bytes the archive downloaded, under its own filename; when the source refused
  the download, as the parsed text its vector store served, under a text filename derived from the
  original (`manual.pdf` -> `manual.pdf.txt`). A source filename is never trusted as a path: directories
  (`/` and `\\`), control characters and bidirectional overrides are removed, `.` and `..` are no names,
  and a name left empty falls back to the file id with an extension from the content.
- A store is created with its name, description, metadata (its own pairs after `source_vector_store_id`,
  within the API's limits) and `expires_after`; each file is attached with its attributes and the
  chunking strategy the source used for it, when it is one the API takes (`auto` or `static`).
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from migrator.importers.common import fit_metadata

__all__ = [
    "MAX_NAME_BYTES",
    "SOURCE_KEY",
    "Upload",
    "attach_body",
    "safe_filename",
    "store_body",
    "upload_for",
]

SOURCE_KEY = "source_vector_store_id"
MAX_NAME_BYTES = 255  # what every common filesystem holds, should anyone save the file under it
# Invisible characters that reorder or hide what a name shows (U+202E turns `cod.exe` into `exe.doc`).
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Upload:
    """One file as it goes to `POST /files`."""

    name: str
    data: bytes
    content: str  # downloaded | parsed_text


def safe_filename(name: Any, fallback: str) -> str:
    """The last path segment of `name`, without control characters; `fallback` when nothing is left."""
    text = name if isinstance(name, str) else ""
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc")
    text = _BIDI.sub("", text).strip()
    if text in ("", ".", ".."):
        text = fallback
    while len(text.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        # Shorten the stem, keep the extension: ingestion goes by it.
        text = (stem[:-1] + dot + ext) if stem and len(ext) < 16 else text[:-1]
    return text


def upload_for(file_id: str, filename: Any, kind: str, data: bytes | None, mime: str | None) -> Upload | None:
    """What to upload for a file the archive holds as `kind` (downloaded | parsed_text | missing).

    None when there is nothing to send: no bytes, or a parsed text that is empty (a file its source
    never managed to index).
    """
    if data is None or kind not in ("downloaded", "parsed_text") or (kind == "parsed_text" and not data):
        return None
    extension = (mimetypes.guess_extension((mime or "").split(";")[0].strip()) or ".bin") if mime else ".bin"
    if kind == "parsed_text":
        base = safe_filename(filename, file_id)
        # The derived name keeps the original in it, so the target's file list still says what it was.
        name = base if base.lower().endswith(".txt") else safe_filename(base + ".txt", file_id + ".txt")
        return Upload(name, data, kind)
    return Upload(safe_filename(filename, file_id + extension), data, kind)


def store_body(store_id: str, store: dict[str, Any] | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The `POST /vector_stores` body of a source store, and the metadata pairs left out (key, why)."""
    store = store or {}
    metadata, dropped = fit_metadata({SOURCE_KEY: store_id}, store.get("metadata") or {})
    body: dict[str, Any] = {"metadata": metadata}
    for key in ("name", "description"):
        if isinstance(store.get(key), str):
            body[key] = store[key]
    expires = store.get("expires_after")
    if isinstance(expires, dict) and expires.get("anchor") and isinstance(expires.get("days"), int):
        body["expires_after"] = {"anchor": expires["anchor"], "days": expires["days"]}
    return body, dropped


def attach_body(file_id: str, source_row: dict[str, Any]) -> dict[str, Any]:
    """The `POST /vector_stores/{id}/files` body: the target's file id, the source's attributes and chunking."""
    body: dict[str, Any] = {"file_id": file_id}
    attributes = source_row.get("attributes")
    if isinstance(attributes, dict) and attributes:
        body["attributes"] = attributes
    chunking = source_row.get("chunking_strategy")
    kind = chunking.get("type") if isinstance(chunking, dict) else None
    if kind == "static" and isinstance(chunking.get("static"), dict):
        static = chunking["static"]
        body["chunking_strategy"] = {
            "type": "static",
            "static": {
                k: static[k] for k in ("max_chunk_size_tokens", "chunk_overlap_tokens") if k in static
            },
        }
    elif kind == "auto":
        body["chunking_strategy"] = {"type": "auto"}
    # `other` (indexed before strategies existed) says nothing the target could use: its default applies.
    return body
