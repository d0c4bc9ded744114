"""The one request path of every HTTP client: pacing, retries, refusals, connection accounting, stops.

A new client (a target, say) needs these lines::

    stop = Stop()                       # or the command's, from `stop_on_signals()`
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=key, **sdk_options(timeout))
    register_secret(key)                # migrator.redact: never stored, never printed
    path = RequestPath(base_url, flag="--target-base-url", stop=stop, limiter=RateLimiter(max_rps),
                       refusals=Refusals(TargetRefusedError, key_env="TARGET_API_KEY",
                                         forbidden_hint="use a key allowed to ...", extra=its_own_rule))
    body = await path.send(lambda: sdk.things.with_raw_response.create(...), kind="things",
                           read=lambda raw: json_object(raw.content))

and then maps what `send` raises to its own meaning (see `RequestPath`).
"""

from migrator.http.path import (
    DEAD_AFTER_FAILURES,
    DEAD_AFTER_SECONDS,
    STOP_GRACE_SECONDS,
    UNANSWERED_BACKOFF,
    GarbledResponse,
    HostHealth,
    Renew,
    Renewed,
    RequestPath,
    RequestStats,
    Stop,
    connect_failed,
    default_transient,
    host_of,
    json_object,
    stop_on_signals,
)
from migrator.http.ratelimit import RateLimiter, parse_duration, retry_after_seconds
from migrator.http.retry import (
    RESUME,
    RETRYABLE_STATUS,
    Refusals,
    error_body,
    error_code,
    error_message,
    refusal,
    status_of,
)
from migrator.http.target import TargetConnection, connect_target
from migrator.http.wire import BodyTooLarge, WireState, sdk_options, wire_client

__all__ = [
    "TargetConnection",
    "connect_target",
    "BodyTooLarge",
    "WireState",
    "sdk_options",
    "wire_client",
    "DEAD_AFTER_FAILURES",
    "DEAD_AFTER_SECONDS",
    "RESUME",
    "RETRYABLE_STATUS",
    "STOP_GRACE_SECONDS",
    "UNANSWERED_BACKOFF",
    "GarbledResponse",
    "HostHealth",
    "RateLimiter",
    "Refusals",
    "Renew",
    "Renewed",
    "RequestPath",
    "RequestStats",
    "Stop",
    "connect_failed",
    "default_transient",
    "error_body",
    "error_code",
    "error_message",
    "host_of",
    "json_object",
    "parse_duration",
    "refusal",
    "retry_after_seconds",
    "status_of",
    "stop_on_signals",
]
