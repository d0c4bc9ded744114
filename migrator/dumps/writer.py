"""`migrate dump`: write everything an archive holds as saved API JSON that `--from-dump` reads back.

The raw text of each object is copied as stored (never re-serialised), so an ingest of the dump
gives the same rows, hashes and sessions. One thread at a time: memory stays flat. The manifest is
written last, so a dump cut short has none (and its bytes are not picked up by an ingest).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from migrator.archive import Archive
from migrator.archive.canonical import loads
from migrator.dumps.layout import (
    DUMP_FORMAT,
    FILES_DIR,
    HINT_ITEM_OBJECT,
    MANIFEST,
    MANIFEST_OBJECT,
    PARTIAL,
    THREAD_LIST,
    VERSIONS,
    names_for_id,
)
from migrator.errors import UsageError

__all__ = ["DumpSummary", "write_dump"]

_PARSED_TEXT_DIR = "parsed_text"


@dataclass
class DumpSummary:
    directory: Path
    written: Counter[str] = field(default_factory=Counter)  # per object type (and file_bytes, parsed_texts)
    renamed: int = 0  # ids written under a digest name (not a safe file name, or a case clash)
    threads_without_rows: Counter[str] = field(default_factory=Counter)  # work rows with nothing to dump
    problems: list[str] = field(default_factory=list)

    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "written": dict(sorted(self.written.items())),
            "renamed": self.renamed,
            "threads_without_rows": dict(sorted(self.threads_without_rows.items())),
            "problems": self.problems,
        }


def write_dump(archive: Archive, directory: Path) -> DumpSummary:
    """Write the dump into `directory`, which must not exist yet or be empty."""
    directory = Path(directory)
    _prepare(directory)
    # Until the manifest is in place the folder says it is a dump being written, even to a reader
    # that does not look at its pages: a killed `migrate dump` never looks complete.
    (directory / PARTIAL).write_bytes(b"")
    writer = _Writer(archive, directory)
    writer.assistants()
    writer.vector_stores()
    writer.threads()
    writer.files()
    writer.versions()
    writer.manifest()
    (directory / PARTIAL).unlink()
    return writer.summary


def _prepare(directory: Path) -> None:
    if directory.exists():
        if not directory.is_dir():
            raise UsageError(f"{directory}: exists and is not a folder")
        if any(directory.iterdir()):
            raise UsageError(
                f"{directory}: is not empty", hint="migrate dump writes into a new or empty folder"
            )
        return
    if not directory.parent.is_dir():
        raise UsageError(f"{directory}: the folder {directory.parent} does not exist")
    directory.mkdir(mode=0o700)  # a dump holds the same private conversations as the archive


def _first_id(raw: str) -> Any:
    return loads(raw).get("id")


def _write_page(fh: IO[bytes], raws: Iterable[str], has_more: bool, hints: dict[str, str]) -> int:
    """A list page in the API's shape, streamed from raw texts; returns how many objects it holds."""
    fh.write(b'{"object":"list","data":[')
    first = last = None
    count = 0
    for raw in raws:
        if count:
            fh.write(b",")
        fh.write(raw.encode("utf-8", "surrogatepass"))
        first = first or raw
        last = raw
        count += 1
    tail = {
        "first_id": _first_id(first) if first else None,
        "last_id": _first_id(last) if last else None,
        "has_more": has_more,
        **hints,
    }
    fh.write(b"]," + orjson.dumps(tail)[1:])
    return count


class _Writer:
    def __init__(self, archive: Archive, root: Path) -> None:
        self.archive = archive
        self.root = root
        self.summary = DumpSummary(root)

    def fresh(self, folder: Path, object_id: str, suffix: str = "") -> Path:
        """A path named after the id when that is a safe name not taken yet (case-insensitively)."""
        for name in names_for_id(object_id):
            path = folder / f"{name}{suffix}"
            if not path.exists():
                if name != object_id:
                    self.summary.renamed += 1
                return path
        raise UsageError(f"{folder}: two objects with the id {object_id!r}")

    def page(
        self, path: Path, raws: Iterable[str], kind: str, *, has_more: bool = False, **hints: str
    ) -> int:
        with open(path, "xb") as fh:
            count = _write_page(fh, raws, has_more, {**hints, HINT_ITEM_OBJECT: kind})
        self.summary.written[kind] += count
        return count

    def assistants(self) -> None:
        self.page(self.root / "assistants.json", self.archive.raw.texts("assistants"), "assistant")

    def vector_stores(self) -> None:
        folder = self.root / "vector_stores"
        for store_id in self.archive.raw.vector_store_ids():
            folder.mkdir(exist_ok=True)
            here = self.fresh(folder, store_id)
            here.mkdir()
            if (raw := self.archive.raw.of("vector_stores", store_id)) is not None:
                (here / "vector_store.json").write_text(raw, "utf-8", "surrogatepass")
                self.summary.written["vector_store"] += 1
            raws = self.archive.raw.texts("vector_store_files", store_id)
            self.page(here / "files.json", raws, "vector_store.file", vector_store_id=store_id)

    def threads(self) -> None:
        folder = self.root / "threads"
        folder.mkdir()
        with open(self.root / THREAD_LIST, "xb") as listing:
            for thread_id, status, extra in self.archive.raw.thread_ids_with_rows():
                self.thread(folder, thread_id, status)
                listing.write(orjson.dumps({"thread_id": thread_id, **extra}) + b"\n")
        self.summary.threads_without_rows.update(self.archive.work.statuses_without_rows())

    def thread(self, folder: Path, thread_id: str, status: str | None) -> None:
        raw = self.archive.raw.thread_raw(thread_id)
        here = self.fresh(folder, thread_id)
        here.mkdir()
        if raw.thread is not None:
            (here / "thread.json").write_text(raw.thread, "utf-8", "surrogatepass")
            self.summary.written["thread"] += 1
        # A thread the export did not finish may hold only part of its messages: say so the API's way.
        unfinished = status != "done"
        self.page(
            here / "messages.json", raw.messages, "thread.message", thread_id=thread_id, has_more=unfinished
        )
        if raw.runs:
            self.page(here / "runs.json", raw.runs, "thread.run", thread_id=thread_id)
        if raw.steps:
            self.page(here / "steps.json", raw.steps, "thread.run.step", thread_id=thread_id)

    def files(self) -> None:
        with open(self.root / "files.jsonl", "xb") as listing:
            for file_id in self.archive.files.ids():
                listing.write(
                    (self.archive.raw.of("files", file_id) or "").encode("utf-8", "surrogatepass") + b"\n"
                )
                self.summary.written["file"] += 1
                self.content(file_id)

    def content(self, file_id: str) -> None:
        held = self.archive.files.record(file_id)
        if held is None or held[1].kind == "missing":
            return
        content = held[1]
        if content.data is None:
            self.summary.problems.append(f"{file_id}: content {content.kind} recorded, but its blob is gone")
            return
        if content.kind == "downloaded":
            folder = self.root / FILES_DIR
            folder.mkdir(exist_ok=True)
            with open(self.fresh(folder, file_id), "xb") as fh:
                fh.write(content.data)
            self.summary.written["file_bytes"] += 1
            return
        try:
            text = content.data.decode("utf-8")
        except UnicodeDecodeError:
            self.summary.problems.append(
                f"{file_id}: parsed text that is not UTF-8 cannot be written as JSON"
            )
            return
        page: dict[str, Any] = {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": text}],
            "has_more": False,
            "next_page": None,
            "file_id": file_id,
        }
        if content.vector_store_id is not None:
            page["vector_store_id"] = content.vector_store_id
        folder = self.root / _PARSED_TEXT_DIR
        folder.mkdir(exist_ok=True)
        with open(self.fresh(folder, file_id, ".json"), "xb") as fh:
            fh.write(orjson.dumps(page))
        self.summary.written["parsed_texts"] += 1

    def versions(self) -> None:
        """Every version of objects read more than once; `raw` is the stored text, unchanged."""
        with open(self.root / VERSIONS, "xb") as fh:
            for v in self.archive.versions.iter_all():
                entry = {"raw_table": v.raw_table, "id": v.id, "parent_id": v.parent_id, "origin": v.origin}
                # stdlib json: it writes a lone surrogate as \ud83d where orjson refuses it
                fh.write(json.dumps({**entry, "raw": v.raw}).encode() + b"\n")
                self.summary.written["versions"] += 1

    def manifest(self) -> None:
        document = {
            "object": MANIFEST_OBJECT,
            "format": DUMP_FORMAT,
            "files_dir": FILES_DIR,
            "threads": THREAD_LIST,
            "versions": VERSIONS,
            "written": dict(sorted(self.summary.written.items())),
        }
        tmp = self.root / f".{MANIFEST}.tmp"  # whole or absent: never a manifest cut in half
        with open(tmp, "xb") as fh:
            fh.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, self.root / MANIFEST)
