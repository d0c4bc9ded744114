"""The target client: the openai SDK (retries off) behind the one request path (`migrator.http`).

The request path paces, retries (408/409/429/5xx, timeouts, dropped connections), stops the replay
on a refusal that repeating cannot fix (401, 403, exhausted quota, and this client's own: 404, a
wrong base URL or an unknown model) or on a target that cannot be reached. What is left is the
provider's verdict on one request: any other 4xx is `rejected` with its error, a request that never
got an answer is `failed`. The body the target sent is kept verbatim.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import openai

from migrator.errors import TargetRefusedError
from migrator.http import (
    RETRYABLE_STATUS,
    GarbledResponse,
    RateLimiter,
    Refusals,
    Stop,
    connect_target,
    error_message,
    json_object,
)

__all__ = ["Outcome", "TargetClient", "TargetRefusedError", "TargetSettings", "TokenPacer"]

_JSON = {"Content-Type": "application/json"}


@dataclass
class TargetSettings:
    base_url: str | None = None  # handed to the SDK unchanged (include /v1 when the server serves there)
    api_key: str | None = None  # never stored, never logged
    timeout: float = 120.0
    max_attempts: int = 6
    max_backoff: float = 30.0


@dataclass(frozen=True)
class Outcome:
    """What became of one request: `done` (an answer), `rejected` (a 4xx verdict), `failed` (none)."""

    state: str
    status_code: int | None
    response: str | None  # the target's body, verbatim
    error: str | None
    latency_ms: float | None  # of the attempt that got the answer
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class TokenPacer:
    """`--max-tpm`: a token bucket refilled at tpm/60 a second, holding at most 6 s of tokens.

    A request takes its estimated tokens up front (its body's bytes / 4) and settles the
    difference when the usage comes back; a request larger than the bucket waits for a full one.
    """

    def __init__(self, tokens_per_minute: float) -> None:
        self.rate = tokens_per_minute / 60.0
        self.capacity = self.rate * 6.0
        self.level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        async with self._lock:
            now = time.monotonic()
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
            self._stamp = now
            wait = max(0.0, (min(tokens, self.capacity) - self.level) / self.rate)
            self.level -= tokens
        if wait > 0:
            await asyncio.sleep(wait)

    def settle(self, estimated: int, actual: int | None) -> None:
        if actual is not None:
            self.level -= actual - estimated


def _not_there(exc: openai.APIStatusError, base_url: str) -> TargetRefusedError | None:
    """The target's own refusal: a 404 is a wrong base URL or model, for every request alike."""
    if exc.status_code != 404:
        return None
    return TargetRefusedError(
        f"{base_url} answered 404 ({error_message(exc)})",
        hint="check --target-base-url (include /v1 when the server serves there) and --model",
    )


REFUSALS = Refusals(
    TargetRefusedError,
    key_env="TARGET_API_KEY",
    forbidden_hint="use a key allowed to call this model",
    extra=_not_there,
)


def _usage(body: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None, None
    # Chat completions count prompt/completion tokens; the Responses API input/output tokens.
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return (prompt if isinstance(prompt, int) else None, completion if isinstance(completion, int) else None)


class TargetClient:
    """Sends chat-completions requests to the target; one instance per replay run."""

    def __init__(
        self,
        settings: TargetSettings,
        limiter: RateLimiter,
        tokens: TokenPacer | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.client, self.path = connect_target(settings, REFUSALS, limiter, stop)
        self.base_url = self.path.base_url

    @property
    def requests(self) -> int:
        """HTTP requests made, retries included."""
        return self.path.stats.requests

    @property
    def retries(self) -> int:
        return self.path.stats.retries

    async def close(self) -> None:
        await self.client.close()

    async def complete(self, body: bytes, url: str = "/v1/chat/completions") -> Outcome:
        """One request (its JSON bytes, to `url` as the Batch API names it) through the token pacer
        and the request path.

        Raises what stops the whole replay (a refusal, an unreachable target, an interruption);
        every other ending is an Outcome.
        """
        estimate = max(1, len(body) // 4)
        latency: list[float] = []

        async def call() -> openai.AsyncAPIResponse[str]:
            if self.tokens is not None:
                await self.tokens.acquire(estimate)
            started = time.monotonic()
            try:
                # The canonical bytes that were hashed go on the wire as they are: the SDK's typed
                # create() would re-walk every message (~0.2 s of CPU for a long session).
                response = await self.client.post(
                    url.removeprefix("/v1"),  # the base URL holds the /v1
                    cast_to=openai.AsyncAPIResponse[str],
                    content=body,
                    options={"headers": _JSON},
                )
                await response.read()
            except openai.APIStatusError:
                latency.append((time.monotonic() - started) * 1000)
                raise
            latency.append((time.monotonic() - started) * 1000)
            return response

        def read(response: openai.AsyncAPIResponse[str]) -> tuple[str, dict[str, Any]]:
            content = response.http_response.content
            return content.decode("utf-8", "replace"), json_object(content, "the target")

        try:
            text, parsed = await self.path.send(
                call, kind="responses" if url.endswith("/responses") else "chat", read=read
            )
        except openai.APIStatusError as exc:
            state = "failed" if exc.status_code in RETRYABLE_STATUS else "rejected"
            return Outcome(
                state,
                exc.status_code,
                exc.response.text,
                error_message(exc),
                latency[-1] if latency else None,
            )
        except (openai.APIConnectionError, GarbledResponse) as exc:
            return Outcome("failed", None, None, f"{type(exc).__name__}: {exc}", None)
        prompt, completion = _usage(parsed)
        if self.tokens is not None:
            self.tokens.settle(estimate, None if prompt is None else prompt + (completion or 0))
        return Outcome("done", 200, text, None, latency[-1], prompt, completion)
