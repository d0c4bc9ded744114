"""A token bucket that answers like OpenAI's request limiter.

The bucket refills at `rate` tokens a second and holds a tenth of a second of the rate (at least
one token), so a client that paces itself at the rate never sees a 429 and one that bursts does.
Headers speak OpenAI's language: the limit per minute, what is left right now, and when the bucket
is full again ("20ms", "1.5s").
"""

from __future__ import annotations

import math
import threading
import time


def duration(seconds: float) -> str:
    ms = max(0, math.ceil(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:g}s"
    minutes, rest = divmod(ms / 1000, 60)
    return f"{int(minutes)}m{rest:g}s"


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate / 10.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, float, dict[str, str]]:
        """(allowed, seconds to wait if not, headers for the response)."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            allowed = self.tokens >= 1.0
            if allowed:
                self.tokens -= 1.0
            wait = 0.0 if allowed else (1.0 - self.tokens) / self.rate
            reset = (self.capacity - self.tokens) / self.rate
            remaining = int(self.tokens)
        headers = {
            "x-ratelimit-limit-requests": str(max(1, round(self.rate * 60))),
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": duration(reset),
        }
        return allowed, wait, headers
