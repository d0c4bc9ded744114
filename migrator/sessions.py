"""Sessions are derived: built from the archive's raw rows by the pure converter.

`export` builds them for the threads it touched; `migrate rebuild` rebuilds every one offline, after a
converter upgrade or with other conversion options. The options used are recorded in the archive
so `verify` re-derives with the same ones, and a later run without conversion flags keeps them.

`import` and `replay` send only what `choose_sessions` picks: fresh sessions of done threads. A
stale one is rebuilt first (a writer stores it; a reader derives it for this run only), and the
sessions of threads that are not done are left out and listed unless asked for.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import heapq
import multiprocessing
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from migrator.archive import Archive, SessionRow, canonical_json
from migrator.archive.sessions import pack
from migrator.convert import (
    ConversionOptions,
    FileInfo,
    ThreadBundle,
    convert_thread,
    count_tokens,
    load_encoding,
    session_tool_definitions,
)
from migrator.errors import UsageError
from migrator.gcpace import fewer_collections

__all__ = [
    "BuildSummary",
    "DeriveFailed",
    "check_workers",
    "default_workers",
    "derive_batches",
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
    archive: Archive,
    thread_ids: list[str],
    assistants: dict[str, dict[str, Any]] | None = None,
    extras: dict[str, dict[str, Any]] | None = None,
) -> dict[str, ThreadBundle]:
    """`load_bundle` of many threads, read with a few queries a table for the lot (those without a
    raw thread are left out): per-thread queries were most of a verify or rebuild of 340,000 threads.
    `extras`: the threads' work extras (those with none left out), when the caller read them already."""
    assistants = assistants if assistants is not None else archive.raw.assistants()
    objects = archive.raw.threads_objects(thread_ids)
    held = sorted(objects)
    refs = archive.files.refs_of_many(held)
    files = _file_infos(archive, sorted({f for ids in refs.values() for f in ids}))
    extras = archive.work.extras(held) if extras is None else extras
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
    workers: int = 0,
    batch: int = 500,
    batches: Iterable[list[str]] | None = None,
) -> BuildSummary:
    """Build the sessions of every done thread marked stale; resumable, whole batches a transaction.
    `workers` > 0 converts in that many processes (see derive.py); the sessions are the same.
    `batches` (done threads, committed before each is drawn) replaces the stale ones: an ingest
    hands its threads over as it rules on them."""
    check_workers(workers)
    if record_options(archive, options) or rebuild_all:
        archive.work.mark_all_stale()
    summary = BuildSummary()
    # The stale threads are built in commits that grow (see _commits); handed-over batches each
    # commit alone, as the ingest that hands them over expects.
    grouped = batches is None
    batches = derive_batches(
        archive,
        archive.work.stale_batches(batch) if batches is None else batches,
        lambda ids: ids,
        options,
        rows=True,
        workers=workers,
    )
    commits = _commits(batch)
    limit, held, held_bytes, opened = next(commits), [], 0, False

    def commit() -> None:
        nonlocal limit, held, held_bytes, opened
        archive.work.fresh_many(held)
        transaction.close()
        limit, held, held_bytes, opened = next(commits), [], 0, False

    try:
        with contextlib.ExitStack() as transaction:
            for ids, derived in batches:
                if stop():
                    summary.interrupted = True
                    break
                rows = [derived[tid] for tid in ids if tid in derived]
                if not grouped:
                    archive.sessions.store(rows)
                else:
                    if not opened:
                        transaction.enter_context(archive.atomic())
                        opened = True
                    held_bytes += archive.sessions.store(rows, fresh=False)
                    held += [row.thread_id for row in rows]
                    if len(held) >= limit or held_bytes >= _COMMIT_BYTES:
                        commit()
                for row in rows:
                    summary.sessions += 1
                    summary.messages += row.messages
                    summary.warnings += sum(n for _code, n in row.warnings)
                if on_batch:
                    on_batch(summary)
            if opened:  # the end, or a stop: what the open transaction holds is kept
                commit()
    finally:
        batches.close()  # the batches still in flight are dropped: they stay stale
    archive.sessions.drop_orphan_tools()
    return summary


# A commit of a build rewrites every page of `work` its threads' rows sit on (their stale flags), and
# those rows sit in the order the threads were requested, not in id order: at 500 threads a commit,
# 340,000 threads rewrote 5 GB of pages (most of a rebuild's writes). So commits grow from one batch
# (a killed run soon keeps its first sessions) to many, up to so many record bytes (the WAL holds an
# open transaction whole).
_COMMIT_THREADS = 16_000
_COMMIT_BYTES = 32 * 1024 * 1024


def _commits(batch: int) -> Iterator[int]:
    """How many threads each commit of a build holds, at most: one batch, then twice as many, ..."""
    size = batch
    while True:
        yield size
        size = min(size * 2, max(_COMMIT_THREADS, batch))


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


# -- deriving in batches, in this process or in worker processes ---------------------------------
#
# `rebuild` (every session build) and `verify` convert every thread again: on hundreds of thousands
# of threads that is most of their time, and it is pure (the converter does no I/O), so it spreads
# over processes when the machine has cores to spare. Each worker opens the archive itself, to read
# (SQLite readers never block the one writer, and see what it has committed), and converts whole
# batches; the results come back in the order the batches went in, so what is stored or reported is
# the same, byte for byte, whatever the number of workers. With `workers=0` the same code runs here.

T = TypeVar("T")
# Per thread: a PackedSession (rows=True), the derived record's canonical JSON (rows=False), or why the
# converter failed on it (rows=False only; a build lets the exception through). A thread without a
# raw thread object has no entry.
Derived = dict[str, Any]


@dataclass(frozen=True)
class DeriveFailed:
    message: str  # "ExceptionType: message"


def check_workers(workers: int) -> int:
    if workers < 0:
        raise UsageError(f"--workers must be 0 (this process) or more, not {workers}")
    return workers


def default_workers(*, counting: bool = True) -> int:
    """Worker processes when none are asked for.

    A build (`counting`: its workers count tokens) gets one per core beyond the first two, at most
    four: each worker holds its own encoding (some 75 MB while it loads), so on two cores the work
    stays in this process, within the memory a rebuild of 340,000 threads may take. Verify's workers
    only convert (about 50 MB each) while this process checks what they return, so one worker per
    core beyond the first, at most four, keeps both cores of a two-core machine busy."""
    return max(0, min(_cores() - (2 if counting else 1), 4))


def ingest_workers() -> int:
    """Worker processes for the sessions of an ingest: two as soon as there is a second core. This
    process rules on the next batch of threads while they convert, and that takes it less than a
    core: with one worker it waited on the worker (340,000 threads: 20.5 s to rule and build, 18.2 s
    with two). Each worker holds its own encoding; memory is per process."""
    return max(2, default_workers()) if _cores() >= 2 else 0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Threads read from the archive together: few enough that a batch's raw objects are never all in
# memory at once (500 threads' parsed bundles were 26 MB of an export's peak), many enough that the
# queries a table stay a small share of the time.
_READ_CHUNK = 100


def _derive(
    archive: Archive,
    thread_ids: list[str],
    options: ConversionOptions,
    assistants: dict[str, Any],
    rows: bool,
    extras: dict[str, dict[str, Any]] | None = None,
) -> Derived:
    if rows and thread_ids:
        # Before the batch is read: building an encoding briefly takes twice the memory it keeps.
        load_encoding()
    out: Derived = {}
    thread_ids = list(dict.fromkeys(thread_ids))  # an id named twice is derived once, as it always was
    for start in range(0, len(thread_ids), _READ_CHUNK):
        chunk = thread_ids[start : start + _READ_CHUNK]
        take = _bundle_reader(archive, chunk, assistants, extras)
        for tid in chunk:
            if rows:  # a build: a failure stops it, as it always has
                if (bundle := take(tid)) is not None:
                    out[tid] = pack(session_row(tid, bundle, options))
                continue
            try:
                if (bundle := take(tid)) is not None:  # None: no raw thread (verify: thread_not_stored)
                    out[tid] = canonical_json(convert_thread(bundle, options))
            except sqlite3.DatabaseError:
                raise
            except Exception as exc:  # a converter failure on one thread must not hide the others
                out[tid] = DeriveFailed(f"{type(exc).__name__}: {exc}")
    return out


def _bundle_reader(
    archive: Archive,
    thread_ids: list[str],
    assistants: dict[str, Any],
    extras: dict[str, dict[str, Any]] | None = None,
) -> Callable[[str], ThreadBundle | None]:
    """Each thread's bundle, handed over once (the ids are distinct): a converted thread's raw objects
    are freed at once, not with its chunk (5 MB of an export's peak)."""
    try:
        bundles = load_bundles(archive, thread_ids, assistants, extras)
    except sqlite3.DatabaseError:
        raise
    except Exception:
        # One unreadable row must not cost the whole chunk: each thread is read alone, so only the
        # one that fails is a failure.
        return lambda tid: load_bundle(archive, tid, assistants)
    return lambda tid: bundles.pop(tid, None)


# -- the worker processes ----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(path: str, options: dict[str, Any], rows: bool, parent: int) -> None:
    _exit_with_parent(parent)
    gc.freeze()  # as in fewer_collections, for the life of the worker
    gc.set_threshold(*_BUILD_PACE)
    archive = Archive.open(path)  # to read: no lock, sees what the writer has committed
    _WORKER.update(
        archive=archive,
        options=ConversionOptions.from_dict(options),
        assistants=archive.raw.assistants(),
        rows=rows,
    )


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed (kill -9 gives it no time to stop its pool) ends too: left
    running, it would hold the archive open, and the resumed run could not fold its WAL back.

    `parent` is the pid the parent gave, not this process's parent at this point: a worker still
    importing when its parent was killed already has init as its parent, and watched that for good."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _work(thread_ids: list[str], extras: dict[str, dict[str, Any]] | None = None) -> Derived:
    w = _WORKER
    with w["archive"].snapshot():  # one committed state for the batch
        return _derive(w["archive"], thread_ids, w["options"], w["assistants"], w["rows"], extras)


# The collector's pace while sessions are built (migrator/gcpace.py says why).
_BUILD_PACE = (20_000, 50, 1000)


def derive_batches(
    archive: Archive,
    items: Iterable[T],
    thread_ids: Callable[[T], list[str]],
    options: ConversionOptions,
    *,
    rows: bool,
    workers: int = 0,
    assistants: dict[str, Any] | None = None,
    extras: Callable[[T], dict[str, dict[str, Any]]] | None = None,
) -> Iterator[tuple[T, Derived]]:
    """(item, what its threads derive to) for every item, in order. `thread_ids(item)` names the
    threads of an item (a batch); `extras(item)` their work extras, when the items carry them (so
    they are not read again, a row at a time: work rows sit in request order, not id order). With
    workers, a few batches are in flight at once (so memory stays bounded); stopping the iteration
    drops them (a build stores nothing of them: they stay stale)."""
    assistants = assistants if assistants is not None else archive.raw.assistants()
    extras_of = extras if extras is not None else lambda _item: None
    if workers <= 0:
        with fewer_collections(*_BUILD_PACE):
            for item in items:
                yield item, _derive(archive, thread_ids(item), options, assistants, rows, extras_of(item))
        return
    # spawn, not fork: a forked child would inherit this process's open SQLite connection and locks.
    context = multiprocessing.get_context("spawn")
    with (
        fewer_collections(*_BUILD_PACE),
        ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(str(archive.path), options.as_dict(), rows, os.getpid()),
        ) as pool,
    ):
        pending: deque[tuple[T, Future[Derived]]] = deque()
        try:
            for item in items:
                pending.append((item, pool.submit(_work, thread_ids(item), extras_of(item))))
                if len(pending) > workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()
