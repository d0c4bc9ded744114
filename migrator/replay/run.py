"""`migrate replay`: choose the turns, send what the ledger has no answer for, report.

Ledger guarantees (the `replay_ledger` table of the archive):
- a request's row is committed as `sent` *before* it goes out, and updated to `done` (an answer),
  `rejected` (a 4xx verdict, with the provider's error) or `failed` (no answer after the retries)
  right after;
- a resumed replay never sends a `done` or `rejected` request again; a `sent` row with no result
  (the process died while it was in flight) and a `failed` one are sent again. So after a kill, at
  most the requests that were in flight at that instant (≤ --concurrency) are sent twice, never a
  completed one;
- identical requests (two turns with byte-identical bodies) are sent once and share the answer;
- one replay at a time per archive: the CLI holds the archive's writer lock (`archive/lock.py`), so a
  second replay (or any other writer) exits 2 naming the first; a killed one's lock is taken over.

Only fresh sessions of done threads are replayed: stale ones are rebuilt (and stored) first, and
threads that are not done are left out and listed unless `include_unfinished`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from migrator.archive import Archive, ReplayRow
from migrator.errors import Interrupted, UsageError
from migrator.http import RateLimiter, Stop, stop_on_signals
from migrator.replay.client import Outcome, TargetClient, TargetSettings, TokenPacer
from migrator.replay.pricing import PriceTable
from migrator.replay.report import ReplayReport
from migrator.replay.requests import (
    Api,
    ReplayRequest,
    Turns,
    iter_chunks,
    requests_for_session,
)
from migrator.replay.responses import StoreBinding, hosted_tools, search_options, session_store_ids
from migrator.sessions import SessionChoice, choose_sessions, rebuild_stale

__all__ = [
    "FINAL",
    "ReplayOptions",
    "StoreBindings",
    "iter_selection",
    "replay_live",
    "replay_offline",
    "selected_sessions",
]

FINAL = ("done", "rejected")  # states a resumed replay never sends again
LOOKUP_CHUNK = 200

Progress = Callable[[int, int], None]  # (requests finished, requests seen so far)


@dataclass
class ReplayOptions:
    model: str | None = None  # overrides every session's model
    turns: Turns = "last"
    sample: int | None = None  # N sessions, a deterministic spread sample
    threads: tuple[str, ...] = ()  # only these threads
    concurrency: int = 8
    max_rps: float | None = None
    max_tpm: float | None = None
    min_accept: float = 1.0
    min_parity: float = 0.0
    prices: PriceTable = field(default_factory=PriceTable)
    include_unfinished: bool = False  # also the sessions of threads that are not done
    api: Api = "chat"  # chat completions, or the Responses API
    # responses: whose rebuilt vector stores file_search binds (a base URL); None: the live target's,
    # or (batch files) the one target the archive's vector map names
    stores_of: str | None = None

    def new_report(self, archive: Archive) -> ReplayReport:
        return ReplayReport(
            api=self.api,
            archive=str(archive.path),
            model=self.model,
            turns=self.turns,
            min_accept=self.min_accept,
            min_parity=self.min_parity,
            prices=self.prices,
        )


def selected_sessions(archive: Archive, options: ReplayOptions) -> SessionChoice:
    """The chosen sessions (`.records(archive)` streams them, sorted by thread id)."""
    choice = choose_sessions(
        archive, options.threads, options.sample, include_unfinished=options.include_unfinished
    )
    if choice.missing:
        missing = choice.missing
        raise UsageError(
            f"--thread: no session for {', '.join(missing[:10])}" + (" …" if len(missing) > 10 else ""),
            hint="`migrate stats` shows what the archive holds; `migrate rebuild` builds sessions",
        )
    return choice


def iter_selection(archive: Archive, options: ReplayOptions, report: ReplayReport) -> Iterator[ReplayRequest]:
    """Every chosen request, session by session; sessions and build problems are counted in `report`."""
    choice = selected_sessions(archive, options)
    report.unfinished, report.include_unfinished = choice.unfinished, options.include_unfinished
    bindings = StoreBindings(archive, options.stores_of) if options.api == "responses" else None
    for thread_id, record_json in choice.records(archive):
        binding = bindings.of(thread_id, record_json) if bindings is not None else None
        if binding is not None:
            report.add_binding(binding)
        requests, problem = requests_for_session(
            thread_id, record_json, turns=options.turns, model=options.model, api=options.api, binding=binding
        )
        if problem is not None:
            report.add_problem(problem)
            continue
        report.add_session(len(requests))
        yield from requests


class StoreBindings:
    """Each session's file_search stores, bound to the stores `import --to vector-stores` rebuilt."""

    def __init__(self, archive: Archive, stores_of: str | None) -> None:
        self.archive = archive
        target = archive.vector_map.target_for(stores_of)
        self.target = target
        self.rebuilt = archive.vector_map.rebuilt_stores(target) if target else {}
        self.assistants: dict[str, dict[str, Any] | None] = {}

    def _assistant(self, assistant_id: Any) -> dict[str, Any] | None:
        if not isinstance(assistant_id, str):
            return None
        if assistant_id not in self.assistants:
            raw = self.archive.raw.of("assistants", assistant_id)
            self.assistants[assistant_id] = orjson.loads(raw) if raw else None
        return self.assistants[assistant_id]

    def of(self, thread_id: str, record_json: bytes) -> StoreBinding | None:
        """The binding of a session that used file_search; None for the others."""
        try:
            record = orjson.loads(record_json)
        except orjson.JSONDecodeError:
            return None  # requests_for_session reports it
        if not isinstance(record, dict) or "file_search" not in hosted_tools(record):
            return None
        assistant = self._assistant(record.get("assistant_id"))
        thread_raw = self.archive.raw.of("threads", thread_id)
        source = session_store_ids(assistant, orjson.loads(thread_raw) if thread_raw else None)
        bound = tuple(self.rebuilt[s] for s in source if s in self.rebuilt)
        unbound = tuple(s for s in source if s not in self.rebuilt)
        return StoreBinding(tuple(source), bound, unbound, search_options(assistant))


def replay_offline(archive: Archive, options: ReplayOptions) -> ReplayReport:
    """The report of the chosen requests from the ledger alone: no network."""
    rebuild_stale(archive)
    report = options.new_report(archive)
    for chunk in iter_chunks(iter_selection(archive, options, report), LOOKUP_CHUNK):
        rows = archive.ledger.rows(r.request_hash for r in chunk)
        unlinked = []
        for request in chunk:
            row = rows.get(request.request_hash)
            if row is not None and row.thread_id is None:  # a batch result this selection claims
                unlinked.append((request.request_hash, request.thread_id, request.turn, request.model))
            report.add(request, row)
        if unlinked:
            archive.ledger.link(unlinked)
    report.unmatched_results = archive.ledger.unlinked()
    return report


def replay_live(
    archive: Archive, settings: TargetSettings, options: ReplayOptions, on_progress: Progress | None = None
) -> ReplayReport:
    """Send every chosen request the ledger has no answer for; the report covers them all."""
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    rebuild_stale(archive)
    if options.api == "responses" and options.stores_of is None and settings.base_url:
        # Bind the stores rebuilt on the server the requests go to, if any were.
        options = replace(options, stores_of=settings.base_url)
    report = options.new_report(archive)
    started = time.monotonic()
    runner = _Live(archive, settings, options, report, on_progress)
    try:
        asyncio.run(runner.run())
    finally:
        report.run = {**runner.stats, "elapsed_s": round(time.monotonic() - started, 3)}
    return report


class _Live:
    def __init__(
        self,
        archive: Archive,
        settings: TargetSettings,
        options: ReplayOptions,
        report: ReplayReport,
        on_progress: Progress | None,
    ) -> None:
        self.archive = archive
        self.settings = settings
        self.options = options
        self.report = report
        self.on_progress = on_progress or (lambda finished, seen: None)
        self.stats = {
            "sent": 0,
            "resent_in_flight": 0,
            "already_answered": 0,
            "http_requests": 0,
            "retries": 0,
        }
        self.inflight: dict[str, asyncio.Future[ReplayRow]] = {}
        self.finished = 0
        self.seen = 0

    async def run(self) -> None:
        limiter = RateLimiter(self.options.max_rps)
        tokens = TokenPacer(self.options.max_tpm) if self.options.max_tpm else None
        self.stop = Stop()
        self.client = TargetClient(self.settings, limiter, tokens, self.stop)
        queue: asyncio.Queue[tuple[ReplayRequest, ReplayRow | None] | None] = asyncio.Queue(
            maxsize=self.options.concurrency * 4
        )
        with stop_on_signals(self.stop):
            tasks = [asyncio.create_task(self._produce(queue))]
            tasks += [asyncio.create_task(self._work(queue)) for _ in range(self.options.concurrency)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.stats["http_requests"] = self.client.requests
                self.stats["retries"] = self.client.retries
                await self.client.close()
        if self.stop.is_set():
            # No hint: the CLI adds the exact command to run again.
            raise Interrupted(
                f"replay interrupted after {self.stats['sent']:,} request(s); every answer is kept in the "
                "archive and no answered request is sent twice"
            )

    async def _produce(self, queue: asyncio.Queue[tuple[ReplayRequest, ReplayRow | None] | None]) -> None:
        for chunk in iter_chunks(iter_selection(self.archive, self.options, self.report), LOOKUP_CHUNK):
            if self.stop.is_set():
                break
            rows = self.archive.ledger.rows((r.request_hash for r in chunk), self.client.base_url)
            for request in chunk:
                self.seen += 1
                row = rows.get(request.request_hash)
                if row is not None and row.state in FINAL:
                    self.stats["already_answered"] += 1
                    self._finish(request, row)
                else:
                    await queue.put((request, row))
        for _ in range(self.options.concurrency):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[tuple[ReplayRequest, ReplayRow | None] | None]) -> None:
        while (item := await queue.get()) is not None:
            if self.stop.is_set():
                continue  # drain: what is not sent stays unsent, the next run sends it
            try:
                await self._one(*item)
            except Interrupted:
                continue  # its ledger row stays `sent`: the next run sends it again

    async def _one(self, request: ReplayRequest, looked_up: ReplayRow | None) -> None:
        h = request.request_hash
        if h in self.inflight:  # the same body from another turn is on its way: share its answer
            shared = self.inflight[h]
            try:
                self._finish(request, await asyncio.shield(shared))
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if shared.cancelled() and current is not None and not current.cancelling():
                    return  # that request was abandoned (a stop): the next run sends it
                raise
            return
        # Looked up again: an identical request may have finished since the producer's look-up.
        row = self.archive.ledger.rows([h], self.client.base_url).get(h)
        if row is not None and row.state in FINAL:
            self._finish(request, row)
            return
        future: asyncio.Future[ReplayRow] = asyncio.get_running_loop().create_future()
        self.inflight[h] = future
        try:
            if row is not None and row.state == "sent":
                self.stats["resent_in_flight"] += 1
            self.archive.ledger.begin(h, request.thread_id, request.turn, request.model, self.client.base_url)
            outcome = await self.client.complete(request.body, request.url)
            row = _row(request, outcome, self.client.base_url)
            self.archive.ledger.finish(row)
            self.stats["sent"] += 1
            future.set_result(row)
        except BaseException:
            future.cancel()
            raise
        finally:
            del self.inflight[h]
        self._finish(request, row)

    def _finish(self, request: ReplayRequest, row: ReplayRow) -> None:
        self.report.add(request, row)
        self.finished += 1
        self.on_progress(self.finished, self.seen)


def _row(request: ReplayRequest, outcome: Outcome, target: str) -> ReplayRow:
    return ReplayRow(
        request_hash=request.request_hash,
        state=outcome.state,
        thread_id=request.thread_id,
        turn=request.turn,
        model=request.model,
        status_code=outcome.status_code,
        response=outcome.response,
        error=outcome.error,
        latency_ms=None if outcome.latency_ms is None else round(outcome.latency_ms, 3),
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        via="live",
        target=target,
    )
