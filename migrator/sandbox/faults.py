"""Which request or thread gets which fault: seeded coins, so a run can be repeated.

Per-request faults draw one number from a generator seeded with the corpus seed, in request
order, and look it up in the cumulative rates. Per-thread faults (empty page, repeating cursor)
hash (seed, fault, thread index), so the same threads misbehave however the client orders its
requests, and raising a rate only adds threads to the affected set.
"""

from __future__ import annotations

import random
import threading

from migrator.sandbox.config import REQUEST_FAULTS, SandboxConfig
from migrator.sandbox.ids import unit

FAULT_NAMES = {
    "fault_rate": "server_error",
    "timeout_rate": "timeout",
    "drop_rate": "drop",
    "truncate_rate": "truncate",
    "invalid_json_rate": "invalid_json",
}


class FaultDice:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._lock = threading.Lock()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(f"{seed}:faults")

    def roll(self, cfg: SandboxConfig) -> tuple[str | None, int]:
        """(fault name or None, a status for server errors)."""
        if not any(getattr(cfg, n) for n in REQUEST_FAULTS):
            return None, 0
        with self._lock:
            x = self._rng.random()
            status = self._rng.choice((500, 502, 503))
        for name in REQUEST_FAULTS:
            rate = getattr(cfg, name)
            if x < rate:
                return FAULT_NAMES[name], status
            x -= rate
        return None, 0


def thread_selected(seed: int, fault: str, index: int, rate: float) -> bool:
    return rate > 0 and unit(seed, fault, index) < rate
