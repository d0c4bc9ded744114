"""`--to conversations`: one Conversations API conversation per thread, resumable, never created twice.

Each conversation is created with its first 20 items and metadata naming the source thread; the rest
follow in chunks of at most 20, in order. The archive's `conversation_map` says how far each thread got:

1. before the create, an intent row (status `creating`, an idempotency key) is committed;
2. after the create, the conversation id and the items sent; after every chunk, the new count;
3. on resume, a conversation created earlier is asked how many items it holds (a chunk the server
   took just before a kill is not sent again), and the import continues from there.

The remaining window: from sending a create until its answer is committed (one round trip). The
Conversations API cannot look a conversation up by metadata, so a kill (or a lost answer) inside it
can leave one conversation that the map does not name; the retry creates the mapped one. Every
create carries the row's `Idempotency-Key`, so a server that honours one closes the window; on one
that does not, such threads are counted in `unconfirmed_creates` and listed, never hidden.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson

from migrator.archive import Archive, ConversationLink, object_hash
from migrator.errors import Interrupted, TargetRefusedError, UnreachableError
from migrator.http import (
    RETRYABLE_STATUS,
    GarbledResponse,
    RateLimiter,
    Refusals,
    Stop,
    connect_failed,
    connect_target,
    error_message,
    json_object,
    status_of,
    stop_on_signals,
)
from migrator.importers.common import (
    ImportSummary,
    MappingWriter,
    ProgressCallback,
    Selection,
    Ticker,
    fit_metadata,
)
from migrator.importers.items import session_items
from migrator.sessions import rebuild_stale
from migrator.source import PageAnomaly, collect

__all__ = [
    "ConversationsOptions",
    "MAX_ITEMS",
    "TargetSettings",
    "conversation_metadata",
    "import_conversations",
]

TARGET = "conversations"
MAX_ITEMS = 20  # per create and per items.create (CreateConversationBody.items maxItems)
THREAD_KEY, ASSISTANT_KEY = "source_thread_id", "source_assistant_id"


@dataclass
class TargetSettings:
    base_url: str
    api_key: str  # from TARGET_API_KEY; never written anywhere
    timeout: float = 60.0
    max_attempts: int = 6
    max_backoff: float = 30.0


@dataclass
class ConversationsOptions:
    concurrency: int = 8  # threads in flight; each thread's requests are sequential (order matters)
    max_rps: float | None = None  # request-rate ceiling; otherwise learned from x-ratelimit-* and 429s


def conversation_metadata(record: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(metadata within the API's limits, [(dropped key, why)]): the source thread id (and the assistant
    id) first, then the session's metadata, fitted by `fit_metadata`."""
    ours = {THREAD_KEY: str(record.get("thread_id"))}
    if record.get("assistant_id"):
        ours[ASSISTANT_KEY] = str(record["assistant_id"])
    return fit_metadata(ours, record.get("metadata") or {}, reserved=(THREAD_KEY, ASSISTANT_KEY))


def import_conversations(
    archive: Archive,
    settings: TargetSettings,
    selection: Selection = Selection(),
    *,
    options: ConversationsOptions = ConversationsOptions(),
    mapping_out: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Create (or finish) one conversation per selected session on the target; see the module doc."""
    return asyncio.run(_Import(archive, settings, selection, options, progress).run(mapping_out))


# -- errors inside one thread's import ------------------------------------------------------------


class _ThreadFailed(Exception):
    """This thread cannot go on (the target refused an item, the conversation is gone...)."""

    def __init__(self, message: str, status: str = "failed") -> None:
        super().__init__(message)
        self.status = status


class _Garbled(_ThreadFailed):
    """A 200 whose body we cannot read: the server did act on the request."""


class _Unknown(Exception):
    """A request whose outcome we did not learn (timeout, dropped connection, 5xx)."""


class _Stopped(Exception):
    """SIGINT/SIGTERM: stop before the next request."""


def _ambiguous(exc: BaseException) -> bool:
    """The server may have acted on the request: no answer, or a 5xx (not 408/409/429, which refuse).

    A connection that was never made is not ambiguous: nothing reached the server.
    """
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return not connect_failed(exc)
    status = status_of(exc)
    return status is not None and status >= 500


REFUSALS = Refusals(
    TargetRefusedError,
    key_env="TARGET_API_KEY",
    forbidden_hint="use a TARGET_API_KEY of a project allowed to create conversations",
)


class _Target:
    """The target's SDK client (retries off) behind the one request path, plus this importer's own
    rule: a request whose outcome is unknown is not simply sent again (see `send`).

    Items travel in `extra_body`: they are already in the spec's wire shape, and the SDK's TypedDict
    transform of `items=` costs about 2 ms an item in CPU, more than the request itself on a fast target.
    """

    def __init__(self, settings: TargetSettings, limiter: RateLimiter, stop: Stop) -> None:
        self.settings = settings
        self.client, self.path = connect_target(settings, REFUSALS, limiter, stop)
        self.base_url = self.path.base_url

    async def send(
        self,
        call: Callable[[], Awaitable[Any]],
        *,
        retry_unknown: bool,
        on_unknown: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """One request, retried on 408/409/429/5xx and dropped connections; returns the JSON body.

        With `retry_unknown=False` an ambiguous failure raises `_Unknown` instead of resending, so
        the caller can first ask the server what it did. A body we cannot read is not retried either:
        the server did act on the request.
        """

        def transient(exc: BaseException) -> bool:
            if _ambiguous(exc):
                if on_unknown is not None:
                    on_unknown()
                return retry_unknown
            return isinstance(exc, openai.APIConnectionError) or status_of(exc) in RETRYABLE_STATUS

        try:
            return await self.path.send(
                call,
                kind="conversations",
                read=lambda raw: json_object(raw.content, "the target"),
                transient=transient,
            )
        except GarbledResponse as exc:
            raise _Garbled(str(exc)) from None
        except openai.APIStatusError as exc:
            if _ambiguous(exc) and not retry_unknown:
                raise _Unknown(error_message(exc)) from None
            raise _ThreadFailed(error_message(exc)) from None
        except openai.APIConnectionError as exc:
            if _ambiguous(exc) and not retry_unknown:
                raise _Unknown(f"no answer: {exc}") from None
            raise _ThreadFailed(f"no answer after {self.settings.max_attempts} attempts: {exc}") from None

    async def create(
        self, items: list[dict[str, Any]], metadata: dict[str, str], key: str, on_unknown: Callable[[], None]
    ) -> str:
        call = self.client.conversations.with_raw_response.create
        try:
            body = await self.send(
                lambda: call(
                    metadata=metadata, extra_body={"items": items}, extra_headers={"Idempotency-Key": key}
                ),
                retry_unknown=True,  # resent with the same key; each unknown outcome is counted first
                on_unknown=on_unknown,
            )
        except _Garbled:
            on_unknown()  # a 200 we cannot read may still have created a conversation
            raise
        except (Interrupted, UnreachableError, TargetRefusedError) as exc:
            if exc.sent:
                on_unknown()  # stopped while the create was on the wire: it may have been made
            raise
        conversation_id = body.get("id")
        if not isinstance(conversation_id, str) or not conversation_id:
            on_unknown()
            raise _ThreadFailed("the target's create answer has no conversation id")
        return conversation_id

    async def add(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        call = self.client.conversations.items.with_raw_response.create
        await self.send(
            lambda: call(conversation_id, items=[], extra_body={"items": items}), retry_unknown=False
        )

    async def count(self, conversation_id: str) -> int:
        """How many items the conversation holds on the server (pages of 100, oldest first)."""
        call = self.client.conversations.items.with_raw_response.list

        async def page(after: str | None) -> dict[str, Any]:
            extra = {"after": after} if after else {}
            return await self.send(
                lambda: call(conversation_id, limit=100, order="asc", **extra), retry_unknown=True
            )

        try:
            return len((await collect(page)).items)
        except PageAnomaly as exc:
            raise _ThreadFailed(f"cannot count the items of {conversation_id}: {exc}") from None


class _Import:
    def __init__(
        self,
        archive: Archive,
        settings: TargetSettings,
        selection: Selection,
        options: ConversationsOptions,
        progress: ProgressCallback | None,
    ) -> None:
        self.archive = archive
        self.settings = settings
        self.selection = selection
        self.options = options
        self.summary = ImportSummary(TARGET)
        self.progress = progress
        self.stop = Stop()
        self.refused: TargetRefusedError | None = None

    async def run(self, mapping_out: Path | None) -> ImportSummary:
        summary = self.summary
        rebuild_stale(self.archive)  # stored before anything is sent, so the map matches the archive
        records = self.selection.records(self.archive, summary)
        target = _Target(self.settings, RateLimiter(self.options.max_rps), self.stop)
        self.target, self.key = target, target.base_url
        summary.out = target.base_url
        self.ticker = Ticker(TARGET, summary.selected, self.progress)
        with stop_on_signals(self.stop):
            try:
                workers = [
                    asyncio.create_task(self._worker(records)) for _ in range(self.options.concurrency)
                ]
                # On a stop, a refusal or a bug each worker ends its thread's import and returns. A
                # request on the wire gets its grace to answer (so no create is left unconfirmed on a
                # host that answers); one on a host that never answers is abandoned and counted.
                outcomes = await asyncio.gather(*workers, return_exceptions=True)
            finally:
                await target.client.close()
                stats = target.path.stats
                summary.requests, summary.throttled, summary.retries = (
                    stats.requests,
                    stats.throttled,
                    stats.retries,
                )
        if self.refused is not None:
            raise self.refused
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        summary.interrupted = self.stop.is_set()
        ids, _ = self.selection.resolve(self.archive)
        summary.unconfirmed = [
            link.thread_id for link in self.archive.links.of_target(self.key, ids) if link.unconfirmed_creates
        ]
        if mapping_out is not None:
            summary.mapping_out = str(mapping_out)
            _write_mapping(self.archive, self.key, self.selection, mapping_out)
        self.ticker(self._finished(), summary.items, final=True)
        summary.elapsed = self.ticker.elapsed
        return summary

    def _finished(self) -> int:
        return self.summary.imported + self.summary.already + len(self.summary.failed)

    async def _worker(self, records: Iterator[tuple[str, bytes]]) -> None:
        # One shared iterator: workers take the next thread in thread-id order as they free up.
        for thread_id, raw in records:
            if self.stop.is_set():
                return
            try:
                await self._import_thread(thread_id, orjson.loads(raw))
            except (_Stopped, Interrupted):
                return
            except _ThreadFailed as exc:
                self.summary.failed.append((thread_id, str(exc)))
                self.archive.links.failed(self.key, thread_id, str(exc), status=exc.status)
            except BaseException as exc:
                if isinstance(exc, TargetRefusedError):
                    self.refused = self.refused or exc
                self.stop.set()  # the others end their thread's import and stop
                raise
            self.ticker(self._finished(), self.summary.items)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _Stopped

    async def _import_thread(self, thread_id: str, record: dict[str, Any]) -> None:
        converted = session_items(record)
        items = converted.items
        total = len(items)
        link = self.archive.links.get(self.key, thread_id)
        if link is not None and link.conversation_id and _is_complete(link, items):
            self.summary.already += 1
            return
        for code, n in converted.notes.items():
            self.summary.note(code, n)
        if link is None or not link.conversation_id:
            conversation_id, sent = await self._create(thread_id, record, items, link)
        else:
            conversation_id, sent = link.conversation_id, await self._resume(link, items)
        unknown = 0
        while sent < total:
            self._check_stop()
            chunk = items[sent : sent + MAX_ITEMS]
            try:
                await self.target.add(conversation_id, chunk)
                held = sent + len(chunk)
            except _Unknown as exc:
                # Did the chunk land? Ask the server rather than risk sending it twice.
                self.summary.note("chunk_answer_lost")
                unknown += 1
                if unknown >= self.settings.max_attempts:
                    raise _ThreadFailed(f"no clear answer after {unknown} attempts: {exc}") from None
                held = await self._server_count(self.archive.links.get(self.key, thread_id), items)
            self.summary.items += held - sent
            sent = held
            self._progress(thread_id, items, sent)
        self.summary.imported += 1

    async def _create(
        self,
        thread_id: str,
        record: dict[str, Any],
        items: list[dict[str, Any]],
        link: ConversationLink | None,
    ) -> tuple[str, int]:
        self._check_stop()
        metadata, dropped = conversation_metadata(record)
        for _, why in dropped:
            self.summary.note(f"metadata_{why}")
        key = link.idempotency_key if link is not None else f"migrate-{uuid.uuid4().hex}"
        link = self.archive.links.intent(
            self.key,
            thread_id,
            idempotency_key=key,
            items_total=len(items),
            metadata_dropped=", ".join(f"{k} ({why})" for k, why in dropped),
        )
        first = items[:MAX_ITEMS]
        try:
            conversation_id = await self.target.create(
                first,
                metadata,
                link.idempotency_key,
                lambda: self.archive.links.unconfirmed(self.key, thread_id),
            )
        except TargetRefusedError as exc:
            # A refused key or quota created nothing: the next run must not count this as unconfirmed.
            # (One cut off on the wire by another request's refusal may have: it was counted.)
            if not exc.sent:
                self.archive.links.failed(self.key, thread_id, str(exc))
            raise
        self.summary.items += len(first)
        self._progress(thread_id, items, len(first), conversation_id)
        return conversation_id, len(first)

    async def _resume(self, link: ConversationLink, items: list[dict[str, Any]]) -> int:
        """Continue a conversation created earlier: only if the session still starts with what was sent."""
        if link.sent_digest != _digest(items[: link.items_sent]):
            raise _ThreadFailed(
                f"its session changed since {link.items_sent} items went to {link.conversation_id}; "
                "it no longer starts with them, so nothing more is sent",
                status="diverged",
            )
        self._check_stop()
        sent = await self._server_count(link, items)
        self._progress(link.thread_id, items, sent)
        return sent

    async def _server_count(self, link: ConversationLink | None, items: list[dict[str, Any]]) -> int:
        assert link is not None and link.conversation_id
        held = await self.target.count(link.conversation_id)
        if not link.items_sent <= held <= len(items):
            raise _ThreadFailed(
                f"{link.conversation_id} holds {held} items; the map recorded {link.items_sent} of {len(items)} sent",
                status="diverged",
            )
        return held

    def _progress(
        self, thread_id: str, items: list[dict[str, Any]], sent: int, conversation_id: str | None = None
    ) -> None:
        self.archive.links.progress(
            self.key,
            thread_id,
            items_sent=sent,
            sent_digest=_digest(items[:sent]),
            items_total=len(items),
            conversation_id=conversation_id,
        )


def _digest(items: list[dict[str, Any]]) -> str:
    return object_hash(items)


def _is_complete(link: ConversationLink, items: list[dict[str, Any]]) -> bool:
    """Every item went out earlier, and the session has not changed since."""
    return link.items_sent == len(items) and link.sent_digest == _digest(items)


def _write_mapping(archive: Archive, target: str, selection: Selection, path: Path) -> None:
    """The CSV in thread-id order, from the map (so it covers earlier runs too) and the sessions."""
    ids, _ = selection.resolve(archive)
    records = archive.sessions.records(ids)
    pending = next(records, None)
    with MappingWriter(path) as mapping:
        for link in archive.links.of_target(target, ids):
            # Both streams are sorted by thread id: a merge join, one pass over each.
            while pending is not None and pending[0] < link.thread_id:
                pending = next(records, None)
            record = (
                orjson.loads(pending[1]) if pending is not None and pending[0] == link.thread_id else None
            )
            notes = [
                link.error or "",
                f"metadata dropped: {link.metadata_dropped}" if link.metadata_dropped else "",
            ]
            if link.unconfirmed_creates:
                notes.append(f"{link.unconfirmed_creates} unconfirmed create(s): an unmapped twin may exist")
            note = "; ".join(n for n in notes if n)
            mapping.row(
                link.thread_id, target, link.conversation_id, link.status, link.items_sent, record, note
            )
