"""The fetching of one thread and of one file: requests only, nothing stored.

`ThreadFetcher` reads a whole thread the one way export, `plan` and `verify --against-source` all
read it; `FileFetcher` gets a file's bytes, else its parsed text from a vector store. Every request
goes through the fetcher's one semaphore; what becomes of the result is `storing.py`'s business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import openai

from migrator.archive import Anomaly, Failure, FileContent, ThreadResult
from migrator.errors import MigrateError
from migrator.export.options import DEFAULT_CONCURRENCY
from migrator.http import GarbledResponse
from migrator.refs import thread_file_refs
from migrator.source import (
    Listing,
    NotFound,
    PageAnomaly,
    Rejected,
    RouteMissing,
    SourceClient,
    TooLarge,
    collect,
)

__all__ = [
    "MAX_CONTENT_PAGES",
    "RECOVERABLE",
    "CutOff",
    "Delta",
    "FileFetcher",
    "ThreadFetcher",
    "all_settled",
    "failure_of",
]

# Pages of one file's parsed text at most: a source whose next_page never ends must not run forever.
MAX_CONTENT_PAGES = 10_000

# What costs one thread or one file (a failure row, retried next run), never the whole run.
RECOVERABLE: tuple[type[BaseException], ...] = (
    Rejected,
    TooLarge,
    GarbledResponse,
    openai.APIConnectionError,
    openai.APIStatusError,
)


class CutOff(Exception):
    """A parsed text whose pages did not end: never stored as if it were the whole text."""


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


class ThreadFetcher:
    """Fetches whole threads with every request through one semaphore; stores nothing.

    The export drives it for every thread; `plan` and `verify --against-source` use it for samples,
    so all three read a thread exactly the same way.
    """

    def __init__(self, client: SourceClient, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.client = client
        self.requests = asyncio.Semaphore(concurrency)
        # Optional routes the source turned out not to serve (a look-alike's): asked once, never again.
        self.missing_routes: dict[str, RouteMissing] = {}

    async def call(self, fetch: Callable[[], Awaitable[Any]]) -> Any:
        async with self.requests:
            return await fetch()

    def listing(
        self,
        fetch: Callable[[str | None], Awaitable[dict[str, Any]]],
        after: str | None = None,
        backward: Callable[[str | None], Awaitable[dict[str, Any]]] | None = None,
    ):
        """Every item of a list; with `backward` (newest first), pages that will not end are completed
        from the other end, so a broken cursor costs a few requests, not the thread (for ever)."""
        back = None if backward is None else (lambda cursor: self.call(lambda: backward(cursor)))
        return collect(lambda cursor: self.call(lambda: fetch(cursor)), after, back)

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
        except RECOVERABLE as exc:
            result.status, result.failure = "failed", failure_of("thread", thread_id, exc)
            return result
        try:
            messages, runs = await all_settled(
                [
                    self.listing(
                        lambda a: client.list_messages(thread_id, a),
                        delta and delta.last_message,
                        lambda a: client.list_messages(thread_id, a, "desc"),
                    ),
                    self.listing(
                        lambda a: client.list_runs(thread_id, a),
                        delta and delta.last_run,
                        lambda a: client.list_runs(thread_id, a, "desc"),
                    ),
                ]
            )
            result.messages, result.runs = messages.items, runs.items
            # Counted from the pages, not from the lists stored: verify compares the rows with these.
            result.messages_seen, result.runs_seen = messages.served, runs.served
            if delta is not None:
                # Listed "after" the newest stored ids, these come on top: what changed since.
                result.messages += await all_settled(
                    self.call(lambda m=m: client.retrieve_message(thread_id, m))
                    for m in delta.unfinished_messages
                )
                result.runs += await all_settled(
                    self.call(lambda r=r: client.retrieve_run(thread_id, r)) for r in delta.unfinished_runs
                )
                result.messages_seen += len(delta.unfinished_messages)
                result.runs_seen += len(delta.unfinished_runs)
            # Steps only for runs that declared tools: the only step of a tool-less run is its
            # message_creation, which message.run_id already records.
            listings = await all_settled(
                self._steps(thread_id, run) for run in result.runs if run.get("tools")
            )
            result.steps = [step for listing in listings for step in listing.items]
            result.steps_seen = sum(listing.served for listing in listings)
        except PageAnomaly as exc:
            result.status = "failed"
            result.anomalies.append(Anomaly("thread", thread_id, exc.kind, exc.detail))
            result.failure = failure_of("thread", thread_id, exc)
        except (NotFound, *RECOVERABLE) as exc:
            # The thread exists (it was just retrieved): a 404 below it is a failure to retry, not absence.
            result.status = "failed"
            result.failure = failure_of("thread", thread_id, exc)
        return result

    async def _steps(self, thread_id: str, run: dict[str, Any]) -> Listing:
        """The run's steps; none when the source serves no step lists (recorded once, not a failure)."""
        if "run_steps" in self.missing_routes:
            return Listing()
        try:
            return await self.listing(
                lambda a: self.client.list_run_steps(
                    thread_id, run["id"], a, file_search=_uses_file_search(run)
                )
            )
        except RouteMissing as exc:
            self.missing_routes.setdefault(exc.kind, exc)
            return Listing()


class FileFetcher:
    """A file's object and what can be had of its bytes, through the thread fetcher's semaphore."""

    def __init__(self, fetcher: ThreadFetcher) -> None:
        self.client = fetcher.client
        self.call = fetcher.call
        self.missing_routes = fetcher.missing_routes

    async def meta(self, file_id: str) -> dict[str, Any]:
        return await self.call(lambda: self.client.retrieve_file(file_id))

    async def content(
        self,
        file_id: str,
        stores: Callable[[], list[str]],
        meta: dict[str, Any] | None = None,
        *,
        held: bool = False,
    ) -> FileContent:
        """The bytes, else the parsed text from a vector store, else `missing` (asked again next run).

        `stores` gives the vector stores holding the file, asked only when the bytes are refused.
        `meta` is the file object: the bytes are taken only when their length is its `bytes` (a
        gateway's error page is retried, then a failure, never the file). With `held` it was stored
        by an earlier run: a file of purpose `assistants` is not offered for download again (the
        source refused it once), only its parsed text is looked for.
        """
        if (
            held and meta is not None and meta.get("purpose") == "assistants"
        ) or "file_content" in self.missing_routes:
            return await self.parsed_text(file_id, stores())
        size = meta.get("bytes") if meta is not None else None
        expected = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        try:
            data = await self.call(lambda: self.client.download_file(file_id, expected))
            return FileContent("downloaded", data)
        except RouteMissing as exc:
            self.missing_routes.setdefault(exc.kind, exc)
            return await self.parsed_text(file_id, stores())
        except Rejected:
            # Purpose `assistants` files may not be downloaded; their parsed text is the fallback.
            return await self.parsed_text(file_id, stores())
        except NotFound:
            return FileContent("missing")

    async def parsed_text(self, file_id: str, stores: list[str]) -> FileContent:
        """The file's parsed text from the first vector store that serves all of it.

        A store that no longer holds the file (404) is a definite answer for that store; the next
        is asked. When no store serves the whole text, the last error is raised (a failure row, and
        the next run tries again); `missing` only when no store holds the file at all.
        """
        error: Exception | None = None
        for store_id in stores:
            try:
                return FileContent("parsed_text", await self._text_pages(store_id, file_id), store_id)
            except NotFound:
                continue
            except (*RECOVERABLE, CutOff) as exc:
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
                raise CutOff(f"{store_id}: the parsed text of {file_id} repeats its page {page!r}")
            pages.add(page)
        raise CutOff(f"{store_id}: the parsed text of {file_id} did not end within {MAX_CONTENT_PAGES} pages")


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


async def all_settled(awaitables: Iterable[Awaitable[Any]]) -> list[Any]:
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
