"""Fewer passes of Python's cycle collector during bulk work. A leaf: it imports nothing of the project.

A fetch, an ingest and a batch of session builds each make hundreds of thousands of small dicts and
lists that hold no cycles, which reference counting frees. At the collector's default pace (a
collection every 700 allocations, and now and then a walk over every object the process imported)
that was a tenth to a sixth of their CPU. So what exists when the work starts is frozen out of the
walks, and the generations are collected less often; both are put back afterwards."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def fewer_collections(young: int, middle: int, old: int) -> Iterator[None]:
    """Collect generation 0 every `young` allocations (and the older ones every `middle`/`old` passes
    of the one below) while the block runs."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, middle, old)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
