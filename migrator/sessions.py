"""Sessions are derived: built from the archive's raw rows by the pure converter.

`export` builds them for the threads it touched; `migrate rebuild` rebuilds every one offline, after a
converter upgrade or with other conversion options. The options used are recorded in the archive
so `verify` re-derives with the same ones.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from migrator.archive import Archive, SessionRow
from migrator.convert import (
    ConversionOptions,
    FileInfo,
    ThreadBundle,
    convert_thread,
    count_tokens,
    session_tool_definitions,
)

__all__ = [
    "BuildSummary",
    "deterministic_sample",
    "build_sessions",
    "derive_session",
    "load_bundle",
    "recorded_options",
    "record_options",
]

OPTIONS_KEY = "conversion_options"


@dataclass
class BuildSummary:
    sessions: int = 0
    messages: int = 0
    warnings: int = 0
    interrupted: bool = False  # stopped between two batches; the rest stay stale for the next run


def deterministic_sample(thread_ids: Iterable[str], n: int) -> list[str]:
    """The n ids with the smallest sha256, sorted: the same sample from the same ids on any machine,
    stable as the archive grows (an id stays unless a smaller hash arrives), and streamed (only n
    ids are held). `replay --sample` and `import --sample` both choose with it."""
    if n <= 0:
        return []
    return sorted(heapq.nsmallest(n, thread_ids, key=lambda tid: hashlib.sha256(tid.encode()).digest()))


def recorded_options(archive: Archive) -> ConversionOptions:
    stored = archive.get_meta(OPTIONS_KEY)
    return ConversionOptions.from_dict(stored) if stored else ConversionOptions()


def record_options(archive: Archive, options: ConversionOptions) -> bool:
    """Record the options; True when they changed, so every session must be rebuilt."""
    return archive.record_conversion_options(OPTIONS_KEY, options.as_dict())


def _file_infos(archive: Archive, file_ids: list[str]) -> dict[str, FileInfo]:
    infos: dict[str, FileInfo] = {}
    for file_id, stored in archive.files_for(file_ids).items():
        data = None
        # Only images are ever inlined (as data: URLs); other bytes stay in the archive.
        if stored.content == "downloaded" and stored.sha256 and (stored.mime or "").startswith("image/"):
            data = archive.blob(stored.sha256)
        infos[file_id] = FileInfo(
            file_id=file_id,
            filename=stored.filename,
            sha256=stored.sha256,
            bytes=stored.bytes,
            content=stored.content,  # type: ignore[arg-type]
            mime=stored.mime,
            data=data,
        )
    return infos


def load_bundle(
    archive: Archive, thread_id: str, assistants: dict[str, dict[str, Any]] | None = None
) -> ThreadBundle | None:
    objects = archive.thread_objects(thread_id)
    if objects is None:
        return None
    return ThreadBundle(
        thread=objects["thread"],
        messages=objects["messages"],
        runs=objects["runs"],
        steps=objects["steps"],
        assistants=assistants if assistants is not None else archive.assistants(),
        files=_file_infos(archive, archive.file_refs_of(thread_id)),
        extra_metadata=archive.thread_extra(thread_id),
    )


def derive_session(
    archive: Archive,
    thread_id: str,
    options: ConversionOptions,
    assistants: dict[str, dict[str, Any]] | None = None,
) -> SessionRow | None:
    """Convert one archived thread (None when the archive has no raw thread for it)."""
    bundle = load_bundle(archive, thread_id, assistants)
    if bundle is None:
        return None
    record = convert_thread(bundle, options)
    warnings: dict[str, int] = {}
    for warning in record.get("warnings", ()):
        warnings[warning["code"]] = warnings.get(warning["code"], 0) + 1
    return SessionRow(
        thread_id=thread_id,
        record=record,
        tokens=count_tokens(record),
        tools=session_tool_definitions(record),
        warnings=warnings,
    )


def build_sessions(
    archive: Archive,
    options: ConversionOptions,
    *,
    rebuild_all: bool = False,
    on_batch: Callable[[BuildSummary], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> BuildSummary:
    """Build the sessions of every done thread marked stale; resumable, one transaction a batch."""
    if record_options(archive, options) or rebuild_all:
        archive.mark_all_sessions_stale()
    assistants = archive.assistants()
    summary = BuildSummary()
    for batch in archive.stale_session_thread_ids():
        if stop():
            summary.interrupted = True
            break
        rows = [row for tid in batch if (row := derive_session(archive, tid, options, assistants))]
        archive.store_sessions(rows)
        for row in rows:
            summary.sessions += 1
            summary.messages += len(row.record.get("messages", ()))
            summary.warnings += sum(row.warnings.values())
        if on_batch:
            on_batch(summary)
    archive.drop_orphan_tool_definitions()
    return summary
