"""The source client: the openai SDK (retries off) behind the one request path (`migrator.http`).

Every response body is kept as the source sent it (parsed with orjson from the raw HTTP body), so
nothing the SDK's models do not know is dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import httpx2
import openai

from migrator.errors import CannotListThreadsError, NoAssistantsApiError, SourceRefusedError
from migrator.http import (
    RESUME,
    RETRYABLE_STATUS,
    BodyTooLarge,
    GarbledResponse,
    RateLimiter,
    Refusals,
    RequestPath,
    RequestStats,
    Stop,
    error_code,
    error_message,
    json_object,
    sdk_options,
)
from migrator.redact import register_secret
from migrator.source.entra import SCOPE
from migrator.source.settings import DEFAULT_MAX_BODY_MB, SourceSettings
from migrator.source.sunset import RouteMissing, no_assistants_api, route_missing

__all__ = [
    "DEFAULT_MAX_BODY_MB",
    "NotFound",
    "Rejected",
    "RequestStats",
    "SizeMismatch",
    "SourceClient",
    "SourceSettings",
    "TooLarge",
]

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
FOUNDRY_API_VERSION = "2025-05-01"  # azure-ai-agents.2025-05-01.json, the GA version


class NotFound(Exception):
    """404: the object does not exist at the source (a thread becomes `missing`)."""


class TooLarge(Exception):
    """An answer over --max-body-mb: its object fails (a failure row naming it); the run goes on."""


class SizeMismatch(GarbledResponse):
    """Downloaded bytes whose length is not the file object's `bytes` (or the Content-Length): a
    gateway's error page, a cut body. Retried like a garbled answer; never stored as the file."""


class Rejected(Exception):
    """400 and other non-retryable refusals of one request; the run goes on."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _gone(exc: openai.APIStatusError, base_url: str) -> SourceRefusedError | None:
    """The source's own refusal, whatever was asked: 410 Gone, or a 400 saying the API is deprecated."""
    if exc.status_code in (400, 410):
        return no_assistants_api(exc, "any", base_url)
    return None


REFUSALS = Refusals(
    SourceRefusedError,
    key_env="OPENAI_API_KEY",
    forbidden_hint="use a key of the project that owns the threads",
    extra=_gone,
)


def _foundry_refusal(exc: openai.APIStatusError, base_url: str) -> SourceRefusedError | None:
    """Foundry takes Entra ID tokens, never keys: a 401 or 403 names the scope and the role."""
    reason = error_message(exc)[:300]
    if exc.status_code == 400 and error_code(exc) in ("UnsupportedApiVersion", "MissingApiVersionParameter"):
        return SourceRefusedError(
            f"{base_url} refused the api-version ({reason})",
            hint=f"give --api-version {FOUNDRY_API_VERSION} (the default) or a version it names",
        )
    if exc.status_code == 401:
        return SourceRefusedError(
            f"{base_url} refused the Entra ID token ({reason})",
            hint=f"run az login or set FOUNDRY_TOKEN to a token for scope {SCOPE}, {RESUME}",
        )
    if exc.status_code == 403:
        return SourceRefusedError(
            f"{base_url} denied access ({reason})",
            hint=f"give the signed-in identity the Azure AI User role on the project (scope {SCOPE}), {RESUME}",
        )
    return _gone(exc, base_url)


FOUNDRY_REFUSALS = Refusals(
    SourceRefusedError, key_env="FOUNDRY_TOKEN", forbidden_hint="", extra=_foundry_refusal
)


class SourceClient:
    """Async access to an Assistants v2 source; one instance per export run."""

    def __init__(self, settings: SourceSettings, limiter: RateLimiter, stop: Stop | None = None) -> None:
        self.settings = settings
        common: dict[str, Any] = sdk_options(settings.timeout, settings.max_body_bytes)
        self.foundry = settings.foundry_endpoint is not None
        if settings.foundry_endpoint is not None:
            if settings.tokens is None:
                raise ValueError("a Foundry source needs its EntraTokens")
            # The SDK asks `tokens` for the bearer before every request, so a refreshed one is used at once.
            self.client = openai.AsyncOpenAI(
                base_url=settings.foundry_endpoint.rstrip("/"),
                api_key=settings.tokens,
                default_query={"api-version": settings.api_version or FOUNDRY_API_VERSION},
                **common,
            )
        elif settings.azure_endpoint:
            self.client: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
                azure_endpoint=settings.azure_endpoint,
                api_version=settings.api_version,
                api_key=settings.api_key,
                **common,
            )
        else:
            # base_url None lets the SDK read OPENAI_BASE_URL itself; it is handed over unchanged.
            self.client = openai.AsyncOpenAI(base_url=settings.base_url, api_key=settings.api_key, **common)
        # The key the SDK settled on (given, or OPENAI_API_KEY): removed from every text a server sends.
        register_secret(self.client.api_key)
        self.path = RequestPath(
            str(self.client.base_url),
            flag="--foundry-endpoint"
            if self.foundry
            else "--azure-endpoint"
            if settings.azure_endpoint
            else "--base-url",
            refusals=FOUNDRY_REFUSALS if self.foundry else REFUSALS,
            renew=settings.tokens.renew if self.foundry and settings.tokens is not None else None,
            limiter=limiter,
            stop=stop,
            max_attempts=settings.max_attempts,
            max_backoff=settings.max_backoff,
        )
        self.base_url = self.path.base_url

    @property
    def stats(self) -> RequestStats:
        return self.path.stats

    async def close(self) -> None:
        await self.client.close()

    async def _send(
        self, kind: str, call: Callable[[], Awaitable[Any]], read: Callable[[Any], Any] = lambda raw: raw
    ) -> Any:
        """One request through the request path; the source's meaning of what is left after it."""
        try:
            return await self.path.send(call, kind=kind, read=read)
        except BodyTooLarge as exc:
            raise TooLarge(f"{kind}: {exc} (--max-body-mb {self.settings.max_body_mb:g})") from None
        except openai.APIStatusError as exc:
            gone = no_assistants_api(exc, kind, self.base_url, foundry=self.foundry)
            if gone is not None:
                # Every request would hear the same: end them all now, before any thread is marked missing.
                self.path.halt(lambda: NoAssistantsApiError(gone.message, hint=gone.hint))
                raise gone from None
            missing = route_missing(exc, kind, error_message(exc))
            if missing is not None:
                raise missing from None
            if exc.status_code == 404:
                raise NotFound(error_message(exc)) from None
            if exc.status_code in RETRYABLE_STATUS:
                raise
            raise Rejected(error_message(exc), exc.status_code) from None

    async def _json(self, kind: str, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        return await self._send(kind, call, lambda raw: json_object(raw.content, f"{kind}: the source"))

    # -- endpoints ---------------------------------------------------------------------------------

    async def list_threads(self, after: str | None) -> dict[str, Any]:
        """A page of `GET /threads` (Foundry and some look-alikes; OpenAI never served it).

        The SDK has no method for it, so the client's own GET is used, still through the request path.
        A 404, 405 or 501 means no thread list here, unless the assistants collection is gone too: then
        the whole Assistants API is (the sunset's one message, not "cannot list threads").
        """
        query = {"limit": 100, "order": "asc", **_after(after)}
        try:
            return await self._json(
                "threads",
                lambda: self.client.get("/threads", cast_to=httpx2.Response, options={"params": query}),
            )
        except RouteMissing as missing:
            await self.list_assistants(None)  # raises the sunset error when the API is gone
            raise CannotListThreadsError(
                f"this source cannot list threads ({missing.detail}): give --threads FILE"
            ) from None

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

    async def list_messages(self, thread_id: str, after: str | None, order: str = "asc") -> dict[str, Any]:
        """A page of messages; `order="desc"` (newest first) lists from the other end when the
        ascending pages will not end (see `paging.collect`)."""
        call = self.client.beta.threads.messages.with_raw_response.list
        return await self._json(
            "messages", lambda: _beta(call, thread_id, limit=100, order=order, **_after(after))
        )

    async def list_runs(self, thread_id: str, after: str | None, order: str = "asc") -> dict[str, Any]:
        call = self.client.beta.threads.runs.with_raw_response.list
        return await self._json(
            "runs", lambda: _beta(call, thread_id, limit=100, order=order, **_after(after))
        )

    async def list_run_steps(
        self, thread_id: str, run_id: str, after: str | None, *, file_search: bool
    ) -> dict[str, Any]:
        call = self.client.beta.threads.runs.steps.with_raw_response.list
        # One value: the same on the wire as Foundry's comma-joined `include[]` and OpenAI's repeated one.
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

    async def download_file(self, file_id: str, expected_bytes: int | None = None) -> bytes:
        """The file's bytes, accepted only when their length is the file object's `bytes` (when
        known) and the answer's Content-Length (when sent): anything else is retried, then raised."""
        call = self.client.files.with_raw_response.content

        def read(raw: Any) -> bytes:
            data = raw.content
            _check_length(file_id, data, raw.headers, expected_bytes)
            return data

        return await self._send("file_content", lambda: call(file_id), read)


def _check_length(file_id: str, data: bytes, headers: Any, expected: int | None) -> None:
    kind = headers.get("content-type") or "no content type"
    length = headers.get("content-length")
    # Content-Length counts what was sent: compare it only when the body was not compressed.
    declared = int(length) if length is not None and length.isdigit() else None
    if declared is not None and not headers.get("content-encoding") and declared != len(data):
        raise SizeMismatch(f"{file_id}: {len(data):,} bytes read, the answer declared {int(length):,}")
    if expected is not None and len(data) != expected:
        raise SizeMismatch(
            f"{file_id}: the download is {len(data):,} bytes ({kind}), the file object says {expected:,}"
        )


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
