"""`migrate plan`: how many requests an export needs and how many nights that takes at a rate.

It fetches a small random sample of the threads (nothing is stored), counts the requests each
needed, and extrapolates.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

from migrator.export import ThreadFetcher
from migrator.http import RateLimiter, stop_on_signals
from migrator.source import SourceClient, SourceSettings
from migrator.threadlist import ThreadEntry

__all__ = ["ExportPlan", "plan_export"]

# Per referenced file: its metadata and one download attempt (a refused one adds parsed-text pages).
REQUESTS_PER_FILE = 2


@dataclass
class ExportPlan:
    threads: int
    sampled: int
    missing_in_sample: int
    requests_per_thread: float
    files_per_thread: float
    global_requests: int
    total_requests: int
    max_rps: float | None
    hours: float | None
    nights: int | None
    night_hours: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


async def _sample(
    entries: list[ThreadEntry], settings: SourceSettings, concurrency: int
) -> tuple[list[int], list[int], int, int]:
    # SIGINT/SIGTERM end every wait of the request path: `Interrupted` reaches the CLI (exit 130).
    with stop_on_signals() as stop:
        client = SourceClient(settings, RateLimiter(None), stop)
        try:
            return await _fetch_sample(entries, client, ThreadFetcher(client, concurrency))
        finally:
            await client.close()


async def _fetch_sample(
    entries: list[ThreadEntry], client: SourceClient, fetcher: ThreadFetcher
) -> tuple[list[int], list[int], int, int]:
    per_thread: list[int] = []
    files: list[int] = []
    missing = 0
    await fetcher.listing(client.list_assistants)
    stores = await fetcher.listing(client.list_vector_stores)
    store_files: set[str] = set()
    for store in stores.items:
        listing = await fetcher.listing(
            lambda after, sid=store["id"]: client.list_vector_store_files(sid, after)
        )
        store_files.update(f["id"] for f in listing.items)
    # Files in vector stores are fetched too; most refuse the download, so count the parsed-text page.
    global_requests = client.stats.requests + (REQUESTS_PER_FILE + 1) * len(store_files)
    for entry in entries:
        before = client.stats.requests
        result = await fetcher.thread(entry.thread_id)
        if result.status == "missing":
            missing += 1
            continue
        per_thread.append(client.stats.requests - before)
        files.append(len(result.file_refs))
    return per_thread, files, missing, global_requests


def plan_export(
    entries: list[ThreadEntry],
    settings: SourceSettings,
    *,
    max_rps: float | None,
    sample: int = 20,
    seed: int = 0,
    night_hours: float = 8.0,
) -> ExportPlan:
    chosen = random.Random(seed).sample(entries, min(sample, len(entries)))
    per_thread, files, missing, global_requests = asyncio.run(_sample(chosen, settings, 8))
    mean_requests = sum(per_thread) / len(per_thread) if per_thread else 0.0
    # Files shared between threads are fetched once; the sample cannot see sharing, so this is an upper bound.
    mean_files = sum(files) / len(files) if files else 0.0
    total = global_requests + math.ceil(len(entries) * (mean_requests + REQUESTS_PER_FILE * mean_files))
    hours = total / max_rps / 3600 if max_rps else None
    return ExportPlan(
        threads=len(entries),
        sampled=len(chosen),
        missing_in_sample=missing,
        requests_per_thread=round(mean_requests, 2),
        files_per_thread=round(mean_files, 2),
        global_requests=global_requests,
        total_requests=total,
        max_rps=max_rps,
        hours=round(hours, 2) if hours is not None else None,
        nights=math.ceil(hours / night_hours) if hours is not None else None,
        night_hours=night_hours,
    )
