"""The target client: the openai SDK (retries off), one tenacity retry policy, the shared pacer.

The same pattern as the source client: `max_retries=0` so tenacity owns the one retry policy
(408/409/429/5xx, timeouts, dropped connections; `retry-after-ms`, `retry-after`,
`x-ratelimit-*` honoured through `RateLimiter`), never a retry on another 4xx. A refusal that
repeating cannot fix (401, 403, exhausted quota, 404: wrong base URL or unknown model) stops the
whole replay; any other 4xx is the provider's verdict on that one request: `rejected`, with its
error. The body the target sent is kept verbatim.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import openai
import orjson

from migrator.errors import TargetRefusedError
from migrator.source.ratelimit import RateLimiter
from migrator.source.retry import (
    RETRYABLE_STATUS,
    error_body,
    error_message,
    refusal,
    retry_policy,
    status_of,
)

__all__ = ["Outcome", "TargetClient", "TargetRefusedError", "TargetSettings", "TokenPacer"]

_JSON = {"Content-Type": "application/json"}


class _NotJson(Exception):
    """A 200 whose body is not a JSON object: retried like a dropped connection."""


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


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError | _NotJson):
        return True
    return status_of(exc) in RETRYABLE_STATUS


def _fatal(exc: openai.APIStatusError, base_url: str) -> TargetRefusedError | None:
    if exc.status_code == 404:
        return TargetRefusedError(
            f"{base_url} answered 404 ({error_message(exc)})",
            hint="check --target-base-url (include /v1 when the server serves there) and --model",
        )
    return refusal(
        exc,
        base_url,
        error=TargetRefusedError,
        key_env="TARGET_API_KEY",
        forbidden_hint="use a key allowed to call this model",
    )


def _usage(body: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else None, completion if isinstance(completion, int) else None)


class TargetClient:
    """Sends chat-completions requests to the target; one instance per replay run."""

    def __init__(
        self, settings: TargetSettings, limiter: RateLimiter, tokens: TokenPacer | None = None
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.tokens = tokens
        self.requests = 0  # HTTP requests made, retries included
        self.retries = 0
        self.client = openai.AsyncOpenAI(
            base_url=settings.base_url, api_key=settings.api_key, max_retries=0, timeout=settings.timeout
        )
        self.base_url = str(self.client.base_url).rstrip("/")

    async def close(self) -> None:
        await self.client.close()

    async def complete(self, body: bytes) -> Outcome:
        """One request (its JSON bytes) through the pacers and the retry policy.

        Raises TargetRefusedError only; every other ending is an Outcome.
        """
        estimate = max(1, len(body) // 4)
        latency: list[float] = []

        def count_retry() -> None:
            self.retries += 1

        retrying = retry_policy(
            transient=_is_transient,
            max_attempts=self.settings.max_attempts,
            max_backoff=self.settings.max_backoff,
            on_retry=count_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    text, parsed = await self._attempt(body, estimate, latency)
        except openai.APIStatusError as exc:
            fatal = _fatal(exc, self.base_url)
            if fatal is not None:
                raise fatal from None
            state = "failed" if exc.status_code in RETRYABLE_STATUS else "rejected"
            return Outcome(
                state,
                exc.status_code,
                exc.response.text,
                error_message(exc),
                latency[-1] if latency else None,
            )
        except (openai.APIConnectionError, _NotJson) as exc:
            return Outcome("failed", None, None, f"{type(exc).__name__}: {exc}", None)
        prompt, completion = _usage(parsed)
        if self.tokens is not None:
            self.tokens.settle(estimate, None if prompt is None else prompt + (completion or 0))
        return Outcome("done", 200, text, None, latency[-1], prompt, completion)

    async def _attempt(self, body: bytes, estimate: int, latency: list[float]) -> tuple[str, dict[str, Any]]:
        await self.limiter.acquire()
        if self.tokens is not None:
            await self.tokens.acquire(estimate)
        self.requests += 1
        started = time.monotonic()
        try:
            # The canonical bytes that were hashed go on the wire as they are: the SDK's typed
            # create() would re-walk every message (~0.2 s of CPU for a long session).
            response = await self.client.post(
                "/chat/completions",
                cast_to=openai.AsyncAPIResponse[str],
                content=body,
                options={"headers": _JSON},
            )
            content = await response.read()
        except openai.APIStatusError as exc:
            latency.append((time.monotonic() - started) * 1000)
            if exc.status_code == 429 and error_body(exc).get("code") != "insufficient_quota":
                self.limiter.throttled(exc.response.headers)
            elif _fatal(exc, self.base_url) is None:
                self.limiter.observe(exc.response.headers)
            raise
        latency.append((time.monotonic() - started) * 1000)
        self.limiter.observe(response.headers)
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise _NotJson("the target sent a body that is not JSON") from None
        if not isinstance(parsed, dict):
            raise _NotJson("the target sent JSON that is not an object")
        return content.decode("utf-8", "replace"), parsed
