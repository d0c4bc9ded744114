"""`verify --against-source --sample N`: re-fetch a random sample of done threads and report drift.

The one part of verify that talks to the network. Each sampled thread is fetched exactly as the
export fetches it (thread, messages and runs with `limit=100, order=asc`, steps only for runs that
declared tools, file_search results included when the run used file_search), so an object that did
not change hashes the same, and compared by id and canonical hash with what the archive holds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

from migrator.archive import Archive, object_hash
from migrator.export import ThreadFetcher
from migrator.http import RateLimiter, stop_on_signals
from migrator.source import SourceClient, SourceSettings
from migrator.verify.catalogue import DRIFT_CHECKS
from migrator.verify.report import Finding

__all__ = ["DRIFT_CHECKS", "sample_threads", "source_drift"]

_KINDS = (("messages", "message"), ("runs", "run"), ("steps", "run step"))
_REQUESTS_AT_ONCE = 8


def sample_threads(archive: Archive, n: int, rng: random.Random) -> list[str]:
    """N done thread ids chosen uniformly, by reservoir sampling over a stream of ids."""
    chosen: list[str] = []
    for seen, thread_id in enumerate(archive.work.ids("done")):
        if seen < n:
            chosen.append(thread_id)
        elif (slot := rng.randrange(seen + 1)) < n:
            chosen[slot] = thread_id
    return sorted(chosen)


async def _fetch(fetcher: ThreadFetcher, thread_id: str) -> dict[str, Any] | None | str:
    """The thread as the source serves it now, read exactly as the export reads it.

    None when the source no longer knows it (404); a string saying why when it could not be read.
    """
    result = await fetcher.thread(thread_id)
    if result.status == "missing":
        return None
    if result.failure is not None:
        return f"{result.failure.error_class}: {result.failure.message}"
    return {"thread": result.thread, "messages": result.messages, "runs": result.runs, "steps": result.steps}


def _compare(
    thread_id: str, archived: dict[str, Any] | None, fresh: dict[str, Any] | None
) -> Iterator[Finding]:
    subject = f"thread {thread_id}"
    if fresh is None:
        yield Finding("source_gone", subject, "the source answers 404 for this thread now", thread_id)
        return
    if archived is None:
        yield Finding("source_new", subject, "the archive holds no thread object for it", thread_id)
        return
    if object_hash(fresh["thread"]) != object_hash(archived["thread"]):
        yield Finding("source_changed", subject, "the thread object changed at the source", thread_id)
    for key, label in _KINDS:
        old = {obj["id"]: object_hash(obj) for obj in archived[key]}
        new = {obj["id"]: object_hash(obj) for obj in fresh[key] if isinstance(obj, dict) and "id" in obj}
        for obj_id in sorted(new.keys() - old.keys()):
            yield Finding("source_new", f"{label} {obj_id}", "at the source, not in the archive", thread_id)
        for obj_id in sorted(old.keys() & new.keys()):
            if old[obj_id] != new[obj_id]:
                yield Finding(
                    "source_changed", f"{label} {obj_id}", "differs from the archived copy", thread_id
                )
        for obj_id in sorted(old.keys() - new.keys()):
            yield Finding("source_gone", f"{label} {obj_id}", "archived, no longer at the source", thread_id)


async def _drift(archive: Archive, settings: SourceSettings, thread_ids: list[str]) -> list[Finding]:
    with stop_on_signals() as stop:  # SIGINT/SIGTERM: `Interrupted` (exit 130), even mid-request
        client = SourceClient(settings, RateLimiter(), stop)
        try:
            return await _drift_of(archive, client, thread_ids)
        finally:
            await client.close()


async def _drift_of(archive: Archive, client: SourceClient, thread_ids: list[str]) -> list[Finding]:
    fetcher = ThreadFetcher(client, _REQUESTS_AT_ONCE)

    async def one(thread_id: str) -> list[Finding]:
        fresh = await _fetch(fetcher, thread_id)
        if isinstance(fresh, str):
            return [Finding("source_fetch_failed", f"thread {thread_id}", fresh, thread_id)]
        return list(_compare(thread_id, archive.raw.thread_objects(thread_id), fresh))

    # A refusal (401/403, quota, 410 Gone) or an unreachable source propagates: exit 3, as for export.
    results = await asyncio.gather(*(one(tid) for tid in thread_ids))
    return [finding for found in results for finding in found]


def source_drift(
    archive: Archive, settings: SourceSettings, *, sample: int, seed: int | None = None
) -> tuple[list[str], list[Finding]]:
    """(the sampled thread ids, the drift found in them)."""
    thread_ids = sample_threads(archive, sample, random.Random(seed))
    return thread_ids, asyncio.run(_drift(archive, settings, thread_ids)) if thread_ids else []
