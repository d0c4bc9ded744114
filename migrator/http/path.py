"""The one request path: every HTTP request of every client goes through `RequestPath.send`.

For one host it owns the pacer (`RateLimiter`), the retry policy (tenacity), the refusal rules
(`Refusals`), the connection accounting (`HostHealth`) and interruption (`Stop`):

- every attempt takes a slot of the limiter and reports back whatever happens (an answer, an error,
  a cancellation), so the limiter's first "probe" can never hold the others forever;
- 408/409/429/5xx, timeouts, dropped connections and unreadable bodies are retried with jittered
  backoff (retry-after honoured); a refusal (401/403, exhausted quota, the client's own) stops the run;
- a host whose connections keep failing stops the run soon (`UnreachableError`, exit 3, naming the
  host and the flag to check) instead of failing every thread one by one: while the host is down no
  request counts its connection failures against its own attempts, so nothing is marked failed for it;
- SIGINT/SIGTERM (`Stop`) ends every request within STOP_GRACE_SECONDS, even one waiting on a host
  that accepted the connection and never answers: no new request starts, and those already begun
  (on the wire, or waiting for their slot) get that long to finish, so a healthy host still delivers
  its answers and nothing is left half done. An unfinished one raises `Interrupted`.

A client builds one path per host and run, and keeps only its own rules (which errors mean what for
it): see `migrator/source/client.py`, `migrator/replay/client.py`, `migrator/importers/conversations.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from migrator.archive.canonical import loads
from migrator.errors import Interrupted, MigrateError, UnreachableError
from migrator.http.ratelimit import RateLimiter
from migrator.http.retry import RETRYABLE_STATUS, Refusals, backoff_seconds, status_of
from migrator.http.wire import BodyTooLarge, WireState, wire_state

__all__ = [
    "BodyTooLarge",
    "DEAD_AFTER_FAILURES",
    "DEAD_AFTER_SECONDS",
    "STOP_GRACE_SECONDS",
    "UNANSWERED_BACKOFF",
    "GarbledResponse",
    "HostHealth",
    "Renew",
    "Renewed",
    "RequestPath",
    "RequestStats",
    "Stop",
    "connect_failed",
    "default_transient",
    "describe_failure",
    "host_of",
    "json_object",
    "stop_on_signals",
]

# A host that has not answered once: this many failed connection attempts in a row and it is
# unreachable (a refused port is known within a second when requests run side by side, within a
# few seconds when they go one at a time).
DEAD_AFTER_FAILURES = 10
# Unreachable once its connection attempts have failed for this long with no answer in between (a
# host that answered before: at least two failures). A slow answer never counts, only failures do;
# on a host that accepts connections and never answers, the first one comes after the timeout.
DEAD_AFTER_SECONDS = 60.0
# While a host has never answered, retries of a failed connection wait at most this long, so a
# phase that sends one request at a time (the assistants listing, plan) learns a dead host soon.
UNANSWERED_BACKOFF = 0.5
# On SIGINT/SIGTERM a request already on the wire gets this long to bring its answer back.
STOP_GRACE_SECONDS = 2.0

T = TypeVar("T")


class GarbledResponse(Exception):
    """An answer whose body we cannot use (not JSON, not an object): retried like a dropped one."""


MAX_RENEWALS = 8  # fresh tokens one request may try before their refusal stands


class Renewed(Exception):
    """A 401 for an expired token, after the client's credential handed out a fresh one: sent again."""


Renew = Callable[[openai.APIStatusError], Awaitable[bool]]


@dataclass
class RequestStats:
    requests: int = 0  # HTTP attempts, retries included
    throttled: int = 0  # answered 429 (not an exhausted quota)
    retries: int = 0
    renewed: int = 0  # 401s to an expired bearer token, sent again with a fresh one
    by_kind: dict[str, int] = field(default_factory=dict)


class Stop:
    """The stop request of one command run (SIGINT/SIGTERM): an event the command checks between
    units of work, which also halts every wait of the request paths it was handed to."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    def set(self) -> None:
        if self._event.is_set():
            return
        self._event.set()
        for listener in self._listeners:
            listener()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)


@contextlib.contextmanager
def stop_on_signals(stop: Stop | None = None) -> Iterator[Stop]:
    """SIGINT and SIGTERM set `stop` while the block runs (inside a running event loop)."""
    stop = stop if stop is not None else Stop()
    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, Any]] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            continue
        installed.append((sig, previous))
    try:
        yield stop
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            # remove_signal_handler leaves SIGTERM at SIG_DFL: put back what was there before.
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, previous)


def host_of(base_url: str) -> str:
    """`host:port` of a URL, never its credentials."""
    parts = urlsplit(base_url)
    host = parts.hostname or base_url
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def connect_failed(exc: BaseException) -> bool:
    """True when the request never reached the host (the connection itself failed)."""
    return any(
        type(link).__name__ in ("ConnectError", "ConnectTimeout")
        or isinstance(link, ConnectionRefusedError | socket.gaierror)
        for link in _causes(exc)
    )


def _timeout_of(exc: BaseException, phase: str) -> float | None:
    request = getattr(exc, "request", None)
    timeouts = getattr(request, "extensions", {}).get("timeout") if request is not None else None
    value = timeouts.get(phase) if isinstance(timeouts, dict) else None
    return value if isinstance(value, int | float) else None


def describe_failure(exc: BaseException) -> str:
    """What went wrong with a connection, in a few words a user can act on."""
    names = {type(link).__name__ for link in _causes(exc)}
    for link in _causes(exc):
        if isinstance(link, ConnectionRefusedError):
            return "connection refused"
        if isinstance(link, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(link, ssl.SSLError):
            return f"TLS failed: {link.reason or link}"
    if "ConnectTimeout" in names:
        seconds = _timeout_of(exc, "connect")
        return f"no connection within {seconds:g} s" if seconds else "the connection timed out"
    if isinstance(exc, openai.APITimeoutError):
        seconds = _timeout_of(exc, "read")
        return f"no answer within {seconds:g} s" if seconds else "no answer before the timeout"
    if "RemoteProtocolError" in names:
        return "the connection closed without an answer"
    for link in _causes(exc):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror.lower()
    return "connection failed"


class HostHealth:
    """Connection accounting for one host: is it reachable, or should the run stop?"""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.answered_ever = False
        self.last_answer = -math.inf  # monotonic time of the last HTTP answer (any status)
        self.streak = 0  # failed connection attempts since that answer
        self.streak_since = math.inf  # when the streak's first failed attempt was sent

    def answer(self) -> None:
        self.answered_ever = True
        self.last_answer = self.clock()
        self.streak = 0
        self.streak_since = math.inf

    def failure(self, sent_at: float) -> bool:
        """Count one failed attempt; True when the host is to be given up."""
        self.streak += 1
        # An attempt sent before the last answer proves nothing about the time before that answer.
        self.streak_since = min(self.streak_since, max(sent_at, self.last_answer))
        failing_for = self.clock() - self.streak_since
        if not self.answered_ever:
            return self.streak >= DEAD_AFTER_FAILURES or failing_for >= DEAD_AFTER_SECONDS
        # A host that answered before is given up only on failures that repeat: one request that
        # timed out while nothing else was in flight proves little.
        return self.streak >= 2 and failing_for >= DEAD_AFTER_SECONDS

    def down_since(self, moment: float) -> bool:
        """No answer has come back since `moment`: failures since then are the host's, not a request's."""
        return self.last_answer < moment


def json_object(content: bytes, what: str = "the host") -> dict[str, Any]:
    """A body that must be one JSON object; anything else is a GarbledResponse (retried).

    Read leniently: a lone surrogate escape or a byte that is not UTF-8 in one message must not
    cost a whole thread (see `migrator.archive.canonical`).
    """
    try:
        body = loads(content)
    except orjson.JSONDecodeError:
        raise GarbledResponse(f"{what} sent a body that is not JSON") from None
    if not isinstance(body, dict):
        raise GarbledResponse(f"{what} sent JSON that is not an object")
    return body


def default_transient(exc: BaseException) -> bool:
    """Worth another attempt: no answer (timeouts, drops), an unreadable one, or 408/409/429/5xx.
    A body over the size limit is not: it would come back as large."""
    if any(isinstance(link, BodyTooLarge) for link in _causes(exc)):
        return False
    if isinstance(exc, openai.APIConnectionError | GarbledResponse):
        return True
    return status_of(exc) in RETRYABLE_STATUS


class RequestPath:
    """Every request of one client to one host: limiter, retries, refusals, connection accounting.

    `send(call)` awaits `call()` (an SDK `with_raw_response` call, or anything returning an object
    with `.headers`) until it answers, and returns `read(answer)`; `read` runs inside the retried
    block, so a garbled body is retried like a dropped one. It raises the client's refusal (exit 3),
    `UnreachableError` (exit 3), `Interrupted` (exit 130), or the last error once retries are spent:
    an `openai.APIStatusError` (4xx verdict or 5xx that never passed), an `openai.APIConnectionError`
    or a `GarbledResponse`, for the client to map to its own meaning.

    `transient` replaces the default rule of what is worth repeating for one call (a request that must
    not be sent twice, say); it sees every failure, so it may count what it saw.

    `renew` is a client's token refresh (bearer tokens expire mid-run): asked about every 401 before the
    refusal rules, it returns True when the request should go again with the token it now hands out.
    """

    def __init__(
        self,
        base_url: str,
        *,
        flag: str,
        refusals: Refusals,
        limiter: RateLimiter | None = None,
        stop: Stop | None = None,
        max_attempts: int = 6,
        max_backoff: float = 30.0,
        renew: Renew | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.renew = renew
        self.host = host_of(self.base_url)
        self.flag = flag  # the option a user corrects when the host cannot be reached
        self.refusals = refusals
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.stats = RequestStats()
        self.health = HostHealth()
        # Tasks inside send -> the attempt they are making (None: waiting for a slot or a retry).
        self._inside: dict[asyncio.Task[Any], WireState | None] = {}
        # Does the SDK client report when a request reaches the wire (`wire.wire_client`)? Until one of
        # its attempts shows it, a request being made counts as on the wire: its outcome is unknown.
        self.traced = False
        self._cancelled: dict[asyncio.Task[Any], bool] = {}  # tasks we cancelled -> was it on the wire
        self._halt: Callable[[], MigrateError] | None = None
        self._finish_begun = False  # after a halt, may a request that got its slot still be sent?
        if stop is not None:
            stop.subscribe(lambda: self.halt(_interrupted, grace=STOP_GRACE_SECONDS, waiting_too=True))

    # -- halting every wait -----------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        return self._halt is not None

    def halt(
        self, error: Callable[[], MigrateError], *, grace: float = 0.0, waiting_too: bool = False
    ) -> None:
        """End every request of this path with `error()`; later sends raise it at once.

        Requests on the wire get `grace` seconds to bring their answer back (so what they did is
        known); with `waiting_too`, so do those waiting for a slot or a retry (a stop on a healthy
        host then leaves nothing half begun), otherwise those end at once.
        """
        if self._halt is not None:
            return
        self._halt = error
        self._finish_begun = waiting_too
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        for task in list(self._inside):
            if task is current:
                continue
            if grace > 0 and (self._on_wire(task) or waiting_too):
                loop.call_later(grace, self._cancel, task)
            else:
                self._cancel(task)

    def _on_wire(self, task: asyncio.Task[Any]) -> bool:
        """May this task's request have reached the host? Not while it waits for a slot, nor while
        its connection is still being made: only once its headers started going out."""
        state = self._inside.get(task)
        if state is None:
            return False
        self.traced = self.traced or state.traced
        return state.sent or not self.traced

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        if task in self._inside and not task.done():
            self._cancelled[task] = self._on_wire(task)
            task.cancel()

    def _halt_error(self, sent: bool) -> MigrateError:
        assert self._halt is not None
        error = self._halt()
        error.sent = sent  # type: ignore[attr-defined]
        return error

    # -- the request path ---------------------------------------------------------------------------

    async def send(
        self,
        call: Callable[[], Awaitable[Any]],
        *,
        kind: str = "request",
        read: Callable[[Any], T] = lambda answer: answer,
        transient: Callable[[BaseException], bool] = default_transient,
    ) -> T:
        if self._halt is not None:
            raise self._halt_error(False)
        task = asyncio.current_task()
        assert task is not None
        down_since: list[float] = []  # when this request's first failed connection attempt was sent
        renewed: list[str] = []  # the bearer tokens this request heard 401 for: each is renewed once

        def retry(exc: BaseException) -> bool:
            # A cancellation, a refusal or a halt is never repeated, whatever the client's rule says.
            if isinstance(exc, Renewed):
                return True
            return isinstance(exc, Exception) and not isinstance(exc, MigrateError) and transient(exc)

        retrying = AsyncRetrying(
            retry=retry_if_exception(retry),
            stop=lambda state: self._give_up(state, down_since),
            wait=self._wait,
            before_sleep=self._count_retry,
            reraise=True,
        )
        self._inside[task] = None
        try:
            async for attempt in retrying:
                with attempt:
                    return read(await self._attempt(task, kind, call, down_since, renewed))
        except Renewed as exc:
            # Fresh tokens kept being refused until the attempts ran out: the refusal stands.
            cause = exc.__cause__
            assert isinstance(cause, openai.APIStatusError)
            refused = self.refusals.check(cause, self.base_url)
            if refused is None:
                raise cause from None
            self.halt(lambda: type(refused)(refused.message, hint=refused.hint))
            raise refused from None
        except asyncio.CancelledError:
            if task in self._cancelled:
                on_wire = self._cancelled.pop(task)
                if task.uncancel() == 0 and self._halt is not None:
                    raise self._halt_error(on_wire) from None
            raise
        finally:
            self._inside.pop(task, None)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        task: asyncio.Task[Any],
        kind: str,
        call: Callable[[], Awaitable[Any]],
        down_since: list[float],
        renewed: list[str],
    ) -> Any:
        if self._halt is not None:
            raise self._halt_error(False)
        await self.limiter.acquire()
        try:
            if self._halt is not None and not self._finish_begun:
                raise self._halt_error(False)
            self.stats.requests += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            state = self._inside[task] = WireState()
            token = wire_state.set(state)
            sent_at = self.health.clock()
            try:
                answer = await call()
            finally:
                wire_state.reset(token)
                self.traced = self.traced or state.traced
                self._inside[task] = None
        except BodyTooLarge:
            self.health.answer()  # the host answered; the answer is too big to take
            raise
        except openai.APIStatusError as exc:
            self.health.answer()
            if exc.status_code == 401 and self.renew is not None:
                sent = exc.request.headers.get("authorization", "") if exc.request is not None else ""
                # A token that already failed this request is not tried again: its 401 is a refusal.
                if sent not in renewed and await self.renew(exc):
                    renewed.append(sent)
                    self.stats.renewed += 1
                    raise Renewed(kind) from exc
            refused = self.refusals.check(exc, self.base_url)
            if refused is not None:
                # Every other request would hear the same: they end with it too (those on the wire
                # get their grace, so what they did is known).
                self.halt(lambda: type(refused)(refused.message, hint=refused.hint), grace=STOP_GRACE_SECONDS)
                raise refused from None
            if exc.status_code == 429:
                self.stats.throttled += 1
                self.limiter.throttled(exc.response.headers)
            else:
                self.limiter.observe(exc.response.headers)
            raise
        except openai.APIConnectionError as exc:
            if not down_since:
                down_since.append(sent_at)
            if self.health.failure(sent_at):
                reason = describe_failure(exc)
                self.halt(lambda: UnreachableError(self.host, reason, self.flag))
                raise self._halt_error(not connect_failed(exc)) from None
            raise
        finally:
            # The probe is over whatever happened, a cancellation included: no one waits on it forever.
            self.limiter.answered()
        self.health.answer()
        self.limiter.observe(answer.headers)
        return answer

    def _give_up(self, state: RetryCallState, down_since: list[float]) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if (
            isinstance(exc, openai.APIConnectionError)
            and down_since
            and self.health.down_since(down_since[0])
        ):
            return False  # the host's failure, not this request's: HostHealth decides when to give up
        if isinstance(exc, Renewed):
            # Not the request's failure either: its token expired. Bounded by the tokens it may try.
            return state.attempt_number >= self.max_attempts + MAX_RENEWALS
        return state.attempt_number >= self.max_attempts

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Renewed):
            return 0.0  # the fresh token is there already
        seconds = backoff_seconds(exc, state.attempt_number, self.max_backoff)
        if isinstance(exc, openai.APIConnectionError) and not self.health.answered_ever:
            seconds = min(seconds, UNANSWERED_BACKOFF)
        return seconds

    def _count_retry(self, _state: RetryCallState) -> None:
        self.stats.retries += 1


def _interrupted() -> Interrupted:
    return Interrupted("interrupted by a signal; what was finished is kept")
