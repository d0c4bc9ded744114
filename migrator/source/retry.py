"""The one retry policy of the project, shared by every client it runs (source, replay and import
targets): which failures are worth repeating, how long to wait, and what an error body says.

The SDK's own retries are off (`max_retries=0`) wherever this policy is used, so retries never stack.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from migrator.errors import RefusedError
from migrator.source.ratelimit import retry_after_seconds

__all__ = [
    "RETRYABLE_STATUS",
    "error_body",
    "error_code",
    "error_message",
    "refusal",
    "retry_policy",
    "status_of",
]

Refused = TypeVar("Refused", bound=RefusedError)

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def status_of(exc: BaseException | None) -> int | None:
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    """The `error` object of an OpenAI-style error body (empty when there is none)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body)
    return inner if isinstance(inner, dict) else {}


def error_code(exc: openai.APIStatusError) -> str | None:
    return error_body(exc).get("code")


def error_message(exc: openai.APIStatusError) -> str:
    return f"{exc.status_code}: {error_body(exc).get('message') or exc.message}"


RESUME = "then run the same command again to resume"


def refusal(
    exc: openai.APIStatusError, base_url: str, *, error: type[Refused], key_env: str, forbidden_hint: str
) -> Refused | None:
    """401, 403 and an exhausted quota: refusals that repeating cannot fix (exit 3), saying what to set.

    Every client asks this first; each adds its own (410 Gone for a source, 404 for a target).
    """
    if exc.status_code == 401:
        return error(f"{base_url} refused the API key (401)", hint=f"set {key_env} to a valid key, {RESUME}")
    if exc.status_code == 403:
        reason = error_body(exc).get("message") or "permission denied"
        return error(f"{base_url} denied access (403): {reason}", hint=f"{forbidden_hint}, {RESUME}")
    if exc.status_code == 429 and error_code(exc) == "insufficient_quota":
        return error(
            f"{base_url} reports the quota is exhausted (insufficient_quota)",
            hint=f"raise the quota or wait for it to reset, {RESUME}",
        )
    return None


def retry_policy(
    *,
    transient: Callable[[BaseException], bool],
    max_attempts: int,
    max_backoff: float,
    on_retry: Callable[[], None] = lambda: None,
) -> AsyncRetrying:
    """Jittered exponential backoff that honours `retry-after-ms`/`retry-after`.

    A 429 waits nothing here: the shared rate limiter has already paused every worker until the
    source's retry-after, so the retry simply takes the next slot.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if status_of(exc) == 429:
            return 0.0
        hinted = retry_after_seconds(exc.response.headers) if isinstance(exc, openai.APIStatusError) else None
        if hinted is not None:
            return min(hinted, max_backoff)
        backoff = min(max_backoff, 0.25 * 2 ** (state.attempt_number - 1))
        return random.uniform(backoff / 2, backoff)  # jitter keeps workers from retrying in lockstep

    return AsyncRetrying(
        retry=retry_if_exception(transient),
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        before_sleep=lambda _state: on_retry(),
        reraise=True,
    )
