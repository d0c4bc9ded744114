"""The scheduling of an export: what to fetch next, and how much at once.

Work is scheduled by request, not by thread: many threads are in flight, the step listings of one
long thread run side by side, and file downloads run beside the threads that mention them; one
semaphore (the fetcher's) bounds the requests in flight and one limiter paces them under the
source's rate limit. A stop (a signal, a refusal) keeps what finished and drops what is in flight
whole: the next run fetches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from migrator.archive import Anomaly, Archive, ThreadResult
from migrator.errors import Interrupted, MigrateError
from migrator.export.fetch import RECOVERABLE, CutOff, FileFetcher, ThreadFetcher, all_settled
from migrator.export.finish import finish_export
from migrator.export.options import ExportOptions, ExportSnapshot, ExportSummary, Report
from migrator.export.storing import Storing
from migrator.gcpace import fewer_collections
from migrator.http import RateLimiter, Stop, stop_on_signals
from migrator.source import NotFound, PageAnomaly, RouteMissing, SourceClient, SourceSettings
from migrator.threadlist import ThreadEntry

__all__ = ["run_export"]


class _Run:
    """The state of one export run: the fetchers, what stores their results, the counters."""

    def __init__(
        self,
        archive: Archive,
        client: SourceClient,
        options: ExportOptions,
        report: Report | None,
        stop: Stop,
    ):
        self.client = client
        self.options = options
        self.report = report
        self.fetcher = ThreadFetcher(client, options.concurrency)
        self.files = FileFetcher(self.fetcher)
        self.summary = ExportSummary()
        self.storing = Storing(archive, self.summary)
        self.started = time.monotonic()
        self.phase = "starting"
        self.stop = stop
        self.files_seen: set[str] = set()
        self.file_queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._last_report = 0.0

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.report is None or (not force and now - self._last_report < self.options.report_every):
            return
        self._last_report = now
        stats, s = self.client.stats, self.summary
        self.report(
            ExportSnapshot(
                phase=self.phase,
                threads_total=s.threads_total,
                threads_finished=s.threads_done + s.threads_failed + s.threads_missing,
                messages=s.messages,
                requests=stats.requests,
                throttled=stats.throttled,
                retries=stats.retries,
                failures=s.failures,
                elapsed=now - self.started,
                files_total=len(self.files_seen),
                files_done=s.files,
            )
        )

    # -- assistants and vector stores ------------------------------------------------------------

    async def global_listing(
        self, entity: str, fetch: Callable[[str | None], Awaitable[dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """(items, complete) of a global list, or None; a failure is recorded either way.

        A page anomaly keeps what was listed, marked incomplete so the next run lists it again. A route
        the source does not serve is an empty listing, recorded once.
        """
        try:
            return (await self.fetcher.listing(fetch)).items, True
        except RouteMissing as exc:
            self.storing.route_missing(exc)
            return [], True
        except PageAnomaly as exc:
            self.storing.failed(entity, "list", exc)
            return exc.listing.items, False  # type: ignore[attr-defined]
        except RECOVERABLE as exc:
            self.storing.failed(entity, "list", exc)
            return None

    async def assistants(self) -> None:
        self.phase = "assistants"
        listed = await self.global_listing("assistants", self.client.list_assistants)
        if listed is None:
            return
        assistants, complete = listed
        self.storing.assistants(assistants, complete=complete)
        self.tick(force=True)

    async def vector_stores(self) -> None:
        self.phase = "vector stores"
        listed = await self.global_listing("vector_stores", self.client.list_vector_stores)
        if listed is None:
            return
        stores, complete = listed

        async def one(position: int, store: dict[str, Any]) -> None:
            anomalies: list[Anomaly] = []
            try:
                files = await self.fetcher.listing(
                    lambda after: self.client.list_vector_store_files(store["id"], after)
                )
            except PageAnomaly as exc:
                anomalies.append(Anomaly("vector_store", store["id"], exc.kind, exc.detail))
                self.storing.failed("vector_store", store["id"], exc)
                files = exc.listing  # type: ignore[attr-defined]
            except RECOVERABLE as exc:
                self.storing.failed("vector_store", store["id"], exc)
                return
            self.storing.vector_store(position, store, files.items, anomalies)

        await all_settled(one(position, store) for position, store in enumerate(stores))
        if complete:
            self.storing.vector_stores_listed()
        self.tick(force=True)

    # -- threads ---------------------------------------------------------------------------------

    async def list_threads(self, archive: Archive) -> None:
        """`--all-threads`: the source's thread list into the work list, committed page by page (a kill
        mid-listing keeps what was listed). Known threads stay as they are, new ones become pending."""
        self.phase = "thread list"
        shard = self.options.shard

        async def page(after: str | None) -> dict[str, Any]:
            body = await self.client.list_threads(after)
            data = body.get("data")
            ids = (
                [t["id"] for t in data if isinstance(t, dict) and isinstance(t.get("id"), str)]
                if isinstance(data, list)
                else []
            )
            archive.work.add((i, {}) for i in ids if shard is None or shard.owns(i))
            return body

        try:
            await self.fetcher.listing(page)
        except PageAnomaly as exc:
            self.storing.failed("threads", "list", exc)  # what was listed is kept; the next run lists again
        else:
            self.storing.listed("threads")
        self.tick(force=True)

    async def thread(
        self, thread_id: str, status: str, last_message: str | None, last_run: str | None
    ) -> ThreadResult:
        delta = self.storing.delta(thread_id, status, last_message, last_run, refresh=self.options.refresh)
        return await self.fetcher.thread(thread_id, delta)

    def commit(self, result: ThreadResult) -> None:
        stored = self.storing.commit(result)
        if "files" in self.options.parts:
            for file_id in sorted(stored.file_refs):
                self.queue_file(file_id)
        self.tick()

    async def threads(self, rows: Iterable[tuple[str, str, str | None, str | None]]) -> None:
        self.phase = "threads"
        in_flight: set[asyncio.Task[ThreadResult]] = set()
        limit = self.options.concurrency * 2  # enough threads to keep every request slot busy
        fatal: BaseException | None = None

        def settle(done: Iterable[asyncio.Task[ThreadResult]]) -> None:
            nonlocal fatal
            for task in done:
                if task.cancelled():
                    continue
                exc = task.exception()
                if isinstance(exc, Interrupted):
                    continue  # stopped mid-thread: dropped whole, the next run fetches it
                if exc is not None:
                    fatal = fatal or exc
                else:
                    self.commit(task.result())

        for thread_id, status, last_message, last_run in rows:
            if self.stop.is_set() or fatal:
                break
            while len(in_flight) >= limit and not fatal and not self.stop.is_set():
                done, in_flight = await _wait_first(in_flight, self.stop)
                settle(done)
            if self.stop.is_set() or fatal:
                break
            in_flight.add(asyncio.create_task(self.thread(thread_id, status, last_message, last_run)))
        while in_flight and not fatal and not self.stop.is_set():
            done, in_flight = await _wait_first(in_flight, self.stop)
            settle(done)
        # Interrupted or refused: what finished is kept, what is still in flight is dropped whole.
        for task in in_flight:
            task.cancel()
        if in_flight:
            done, _ = await asyncio.wait(in_flight)
            settle(t for t in done if not t.cancelled() and t.exception() is None)
        if fatal:
            raise fatal

    # -- files -----------------------------------------------------------------------------------

    def queue_file(self, file_id: str) -> None:
        # A file another thread already brought in is not read twice (nor downgraded by a retry).
        if file_id not in self.files_seen and self.storing.wants_file(file_id):
            self.files_seen.add(file_id)
            self.file_queue.put_nowait(file_id)

    async def file(self, file_id: str) -> None:
        def stores() -> list[str]:
            return self.storing.stores_holding(file_id)

        if "file" in self.fetcher.missing_routes:
            return  # the source serves no file objects: recorded once, nothing to ask
        try:
            meta = self.storing.held_file(file_id)
            if meta is not None:
                # Recorded `missing` (or suspect bytes) by an earlier run: ask only what may have changed.
                content = await self.files.content(file_id, stores, meta, held=True)
            else:
                meta = await self.files.meta(file_id)
                content = await self.files.content(file_id, stores, meta)
            self.storing.file(meta, content)
        except RouteMissing as exc:
            self.fetcher.missing_routes.setdefault(exc.kind, exc)
            return
        except (NotFound, *RECOVERABLE, CutOff) as exc:
            self.storing.failed("file", file_id, exc)  # not stored: a later run tries the file again
            return
        except (MigrateError, sqlite3.Error):
            raise
        except Exception as exc:  # noqa: BLE001  an odd file object costs that file, never the run
            self.storing.failed("file", file_id, exc)
            return
        self.tick()

    async def file_workers(self) -> None:
        async def worker() -> None:
            while True:
                file_id = await self.file_queue.get()
                if file_id is None:
                    return
                await self.file(file_id)

        await asyncio.gather(*(worker() for _ in range(self.workers)))

    def close_file_queue(self) -> None:
        for _ in range(self.workers):
            self.file_queue.put_nowait(None)

    @property
    def workers(self) -> int:
        return max(2, self.options.concurrency // 2)


async def _wait_first(tasks: set[asyncio.Task[Any]], stop: Stop):
    stopper = asyncio.create_task(stop.wait())
    try:
        done, pending = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    done.discard(stopper)
    pending.discard(stopper)
    return done, pending


async def _until_stopped(task: asyncio.Task[Any], stop: Stop) -> None:
    done, _ = await _wait_first({task}, stop)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    else:
        task.result()


async def _phases(
    archive: Archive, entries: Iterable[ThreadEntry] | None, options: ExportOptions, run: _Run
) -> None:
    parts = options.parts
    # Assistants and vector stores are global: in a sharded run only shard 1 fetches them.
    first_shard = options.shard is None or options.shard.index == 1
    if entries is not None:
        archive.work.add((e.thread_id, e.extra) for e in entries)
    if options.all_threads and "threads" in parts:
        await run.list_threads(archive)  # first: a source that cannot list threads says so before any work
    if (
        "assistants" in parts
        and first_shard
        and (options.refresh or not archive.get_meta("assistants_exported"))
    ):
        await run.assistants()
    if (
        "vector-stores" in parts
        and first_shard
        and not run.stop.is_set()
        and (options.refresh or not archive.get_meta("vector_stores_exported"))
    ):
        await run.vector_stores()
    files_task = None
    if "files" in parts:
        # Files recorded `missing` are asked again: their vector store may be known by now.
        for file_id in archive.files.unfetched_ids(include_missing=True):
            run.queue_file(file_id)
        files_task = asyncio.create_task(run.file_workers())
    try:
        if "threads" in parts and not run.stop.is_set():
            work = archive.work.counts()
            # Missing threads are asked again (one request each): a corrected --base-url brings them back.
            again = work["done"] if options.refresh else 0
            run.summary.threads_total = work["pending"] + work["failed"] + work["missing"] + again
            await run.threads(archive.work.to_export(refresh=options.refresh))
        run.phase = "files"
    finally:
        if files_task is not None:
            if run.stop.is_set():
                files_task.cancel()
            else:
                run.close_file_queue()
            with contextlib.suppress(asyncio.CancelledError, Interrupted):
                await _until_stopped(files_task, run.stop)


async def _export(
    archive: Archive,
    entries: Iterable[ThreadEntry] | None,
    settings: SourceSettings,
    options: ExportOptions,
    report: Report | None,
) -> ExportSummary:
    stop = Stop()
    client = SourceClient(settings, RateLimiter(options.max_rps), stop)
    run = _Run(archive, client, options, report, stop)
    try:
        with stop_on_signals(stop):
            await _phases(archive, entries, options, run)
    except Interrupted:
        pass  # a request was stopped mid-way: what finished is kept, the rest is fetched next run
    finally:
        await client.close()
        for missing in run.fetcher.missing_routes.values():
            run.storing.route_missing(missing)
    summary = run.summary
    summary.interrupted = stop.is_set()
    summary.requests = client.stats.requests
    summary.throttled = client.stats.throttled
    summary.retries = client.stats.retries
    run.tick(force=True)
    return summary


def run_export(
    archive: Archive,
    entries: Iterable[ThreadEntry] | None,
    settings: SourceSettings,
    options: ExportOptions,
    report: Report | None = None,
    *,
    build: bool = True,
) -> ExportSummary:
    """Export into `archive`, then (unless `build` is False: the caller runs `finish_export` itself)
    build the sessions of the threads it changed."""
    started = time.monotonic()
    with fewer_collections(7000, 10, 10):
        summary = asyncio.run(_export(archive, entries, settings, options, report))
    summary.network_seconds = round(time.monotonic() - started, 3)
    summary.elapsed = time.monotonic() - started
    if not build:
        return summary
    return finish_export(archive, summary, options.conversion, report, started)
