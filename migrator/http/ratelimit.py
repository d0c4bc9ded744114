"""One process-wide request pacer: the source's rate limit is the ceiling, so we aim just under it.

It starts from `--max-rps` (or no cap), learns the limit from `x-ratelimit-*` headers and 429s,
spaces requests evenly (a burst of at most a tenth of a second of the rate, the same allowance a
token bucket on the server gives), and on a 429 pauses every worker until `retry-after`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Mapping

__all__ = ["RateLimiter", "parse_duration"]

# Aim a little under the advertised limit: clocks and network jitter eat the last few percent.
HEADROOM = 0.97
MIN_FACTOR = 0.5
BURST_SECONDS = 0.05
# Slow down only when 429s persist: more than this share of the recent requests.
THROTTLE_WINDOW = 200
THROTTLE_SHARE = 0.01
# The others wait this long at most for the probe's answer: a host that accepted the connection and
# never answers must not hold every request for a whole timeout.
PROBE_PATIENCE = 5.0
# A source that sends no x-ratelimit-* headers (Azure AI Foundry): its limit is taken to be the rate of
# answers over this many seconds before its first 429, and then tuned down by persistent 429s as usual.
ANSWER_WINDOW_S = 2.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """OpenAI's reset format ("20ms", "1s", "6m0s") in seconds."""
    if not text:
        return None
    parts = _DURATION.findall(text)
    if not parts:
        try:
            return float(text)
        except ValueError:
            return None
    return sum(float(n) * _UNIT[unit] for n, unit in parts)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms` first (finer; Azure spells it `x-ms-retry-after-ms`), then `retry-after` in seconds."""
    for key, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(key)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


class RateLimiter:
    def __init__(self, max_rps: float | None = None) -> None:
        self.cap = max_rps  # the user's ceiling, never exceeded
        self.learned: float | None = None  # requests/s the source says it allows
        self.factor = HEADROOM
        self._next = 0.0
        self._paused_until = 0.0
        self._successes = 0
        self._last_slowdown = 0.0
        self._recent: deque[bool] = deque(maxlen=THROTTLE_WINDOW)  # True for a 429
        self._answers: deque[float] = deque(maxlen=1000)  # when recent answers came (no 429s among them)
        self._guessed = False  # `learned` is an estimate from answers, not a header: it may grow again
        self._since_429 = 0
        # The first request goes alone: its answer's headers tell the limit before anyone bursts.
        self._probed = asyncio.Event()
        self._probe_taken = False
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float | None:
        rates = [r for r in (self.cap, self.learned * self.factor if self.learned else None) if r]
        return min(rates) if rates else None

    async def acquire(self) -> None:
        """Wait for this request's slot. Slots are handed out in order, evenly spaced."""
        if not self._probed.is_set():
            if self._probe_taken:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._probed.wait(), PROBE_PATIENCE)
            else:
                self._probe_taken = True
                return
        async with self._lock:
            now = time.monotonic()
            earliest = max(now, self._paused_until)
            rate = self.rate
            if rate:
                # Idle time earns at most a tenth of a second of slots, the burst a token bucket allows.
                slot = max(self._next, earliest - BURST_SECONDS)
                self._next = slot + 1.0 / rate
                wait = max(slot, earliest) - now
            else:
                wait = earliest - now
        if wait > 0:
            await asyncio.sleep(wait)

    def answered(self) -> None:
        """The probe is over, whatever its outcome (an answer, an error, a cancellation): the request
        path calls this after every attempt. Without limit headers we go uncapped (or at --max-rps)."""
        self._probed.set()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the limit from a response's headers (requests per minute, as OpenAI sends it)."""
        self._probed.set()
        self._recent.append(False)
        limit = headers.get("x-ratelimit-limit-requests")
        if limit:
            try:
                per_minute = float(limit)
            except ValueError:
                return
            if per_minute > 0:
                self.learned = per_minute / 60.0
        remaining = headers.get("x-ratelimit-remaining-requests")
        if remaining is not None and self.learned:
            try:
                left = float(remaining)
            except ValueError:
                left = 1.0
            if left < 1.0:
                # The source's bucket is empty right now: hold the next slot for one refill.
                self._paused_until = max(self._paused_until, time.monotonic() + 1.0 / self.learned)
        self._successes += 1
        self._answers.append(time.monotonic())
        self._since_429 += 1
        if self._guessed and self.learned and self._since_429 % 50 == 0:
            self.learned *= 1.1  # an estimate, probed upwards while nothing is refused
        if self._successes % 100 == 0 and self.factor < HEADROOM:
            self.factor = min(HEADROOM, self.factor + 0.01)

    def throttled(self, headers: Mapping[str, str]) -> float:
        """A 429: pause everyone until retry-after, slow down a little; returns the pause in seconds."""
        knew_limit = self.learned is not None
        now = time.monotonic()
        if not knew_limit and headers.get("x-ratelimit-limit-requests") is None:
            # No header will ever say the limit: what the source answered just before refusing is it.
            since = now - ANSWER_WINDOW_S
            recent = [t for t in self._answers if t >= since]
            if recent:
                # Over the span they came in (a burst lasts less than the window), a quarter second at least.
                self.learned = len(recent) / max(now - recent[0], 0.25)
                self._guessed = knew_limit = True
        self.observe(headers)
        self._answers.pop()  # observe counted the 429 as an answer
        self._since_429 = 0
        self._recent[-1] = True
        # An odd 429 is jitter on the way to the server, and the 429s of requests already in flight
        # arrive in a cluster: slow down only when they persist, and once a second at most.
        persistent = sum(self._recent) > THROTTLE_SHARE * THROTTLE_WINDOW
        if knew_limit and persistent and now - self._last_slowdown > 1.0:
            self._last_slowdown = now
            self.factor = max(MIN_FACTOR, self.factor * 0.95)
        pause = retry_after_seconds(headers)
        if pause is None:
            pause = parse_duration(headers.get("x-ratelimit-reset-requests")) or 1.0
        self._paused_until = max(self._paused_until, now + pause)
        return pause
