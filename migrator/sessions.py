"""Sessions are derived: built from the archive's raw rows by the pure converter.

`export` builds them for the threads it touched; `migrate rebuild` rebuilds every one offline, after a
converter upgrade or with other conversion options. The options used are recorded in the archive
so `verify` re-derives with the same ones, and a later run without conversion flags keeps them.

`import` and `replay` send only what `choose_sessions` picks: fresh sessions of done threads. A
stale one is rebuilt first (a writer stores it; a reader derives it for this run only), and the
sessions of threads that are not done are left out and listed unless asked for.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from migrator.archive import Archive, SessionRow
from migrator.convert import (
    ConversionOptions,
    FileInfo,
    ThreadBundle,
    convert_thread,
    count_tokens,
    load_encoding,
    session_tool_definitions,
)

__all__ = [
    "BuildSummary",
    "SessionChoice",
    "choose_sessions",
    "rebuild_stale",
    "resolve_options",
    "deterministic_sample",
    "build_sessions",
    "derive_session",
    "load_bundle",
    "load_bundles",
    "session_row",
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


def resolve_options(
    archive: Archive,
    *,
    system_role: Any = None,
    hosted_tools: Any = None,
    citations: Any = None,
) -> ConversionOptions:
    """The recorded options with the flags that were given: a flag left out keeps what is recorded."""
    return recorded_options(archive).with_flags(
        system_role=system_role, hosted_tools=hosted_tools, citations=citations
    )


def record_options(archive: Archive, options: ConversionOptions) -> bool:
    """Record the options; True when they changed, so every session must be rebuilt."""
    return archive.sessions.record_options(OPTIONS_KEY, options.as_dict())


def _file_infos(archive: Archive, file_ids: list[str]) -> dict[str, FileInfo]:
    infos: dict[str, FileInfo] = {}
    for file_id, stored in archive.files.stored(file_ids).items():
        data = None
        # Only images are ever inlined (as data: URLs); other bytes stay in the archive.
        if stored.content == "downloaded" and stored.sha256 and (stored.mime or "").startswith("image/"):
            data = archive.files.blob(stored.sha256)
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


def load_bundles(
    archive: Archive, thread_ids: list[str], assistants: dict[str, dict[str, Any]] | None = None
) -> dict[str, ThreadBundle]:
    """`load_bundle` of many threads, read with a few queries a table for the lot (those without a
    raw thread are left out): per-thread queries were most of a verify or rebuild of 340,000 threads."""
    assistants = assistants if assistants is not None else archive.raw.assistants()
    objects = archive.raw.threads_objects(thread_ids)
    held = sorted(objects)
    refs = archive.files.refs_of_many(held)
    files = _file_infos(archive, sorted({f for ids in refs.values() for f in ids}))
    extras = archive.work.extras(held)
    versions = archive.versions.of_parents("runs", held)
    return {
        tid: ThreadBundle(
            thread=o["thread"],
            messages=o["messages"],
            runs=o["runs"],
            steps=o["steps"],
            assistants=assistants,
            files={f: files[f] for f in refs.get(tid, ()) if f in files},
            extra_metadata=extras.get(tid, {}),
            run_versions=versions.get(tid, {}),
        )
        for tid, o in objects.items()
    }


def load_bundle(
    archive: Archive, thread_id: str, assistants: dict[str, dict[str, Any]] | None = None
) -> ThreadBundle | None:
    objects = archive.raw.thread_objects(thread_id)
    if objects is None:
        return None
    return ThreadBundle(
        thread=objects["thread"],
        messages=objects["messages"],
        runs=objects["runs"],
        steps=objects["steps"],
        assistants=assistants if assistants is not None else archive.raw.assistants(),
        files=_file_infos(archive, archive.files.refs_of(thread_id)),
        extra_metadata=archive.work.extra(thread_id),
        run_versions=archive.versions.of_parent("runs", thread_id),
    )


def derive_session(
    archive: Archive,
    thread_id: str,
    options: ConversionOptions,
    assistants: dict[str, dict[str, Any]] | None = None,
) -> SessionRow | None:
    """Convert one archived thread (None when the archive has no raw thread for it)."""
    bundle = load_bundle(archive, thread_id, assistants)
    return None if bundle is None else session_row(thread_id, bundle, options)


def session_row(thread_id: str, bundle: ThreadBundle, options: ConversionOptions) -> SessionRow:
    """The session of one loaded thread, with what is stored beside it."""
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
        archive.work.mark_all_stale()
    assistants = archive.raw.assistants()
    summary = BuildSummary()
    load_encoding()
    for batch in archive.work.stale_batches():
        if stop():
            summary.interrupted = True
            break
        bundles = load_bundles(archive, batch, assistants)
        rows = [session_row(tid, bundles[tid], options) for tid in batch if tid in bundles]
        archive.sessions.store(rows)
        for row in rows:
            summary.sessions += 1
            summary.messages += len(row.record.get("messages", ()))
            summary.warnings += sum(row.warnings.values())
        if on_batch:
            on_batch(summary)
    archive.sessions.drop_orphan_tools()
    return summary


def rebuild_stale(archive: Archive) -> BuildSummary:
    """Store fresh sessions for every done thread marked stale, with the recorded options (a writer
    calls it before it sends anything)."""
    return build_sessions(archive, recorded_options(archive))


@dataclass
class SessionChoice:
    """Which sessions an import or a replay sends, in thread id order (see `choose_sessions`)."""

    ids: list[str] | None  # sorted; None: every session of a done thread
    missing: list[str]  # asked for by id, with neither a session nor a done thread
    unfinished: list[str]  # threads not done that hold a session: left out unless included
    include_unfinished: bool = False

    def count(self, archive: Archive) -> int:
        if self.ids is not None:
            return len(self.ids)
        without_work = sum(1 for _, status in archive.sessions.orphans() if status is None)
        included = len(self.unfinished) if self.include_unfinished else 0
        return archive.work.counts()["done"] + without_work + included

    def records(self, archive: Archive) -> Iterator[tuple[str, bytes]]:
        """(thread_id, canonical record JSON), streamed. A done thread's stale (or missing) session is
        derived from its raw rows with the recorded options, as `rebuild` would store it."""
        options = recorded_options(archive)
        assistants: dict[str, dict[str, Any]] | None = None
        states = archive.sessions.states(self.ids, include_unfinished=self.include_unfinished)
        for state in states:
            if state.status == "done" and (state.stale or not state.has_session):
                with archive.snapshot():  # one committed state of the thread, whatever a writer does
                    assistants = assistants if assistants is not None else archive.raw.assistants()
                    row = derive_session(archive, state.thread_id, options, assistants)
                if row is not None:
                    yield state.thread_id, orjson.dumps(row.record, option=orjson.OPT_SORT_KEYS)
            elif state.record is not None:
                yield state.thread_id, state.record.encode()


def choose_sessions(
    archive: Archive,
    thread_ids: Iterable[str] = (),
    sample: int | None = None,
    *,
    include_unfinished: bool = False,
) -> SessionChoice:
    """The sessions to send: of the given threads (all when none), a deterministic sample of N."""
    wanted = sorted(set(thread_ids))
    if wanted:
        states = {
            s.thread_id: s for s in archive.sessions.states(wanted, include_unfinished=True, records=False)
        }
        missing = [tid for tid in wanted if tid not in states]
        unfinished = [tid for tid in wanted if tid in states and states[tid].unfinished]
        pool: list[str] | None = [
            tid for tid in wanted if tid in states and (include_unfinished or not states[tid].unfinished)
        ]
    else:
        missing, pool = [], None
        unfinished = [tid for tid, status in archive.sessions.orphans() if status is not None]
    if sample is not None:
        ids = (
            (
                s.thread_id
                for s in archive.sessions.states(include_unfinished=include_unfinished, records=False)
            )
            if pool is None
            else iter(pool)
        )
        pool = deterministic_sample(ids, sample)
    return SessionChoice(pool, missing, unfinished, include_unfinished)
