"""Request counters for /_sandbox/stats: by route template and method, by status, 429s, faults, creates.

`creates` counts, per route, the create requests that a handler answered with success (an upload, a
vector store, a file attached to a store, a response), counted before the answer leaves: a create
whose answer is then truncated or lost still happened, as on the real API.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._routes: Counter[str] = Counter()
            self._status: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._creates: Counter[str] = Counter()
            self._total = 0
            self._since = time.monotonic()

    def count(self, route: str, status: int | str, fault: str | None = None) -> None:
        with self._lock:
            self._total += 1
            self._routes[route] += 1
            self._status[str(status)] += 1
            if fault:
                self._faults[fault] += 1

    def created(self, route: str) -> None:
        with self._lock:
            self._creates[route] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = time.monotonic() - self._since
            return {
                "total": self._total,
                "by_route": dict(sorted(self._routes.items())),
                "by_status": dict(sorted(self._status.items())),
                "rate_limited": self._status.get("429", 0),
                "faults": dict(sorted(self._faults.items())),
                "creates": dict(sorted(self._creates.items())),
                "creates_total": sum(self._creates.values()),
                "elapsed_s": round(elapsed, 3),
                "rps": round(self._total / elapsed, 1) if elapsed > 0 else 0.0,
            }
