"""`migrate export`: everything out of an Assistants v2 source into the archive, resumably.

Work is scheduled by request, not by thread: many threads are in flight, the step listings of one
long thread run side by side, and file downloads run beside the threads that mention them; one
semaphore bounds the requests in flight and one limiter paces them under the source's rate limit.
Each thread commits its rows and its `done` mark in one transaction, so a kill at any instant
leaves either the whole thread or none of it, and a rerun picks up exactly what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

from migrator.archive import Anomaly, Archive, Failure, FileContent, ThreadResult
from migrator.convert import ConversionOptions
from migrator.errors import Interrupted, MigrateError
from migrator.http import GarbledResponse, RateLimiter, Stop, stop_on_signals
from migrator.refs import files_in_assistant, thread_file_refs
from migrator.sessions import BuildSummary, build_sessions
from migrator.source import NotFound, PageAnomaly, Rejected, SourceClient, SourceSettings, collect
from migrator.threadlist import Shard, ThreadEntry

__all__ = [
    "ALL_PARTS",
    "ExportOptions",
    "ExportSnapshot",
    "ExportSummary",
    "Delta",
    "ThreadFetcher",
    "failure_of",
    "run_export",
]

ALL_PARTS = frozenset({"assistants", "threads", "vector-stores", "files"})
DEFAULT_CONCURRENCY = 32
# Pages of one file's parsed text at most: a source whose next_page never ends must not run forever.
MAX_CONTENT_PAGES = 10_000


@dataclass
class ExportOptions:
    parts: frozenset[str] = ALL_PARTS
    concurrency: int = DEFAULT_CONCURRENCY
    max_rps: float | None = None
    refresh: bool = False
    shard: Shard | None = None
    conversion: ConversionOptions = field(default_factory=ConversionOptions)
    # How often the caller's report callback may be called at most, in seconds.
    report_every: float = 0.2


@dataclass
class ExportSnapshot:
    """What a progress display shows; handed to the caller's callback."""

    phase: str
    threads_total: int
    threads_finished: int
    messages: int
    requests: int
    throttled: int
    retries: int
    failures: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.threads_finished or self.threads_finished >= self.threads_total:
            return None
        per_thread = self.elapsed / self.threads_finished
        return per_thread * (self.threads_total - self.threads_finished)


@dataclass
class ExportSummary:
    threads_total: int = 0
    threads_done: int = 0
    threads_failed: int = 0
    threads_missing: int = 0
    threads_left: int = 0
    messages: int = 0
    runs: int = 0
    run_steps: int = 0
    files: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    failures: int = 0
    elapsed: float = 0.0
    # Seconds spent talking to the source (elapsed also counts building the sessions afterwards).
    network_seconds: float = 0.0
    interrupted: bool = False
    sessions: BuildSummary = field(default_factory=BuildSummary)

    @property
    def clean(self) -> bool:
        return not (self.failures or self.threads_failed or self.threads_missing or self.threads_left)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "sessions"}
        out["sessions"] = self.sessions.__dict__.copy()
        seconds = self.network_seconds or self.elapsed
        out["requests_per_second"] = round(self.requests / seconds, 2) if seconds else 0.0
        return out


Report = Callable[[ExportSnapshot], None]


class ThreadFetcher:
    """Fetches whole threads with every request through one semaphore; stores nothing.

    The export drives it for every thread; `plan` and `verify --against-source` use it for samples,
    so all three read a thread exactly the same way.
    """

    def __init__(self, client: SourceClient, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.client = client
        self.requests = asyncio.Semaphore(concurrency)

    async def call(self, fetch: Callable[[], Awaitable[Any]]) -> Any:
        async with self.requests:
            return await fetch()

    def listing(self, fetch: Callable[[str | None], Awaitable[dict[str, Any]]], after: str | None = None):
        return collect(lambda cursor: self.call(lambda: fetch(cursor)), after)

    async def thread(self, thread_id: str, delta: Delta | None = None) -> ThreadResult:
        """The thread, its messages and runs, and the steps of every run that declared tools.

        With a `delta` (a --refresh of a done thread): only messages and runs newer than the last
        stored ones, plus a fresh copy of those that were still unfinished when stored, with the
        steps of every run so fetched. 404 on the thread gives `missing`; a page anomaly, a later
        404 or an error that survived the retries gives `failed` with a failure row and whatever
        was fetched; any other fault while reading one thread (an object of a shape nothing here
        foresaw) gives `failed` with a failure row too. A refusal, an unreachable source and a stop
        propagate.
        """
        try:
            result = await self._fetch(thread_id, delta)
            result.file_refs = thread_file_refs(result.thread, result.messages, result.steps)
        except MigrateError:
            raise
        except Exception as exc:  # noqa: BLE001  one odd thread must cost that thread, never the run
            return ThreadResult(thread_id, "failed", failure=failure_of("thread", thread_id, exc))
        return result

    async def _fetch(self, thread_id: str, delta: Delta | None) -> ThreadResult:
        client = self.client
        result = ThreadResult(thread_id, "done", delta=delta is not None)
        try:
            result.thread = await self.call(lambda: client.retrieve_thread(thread_id))
        except NotFound:
            return ThreadResult(thread_id, "missing")
        except _RECOVERABLE as exc:
            result.status, result.failure = "failed", failure_of("thread", thread_id, exc)
            return result
        try:
            messages, runs = await _all(
                [
                    self.listing(lambda a: client.list_messages(thread_id, a), delta and delta.last_message),
                    self.listing(lambda a: client.list_runs(thread_id, a), delta and delta.last_run),
                ]
            )
            result.messages, result.runs = messages.items, runs.items
            # Counted from the pages, not from the lists stored: verify compares the rows with these.
            result.messages_seen, result.runs_seen = messages.served, runs.served
            if delta is not None:
                # Listed "after" the newest stored ids, these come on top: what changed since.
                result.messages += await _all(
                    self.call(lambda m=m: client.retrieve_message(thread_id, m))
                    for m in delta.unfinished_messages
                )
                result.runs += await _all(
                    self.call(lambda r=r: client.retrieve_run(thread_id, r)) for r in delta.unfinished_runs
                )
                result.messages_seen += len(delta.unfinished_messages)
                result.runs_seen += len(delta.unfinished_runs)
            # Steps only for runs that declared tools: the only step of a tool-less run is its
            # message_creation, which message.run_id already records.
            listings = await _all(
                self.listing(
                    lambda a, run=run: client.list_run_steps(
                        thread_id, run["id"], a, file_search=_uses_file_search(run)
                    )
                )
                for run in result.runs
                if run.get("tools")
            )
            result.steps = [step for listing in listings for step in listing.items]
            result.steps_seen = sum(listing.served for listing in listings)
        except PageAnomaly as exc:
            result.status = "failed"
            result.anomalies.append(Anomaly("thread", thread_id, exc.kind, exc.detail))
            result.failure = failure_of("thread", thread_id, exc)
        except (NotFound, *_RECOVERABLE) as exc:
            # The thread exists (it was just retrieved): a 404 below it is a failure to retry, not absence.
            result.status = "failed"
            result.failure = failure_of("thread", thread_id, exc)
        return result


@dataclass(frozen=True)
class Delta:
    """What a --refresh of a done thread starts from: the newest stored ids and what was unfinished."""

    last_message: str | None
    last_run: str | None
    unfinished_messages: tuple[str, ...] = ()
    unfinished_runs: tuple[str, ...] = ()


def failure_of(entity: str, entity_id: str, exc: BaseException) -> Failure:
    return Failure(
        entity=entity,
        entity_id=entity_id,
        error_class=type(exc).__name__,
        message=_describe(exc),
        status_code=getattr(exc, "status_code", None),
    )


class _Run:
    """The state of one export run: the fetcher, the archive, the counters."""

    def __init__(
        self,
        archive: Archive,
        client: SourceClient,
        options: ExportOptions,
        report: Report | None,
        stop: Stop,
    ):
        self.archive = archive
        self.client = client
        self.options = options
        self.report = report
        self.fetcher = ThreadFetcher(client, options.concurrency)
        self.call = self.fetcher.call
        self.listing = self.fetcher.listing
        self.summary = ExportSummary()
        self.started = time.monotonic()
        self.phase = "starting"
        self.stop = stop
        self.files_seen: set[str] = set()
        self.file_queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._last_report = 0.0

    # -- helpers -------------------------------------------------------------------------------

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.report is None or (not force and now - self._last_report < self.options.report_every):
            return
        self._last_report = now
        stats = self.client.stats
        self.report(
            ExportSnapshot(
                phase=self.phase,
                threads_total=self.summary.threads_total,
                threads_finished=self.summary.threads_done
                + self.summary.threads_failed
                + self.summary.threads_missing,
                messages=self.summary.messages,
                requests=stats.requests,
                throttled=stats.throttled,
                retries=stats.retries,
                failures=self.summary.failures,
                elapsed=now - self.started,
            )
        )

    def fail(self, entity: str, entity_id: str, exc: BaseException) -> Failure:
        self.summary.failures += 1
        return failure_of(entity, entity_id, exc)

    # -- assistants and vector stores ------------------------------------------------------------

    async def global_listing(
        self, entity: str, fetch: Callable[[str | None], Awaitable[dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """(items, complete) of a global list, or None; a failure is recorded either way.

        A page anomaly keeps what was listed, marked incomplete so the next run lists it again.
        """
        try:
            return (await self.listing(fetch)).items, True
        except PageAnomaly as exc:
            self.archive.findings.record_failure(self.fail(entity, "list", exc))
            return exc.listing.items, False  # type: ignore[attr-defined]
        except _RECOVERABLE as exc:
            self.archive.findings.record_failure(self.fail(entity, "list", exc))
            return None

    async def assistants(self) -> None:
        self.phase = "assistants"
        listed = await self.global_listing("assistants", self.client.list_assistants)
        if listed is None:
            return
        assistants, complete = listed
        refs = {(file_id, a["id"]) for a in assistants for file_id in files_in_assistant(a)}
        # Only a complete listing is marked done (and clears an earlier failure).
        self.archive.raw.store_assistants(assistants, refs, complete=complete)
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
                files = await self.listing(
                    lambda after: self.client.list_vector_store_files(store["id"], after)
                )
            except PageAnomaly as exc:
                anomalies.append(Anomaly("vector_store", store["id"], exc.kind, exc.detail))
                self.archive.findings.record_failure(self.fail("vector_store", store["id"], exc))
                files = exc.listing  # type: ignore[attr-defined]
            except _RECOVERABLE as exc:
                self.archive.findings.record_failure(self.fail("vector_store", store["id"], exc))
                return
            self.archive.raw.store_vector_store(store, files.items, anomalies=anomalies, position=position)

        await _all(one(position, store) for position, store in enumerate(stores))
        if complete:
            self.archive.raw.vector_stores_listed()
        self.tick(force=True)

    # -- threads ---------------------------------------------------------------------------------

    async def thread(
        self, thread_id: str, status: str, last_message: str | None, last_run: str | None
    ) -> ThreadResult:
        # Only a thread known whole may be refreshed by its delta; a failed one is fetched again whole.
        if self.options.refresh and status == "done":
            messages, runs = self.archive.raw.unfinished(thread_id)
            return await self.fetcher.thread(thread_id, Delta(last_message, last_run, messages, runs))
        return await self.fetcher.thread(thread_id)

    def commit(self, result: ThreadResult) -> None:
        try:
            self.archive.raw.store_thread(result)
        except (sqlite3.Error, MigrateError):
            raise  # the database or the disk, not the thread: stop
        except Exception as exc:  # noqa: BLE001  an object the archive cannot hold (no id...) costs its thread
            result = ThreadResult(
                result.thread_id, "failed", failure=failure_of("thread", result.thread_id, exc)
            )
            self.archive.raw.store_thread(result)
        s = self.summary
        s.failures += result.failure is not None
        if result.status == "done":
            s.threads_done += 1
        elif result.status == "missing":
            s.threads_missing += 1
        else:
            s.threads_failed += 1
        s.messages += len(result.messages)
        s.runs += len(result.runs)
        s.run_steps += len(result.steps)
        if "files" in self.options.parts:
            for file_id in sorted(result.file_refs):
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
        # A file another thread already brought in is not read twice (nor downgraded by a retry);
        # one recorded `missing` is asked again once a run.
        if file_id not in self.files_seen and not self.archive.files.has(file_id, with_content=True):
            self.files_seen.add(file_id)
            self.file_queue.put_nowait(file_id)

    async def file(self, file_id: str) -> None:
        try:
            held = self.archive.files.record(file_id)
            if held is not None:
                # Recorded `missing` by an earlier run: ask only what may have changed since.
                meta, content = held[0], await self.file_content(file_id, held[0])
            else:
                meta = await self.call(lambda: self.client.retrieve_file(file_id))
                content = await self.file_content(file_id)
            self.archive.files.store(meta, content)
        except (NotFound, *_RECOVERABLE, _CutOff) as exc:
            # Not stored: a later run tries the file again.
            self.archive.findings.record_failure(self.fail("file", file_id, exc))
            return
        except (MigrateError, sqlite3.Error):
            raise
        except Exception as exc:  # noqa: BLE001  an odd file object costs that file, never the run
            self.archive.findings.record_failure(self.fail("file", file_id, exc))
            return
        self.summary.files += 1
        self.tick()

    async def file_content(self, file_id: str, known: dict[str, Any] | None = None) -> FileContent:
        """The bytes, else the parsed text from a vector store, else `missing` (asked again next run).

        `known` is the file object stored earlier: a file of purpose `assistants` is not offered for
        download again (the source refused it once), only its parsed text is looked for.
        """
        if known is not None and known.get("purpose") == "assistants":
            return await self.parsed_text(file_id)
        try:
            data = await self.call(lambda: self.client.download_file(file_id))
            return FileContent("downloaded", data)
        except Rejected:
            # Purpose `assistants` files may not be downloaded; their parsed text is the fallback.
            return await self.parsed_text(file_id)
        except NotFound:
            return FileContent("missing")

    async def parsed_text(self, file_id: str) -> FileContent:
        """The file's parsed text from the first vector store that serves all of it.

        A store that no longer holds the file (404) is a definite answer for that store; the next
        is asked. When no store serves the whole text, the last error is raised (a failure row, and
        the next run tries again); `missing` only when no store holds the file at all.
        """
        error: Exception | None = None
        for store_id in self.archive.raw.vector_stores_holding(file_id):
            try:
                return FileContent("parsed_text", await self._text_pages(store_id, file_id), store_id)
            except NotFound:
                continue
            except (*_RECOVERABLE, _CutOff) as exc:
                error = exc
        if error is not None:
            raise error
        return FileContent("missing")

    async def _text_pages(self, store_id: str, file_id: str) -> bytes:
        texts: list[str] = []
        page: str | None = None
        pages: set[str | None] = {None}
        for _ in range(MAX_CONTENT_PAGES):
            body = await self.call(lambda p=page: self.client.vector_store_file_content(store_id, file_id, p))
            texts.extend(part.get("text") or "" for part in body.get("data") or () if isinstance(part, dict))
            page = body.get("next_page")
            if not body.get("has_more") or not page:
                return "".join(texts).encode()
            if page in pages:
                raise _CutOff(f"{store_id}: the parsed text of {file_id} repeats its page {page!r}")
            pages.add(page)
        raise _CutOff(
            f"{store_id}: the parsed text of {file_id} did not end within {MAX_CONTENT_PAGES} pages"
        )

    async def file_workers(self) -> None:
        async def worker() -> None:
            while True:
                file_id = await self.file_queue.get()
                if file_id is None:
                    return
                await self.file(file_id)

        workers = max(2, self.options.concurrency // 2)
        await asyncio.gather(*(worker() for _ in range(workers)))

    def close_file_queue(self) -> None:
        for _ in range(max(2, self.options.concurrency // 2)):
            self.file_queue.put_nowait(None)


_RECOVERABLE: tuple[type[BaseException], ...] = (
    Rejected,
    GarbledResponse,
    openai.APIConnectionError,
    openai.APIStatusError,
)


class _CutOff(Exception):
    """A parsed text whose pages did not end: never stored as if it were the whole text."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"{exc.status_code} after retries: {exc.message}"[:500]
    if isinstance(exc, openai.APITimeoutError):
        return "timed out after retries"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection failed after retries: {exc.__cause__ or exc}"[:500]
    return str(exc)[:500]


def _uses_file_search(run: dict[str, Any]) -> bool:
    return any(tool.get("type") == "file_search" for tool in run.get("tools") or ())


async def _all(awaitables: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run side by side; if any fails, wait for the rest, then raise the most serious error.

    Unlike a bare gather, no sibling is left running when one fails.
    """
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        # What stops the run (a refusal, an unreachable source, a stop) outranks what fails a thread.
        for kind in (asyncio.CancelledError, MigrateError, NotFound, PageAnomaly):
            for error in errors:
                if isinstance(error, kind):
                    raise error
        raise errors[0]
    return results


async def _wait_first(tasks: set[asyncio.Task[Any]], stop: Stop):
    stopper = asyncio.create_task(stop.wait())
    try:
        done, pending = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    done.discard(stopper)
    pending.discard(stopper)
    return done, pending


async def _export(
    archive: Archive,
    entries: list[ThreadEntry] | None,
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
    summary = run.summary
    summary.interrupted = stop.is_set()
    summary.requests = client.stats.requests
    summary.throttled = client.stats.throttled
    summary.retries = client.stats.retries
    run.tick(force=True)
    return summary


async def _phases(
    archive: Archive, entries: list[ThreadEntry] | None, options: ExportOptions, run: _Run
) -> None:
    parts = options.parts
    # Assistants and vector stores are global: in a sharded run only shard 1 fetches them.
    first_shard = options.shard is None or options.shard.index == 1
    if entries:
        archive.work.add((e.thread_id, e.extra) for e in entries)
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


async def _until_stopped(task: asyncio.Task[Any], stop: Stop) -> None:
    done, _ = await _wait_first({task}, stop)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    else:
        task.result()


@contextlib.contextmanager
def _stop_on_signal() -> Iterator[Callable[[], bool]]:
    flag = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: flag.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_export(
    archive: Archive,
    entries: list[ThreadEntry] | None,
    settings: SourceSettings,
    options: ExportOptions,
    report: Report | None = None,
) -> ExportSummary:
    """Export into `archive`, then build the sessions of the threads it changed."""
    started = time.monotonic()
    summary = asyncio.run(_export(archive, entries, settings, options, report))
    summary.network_seconds = round(time.monotonic() - started, 3)
    if not summary.interrupted:
        # Building sessions takes minutes at 340,000 threads: a signal stops it between batches too.
        with _stop_on_signal() as stopped:
            summary.sessions = build_sessions(archive, options.conversion, stop=stopped)
        summary.interrupted = summary.sessions.interrupted
    # The verdict is about the archive, not just this run: a thread missing since last night still counts.
    work = archive.work.counts()
    summary.threads_left = work["pending"]
    summary.threads_done, summary.threads_failed, summary.threads_missing = (
        work["done"],
        work["failed"],
        work["missing"],
    )
    summary.failures = len(archive.findings.failures())
    summary.elapsed = time.monotonic() - started
    return summary
