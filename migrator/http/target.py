"""The one way a target client is built: the SDK on the project's wire, the key registered with the
redaction step, and a request path that names `--target-base-url` when the target refuses."""

from __future__ import annotations

from typing import Protocol

import openai

from migrator.http.path import RequestPath, Stop
from migrator.http.ratelimit import RateLimiter
from migrator.http.retry import Refusals
from migrator.http.wire import sdk_options
from migrator.redact import register_secret

__all__ = ["TargetConnection", "connect_target"]


class TargetConnection(Protocol):
    """What a target's settings give (replay's and the importers' settings both have these)."""

    base_url: str | None
    api_key: str | None
    timeout: float
    max_attempts: int
    max_backoff: float


def connect_target(
    settings: TargetConnection, refusals: Refusals, limiter: RateLimiter, stop: Stop | None
) -> tuple[openai.AsyncOpenAI, RequestPath]:
    client = openai.AsyncOpenAI(
        base_url=settings.base_url, api_key=settings.api_key, **sdk_options(settings.timeout)
    )
    # The key the SDK settled on (given, or TARGET_API_KEY): removed from every text a server sends.
    register_secret(client.api_key)
    path = RequestPath(
        str(client.base_url),
        flag="--target-base-url",
        refusals=refusals,
        limiter=limiter,
        stop=stop,
        max_attempts=settings.max_attempts,
        max_backoff=settings.max_backoff,
    )
    return client, path
