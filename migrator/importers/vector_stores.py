"""`--to vector-stores`: the archive's vector stores rebuilt on a target, each object created once.

Three kinds of objects go to the target, in this order: the files (`POST /files`, each source file
once, whatever stores hold it), the stores (`POST /vector_stores`), and the attachments
(`POST /vector_stores/{id}/files`, with the source's attributes and chunking). Then each attached
file is polled until its ingestion ends (`completed`, `failed` or `cancelled`), for at most
`poll_seconds`; one still `in_progress` after that is polled again by the next run.

The archive's `vector_map` says what each object became (see archive/vector_map.py):

1. before a create, an intent row (`creating` / `attaching`) is committed;
2. after it, the target's id and status;
3. a row still in flight (a kill -9, a create whose answer never came) is first looked up on the
   target: a file by filename and size among those no other row claims, a store by its
   `source_vector_store_id` metadata, an attachment by retrieving it from its store. Only when the
   target holds none is the create sent again.

The remaining window is a file whose upload landed but whose listing does not show it yet when the
resume looks: such a file is counted in `unconfirmed_creates` and listed, never hidden.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from migrator.archive import Archive
from migrator.archive.vector_map import IN_FLIGHT, target_key
from migrator.errors import Interrupted, TargetRefusedError, UnreachableError
from migrator.http import RateLimiter, Stop, stop_on_signals
from migrator.importers.conversations import TargetSettings
from migrator.importers.vector_plan import SOURCE_KEY, attach_body, store_body, upload_for
from migrator.importers.vector_target import Failed, Unknown, VectorTarget
from migrator.outputs import private_output

__all__ = [
    "MAPPING_COLUMNS",
    "VectorProgress",
    "VectorStoresOptions",
    "VectorStoresSummary",
    "import_vector_stores",
]

TARGET = "vector-stores"
ENDED = ("completed", "failed", "cancelled")  # an attachment's ingestion is over
MAPPING_COLUMNS = (
    "kind", "source_vector_store_id", "source_file_id", "target_id", "status", "filename", "content",
    "bytes", "sha256", "note",
)  # fmt: skip


@dataclass
class VectorStoresOptions:
    concurrency: int = 4  # creates in flight
    max_rps: float | None = None
    poll_seconds: float = 600.0  # how long one run waits for ingestion to end
    poll_interval: float = 0.2  # the first wait between polls; it doubles up to 5 s


@dataclass
class VectorProgress:
    phase: str  # files | stores | attachments | ingestion
    total: int
    done: int
    elapsed: float


@dataclass
class VectorStoresSummary:
    target: str = TARGET
    out: str = ""  # the target's base URL
    stores: int = 0  # source stores in the archive
    files: int = 0  # distinct source files they hold
    attachments: int = 0  # (store, file) pairs
    created: dict[str, int] = field(default_factory=dict)  # kind -> made by this run
    already: dict[str, int] = field(default_factory=dict)  # kind -> mapped by an earlier run
    adopted: dict[str, int] = field(default_factory=dict)  # kind -> an in-flight create found on the target
    ingestion: dict[str, int] = field(default_factory=dict)  # attachment status -> count, after this run
    content: dict[str, int] = field(default_factory=dict)  # downloaded | parsed_text -> files sent as such
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, source id, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file id, why nothing could be sent)
    unconfirmed: list[str] = field(default_factory=list)  # source ids with a create whose answer never came
    notes: dict[str, int] = field(default_factory=dict)
    creates_sent: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    mapping_out: str | None = None
    interrupted: bool = False
    elapsed: float = 0.0

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    @property
    def clean(self) -> bool:
        pending = self.ingestion.get("in_progress", 0)
        # `unconfirmed` is not here: each such create was looked up on the target before resending.
        return not self.failed and not pending and not self.interrupted

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "out": self.out,
            "stores": self.stores,
            "files": self.files,
            "attachments": self.attachments,
            "created": dict(sorted(self.created.items())),
            "already": dict(sorted(self.already.items())),
            "adopted": dict(sorted(self.adopted.items())),
            "ingestion": dict(sorted(self.ingestion.items())),
            "content": dict(sorted(self.content.items())),
            "failed": [{"kind": k, "id": i, "error": e} for k, i, e in self.failed],
            "skipped": [{"file_id": f, "why": w} for f, w in self.skipped],
            "unconfirmed_creates": self.unconfirmed,
            "notes": dict(sorted(self.notes.items())),
            "creates_sent": self.creates_sent,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "mapping_out": self.mapping_out,
            "interrupted": self.interrupted,
            "elapsed_seconds": round(self.elapsed, 3),
        }


def import_vector_stores(
    archive: Archive,
    settings: TargetSettings,
    *,
    options: VectorStoresOptions = VectorStoresOptions(),
    mapping_out: Path | None = None,
    progress: Callable[[VectorProgress], None] | None = None,
) -> VectorStoresSummary:
    """Rebuild (or finish rebuilding) every vector store of the archive on the target; see the module doc."""
    return asyncio.run(_Import(archive, settings, options, progress).run(mapping_out))


@dataclass(frozen=True)
class _Store:
    id: str
    raw: dict[str, Any] | None  # None when the archive holds only the store's files
    files: list[dict[str, Any]]  # its vector_store.file rows


class _Stopped(Exception):
    pass


class _LookupFailed(Exception):
    """The target could not be asked whether an in-flight create landed: nothing is sent again."""


class _Import:
    def __init__(
        self,
        archive: Archive,
        settings: TargetSettings,
        options: VectorStoresOptions,
        progress: Callable[[VectorProgress], None] | None,
    ) -> None:
        self.archive = archive
        self.settings = settings
        self.options = options
        self.progress = progress
        self.summary = VectorStoresSummary()
        self.stop = Stop()
        self.start = time.monotonic()
        self._listed: dict[str, list[dict[str, Any]]] = {}  # the target's files / stores, listed once
        self._last_tick = 0.0
        self._abort = False

    # -- the run -------------------------------------------------------------------------------------

    async def run(self, mapping_out: Path | None) -> VectorStoresSummary:
        summary = self.summary
        stores = self._source()
        summary.stores, summary.attachments = len(stores), sum(len(s.files) for s in stores)
        file_ids = sorted({row["id"] for s in stores for row in s.files if isinstance(row.get("id"), str)})
        summary.files = len(file_ids)
        self.target = VectorTarget(self.settings, RateLimiter(self.options.max_rps), self.stop)
        self.key = target_key(self.target.base_url)
        summary.out = self.key
        with stop_on_signals(self.stop):
            try:
                await self._each("files", file_ids, self._file)
                await self._each("stores", stores, self._store)
                pairs = [(s, row) for s in stores for row in s.files if isinstance(row.get("id"), str)]
                await self._each("attachments", pairs, lambda pair: self._attach(*pair))
                await self._poll()
            except (_Stopped, Interrupted):
                pass
            finally:
                await self.target.close()
                stats = self.target.path.stats
                summary.requests, summary.throttled, summary.retries = (
                    stats.requests,
                    stats.throttled,
                    stats.retries,
                )
                summary.creates_sent = self.target.creates
        summary.interrupted = self.stop.is_set()
        for link in self.archive.vector_map.rows(self.key):
            if link.kind == "attachment" and link.target_id:
                summary.count(summary.ingestion, link.status)
            if link.unconfirmed_creates:
                summary.unconfirmed.append(link.source_file_id or link.source_store_id)
        if mapping_out is not None:
            summary.mapping_out = str(mapping_out)
            write_mapping(self.archive, self.key, mapping_out)
        summary.elapsed = time.monotonic() - self.start
        return summary

    def _source(self) -> list[_Store]:
        stores = []
        for vs_id in self.archive.raw.vector_store_ids():
            raw = self.archive.raw.of("vector_stores", vs_id)
            rows = [orjson.loads(text) for text in self.archive.raw.texts("vector_store_files", vs_id)]
            stores.append(_Store(vs_id, orjson.loads(raw) if raw else None, rows))
        return stores

    async def _each(self, phase: str, units: Iterable[Any], work: Callable[[Any], Any]) -> None:
        """`work` over the units, `concurrency` at a time; a refusal or a stop ends them all."""
        queue = list(units)
        total, done = len(queue), [0]
        iterator = iter(queue)

        async def worker() -> None:
            for unit in iterator:
                if self.stop.is_set() or self._abort:
                    raise _Stopped
                try:
                    await work(unit)
                except (_Stopped, Interrupted):
                    raise
                except BaseException:
                    self._abort = True  # a refusal or a bug: the other workers stop after their unit
                    raise
                done[0] += 1
                self._tick(phase, total, done[0])

        tasks = [asyncio.create_task(worker()) for _ in range(min(self.options.concurrency, max(total, 1)))]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        self._tick(phase, total, done[0], final=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        # A refusal (exit 3) or a bug outranks a stop: it is what the user must act on.
        for error in errors:
            if not isinstance(error, (_Stopped, Interrupted)):
                raise error
        if errors:
            raise errors[0]

    def _tick(self, phase: str, total: int, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if self.progress is not None and (final or now - self._last_tick >= 0.2):
            self._last_tick = now
            self.progress(VectorProgress(phase, total, done, now - self.start))

    def _failed(self, kind: str, source_id: str, reason: str) -> None:
        self.summary.failed.append((kind, source_id, reason))

    # -- files ---------------------------------------------------------------------------------------

    async def _file(self, file_id: str) -> None:
        try:
            await self._upload(file_id)
        except _LookupFailed as exc:
            self._give_up("file", "", file_id, str(exc), unknown=True)

    async def _upload(self, file_id: str) -> None:
        vmap, key = self.archive.vector_map, self.key
        link = vmap.get(key, "file", file_id=file_id)
        if link is not None and link.target_id and link.status == "uploaded":
            self.summary.count(self.summary.already, "file")
            return
        held = self.archive.files.record(file_id)
        stored = self.archive.files.stored([file_id]).get(file_id)
        meta, content = held if held is not None else ({}, None)
        upload = (
            upload_for(
                file_id, meta.get("filename"), content.kind, content.data, stored.mime if stored else None
            )
            if content is not None
            else None
        )
        if upload is None:
            why = _nothing_to_send(held is not None, content.kind if content else None)
            # A file its source never indexed (an empty parsed text) had nothing to retrieve: skipped.
            # One whose bytes the archive lacks is a loss: failed, and the run asks for attention.
            lost = content is None or content.kind != "parsed_text"
            vmap.settle(key, "file", file_id=file_id, status="failed" if lost else "skipped", error=why)
            if lost:
                self._failed("file", file_id, why)
            else:
                self.summary.skipped.append((file_id, why))
            return
        digest = hashlib.sha256(upload.data).hexdigest()
        in_flight = link is not None and link.status in IN_FLIGHT and link.target_id is None
        # A create an earlier run sent without learning its outcome counts as unconfirmed either way:
        # here when the target holds it, in `intent` when it does not and the create goes out again.
        if in_flight and await self._adopt_file(file_id, upload.name, len(upload.data)):
            vmap.unconfirmed(key, "file", file_id=file_id)
            return
        self._check_stop()
        vmap.intent(key, "file", file_id=file_id, status="creating", content=upload.content,
                    upload_name=upload.name, size=len(upload.data), sha256=digest)  # fmt: skip
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                answer = await self._create(
                    lambda: self.target.upload(upload.name, upload.data), "file", file_id
                )
            except Unknown as exc:
                vmap.unconfirmed(key, "file", file_id=file_id)
                self._listed.pop("files", None)  # it may be there now: list again
                if await self._adopt_file(file_id, upload.name, len(upload.data)):
                    return
                if attempt == self.settings.max_attempts:
                    return self._give_up(
                        "file", "", file_id, f"no clear answer after {attempt} attempts: {exc}", unknown=True
                    )
                continue
            except Failed as exc:
                return self._give_up("file", "", file_id, str(exc))
            vmap.settle(key, "file", file_id=file_id, status="uploaded", target_id=_id_of(answer))
            self.summary.count(self.summary.created, "file")
            self.summary.count(self.summary.content, upload.content)
            return

    async def _adopt_file(self, file_id: str, name: str, size: int) -> bool:
        """An in-flight upload the target holds: the oldest file of that name and size no row claims."""
        listed = await self._listing("files", self.target.files)
        claimed = self.archive.vector_map.mapped_ids(self.key, "file")
        for obj in listed:
            if obj.get("filename") == name and obj.get("bytes") == size and obj.get("id") not in claimed:
                self.archive.vector_map.settle(
                    self.key, "file", file_id=file_id, status="uploaded", target_id=obj["id"]
                )
                self.summary.count(self.summary.adopted, "file")
                return True
        return False

    # -- stores --------------------------------------------------------------------------------------

    async def _store(self, store: _Store) -> None:
        try:
            await self._create_store(store)
        except _LookupFailed as exc:
            self._give_up("store", store.id, "", str(exc), unknown=True)

    async def _create_store(self, store: _Store) -> None:
        vmap, key = self.archive.vector_map, self.key
        link = vmap.get(key, "store", store_id=store.id)
        if link is not None and link.target_id and link.status == "created":
            self.summary.count(self.summary.already, "store")
            return
        in_flight = link is not None and link.status in IN_FLIGHT and link.target_id is None
        if in_flight and await self._adopt_store(store.id):
            vmap.unconfirmed(key, "store", store_id=store.id)
            return
        body, dropped = store_body(store.id, store.raw)
        for _, why in dropped:
            self.summary.notes[f"metadata_{why}"] = self.summary.notes.get(f"metadata_{why}", 0) + 1
        self._check_stop()
        vmap.intent(key, "store", store_id=store.id, status="creating")
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                answer = await self._create(lambda: self.target.create_store(body), "store", store.id)
            except Unknown as exc:
                vmap.unconfirmed(key, "store", store_id=store.id)
                self._listed.pop("stores", None)
                if await self._adopt_store(store.id):
                    return
                if attempt == self.settings.max_attempts:
                    return self._give_up(
                        "store",
                        store.id,
                        "",
                        f"no clear answer after {attempt} attempts: {exc}",
                        unknown=True,
                    )
                continue
            except Failed as exc:
                return self._give_up("store", store.id, "", str(exc))
            vmap.settle(key, "store", store_id=store.id, status="created", target_id=_id_of(answer))
            self.summary.count(self.summary.created, "store")
            return

    async def _adopt_store(self, store_id: str) -> bool:
        listed = await self._listing("stores", self.target.stores)
        claimed = self.archive.vector_map.mapped_ids(self.key, "store")
        for obj in listed:
            metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            if metadata.get(SOURCE_KEY) == store_id and obj.get("id") not in claimed:
                self.archive.vector_map.settle(
                    self.key, "store", store_id=store_id, status="created", target_id=obj["id"]
                )
                self.summary.count(self.summary.adopted, "store")
                return True
        return False

    # -- attachments ---------------------------------------------------------------------------------

    async def _attach(self, store: _Store, row: dict[str, Any]) -> None:
        try:
            await self._attach_file(store, row)
        except _LookupFailed as exc:
            self._give_up("attachment", store.id, row["id"], str(exc), unknown=True)

    async def _attach_file(self, store: _Store, row: dict[str, Any]) -> None:
        vmap, key, file_id = self.archive.vector_map, self.key, row["id"]
        link = vmap.get(key, "attachment", store.id, file_id)
        if link is not None and link.target_id and link.status not in IN_FLIGHT:
            self.summary.count(self.summary.already, "attachment")
            return
        store_link = vmap.get(key, "store", store_id=store.id)
        file_link = vmap.get(key, "file", file_id=file_id)
        if store_link is None or store_link.status != "created" or not store_link.target_id:
            return self._failed("attachment", f"{store.id}/{file_id}", "its vector store was not created")
        if file_link is None or file_link.status != "uploaded" or not file_link.target_id:
            if file_link is None or file_link.status != "skipped":
                self._failed("attachment", f"{store.id}/{file_id}", "its file was not uploaded")
            return
        target_store, target_file = store_link.target_id, file_link.target_id
        in_flight = link is not None and link.status in IN_FLIGHT
        if in_flight and await self._adopt_attachment(store.id, file_id, target_store, target_file):
            vmap.unconfirmed(key, "attachment", store.id, file_id)
            return
        body = attach_body(target_file, row)
        self._check_stop()
        vmap.intent(key, "attachment", store.id, file_id, status="attaching")
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                answer = await self._create(
                    lambda: self.target.attach(target_store, body), "attachment", f"{store.id}/{file_id}"
                )
            except Unknown as exc:
                vmap.unconfirmed(key, "attachment", store.id, file_id)
                if await self._adopt_attachment(store.id, file_id, target_store, target_file):
                    return
                if attempt == self.settings.max_attempts:
                    reason = f"no clear answer after {attempt} attempts: {exc}"
                    return self._give_up("attachment", store.id, file_id, reason, unknown=True)
                continue
            except Failed as exc:
                return self._give_up("attachment", store.id, file_id, str(exc))
            self._settle_attachment(store.id, file_id, answer, target_file)
            self.summary.count(self.summary.created, "attachment")
            return

    async def _adopt_attachment(
        self, store_id: str, file_id: str, target_store: str, target_file: str
    ) -> bool:
        found = await self._read(lambda: self.target.store_file(target_store, target_file))
        if found is None:
            return False
        self._settle_attachment(store_id, file_id, found, target_file)
        self.summary.count(self.summary.adopted, "attachment")
        return True

    def _settle_attachment(
        self, store_id: str, file_id: str, answer: dict[str, Any], target_file: str
    ) -> None:
        status = answer.get("status") if answer.get("status") in (*ENDED, "in_progress") else "in_progress"
        error = _last_error(answer) if status in ("failed", "cancelled") else None
        self.archive.vector_map.settle(
            self.key, "attachment", store_id, file_id, status=status, target_id=target_file, error=error
        )
        if error is not None:
            self._failed("attachment", f"{store_id}/{file_id}", f"ingestion {status}: {error}")

    # -- ingestion -----------------------------------------------------------------------------------

    async def _poll(self) -> None:
        """Poll every store with a file still ingesting (one list a store a round) until none is left."""
        deadline = time.monotonic() + self.options.poll_seconds
        interval = self.options.poll_interval
        while True:
            pending: dict[str, dict[str, tuple[str, str]]] = {}  # target store -> target file -> source ids
            stores = self.archive.vector_map.rebuilt_stores(self.key)
            total = done = 0
            for link in self.archive.vector_map.rows(self.key):
                if link.kind != "attachment" or not link.target_id:
                    continue
                total += 1
                if link.status == "in_progress" and link.source_store_id in stores:
                    source = (link.source_store_id, link.source_file_id)
                    pending.setdefault(stores[link.source_store_id], {})[link.target_id] = source
                else:
                    done += 1
            self._tick("ingestion", total, done, final=not pending)
            if not pending or time.monotonic() >= deadline:
                return
            self._check_stop()
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 2, 5.0)
            for target_store, files in pending.items():
                self._check_stop()
                try:
                    rows = await self.target.store_files(target_store)
                except Failed as exc:
                    # A poll is a read: the next round asks again; a store never answering ends the
                    # run with its files still in_progress, which the next run polls.
                    self.summary.notes[f"poll_failed: {exc}"[:200]] = 1
                    continue
                by_file = {str(r.get("id")): r for r in rows}
                for target_file, (source_store, source_file) in files.items():
                    answer = by_file.get(target_file)
                    if answer is not None and answer.get("status") != "in_progress":
                        self._settle_attachment(source_store, source_file, answer, target_file)

    # -- helpers -------------------------------------------------------------------------------------

    async def _create(self, call: Callable[[], Any], kind: str, source_id: str) -> dict[str, Any]:
        try:
            answer = await call()
        except (Interrupted, UnreachableError, TargetRefusedError) as exc:
            # A create cut off on the wire may have been made: its row stays in flight, and the
            # resume looks it up first. One never sent leaves the row as it was (in flight, but
            # the lookup finds nothing and the create goes out then).
            if exc.sent:
                self.summary.notes["create_cut_off"] = self.summary.notes.get("create_cut_off", 0) + 1
            raise
        if not isinstance(answer.get("id"), str) or not answer["id"]:
            raise Unknown(f"the target's answer to the {kind} create of {source_id} has no id")
        return answer

    def _give_up(self, kind: str, store_id: str, file_id: str, reason: str, *, unknown: bool = False) -> None:
        # After answers that never came the object may exist: the row stays in flight, so the next
        # run looks it up before sending anything.
        status = ("attaching" if kind == "attachment" else "creating") if unknown else "failed"
        self.archive.vector_map.settle(self.key, kind, store_id, file_id, status=status, error=reason)
        self._failed(
            kind, file_id if kind == "file" else (f"{store_id}/{file_id}" if file_id else store_id), reason
        )

    async def _listing(self, what: str, fetch: Callable[[], Any]) -> list[dict[str, Any]]:
        if what not in self._listed:
            self._listed[what] = await self._read(fetch)
        return self._listed[what]

    async def _read(self, fetch: Callable[[], Any], tries: int = 3) -> Any:
        """A lookup, asked again when its answer was unreadable (a garbled 200 is not retried below)."""
        for attempt in range(1, tries + 1):
            try:
                return await fetch()
            except Failed as exc:
                if attempt == tries:
                    raise _LookupFailed(
                        f"cannot look it up on the target ({exc}); the next run asks again"
                    ) from None
        raise AssertionError("unreachable")

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _Stopped


def _id_of(answer: dict[str, Any]) -> str:
    return str(answer["id"])


def _last_error(answer: dict[str, Any]) -> str:
    error = answer.get("last_error")
    if isinstance(error, dict):
        return f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    return "no reason given"


def _nothing_to_send(held: bool, kind: str | None) -> str:
    if not held:
        return "the archive holds no file object for it (export again to fetch it)"
    if kind == "parsed_text":
        return "its source vector store served no text for it (it never indexed on the source)"
    return "the archive holds neither its bytes nor its parsed text (the source refused both)"


def write_mapping(archive: Archive, target: str, path: Path) -> None:
    """`--mapping-out CSV`: every row of the map for this target (earlier runs included), 0600."""
    with private_output(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(MAPPING_COLUMNS)
        for link in archive.vector_map.rows(target):
            notes = [link.error or ""]
            if link.unconfirmed_creates:
                notes.append(f"{link.unconfirmed_creates} unconfirmed create(s), looked up before resending")
            writer.writerow(
                [link.kind, link.source_store_id, link.source_file_id, link.target_id or "", link.status,
                 link.upload_name or "", link.content or "", "" if link.bytes is None else link.bytes,
                 link.sha256 or "", "; ".join(n for n in notes if n)]
            )  # fmt: skip
