"""The source client: the openai SDK (retries off), one retry policy, one rate limiter.

Every response body is kept as the source sent it (parsed with orjson from the raw HTTP body), so
nothing the SDK's models do not know is dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson

from migrator.archive.canonical import loads
from migrator.errors import SourceGoneError, SourceRefusedError
from migrator.source.ratelimit import RateLimiter
from migrator.source.retry import (
    RETRYABLE_STATUS,
    error_code,
    error_message,
    refusal,
    retry_policy,
    status_of,
)

__all__ = ["SourceClient", "SourceSettings", "RequestStats", "NotFound", "Rejected", "TransientError"]

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


class NotFound(Exception):
    """404: the object does not exist at the source (a thread becomes `missing`)."""


class Rejected(Exception):
    """400 and other non-retryable refusals of one request; the run goes on."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientError(Exception):
    """A response we could not use but might on a second try (a body that is not JSON)."""


@dataclass
class SourceSettings:
    base_url: str | None = None
    api_key: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    timeout: float = 60.0
    max_attempts: int = 6
    max_backoff: float = 30.0


@dataclass
class RequestStats:
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError | TransientError):  # timeouts, drops, truncated bodies
        return True
    return status_of(exc) in RETRYABLE_STATUS


def _fatal(exc: openai.APIStatusError, base_url: str) -> SourceRefusedError | None:
    """The refusals that repeating cannot fix: stop everything, say what to do."""
    status = exc.status_code
    if status == 410:
        return SourceGoneError(
            f"{base_url} answered 410 Gone: its Assistants API has been shut down (OpenAI's on 2026-08-26)",
            hint="point --base-url at a compatible server, or build the archive from saved JSON with --from-dump DIR",
        )
    return refusal(
        exc,
        base_url,
        error=SourceRefusedError,
        key_env="OPENAI_API_KEY",
        forbidden_hint="use a key of the project that owns the threads",
    )


class SourceClient:
    """Async access to an Assistants v2 source; one instance per export run."""

    def __init__(self, settings: SourceSettings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter
        self.stats = RequestStats()
        common: dict[str, Any] = {"max_retries": 0, "timeout": settings.timeout}
        if settings.azure_endpoint:
            self.client: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
                azure_endpoint=settings.azure_endpoint,
                api_version=settings.api_version,
                api_key=settings.api_key,
                **common,
            )
        else:
            # base_url None lets the SDK read OPENAI_BASE_URL itself; it is handed over unchanged.
            self.client = openai.AsyncOpenAI(base_url=settings.base_url, api_key=settings.api_key, **common)
        self.base_url = str(self.client.base_url).rstrip("/")

    async def close(self) -> None:
        await self.client.close()

    # -- the one request path -------------------------------------------------------------------

    async def _send(
        self, kind: str, call: Callable[[], Awaitable[Any]], parse: Callable[[Any], Any] = lambda raw: raw
    ) -> Any:
        """One request through the limiter and the retry policy; returns `parse(raw SDK response)`.

        Parsing happens inside the retried block, so a garbled body is retried like a dropped one.
        """

        retrying = retry_policy(
            transient=_is_transient,
            max_attempts=self.settings.max_attempts,
            max_backoff=self.settings.max_backoff,
            on_retry=self._count_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return parse(await self._attempt(kind, call))
        except openai.APIStatusError as exc:
            fatal = _fatal(exc, self.base_url)
            if fatal is not None:
                raise fatal from None
            if exc.status_code == 404:
                raise NotFound(error_message(exc)) from None
            if exc.status_code in RETRYABLE_STATUS:
                raise
            raise Rejected(error_message(exc), exc.status_code) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _count_retry(self) -> None:
        self.stats.retries += 1

    async def _attempt(self, kind: str, call: Callable[[], Awaitable[Any]]) -> Any:
        await self.limiter.acquire()
        self.stats.requests += 1
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        try:
            raw = await call()
        except openai.APIConnectionError:
            self.limiter.answered()
            raise
        except openai.APIStatusError as exc:
            if exc.status_code == 429 and error_code(exc) != "insufficient_quota":
                self.stats.throttled += 1
                self.limiter.throttled(exc.response.headers)
            elif _fatal(exc, self.base_url) is None:
                self.limiter.observe(exc.response.headers)
            self.limiter.answered()
            raise
        self.limiter.observe(raw.http_response.headers)
        return raw

    async def _json(self, kind: str, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        def parse(raw: Any) -> dict[str, Any]:
            try:
                # Not orjson.loads: a lone surrogate in one message must not cost the whole thread.
                body = loads(raw.http_response.content)
            except orjson.JSONDecodeError:
                raise TransientError(f"{kind}: the source sent a body that is not JSON") from None
            if not isinstance(body, dict):
                raise TransientError(f"{kind}: the source sent JSON that is not an object")
            return body

        return await self._send(kind, call, parse)

    # -- endpoints ---------------------------------------------------------------------------------

    async def list_assistants(self, after: str | None) -> dict[str, Any]:
        call = self.client.beta.assistants.with_raw_response.list
        return await self._json("assistants", lambda: _beta(call, limit=100, order="asc", **_after(after)))

    async def retrieve_thread(self, thread_id: str) -> dict[str, Any]:
        call = self.client.beta.threads.with_raw_response.retrieve
        return await self._json("thread", lambda: _beta(call, thread_id))

    async def retrieve_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        call = self.client.beta.threads.messages.with_raw_response.retrieve
        return await self._json("message", lambda: _beta(call, message_id, thread_id=thread_id))

    async def retrieve_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        call = self.client.beta.threads.runs.with_raw_response.retrieve
        return await self._json("run", lambda: _beta(call, run_id, thread_id=thread_id))

    async def list_messages(self, thread_id: str, after: str | None) -> dict[str, Any]:
        call = self.client.beta.threads.messages.with_raw_response.list
        return await self._json(
            "messages", lambda: _beta(call, thread_id, limit=100, order="asc", **_after(after))
        )

    async def list_runs(self, thread_id: str, after: str | None) -> dict[str, Any]:
        call = self.client.beta.threads.runs.with_raw_response.list
        return await self._json(
            "runs", lambda: _beta(call, thread_id, limit=100, order="asc", **_after(after))
        )

    async def list_run_steps(
        self, thread_id: str, run_id: str, after: str | None, *, file_search: bool
    ) -> dict[str, Any]:
        call = self.client.beta.threads.runs.steps.with_raw_response.list
        extra: dict[str, Any] = {"include": [FILE_SEARCH_CONTENT]} if file_search else {}
        return await self._json(
            "run_steps",
            lambda: _beta(
                call, run_id, thread_id=thread_id, limit=100, order="asc", **_after(after), **extra
            ),
        )

    async def list_vector_stores(self, after: str | None) -> dict[str, Any]:
        call = self.client.vector_stores.with_raw_response.list
        return await self._json("vector_stores", lambda: call(limit=100, order="asc", **_after(after)))

    async def list_vector_store_files(self, vector_store_id: str, after: str | None) -> dict[str, Any]:
        call = self.client.vector_stores.files.with_raw_response.list
        return await self._json(
            "vector_store_files", lambda: call(vector_store_id, limit=100, order="asc", **_after(after))
        )

    async def vector_store_file_content(
        self, vector_store_id: str, file_id: str, page: str | None
    ) -> dict[str, Any]:
        call = self.client.vector_stores.files.with_raw_response.content
        query = {"extra_query": {"page": page}} if page else {}
        return await self._json(
            "vector_store_file_content", lambda: call(file_id, vector_store_id=vector_store_id, **query)
        )

    async def retrieve_file(self, file_id: str) -> dict[str, Any]:
        call = self.client.files.with_raw_response.retrieve
        return await self._json("file", lambda: call(file_id))

    async def download_file(self, file_id: str) -> bytes:
        call = self.client.files.with_raw_response.content
        return await self._send("file_content", lambda: call(file_id), lambda raw: raw.http_response.content)


def _after(after: str | None) -> dict[str, str]:
    return {"after": after} if after else {}


class _QuietFirstStep:
    """Await a `client.beta.*` coroutine with the SDK's DeprecationWarning silenced, and only it.

    The SDK warns inside the coroutine, in the synchronous stretch before its first suspension.
    `warnings.catch_warnings()` held across an `await` would leak between interleaved coroutines
    (its state is process-wide), so the filter covers exactly that first synchronous step, during
    which no other coroutine can run; the rest is delegated as `yield from` would.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001  re-delivered to the coroutine, as yield from does
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def _beta(method: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """Call a `client.beta.*` method with its deprecation warning silenced (see _QuietFirstStep)."""
    return _QuietFirstStep(method(*args, **kwargs))
