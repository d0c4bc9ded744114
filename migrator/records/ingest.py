"""Fill an archive from an application's message log, as an export from the API would.

Rows of one thread may be anywhere in the log (a log is ordered by time, not by thread), and a
thread is done only once all its rows are read. So the rows stream, checked one by one, into a
spill: a private temporary SQLite database that SQLite deletes itself (it is unlinked as soon as it
is opened, so even a kill -9 leaves no file; it lives in TMPDIR). Then the spill is read back
sorted by (thread, created_at, row order), one thread at a time, and threads are stored in batches,
each thread whole with its `done` mark. Memory holds one batch of threads, never the log: bounded
at any size, and no ORDER BY is asked of the user's query.

Reruns are idempotent: each thread's objects and rows have one digest; a thread whose digest is
unchanged is not touched, a changed one is replaced whole and its session marked stale, a new one
is added. A thread the archive holds from another source (an API export, a dump) is kept as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from migrator.archive import Anomaly, Archive, LooseObject, RecordThread, object_hash
from migrator.archive.canonical import dumps, loads
from migrator.archive.records import FOREIGN, RECORDS_ENTITY, SKIPPED_ROW
from migrator.errors import UsageError
from migrator.export.options import ExportSnapshot
from migrator.gcpace import fewer_collections
from migrator.records.build import SOURCE, BuildSettings, BuiltThread, RowIn, build_thread
from migrator.records.fields import Columns, parse_maps, resolve_columns
from migrator.records.read import RowError, Source, open_source
from migrator.records.report import RecordsReport
from migrator.records.values import Fields, Rejected, parse_row
from migrator.refs import thread_file_refs

__all__ = ["RecordsRequest", "OpenRecords", "open_records", "ingest_records", "system_prompt_assistant"]

_SPILL_BATCH = 2000  # rows a spill insert carries
_STORE_ROWS = 2500  # rows of threads built and stored at once (one thread is never split)
_COMMIT_ROWS = 50_000  # rows of whole batches in one transaction (RecordThreads.storing says why)
_PROGRESS_EVERY = 0.5  # seconds
# The archive's page cache and checkpoint pace while threads are stored (Archive.bulk_write says
# why): the ingest's image stays below the peak of the session build that follows (112 and 121 MB).
# Batches of 2,500 rows rather than 5,000 hold 8 MB fewer objects, which the cache has instead:
# at a million rows the ingest then reads 5.8 GB of pages, not 7.0.
_CACHE_MIB = 40
_CHECKPOINT_PAGES = 8000
# The collector's pace while rows are read and stored (migrator/gcpace.py says why): as a dump's ingest.
_PACE = (50_000, 20, 100)


@dataclass(frozen=True)
class RecordsRequest:
    """`export --from-records SOURCE [--query SQL | --table NAME] [--map F=C]... [--system-prompt T | --assistant-id ID]`."""

    source: str
    query: str | None = None
    table: str | None = None
    maps: tuple[str, ...] = ()
    system_prompt: str | None = None
    assistant_id: str | None = None


@dataclass(frozen=True)
class OpenRecords:
    request: RecordsRequest
    source: Source
    columns: Columns


@contextlib.contextmanager
def open_records(request: RecordsRequest) -> Iterator[OpenRecords]:
    """The source opened and its columns checked: every usage error, an unknown column, a database
    that cannot be reached, comes from here, before an archive is created or a row read."""
    if request.system_prompt is not None and request.assistant_id is not None:
        raise UsageError("--system-prompt and --assistant-id exclude each other: give one")
    maps = parse_maps(request.maps)
    with open_source(request.source, query=request.query, table=request.table) as source:
        yield OpenRecords(request, source, resolve_columns(source.columns, maps))


def system_prompt_assistant(prompt: str) -> dict[str, Any]:
    """The assistant that carries `--system-prompt` (its id is the prompt's digest: same prompt, same id)."""
    return {
        "id": "asst_records_" + hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16],
        "object": "assistant",
        "created_at": 0,
        "name": "--system-prompt",
        "description": "the system prompt given to `migrate export --from-records`",
        "model": None,
        "instructions": prompt,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "source": SOURCE,
    }


def _settings(archive: Archive, request: RecordsRequest) -> BuildSettings:
    if request.system_prompt is not None:
        assistant = system_prompt_assistant(request.system_prompt)
        if archive.raw.of("assistants", assistant["id"]) is None:
            archive.loose.store(
                [LooseObject("assistants", assistant, position=archive.loose.next_position())]
            )
        return BuildSettings(assistant["id"], request.system_prompt)
    if request.assistant_id is not None:
        raw = archive.raw.of("assistants", request.assistant_id)
        if raw is None:
            raise UsageError(
                f"--assistant-id {request.assistant_id}: no such assistant in {archive.path}",
                hint="export it first (`migrate export ARCHIVE --only assistants`, or --from-dump), "
                "or pass --system-prompt TEXT",
            )
        assistant = loads(raw)
        tools = assistant.get("tools")
        return BuildSettings(
            request.assistant_id,
            assistant.get("instructions") if isinstance(assistant.get("instructions"), str) else None,
            assistant.get("model") if isinstance(assistant.get("model"), str) else None,
            tuple(t for t in tools if isinstance(t, dict)) if isinstance(tools, list) else (),
        )
    return BuildSettings()


def _bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # a lone surrogate (a CSV byte that is not UTF-8): kept, as escaped JSON
        return dumps(value).encode()


def _text(value: Any) -> str:
    """`_bytes` as text: what the spill stores (the sqlite3 module binds a str directly, where a
    bytes value first goes through its adapter lookup, twice a row)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return dumps(value)


class _Spill:
    """The rows read so far, in a private temporary SQLite database (deleted by SQLite itself)."""

    def __init__(self) -> None:
        # "" is SQLite's private temporary database: on disk (in TMPDIR), unlinked once opened.
        self.db = sqlite3.connect("", isolation_level=None)
        # Larger pages: the spill is written once and read back once, sorted (through the sorter's
        # own temporary files, a page at a time): a quarter of the system calls of 4 KiB pages. Not
        # larger: the sorter's merge holds a page for each sorted run it reads (64 KiB: +12 MB RSS).
        self.db.execute("PRAGMA page_size = 16384")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        # 4 MB of pages (and of sort runs when it is read back sorted); the rest stays on disk.
        self.db.execute("PRAGMA cache_size = -4000")
        # Each row's verbatim JSON and the digest of its canonical form, made once as it is read.
        self.db.execute(
            "create table rows (thread_id text, at real, number integer, fields text, raw text, hash text)"
        )
        self.db.execute("create table rejects (number integer, thread_id text, reason text, raw blob)")
        self.batch: list[tuple[Any, ...]] = []
        self.db.execute("BEGIN")

    def add(self, number: int, fields: Fields, raw: dict[str, Any]) -> None:
        self.batch.append(
            (fields.thread_id, fields.at, number, _text(fields.as_list()), _text(raw), object_hash(raw))
        )
        if len(self.batch) >= _SPILL_BATCH:
            self.flush()

    def reject(self, number: int, thread_id: str | None, reason: str, raw: bytes) -> None:
        """A row not used; `raw` is its JSON (b"null" when the reader could not read it)."""
        self.db.execute("insert into rejects values (?, ?, ?, ?)", (number, thread_id, reason, raw))

    def flush(self) -> None:
        self.db.executemany("insert into rows values (?, ?, ?, ?, ?, ?)", self.batch)
        self.batch = []

    def seal(self) -> int:
        """Done reading: the number of threads."""
        self.flush()
        self.db.execute("COMMIT")
        return self.db.execute("select count(*) from (select distinct thread_id from rows)").fetchone()[0]

    def threads(self) -> Iterator[tuple[str, list[RowIn], list[str]]]:
        """Each thread's rows in (created_at, row order), and their raw JSON, one thread at a time.

        A row's `raw` is (its verbatim JSON text, its digest), as `record_rows` stores them: the
        row is never parsed again."""
        current: str | None = None
        rows: list[RowIn] = []
        raws: list[str] = []
        make = Fields._make
        cursor = self.db.execute(
            "select thread_id, number, fields, raw, hash from rows order by thread_id, at, number"
        )
        while chunk := cursor.fetchmany(_SPILL_BATCH):
            for thread_id, number, fields, raw, digest in chunk:
                if thread_id != current:
                    if current is not None:
                        yield current, rows, raws
                    current, rows, raws = thread_id, [], []
                rows.append(RowIn(number, make(loads(fields)), (raw, digest)))
                raws.append(raw)
        if current is not None:
            yield current, rows, raws

    def rejects(self) -> Iterator[tuple[int, str | None, str, bytes]]:
        yield from self.db.execute("select number, thread_id, reason, raw from rejects order by number")

    def close(self) -> None:
        self.db.close()


# Bump when what rows become changes: every thread made from records is then rewritten on the next run.
BUILD_VERSION = 1


def _signature(columns: Columns, settings: BuildSettings) -> bytes:
    """What besides the rows decides a thread's objects: the field mapping and the command's settings."""
    return object_hash([BUILD_VERSION, sorted(columns.index.items()), repr(settings)]).encode()


def _digest(signature: bytes, raws: list[str]) -> str:
    """A thread's digest: its rows verbatim (UTF-8), each after a newline, in its order, under the
    signature (cheaper than hashing the objects, and the objects follow from exactly these)."""
    return "sha256:" + hashlib.sha256(signature + "".join("\n" + raw for raw in raws).encode()).hexdigest()


class _Progress:
    def __init__(self, on_progress: Callable[[ExportSnapshot], None] | None, report: RecordsReport) -> None:
        self.on_progress = on_progress
        self.report = report
        self.started = time.monotonic()
        self.last = 0.0
        self.threads_total = 0
        self.threads_finished = 0
        self.rows = 0

    def __call__(self, phase: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self.last < _PROGRESS_EVERY):
            return
        self.last = now
        r = self.report
        self.on_progress(
            ExportSnapshot(
                phase=phase,
                threads_total=self.threads_total,
                threads_finished=self.threads_finished,
                messages=r.messages,
                requests=self.rows,
                throttled=0,
                retries=0,
                failures=r.rows_skipped,
                elapsed=now - self.started,
                unit="rows",
            )
        )


def ingest_records(
    archive: Archive, opened: OpenRecords, on_progress: Callable[[ExportSnapshot], None] | None = None
) -> RecordsReport:
    """Read the log into the archive; the caller builds sessions afterwards."""
    started, cpu = time.perf_counter(), time.process_time()
    source, columns = opened.source, opened.columns
    settings = _settings(archive, opened.request)
    report = RecordsReport(source.label)
    progress = _Progress(on_progress, report)
    spill = _Spill()
    try:
        with fewer_collections(*_PACE):
            _read(source, columns, spill, report, progress)
            progress.threads_total = spill.seal()
            progress.rows = 0
            progress("threads", force=True)
            with archive.bulk_write(_CACHE_MIB, _CHECKPOINT_PAGES):
                _store(archive, spill, columns, settings, report, progress)
            archive.records.set_skipped(source.label, _anomalies(source.label, spill))
    finally:
        spill.close()
    progress("threads", force=True)
    report.elapsed = time.perf_counter() - started
    report.cpu_seconds = time.process_time() - cpu
    return report


def _read(
    source: Source, columns: Columns, spill: _Spill, report: RecordsReport, progress: _Progress
) -> None:
    """Every row of the source, checked, into the spill (or its rejects)."""
    for number, row in source.rows:
        report.rows_read += 1
        progress.rows += 1
        if isinstance(row, RowError):
            spill.reject(number, None, row.reason, b"null")
            report.skip(number, row.reason)
            continue
        fields = parse_row(row, columns)
        if isinstance(fields, Rejected):
            spill.reject(number, fields.thread_id, fields.reason, _bytes(row))
            report.skip(number, fields.reason)
        else:
            spill.add(number, fields, row)
        if not number & 0xFF:
            progress("reading rows")


def _store(
    archive: Archive,
    spill: _Spill,
    columns: Columns,
    settings: BuildSettings,
    report: RecordsReport,
    progress: _Progress,
) -> None:
    batch: list[tuple[str, list[RowIn], str]] = []  # (thread id, its rows, their digest)
    rows_in_batch = 0
    signature = _signature(columns, settings)

    def built(thread_id: str, rows: list[RowIn], digest: str) -> RecordThread:
        made = build_thread(thread_id, rows, settings)
        for row, reason in made.rejected:
            spill.reject(row.number, thread_id, reason, row.raw[0].encode())
            report.skip(row.number, reason)
        return RecordThread(
            thread_id,
            digest,
            made.thread,
            made.messages,
            made.runs,
            made.steps,
            made.rows,
            report.source,
            _file_refs(made),
        )

    def flush() -> None:
        nonlocal batch, rows_in_batch
        held = archive.records.held(tid for tid, _, _ in batch)
        changed = []
        for thread_id, rows, digest in batch:
            before = held.get(thread_id)
            if before == digest and not _may_reject(rows):
                # Unchanged, and no row it could refuse to list again: a rerun need not build it.
                report.threads_unchanged += 1
                continue
            t = built(thread_id, rows, digest)
            if before == FOREIGN:
                report.threads_kept += 1
                if len(report.kept) < 20:
                    report.kept.append(t.thread_id)
            elif before == t.digest:
                report.threads_unchanged += 1
            else:
                changed.append(t)
                if before is None:
                    report.threads_new += 1
                else:
                    report.threads_updated += 1
                report.messages += len(t.messages)
                report.runs += len(t.runs)
                report.run_steps += len(t.steps)
        if changed:
            archive.records.replace(
                changed, frozenset(t.thread_id for t in changed if t.thread_id not in held)
            )
        progress.threads_finished += len(batch)
        progress("threads")
        batch, rows_in_batch = [], 0

    threads = spill.threads()
    more = True
    while more:
        with archive.records.storing():
            committed = 0
            for thread_id, rows, raws in threads:
                progress.rows += len(rows)
                batch.append((thread_id, rows, _digest(signature, raws)))
                rows_in_batch += len(rows)
                if rows_in_batch >= _STORE_ROWS:
                    committed += rows_in_batch
                    flush()
                    if committed >= _COMMIT_ROWS:
                        break
            else:
                more = False
                if batch:
                    flush()


def _may_reject(rows: list[RowIn]) -> bool:
    """Whether `build_thread` could refuse one of these rows: only a tool output, or a repeated
    message_id, can be refused once a row is read."""
    return any(r.fields.role == "tool" or r.fields.message_id is not None for r in rows)


def _plain_text(content: list[dict[str, Any]]) -> bool:
    text = content[0].get("text") if len(content) == 1 and content[0].get("type") == "text" else None
    return isinstance(text, dict) and not text.get("annotations")


def _file_refs(built: BuiltThread) -> frozenset[str]:
    """Files the thread's content parts or tool calls name (a log of plain text names none)."""
    if all(_plain_text(m["content"]) for m in built.messages) and not any(
        s["step_details"]["type"] == "tool_calls" for s in built.steps
    ):
        return frozenset()
    return frozenset(thread_file_refs(built.thread, built.messages, built.steps))


def _anomalies(label: str, spill: _Spill) -> Iterator[Anomaly]:
    for number, thread_id, reason, raw in spill.rejects():
        where = f" (thread {thread_id})" if thread_id else ""
        text = raw.decode("utf-8", "replace") if raw else ""
        row = f"; the row: {text[:300]}{'…' if len(text) > 300 else ''}" if text and text != "null" else ""
        yield Anomaly(RECORDS_ENTITY, f"{label}#{number}", SKIPPED_ROW, f"row {number}{where}: {reason}{row}")
