"""What an error means: worth repeating, a refusal that stops the run, or the request's own verdict.

The SDK's own retries are off (`max_retries=0`) in every client, so the request path's tenacity
policy is the only one and retries never stack.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai

from migrator.errors import RefusedError
from migrator.http.ratelimit import retry_after_seconds

__all__ = [
    "RESUME",
    "RETRYABLE_STATUS",
    "Refusals",
    "backoff_seconds",
    "error_body",
    "error_code",
    "error_message",
    "refusal",
    "status_of",
]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
RESUME = "then run the same command again to resume"


def status_of(exc: BaseException | None) -> int | None:
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    """The `error` object of an OpenAI-style error body (empty when there is none)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body)
    return inner if isinstance(inner, dict) else {}


def error_code(exc: openai.APIStatusError) -> str | None:
    code = error_body(exc).get("code")
    return code if isinstance(code, str) else None


def error_message(exc: openai.APIStatusError) -> str:
    """`STATUS: message`, from OpenAI's and Foundry's `{"error": {message}}` or FastAPI's `{"detail"}`."""
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    return f"{exc.status_code}: {error_body(exc).get('message') or detail or exc.message}"


def refusal(
    exc: openai.APIStatusError, base_url: str, *, error: type[RefusedError], key_env: str, forbidden_hint: str
) -> RefusedError | None:
    """401, 403 and an exhausted quota: refusals that repeating cannot fix (exit 3), saying what to set."""
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


Extra = Callable[[openai.APIStatusError, str], RefusedError | None]


@dataclass(frozen=True)
class Refusals:
    """One client's refusal rules: the shared ones (401, 403, exhausted quota) and its own `extra`
    (410 Gone for a source, 404 for a chat target...), asked first. Each names what to set."""

    error: type[RefusedError]
    key_env: str
    forbidden_hint: str
    extra: Extra | None = None

    def check(self, exc: openai.APIStatusError, base_url: str) -> RefusedError | None:
        if self.extra is not None and (found := self.extra(exc, base_url)) is not None:
            return found
        return refusal(
            exc, base_url, error=self.error, key_env=self.key_env, forbidden_hint=self.forbidden_hint
        )


def backoff_seconds(exc: BaseException | None, attempt: int, max_backoff: float) -> float:
    """Jittered exponential backoff that honours `retry-after-ms`/`retry-after`.

    A 429 waits nothing here: the shared rate limiter has already paused every worker until the
    host's retry-after, so the retry simply takes the next slot.
    """
    if status_of(exc) == 429:
        return 0.0
    if isinstance(exc, openai.APIStatusError):
        hinted = retry_after_seconds(exc.response.headers)
        if hinted is not None:
            return min(hinted, max_backoff)
    backoff = min(max_backoff, 0.25 * 2 ** min(attempt - 1, 16))
    return random.uniform(backoff / 2, backoff)  # jitter keeps workers from retrying in lockstep
