"""The HTTP client under every SDK client: it tells the request path when a request reached the wire,
and it bounds the body of every answer.

Both ride on httpx's public hooks, so the SDK, its auth and the environment's proxies work as always:

- a request hook hands httpcore a `trace` callback; the request path (`path.py`) learns from it when
  the request's headers start going out. Before that moment nothing can have reached the server: a
  create cancelled while still connecting (a refused port, a stop) was never made, and is not
  counted as one whose outcome is unknown;
- a response hook refuses a `Content-Length` over the limit at once; a body without one (chunked)
  has its stream wrapped so that reading stops at the limit (`BodyTooLarge`): memory stays bounded
  by `max_body_bytes`, not by what a server sends. The limit counts the bytes as they arrive (before
  any gzip is undone), as Content-Length does.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

__all__ = ["BodyTooLarge", "WireState", "sdk_options", "wire_client", "wire_state"]


class BodyTooLarge(Exception):
    """An answer whose body is larger than the client accepts: repeating the request cannot help."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        said = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
        super().__init__(f"the answer's body is {said}, over the limit of {limit:,} bytes")
        self.limit = limit
        self.size = size


@dataclass
class WireState:
    """One attempt of one request, as its HTTP client saw it."""

    traced: bool = False  # the client reports trace events at all (it is a wire_client)
    sent: bool = False  # the request's headers started going out


# The attempt the current task is making; set by the request path around the SDK call.
wire_state: contextvars.ContextVar[WireState | None] = contextvars.ContextVar("wire_state", default=None)


async def _on_request(request: httpx2.Request) -> None:
    extensions = request.extensions  # the very dict httpcore reads each phase's trace callback from

    async def trace(name: str, info: dict[str, Any]) -> None:
        state = wire_state.get()
        if state is not None:
            state.traced = True
            if not name.endswith("send_request_headers.started"):
                return
            state.sent = True
        # Once the headers go out (or when no request path asks) nothing later is of interest, so the
        # phases after it are not traced at all: each traced phase costs a request two more coroutines.
        extensions.pop("trace", None)

    extensions["trace"] = trace


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self.inner:
            total += len(chunk)
            if total > self.limit:
                raise BodyTooLarge(self.limit)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


def _response_hook(limit: int):
    async def on_response(response: httpx2.Response) -> None:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit():
            if int(length) > limit:
                raise BodyTooLarge(limit, int(length))
            return  # h11 reads exactly the declared length, so the body cannot pass the limit
        response.stream = _Capped(response.stream, limit)  # chunked, or no length: counted as it comes

    return on_response


def wire_client(max_body_bytes: int | None = None) -> httpx2.AsyncClient:
    """An httpx client with the SDK's defaults, the wire trace, and the body limit (None: none)."""
    hooks: dict[str, list[Any]] = {"request": [_on_request]}
    if max_body_bytes is not None:
        hooks["response"] = [_response_hook(max_body_bytes)]
    return openai.DefaultAsyncHttpxClient(event_hooks=hooks)


def sdk_options(timeout: float, max_body_bytes: int | None = None) -> dict[str, Any]:
    """What every SDK client of the project is built with: retries off (the request path owns them),
    the timeout, and the wire client."""
    return {"max_retries": 0, "timeout": timeout, "http_client": wire_client(max_body_bytes)}
