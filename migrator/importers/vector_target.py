"""The Files + Vector Stores target of `--to vector-stores`: the SDK (retries off) behind the one request path.

Reads (lists, retrieves) are retried like any request. A create is not simply sent again when its
outcome is unknown (a timeout, a dropped connection, a 5xx, a 200 we cannot read): it raises
`Unknown`, and the importer first asks the target whether the object exists (see vector_stores.py).
A 404 on a collection (`POST /files`, `/vector_stores`) means the target has no such API there: the
run stops (exit 3) naming the base URL, like any refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai

from migrator.errors import TargetRefusedError
from migrator.http import (
    RETRYABLE_STATUS,
    GarbledResponse,
    RateLimiter,
    Refusals,
    Stop,
    connect_failed,
    connect_target,
    error_message,
    json_object,
    status_of,
)
from migrator.importers.conversations import TargetSettings
from migrator.source import PageAnomaly, collect

__all__ = ["REFUSALS", "Failed", "TargetSettings", "Unknown", "VectorTarget"]

PURPOSE = "assistants"  # what file_search reads; the purpose the source's files had


class Failed(Exception):
    """The target refused this one object (a 4xx verdict, or no answer after every attempt)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unknown(Exception):
    """A create whose outcome we did not learn: it may exist on the target."""


REFUSALS = Refusals(
    TargetRefusedError,
    key_env="TARGET_API_KEY",
    forbidden_hint="use a TARGET_API_KEY of a project allowed to upload files and create vector stores",
)


def _ambiguous(exc: BaseException) -> bool:
    """The server may have acted: no answer, or a 5xx (not 408/409/429, which refuse). A connection
    that was never made is not ambiguous: nothing reached the server."""
    if isinstance(exc, openai.APIConnectionError):
        return not connect_failed(exc)
    status = status_of(exc)
    return status is not None and status >= 500


class VectorTarget:
    def __init__(self, settings: TargetSettings, limiter: RateLimiter, stop: Stop) -> None:
        self.settings = settings
        self.client, self.path = connect_target(settings, REFUSALS, limiter, stop)
        self.base_url = self.path.base_url
        self.creates = 0  # create requests sent by this run (attempts included)

    async def close(self) -> None:
        await self.client.close()

    async def _send(self, call: Callable[[], Awaitable[Any]], kind: str, *, create: bool) -> dict[str, Any]:
        def transient(exc: BaseException) -> bool:
            if create and _ambiguous(exc):
                return False  # asked about first: the importer looks it up before sending again
            return isinstance(exc, openai.APIConnectionError) or status_of(exc) in RETRYABLE_STATUS

        async def counted() -> Any:
            if create:
                self.creates += 1
            return await call()

        try:
            return await self.path.send(
                counted,
                kind=kind,
                read=lambda raw: json_object(raw.content, "the target"),
                transient=transient,
            )
        except GarbledResponse as exc:
            if create:
                raise Unknown(str(exc)) from None  # a 200 we cannot read: it was made
            raise Failed(str(exc)) from None
        except openai.APIStatusError as exc:
            if create and _ambiguous(exc):
                raise Unknown(error_message(exc)) from None
            if exc.status_code == 404 and kind in ("files", "vector_stores"):
                raise TargetRefusedError(
                    f"{self.base_url} has no {'Files' if kind == 'files' else 'Vector Stores'} API "
                    f"({error_message(exc)})",
                    hint="check --target-base-url (include /v1 when the server serves there)",
                ) from None
            raise Failed(error_message(exc), exc.status_code) from None
        except openai.APIConnectionError as exc:
            if create and _ambiguous(exc):
                raise Unknown(f"no answer: {exc}") from None
            raise Failed(f"no answer after {self.settings.max_attempts} attempts: {exc}") from None

    # -- creates -------------------------------------------------------------------------------------

    async def upload(self, name: str, data: bytes) -> dict[str, Any]:
        call = self.client.files.with_raw_response.create
        return await self._send(lambda: call(file=(name, data), purpose=PURPOSE), "files", create=True)

    async def create_store(self, body: dict[str, Any]) -> dict[str, Any]:
        call = self.client.vector_stores.with_raw_response.create
        return await self._send(lambda: call(**body), "vector_stores", create=True)

    async def attach(self, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
        call = self.client.vector_stores.files.with_raw_response.create
        return await self._send(lambda: call(store_id, **body), "vector_store_files", create=True)

    # -- reads ---------------------------------------------------------------------------------------

    async def store_file(self, store_id: str, file_id: str) -> dict[str, Any] | None:
        """The file as attached to the store, or None when it is not attached (404)."""
        call = self.client.vector_stores.files.with_raw_response.retrieve
        try:
            return await self._send(
                lambda: call(file_id, vector_store_id=store_id), "vector_store_file", create=False
            )
        except Failed as exc:
            if exc.status == 404:
                return None
            raise

    async def _all(
        self, page: Callable[[str | None], Awaitable[dict[str, Any]]], what: str
    ) -> list[dict[str, Any]]:
        try:
            return (await collect(page)).items
        except PageAnomaly as exc:
            raise Failed(f"cannot list {what}: {exc}") from None

    async def files(self) -> list[dict[str, Any]]:
        """Every file of purpose `assistants` on the target, oldest first."""
        call = self.client.files.with_raw_response.list

        async def page(after: str | None) -> dict[str, Any]:
            extra = {"after": after} if after else {}
            return await self._send(
                lambda: call(purpose=PURPOSE, limit=10_000, order="asc", **extra), "files", create=False
            )

        return await self._all(page, "the target's files")

    async def stores(self) -> list[dict[str, Any]]:
        """Every vector store on the target, oldest first."""
        call = self.client.vector_stores.with_raw_response.list

        async def page(after: str | None) -> dict[str, Any]:
            extra = {"after": after} if after else {}
            return await self._send(
                lambda: call(limit=100, order="asc", **extra), "vector_stores", create=False
            )

        return await self._all(page, "the target's vector stores")

    async def store_files(self, store_id: str) -> list[dict[str, Any]]:
        """Every file attached to one store, with its ingestion status."""
        call = self.client.vector_stores.files.with_raw_response.list

        async def page(after: str | None) -> dict[str, Any]:
            extra = {"after": after} if after else {}
            return await self._send(
                lambda: call(store_id, limit=100, order="asc", **extra), "vector_store_files", create=False
            )

        return await self._all(page, f"the files of {store_id}")
