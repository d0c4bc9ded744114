"""Build the archive from saved Assistants API JSON, exactly as an export from the live API would.

Objects arrive in any order and any layout (single objects, arrays, list pages, JSONL mixes), so
they are written as they stream in, in batches, and each thread is ruled on once every file is read:
`done` when the dump holds its thread object and its messages. Until then a thread that gained rows
is not `done`, so an interrupted ingest never leaves a half-read thread looking complete; running
the same ingest again finishes it and changes nothing else (re-ingest is idempotent).

Memory grows with the number of threads and files (ids), never with messages or file sizes: parsed
text pages are spooled to a folder beside the archive until the file they belong to is settled.

Beyond single objects and list pages it reads the shapes teams really saved: the
`assistants-api-export` layout (redwood.py), message lists alone (the thread is synthesised), a
polling loop's run snapshots (every version kept, the newest current), recorded event streams
(sse.py), Assistants v1 objects, and `.zip` files (zipped.py). Objects that are not data to keep
(deletion confirmations, file batches, search pages, stream deltas) are recognised and counted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from migrator.archive import (
    Anomaly,
    Archive,
    Failure,
    FileContent,
    LooseObject,
    ThreadOutline,
    ThreadSettlement,
    object_hash,
)
from migrator.archive.bits import Bits
from migrator.archive.canonical import loads
from migrator.archive.files import suspect_bytes
from migrator.archive.versions import RawVersion
from migrator.dumps import redwood
from migrator.dumps.layout import (
    DUMP_FORMAT,
    HINT_ITEM_OBJECT,
    MANIFEST,
    MANIFEST_OBJECT,
    PARTIAL,
    THREAD_LIST,
)
from migrator.dumps.loose import LooseFiles
from migrator.dumps.newest import NewestWins, synthesized_thread
from migrator.dumps.readahead import ReadAhead
from migrator.dumps.reader import (
    Doc,
    Input,
    ZipLimits,
    data_format,
    iter_input_files,
    read_documents,
    read_lines,
    walk_folders,
)
from migrator.dumps.report import RECOGNISED, IngestProgress, IngestReport
from migrator.dumps.sse import DELTA_KINDS, Assembler
from migrator.dumps.zipped import zip_dumps
from migrator.errors import BadInputError, IncompleteDumpError
from migrator.gcpace import fewer_collections
from migrator.refs import files_in_assistant, thread_file_refs

__all__ = ["check_dump_paths", "ingest_dump", "read_dump", "DumpIngest", "TABLE_OF", "PARSED_TEXT_PAGE"]

# The `object` field of each kind we keep, and the table it lives in.
TABLE_OF = {
    "assistant": "assistants",
    "thread": "threads",
    "thread.message": "messages",
    "thread.run": "runs",
    "thread.run.step": "run_steps",
    "vector_store": "vector_stores",
    "vector_store.file": "vector_store_files",
    "file": "files",
}
_THREAD_CHILDREN = ("thread.message", "thread.run", "thread.run.step")
_TABLE_KIND = {table: kind for kind, table in TABLE_OF.items()}
PARSED_TEXT_PAGE = "vector_store.file_content.page"
# Anomaly kinds a thread's verdict owns (cleared and re-derived on every ingest that touches it).
_OWNED_KINDS = ("dump_messages_missing", "dump_page_has_more")
_BATCH = 2000  # objects a batch while reading (parsed objects are held until it is stored)
# Objects a commit while reading: message ids land at random in their index, and each commit writes
# every page it dirtied (a commit every 2,000 objects wrote 13 GB for 340,000 threads' 680,000 messages).
_COMMIT_OBJECTS = 50_000
# Threads a transaction while settling: each commit rewrote the pages of `work` and of the findings
# its threads' rows sit on (340,000 threads: 60.3 and 59.4 s at 500, 58.1 and 57.5 s at 2,000).
_SETTLE_BATCH = 2000
# The done threads of a batch go to be built in batches of at most about this many objects: a batch's
# sessions are held whole, in the workers and here, until they are stored (2,000 realistic threads'
# would be some 50 MB; two-message ones are 6,000 objects).
_BUILD_OBJECTS = 10_000
# The page cache and checkpoint pace while objects are stored and threads settled (Archive.bulk_write
# says why: ids land at random in their indexes, and a 340,000-thread dump's are bigger than SQLite's
# default 2 MB cache).
_CACHE_MIB = 32
_CHECKPOINT_PAGES = 8000
_STREAMED = frozenset(("thread.run", *DELTA_KINDS.values()))  # what later deltas of a stream build on
_MAX_DEPTH = 4  # arrays of list pages of objects are fine; deeper nesting is not an API shape


class _Where:
    """Where a value was read: a file, its line, and the path of items inside the document.

    Every item of every page gets one, and almost none is ever printed: the item path is kept as
    the parent and the index, and spelled out only when a message names it."""

    __slots__ = ("path", "line", "_parent", "_index", "_item")

    def __init__(self, path: Any, line: int | None, item: str = "") -> None:
        self.path = path  # an Input or a Path, printed only
        self.line = line
        self._parent: _Where | None = None
        self._index: int | str = 0
        self._item: str | None = item

    @property
    def item(self) -> str:
        if self._item is None:
            index, parent = self._index, self._parent.item  # type: ignore[union-attr]
            self._item = f"{parent}[{index}]" if isinstance(index, int) else f"{parent}.{index}"
        return self._item

    def at(self, index: int | str) -> _Where:
        inner = _Where.__new__(_Where)
        inner.path, inner.line, inner._parent, inner._index, inner._item = (
            self.path,
            self.line,
            self,
            index,
            None,
        )
        return inner

    def origin(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def say(self, reason: str) -> str:
        return f"item {self.item}: {reason}" if self.item else reason


@dataclass(frozen=True)
class _ShortPage:
    """A list page that said has_more; the dump should hold more of its kind for its parent."""

    kind: str
    parent: str | None
    count: int
    where: _Where
    run: str | None = None  # a step page lists the steps of one run


@dataclass
class _Spool:
    """The parsed text of one (file, vector store), gathered page by page in a temporary file."""

    path: Path
    where: _Where
    pages: set[str] = field(default_factory=set)


def check_dump_paths(paths: Iterable[Path], files_dir: Path | None = None) -> list[Path]:
    """The paths, or BadInputError naming each one that does not exist (nothing is read or written)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise BadInputError("--from-dump needs at least one file or folder")
    gone = [p for p in paths if not p.exists()]
    if gone:
        raise BadInputError(
            f"{gone[0]}: no such file or folder"
            if len(gone) == 1
            else f"{len(gone)} --from-dump paths do not exist",
            problems=[f"{p}: no such file or folder" for p in gone] if len(gone) > 1 else [],
            hint="--from-dump takes saved API JSON files or folders",
        )
    if files_dir is not None and not Path(files_dir).is_dir():
        raise BadInputError(f"{files_dir}: --files-dir must be an existing folder")
    for path in paths:
        if path.is_dir() and (cut := _cut_short_dump(path)) is not None:
            raise IncompleteDumpError(
                f"{cut}: incomplete: no manifest ({MANIFEST}); this `migrate dump` was cut short",
                hint="run `migrate dump` again into an empty folder, then read that one",
            )
    return paths


def _cut_short_dump(root: Path) -> Path | None:
    """The first folder under `root` laid out like a `migrate dump` but without its manifest."""
    for dirpath, dirnames, filenames in os.walk(root):
        names = set(filenames)
        if MANIFEST in names:
            dirnames[:] = []  # a dump's own folders hold no other dump
            continue
        ours = (
            PARTIAL in names
            or (THREAD_LIST in names and "threads" in dirnames)
            or _our_page(Path(dirpath) / "assistants.json")
        )
        if ours:
            return Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return None


def _our_page(path: Path) -> bool:
    """A list page `migrate dump` wrote: it ends with our `item_object` hint."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 256))
            tail = fh.read()
    except OSError:
        return False
    return f'"{HINT_ITEM_OBJECT}":"assistant"'.encode() in tail


def _objects_in(manifests: list[_Manifest], paths: list[Path]) -> int:
    """The objects the dumps' manifests say they hold, when every path is such a dump (0 otherwise)."""
    by_folder = {m.folder: m.objects for m in manifests}
    if not paths or any(not by_folder.get(path) for path in paths):
        return 0
    return sum(by_folder[path] for path in paths)


def _bytes_under(paths: list[Path]) -> int:
    """The size of every file under the paths: the total a progress display counts read bytes against."""
    total = 0
    for root in paths:
        if root.is_file():
            total += root.stat().st_size
            continue
        for dirpath, _dirs, names in walk_folders(str(root)):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def ingest_dump(
    archive: Archive,
    paths: list[Path],
    files_dir: Path | None = None,
    *,
    zip_limits: ZipLimits = ZipLimits(),
    progress: Callable[[IngestProgress], None] | None = None,
) -> IngestReport:
    """Read saved API JSON into the archive; the caller builds sessions afterwards.

    `progress` is called after each file and each batch of stored objects (a 200 MB file is read
    for tens of seconds: the count of objects shows it moving)."""
    ingest = read_dump(archive, paths, files_dir, zip_limits=zip_limits, progress=progress)
    for _done in ingest.settled():
        pass
    return ingest.report


def read_dump(
    archive: Archive,
    paths: list[Path],
    files_dir: Path | None = None,
    *,
    zip_limits: ZipLimits = ZipLimits(),
    progress: Callable[[IngestProgress], None] | None = None,
) -> DumpIngest:
    """Read every object of the dump into the archive; its threads are ruled on by `settled()`."""
    paths = check_dump_paths(paths, files_dir)
    archive.loose.track_new_keys()  # until its threads are ruled on (`settled`)
    try:
        with fewer_collections(50_000, 20, 100), archive.bulk_write(_CACHE_MIB, _CHECKPOINT_PAGES):
            return _read_dump(archive, paths, files_dir, zip_limits, progress)
    except BaseException:
        archive.loose.track_new_keys(False)
        raise


class DumpIngest:
    """A dump read into the archive whose threads are not ruled on yet."""

    def __init__(self, run: _Ingest) -> None:
        self._run = run
        self.report = run.report

    def to_settle(self) -> int:
        """How many threads the dump named (the most that can be `done`)."""
        return self._run.archive.loose.noted_count()

    def settled(self) -> Iterator[list[str]]:
        """Rule on every thread the dump named, a batch a transaction; after each commit, the ids of
        the batch's `done` threads (a caller may build their sessions while the next batch is ruled
        on). The report is whole once it is exhausted."""
        run = self._run
        try:
            with fewer_collections(50_000, 20, 100), run.archive.bulk_write(_CACHE_MIB, _CHECKPOINT_PAGES):
                yield from run.settle_threads()
                run.check_leftovers()
        finally:
            run.archive.loose.track_new_keys(False)
        self.report.loose_files_matched = run.loose.matched


def _read_dump(
    archive: Archive,
    paths: list[Path],
    files_dir: Path | None,
    zip_limits: ZipLimits,
    progress: Callable[[IngestProgress], None] | None,
) -> DumpIngest:
    report = IngestReport()
    manifests = list(_manifests(paths, report, zip_limits))
    loose_dirs = ([Path(files_dir)] if files_dir else []) + [d for m in manifests if (d := m.files_dir)]
    run = _Ingest(archive, report, LooseFiles(loose_dirs))
    # A dump written by `migrate dump` says how many objects it holds: walking 680,000 files for
    # their sizes first was 9 s of CPU (and more by the clock) before the first was read.
    objects_total = _objects_in(manifests, paths)
    total = _bytes_under(paths) if progress and not objects_total else 0
    started, read = time.monotonic(), 0

    def tick() -> None:
        if progress is not None:
            handled = (
                sum(report.stored.values()) + sum(report.duplicates.values()) + sum(report.replaced.values())
            )
            elapsed = time.monotonic() - started
            progress(IngestProgress(report.files_read, read, total, handled, elapsed, objects_total))

    run.on_flush = tick
    for manifest in manifests:
        run.thread_list(manifest)

    def ignored(_path: Any) -> None:
        report.files_ignored += 1

    def not_data(_path: Any) -> None:  # a .txt or .log that holds neither a stream nor JSON
        report.files_read -= 1
        report.files_ignored += 1

    def refused(label: str, why: str) -> None:
        report.refuse(label, why)
        archive.findings.record_failure(Failure("dump", label, "ZipMemberRefused", why))

    excluded = loose_dirs + [v for m in manifests if isinstance(v := m.versions, Path)]
    with (
        _spool(archive) as spool,
        archive.paced_commits() as commit,
        ReadAhead(paths, excluded) as ahead,
    ):
        run.spool_dir, run.commit = Path(spool), commit
        for source in iter_input_files(
            paths, excluded, ignored, report.skip, refused, zip_limits, ahead.listed
        ):
            report.files_read += 1
            ahead.seen(report.files_read)
            run.stream = Assembler()
            for doc in read_documents(ahead.handed(source), report.skip, not_data):
                run.document(doc)
            run.end_of_file(source)
            if total and source.path is not None:  # counted in objects otherwise: no stat a file
                with contextlib.suppress(OSError):
                    read += os.stat(source.path).st_size
            tick()
        run.flush()
        for manifest in manifests:
            run.versions_file(manifest)
        run.settle_texts()
        # Counted in bytes: the manifests, thread lists and file bytes were read through the
        # manifests, so all of it is read now.
        read = total or read
        tick()
    run.note_missing()
    return DumpIngest(run)


@contextlib.contextmanager
def _spool(archive: Archive) -> Iterator[Path]:
    """A folder for the parsed text pages: beside the archive (`ARCHIVE.ingest`) when this process
    holds its writer lock, so the one a killed ingest left is removed by the next ingest of it (in a
    temporary folder it would stay there); a temporary folder otherwise, or when something not ours
    has that name."""
    real = Path(os.path.realpath(archive.path))
    folder = real.with_name(real.name + ".ingest")
    if archive.lock is None or not _spool_or_nothing(folder):
        with tempfile.TemporaryDirectory(prefix="migrate-ingest-") as temporary:
            yield Path(temporary)
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)  # parsed texts are the users' documents, as private as the archive
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _spool_or_nothing(folder: Path) -> bool:
    """Nothing there, or a folder (not a link) holding only spool files (named 0, 1, 2...): what an
    ingest killed at any moment, even while making or removing it, leaves. Anything else is not ours."""
    if not os.path.lexists(folder):
        return True
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        return all(name.isdigit() for name in os.listdir(folder))
    except OSError:
        return False


@dataclass(frozen=True)
class _Manifest:
    folder: Path
    files_dir: Path | None
    thread_list: Path | Input | None  # a zip member for a zipped dump
    versions: Path | Input | None = None
    objects: int = 0  # what its manifest says it holds (file bytes aside)


def _manifests(paths: list[Path], report: IngestReport, limits: ZipLimits) -> Iterable[_Manifest]:
    """Dumps written by `migrate dump` under the given folders (or zipped): where their bytes, thread
    list and versions are. A zipped dump's file bytes are not matched (unzip it, or use --files-dir)."""
    for root in paths:
        if not root.is_dir():
            if data_format(root.name) == "zip":
                yield from _zipped_manifests(root, report, limits)
            continue
        for dirpath, dirnames, filenames in walk_folders(str(root)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if data_format(name) == "zip" and not name.startswith("."):
                    yield from _zipped_manifests(Path(dirpath) / name, report, limits)
            if MANIFEST not in filenames:
                continue
            folder = Path(dirpath)
            manifest = _read_manifest(folder / MANIFEST, report)
            if manifest is None:
                continue
            # A dump's own folders hold its threads, never another dump (as `_cut_short_dump`
            # reads them): 340,000 thread folders are not walked twice.
            dirnames[:] = []
            yield _Manifest(
                folder,
                _inner(folder, manifest.get("files_dir"), want_dir=True),
                _inner(folder, manifest.get("threads"), want_dir=False),
                _inner(folder, manifest.get("versions"), want_dir=False),
                _written(manifest),
            )


def _written(manifest: dict[str, Any]) -> int:
    written = manifest.get("written")
    if not isinstance(written, dict):
        return 0
    return sum(n for kind, n in written.items() if kind != "file_bytes" and isinstance(n, int) and n > 0)


def _zipped_manifests(path: Path, report: IngestReport, limits: ZipLimits) -> Iterable[_Manifest]:
    for data, sibling in zip_dumps(path, MANIFEST, limits):
        manifest = _read_manifest(path, report, data)
        if manifest is None:
            continue
        found = {}
        for key in ("threads", "versions"):
            name = manifest.get(key)
            member = sibling(name) if isinstance(name, str) and "/" not in name and "\\" not in name else None
            found[key] = Input(member.label, member.name, member.opener) if member else None
        yield _Manifest(path, None, found["threads"], found["versions"])  # type: ignore[arg-type]


def _read_manifest(path: Path, report: IngestReport, data: bytes | None = None) -> dict[str, Any] | None:
    try:
        manifest = orjson.loads(path.read_bytes() if data is None else data)
    except (OSError, orjson.JSONDecodeError) as exc:
        report.skip(path, None, f"unreadable dump manifest ({exc})")
        return None
    if not isinstance(manifest, dict) or manifest.get("object") != MANIFEST_OBJECT:
        report.skip(path, None, "not a migrate dump manifest")
        return None
    if manifest.get("format") != DUMP_FORMAT:
        raise BadInputError(
            f"{path}: dump format {manifest.get('format')!r} is not {DUMP_FORMAT}",
            hint="written by a newer migrate; upgrade migrate to read it",
        )
    return manifest


def _inner(folder: Path, name: Any, *, want_dir: bool) -> Path | None:
    """A manifest's entry as a path inside its folder, never anywhere else."""
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name:
        return None
    path = folder / name
    return path if (path.is_dir() if want_dir else path.is_file()) else None


_NOTES_BATCH = 5000
_NAMED = 1  # the dump says something about the thread
_MESSAGE_PAGE = 2  # the dump holds a (maybe empty) page of its messages


class _Notes:
    """What the dump says of each thread and listing, gathered a batch at a time into the archive's
    temporary tables (`archive.loose.note`): bounded memory however many threads the dump holds."""

    def __init__(self, archive: Archive) -> None:
        self.loose = archive.loose
        self.loose.begin_notes()
        self.threads: dict[str, int] = {}
        # (kind, thread, run of a step page or "") of list pages that said has_more: false: a listing
        # the dump followed to its end, so an earlier page of it that said has_more was continued.
        self.last_pages: set[tuple[str, str, str]] = set()
        # (kind, parent) of a listing -> whether its pages were seen newest first.
        self.orders: dict[tuple[str, str], bool] = {}
        # Listings whose order a page told: almost every page is the only one of its listing, and
        # asking the temporary table about each was a query a page.
        self.told = Bits()

    def thread(self, thread_id: str, flags: int = _NAMED) -> None:
        self.threads[thread_id] = self.threads.get(thread_id, 0) | flags | _NAMED
        if len(self.threads) >= _NOTES_BATCH:
            self.flush()

    def order(self, listing: tuple[str, str], seen: bool | None) -> bool:
        """A page reads in the order the first page of its listing that could tell showed; one that
        cannot tell, and none before it could, reads ascending (file order)."""
        held = self.orders.get(listing)
        if held is None and self.told.maybe(listing):
            held = self.loose.noted_order(*listing)
        if held is not None:
            return held
        if seen is None:
            return False
        self.orders[listing] = seen
        self.told.add(listing)
        if len(self.orders) >= _NOTES_BATCH:
            self.flush()
        return seen

    def flush(self) -> None:
        """Into the temporary tables (inside the caller's transaction, if any)."""
        self.loose.note(self.threads, self.last_pages, self.orders)
        self.threads, self.last_pages, self.orders = {}, set(), {}


class _Ingest:
    def __init__(self, archive: Archive, report: IngestReport, loose: LooseFiles) -> None:
        self.archive = archive
        self.report = report
        self.loose = loose
        self.spool_dir = Path(tempfile.gettempdir())
        self.batch: list[tuple[LooseObject, str]] = []
        # Batches are savepoints of a transaction committed every _COMMIT_OBJECTS objects.
        self.commit: Callable[[], None] = lambda: None
        self.uncommitted = 0
        # What the dump says of each thread and listing, noted in the archive's temporary tables a
        # batch at a time (see `_Notes`): never a set of every id in memory.
        self.notes = _Notes(archive)
        self.short_pages: dict[str | None, list[_ShortPage]] = defaultdict(list)
        # Objects of a thread that the dump holds but that could not be kept (no id, not an
        # object): counted as seen, so verify reports the thread's rows as short.
        self.unkept: dict[str, Counter[str]] = defaultdict(Counter)
        self.vector_stores_named: set[str] = set()
        self.files_seen: set[str] = set()
        self.texts: dict[tuple[str, str | None], _Spool] = {}
        self.stream = Assembler()  # the file being read, if it is a recorded stream
        self.preference = NewestWins()
        self.on_flush: Callable[[], None] = lambda: None  # the caller's progress, after each batch
        # Threads an export said are gone (the assistants-api-export layout's errors): `missing`.
        self.missing: dict[str, str] = {}
        # List order: objects are numbered as they are read, in file and line (and item) order; a
        # page in the API's default descending order counts down, so its oldest item comes first.
        self.sequence = archive.loose.next_position()

    # -- reading -------------------------------------------------------------------------------

    def skip(self, where: _Where, reason: str) -> None:
        self.report.skip(where.path, where.line, where.say(reason))

    def document(self, doc: Doc) -> None:
        where = _Where(doc.path, doc.line)
        if doc.event is not None and doc.value is None:
            self.report.recognise(doc.event)  # the end marker of a stream ([DONE])
        elif doc.event == "error":
            self.report.find("stream_error", str(doc.path), f"line {doc.line}: {_short(doc.value)}")
        else:
            self.value(doc.value, where, {}, 0)

    def end_of_file(self, source: Input) -> None:
        """A stream that stopped before an object's final event: the object as its deltas built it."""
        for obj in list(self.stream.finished()):
            self.report.assembled[obj["object"]] += 1
            self.value(obj, _Where(source, None, "(assembled from its deltas)"), {}, 0)
        self.stream = Assembler()

    def value(
        self, value: Any, where: _Where, hints: dict[str, str], depth: int, descending: bool = False
    ) -> None:
        if depth > _MAX_DEPTH:
            self.skip(where, "nested deeper than any API response")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.value(item, where.at(index), hints, depth + 1, descending)
        elif not isinstance(value, dict):
            self.skip(where, f"a JSON {type(value).__name__}, not an API object")
        elif value.get("object") == "list" and isinstance(value.get("data"), list):
            self.page(value, where, depth)
        elif isinstance(value.get("object"), str):
            self.obj(value["object"], value, where, hints, descending)
        elif isinstance(value.get("export_schema"), str):
            redwood.read(self, value, where, depth)
        else:
            self.skip(where, "no `object` field: not an Assistants API object")

    def page(self, page: dict[str, Any], where: _Where, depth: int) -> None:
        items: list[Any] = page["data"]
        hints = {
            k: v for k in ("thread_id", "vector_store_id", "file_id") if isinstance(v := page.get(k), str)
        }
        kinds = {item.get("object") for item in items if isinstance(item, dict)}
        kind = page.get(HINT_ITEM_OBJECT) if isinstance(page.get(HINT_ITEM_OBJECT), str) else None
        kind = kind or (next(iter(kinds)) if len(kinds) == 1 else None)
        parent_key = "vector_store_id" if kind == "vector_store.file" else "thread_id"
        parents = {item.get(parent_key) for item in items if isinstance(item, dict)} - {None}
        parent = hints.get(parent_key) or (next(iter(parents)) if len(parents) == 1 else None)
        if kind == "thread.message" and isinstance(parent, str):
            self.notes.thread(parent, _MESSAGE_PAGE)
        runs = {item.get("run_id") for item in items if isinstance(item, dict)} - {None}
        run = next(iter(runs)) if kind == "thread.run.step" and len(runs) == 1 else None
        if kind in _THREAD_CHILDREN and isinstance(parent, str):
            if page.get("has_more") is False:
                self.notes.last_pages.add((kind, parent, run or ""))
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("object"), str):
                    self.unkept[parent][kind] += 1  # skipped below: held by the page, never stored
        if page.get("has_more") is True and kind in TABLE_OF:
            if kind not in _THREAD_CHILDREN:
                self.short_pages[None].append(_ShortPage(kind, parent, len(items), where))
            elif isinstance(parent, str):
                self.short_pages[parent].append(_ShortPage(kind, parent, len(items), where, run))
        descending = self.notes.order((kind or "", parent or ""), _order_of(items))
        for index, item in enumerate(items):
            self.value(item, where.at(index), hints, depth + 1, descending)

    def obj(
        self, kind: str, obj: dict[str, Any], where: _Where, hints: dict[str, str], descending: bool = False
    ) -> None:
        table = TABLE_OF.get(kind)
        if table is None or obj.get("deleted") is True:
            self.not_kept(kind, obj, where, hints)
            return
        if not isinstance(obj.get("id"), str) or not obj["id"]:
            self.skip(where, f"a {kind} without an id")
            thread = obj.get("thread_id") if isinstance(obj.get("thread_id"), str) else hints.get("thread_id")
            if kind in _THREAD_CHILDREN and thread:
                self.unkept[thread][kind] += 1
            return
        if kind == "file":
            self.file(obj, where)
            return
        parent: str | None = None
        if kind in _THREAD_CHILDREN or kind == "vector_store.file":
            key = "vector_store_id" if kind == "vector_store.file" else "thread_id"
            parent = obj.get(key) if isinstance(obj.get(key), str) else hints.get(key)
            if not parent:
                self.skip(where, f"{kind} {obj['id']} does not say its {key}")
                return
        if kind in _STREAMED:
            self.stream.whole(obj)
        if kind == "thread":
            self.notes.thread(obj["id"])
        elif kind in _THREAD_CHILDREN:
            self.notes.thread(parent)  # type: ignore[arg-type]
        elif kind == "vector_store.file":
            self.vector_stores_named.add(parent)  # type: ignore[arg-type]
        refs = frozenset(files_in_assistant(obj)) if kind == "assistant" else frozenset()
        self.sequence += 1
        position = -self.sequence if descending else self.sequence
        self.batch.append((LooseObject(table, obj, parent, refs, position, where.origin()), kind))
        if len(self.batch) >= _BATCH:
            self.flush()

    def not_kept(self, kind: str, obj: dict[str, Any], where: _Where, hints: dict[str, str]) -> None:
        """An object of no raw table, or a deletion: counted, or read for what it adds (a parsed text
        page, a delta of a stream)."""
        if kind == MANIFEST_OBJECT:
            return
        if kind == PARSED_TEXT_PAGE:
            self.text_page(obj, where, hints)
            return
        if kind in DELTA_KINDS:
            self.report.recognise(kind)
            if not self.stream.delta(obj):
                self.skip(where, f"a {kind} without an id or a delta")
            return
        if obj.get("deleted") is True or kind.endswith(".deleted"):
            self.report.recognise(kind if kind.endswith(".deleted") else f"{kind}.deleted")
            return
        if kind in RECOGNISED:
            self.report.recognise(kind)
            return
        self.report.unknown_types[kind] += 1
        self.skip(where, f"unknown object type {kind!r}")

    def flush(self) -> None:
        if not self.batch:
            self.notes.flush()
            return
        with self.archive.atomic():
            outcomes = self.archive.loose.store([item for item, _ in self.batch], self.preference)
            self.notes.flush()
        for (_, kind), outcome in zip(self.batch, outcomes, strict=True):
            self.count(kind, outcome)
        self.uncommitted += len(self.batch)
        if self.uncommitted >= _COMMIT_OBJECTS:
            self.commit()
            self.uncommitted = 0
        self.batch = []
        self.on_flush()

    def count(self, kind: str, outcome: str) -> None:
        if outcome == "same":
            self.report.duplicates[kind] += 1
            return
        if outcome == "older":
            self.report.versions[kind] += 1
            return
        self.report.stored[kind] += 1
        if outcome == "changed":
            self.report.replaced[kind] += 1

    # -- files -----------------------------------------------------------------------------------

    def file(self, meta: dict[str, Any], where: _Where) -> None:
        file_id = meta["id"]
        self.files_seen.add(file_id)
        match = self.loose.find(meta)
        if match is not None and match.problem:
            self.report.skip(match.path or where.path, None, f"bytes not used for {file_id}: {match.problem}")
        held = self.archive.files.record(file_id)
        if match is not None and match.data is not None and suspect_bytes(meta, match.data):
            self.report.skip(
                match.path or where.path,
                None,
                f"bytes not used for {file_id}: {len(match.data):,} bytes, its file object says {meta['bytes']:,}",
            )
            match = None
        if match is not None and match.data is not None:
            content = FileContent("downloaded", match.data)
        elif held is not None and held[1].kind != "missing":
            content = held[1]  # never trade bytes an earlier run obtained for nothing
        else:
            content = FileContent("missing")
        self.put_file(meta, content, held, "file")

    def put_file(
        self,
        meta: dict[str, Any],
        content: FileContent,
        held: tuple[dict[str, Any], FileContent] | None,
        kind: str,
    ) -> None:
        if held is not None and object_hash(held[0]) == object_hash(meta) and held[1] == content:
            self.count(kind, "same")
            return
        self.archive.files.store(meta, content)
        # Content found for a file held without any is an addition, not a replacement.
        added = held is None or (object_hash(held[0]) == object_hash(meta) and held[1].kind == "missing")
        self.count(kind, "new" if added else "changed")

    def text_page(self, page: dict[str, Any], where: _Where, hints: dict[str, str]) -> None:
        file_id = page.get("file_id") if isinstance(page.get("file_id"), str) else hints.get("file_id")
        store_id = page.get("vector_store_id") if isinstance(page.get("vector_store_id"), str) else None
        store_id = store_id or hints.get("vector_store_id")
        parts = page.get("data")
        if not file_id:
            self.skip(where, "a parsed-text page that does not say which file it is (no file_id)")
            return
        if not isinstance(parts, list):
            self.skip(where, f"parsed-text page of {file_id} without a data list")
            return
        spool = self.texts.get((file_id, store_id))
        if spool is None:
            spool = self.texts[(file_id, store_id)] = _Spool(self.spool_dir / str(len(self.texts)), where)
        digest = object_hash(page)
        if digest in spool.pages:  # the same page saved twice must not double the text
            self.report.duplicates[PARSED_TEXT_PAGE] += 1
            return
        spool.pages.add(digest)
        # Exactly what the export keeps of a page: every part's text, joined with nothing between.
        text = "".join(
            t for part in parts if isinstance(part, dict) and isinstance(t := part.get("text"), str)
        )
        with open(spool.path, "ab") as fh:
            fh.write(text.encode("utf-8", "surrogatepass"))

    def settle_texts(self) -> None:
        """Give each file without downloaded bytes the parsed text of its first vector store."""
        by_file: dict[str, list[str | None]] = defaultdict(list)
        for file_id, store_id in self.texts:
            by_file[file_id].append(store_id)
        for file_id, stores in sorted(by_file.items()):
            # The export reads the text of the first store holding the file, in id order.
            store_id = sorted(stores, key=lambda s: (s is None, s or ""))[0]
            spool = self.texts[(file_id, store_id)]
            held = self.archive.files.record(file_id)
            if held is None:
                self.skip(spool.where, f"parsed text of {file_id}, but the dump holds no file object for it")
                continue
            if held[1].kind == "downloaded" and not suspect_bytes(held[0], held[1].data):
                continue  # bytes beat a parsed text, unless they cannot be the file
            content = FileContent("parsed_text", spool.path.read_bytes(), store_id)
            self.put_file(held[0], content, held, PARSED_TEXT_PAGE)

    # -- the work list and the verdicts ----------------------------------------------------------

    def thread_list(self, manifest: _Manifest) -> None:
        """A dump's thread list: the ids it holds and the metadata of each (user_id…)."""
        if manifest.thread_list is None:
            return

        def entries() -> Iterable[tuple[str, dict[str, Any]]]:
            for doc in read_lines(manifest.thread_list, self.report.skip):  # type: ignore[arg-type]
                value = doc.value
                if not isinstance(value, dict) or not isinstance(value.get("thread_id"), str):
                    self.report.skip(doc.path, doc.line, "not a thread list entry (no thread_id)")
                    continue
                self.notes.thread(value["thread_id"])
                yield value["thread_id"], {k: v for k, v in value.items() if k != "thread_id"}

        self.archive.work.add(entries())  # streamed, a transaction a batch

    def versions_file(self, manifest: _Manifest) -> None:
        """A dump's other versions of its objects: kept as versions, never current."""
        if manifest.versions is None:
            return
        kept: list[RawVersion] = []
        for doc in read_lines(manifest.versions, self.report.skip):
            value = doc.value if isinstance(doc.value, dict) else {}
            table, raw = value.get("raw_table"), value.get("raw")
            try:
                obj = loads(raw) if table in _TABLE_KIND and isinstance(raw, str) else None
            except orjson.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                self.report.skip(doc.path, doc.line, "not a version entry (raw_table and raw)")
                continue
            parent = value.get("parent_id") if isinstance(value.get("parent_id"), str) else None
            origin = value.get("origin") if isinstance(value.get("origin"), str) else None
            kept.append(RawVersion(table, obj["id"], object_hash(obj), parent, raw, origin))
            if parent and table in ("messages", "runs", "run_steps"):
                self.notes.thread(parent)
        if kept:
            self.report.versions_read += self.archive.versions.add(kept)

    def settle_threads(self) -> Iterator[list[str]]:
        """Rule on every thread the dump named, a batch of them a transaction (their reads included);
        after each, the ids of its `done` threads."""
        self.note_missing()
        for batch in self.archive.loose.noted_threads(_SETTLE_BATCH):
            flags = dict(batch)
            with self.archive.atomic():
                outlines = self.archive.raw.threads_outline(list(flags))
                settlements = [self.settle_thread(outline, flags[outline.thread_id]) for outline in outlines]
                self.archive.loose.settle(settlements)
            builds: list[list[str]] = [[]]
            objects = 0
            for settlement, outline in zip(settlements, outlines, strict=True):
                if settlement.status == "done":
                    self.report.threads_done += 1
                    if objects >= _BUILD_OBJECTS:  # long threads: fewer to a build batch
                        builds.append([])
                        objects = 0
                    builds[-1].append(settlement.thread_id)
                    objects += 1 + len(outline.message_runs) + len(outline.runs) + len(outline.step_runs)
                elif settlement.status == "missing":
                    self.report.threads_missing += 1
                else:
                    self.report.threads_pending += 1
            yield from builds

    def note_missing(self) -> None:
        """Threads an export said are gone are ruled on too; every note is in its table after this."""
        for thread_id in self.missing:
            self.notes.thread(thread_id)
        self.notes.flush()

    def settle_thread(self, outline: ThreadOutline, flags: int) -> ThreadSettlement:
        thread_id = outline.thread_id
        thread = loads(outline.thread) if outline.thread else None
        messages, runs, steps = len(outline.message_runs), len(outline.runs), len(outline.step_runs)
        anomalies: list[Anomaly] = []

        def finding(code: str, detail: str, *, anomaly: bool = False) -> None:
            self.report.find(code, thread_id, detail)
            if anomaly:
                anomalies.append(Anomaly("thread", thread_id, code, detail))

        status = "done"
        if thread is None and thread_id in self.missing and not (messages or runs or steps):
            finding("thread_missing", self.missing[thread_id])
            return ThreadSettlement(thread_id, "missing", owned_kinds=_OWNED_KINDS)
        if thread is None and messages:
            # Many apps kept only messages.list pages: the thread is what its messages say it is.
            raw = self.archive.raw.thread_raw(thread_id)
            thread = synthesized_thread(
                thread_id, [loads(r) for r in raw.messages], [loads(r) for r in raw.runs]
            )
            self.archive.loose.store([LooseObject("threads", thread)], self.preference)
            finding("thread_synthesized", f"made from its {messages} messages (no thread object in the dump)")
        if thread is None:
            status = "pending"
            finding(
                "thread_object_missing",
                f"{messages} messages, {runs} runs, {steps} steps kept without their thread object",
            )
        elif not messages and not flags & _MESSAGE_PAGE:
            if runs or steps:
                # Nothing more can be had: the session is what its runs and steps hold (exit 1 still).
                self.report.threads_partial += 1
                detail = (
                    f"the dump holds the thread object, {runs} runs and {steps} steps but not its messages"
                )
            else:
                status = "pending"
                detail = "the dump holds the thread object but not its messages"
            finding("dump_messages_missing", detail, anomaly=True)
        for page in self.short_pages.get(thread_id, ()):
            # Only a listing the dump holds to its last page (has_more: false) is known whole.
            if not self.archive.loose.noted_last_page(page.kind, thread_id, page.run or ""):
                if page.kind == "thread.message":
                    status = "pending"
                where = f"{page.where.path}" + (f":{page.where.line}" if page.where.line else "")
                finding(
                    "dump_page_has_more",
                    f"a {page.kind} page ({where}) says has_more; the dump holds no more",
                    anomaly=True,
                )
        self.completeness(finding, outline)
        refs = thread_file_refs(
            thread, [loads(r) for r in outline.message_texts], [loads(r) for r in outline.step_texts]
        )
        return ThreadSettlement(
            thread_id,
            status,
            frozenset(refs),
            tuple(anomalies),
            _OWNED_KINDS,
            unkept=tuple(self.unkept[thread_id][k] for k in _THREAD_CHILDREN)
            if thread_id in self.unkept
            else (0, 0, 0),
        )

    @staticmethod
    def completeness(finding: Any, outline: ThreadOutline) -> None:
        run_ids = {run_id for run_id, _status, _tools in outline.runs}
        named = {r for r in (*outline.message_runs, *outline.step_runs) if isinstance(r, str)}
        if absent := sorted(named - run_ids):
            finding("runs_missing", f"{len(absent)} run(s) named but not in the dump: {_few(absent)}")
        with_steps = set(outline.step_runs)
        # The export lists steps only for runs that declared tools, and a completed one always has
        # some (its message_creation); a run that stopped before doing anything may have none (as verify).
        expected = [run_id for run_id, status, tools in outline.runs if tools and status == "completed"]
        if bare := sorted(run_id for run_id in expected if run_id not in with_steps):
            finding(
                "steps_missing",
                f"{len(bare)} completed run(s) with tools but no steps in the dump: {_few(bare)}",
            )

    def check_leftovers(self) -> None:
        report = self.report
        for store_id in sorted(self.vector_stores_named):
            if self.archive.raw.of("vector_stores", store_id) is None:
                report.find("vector_store_missing", store_id, "files of this vector store, but not the store")
        for page in self.short_pages.get(None, ()):
            parent = page.parent if page.kind == "vector_store.file" else None
            if self.archive.raw.count(TABLE_OF[page.kind], parent) <= page.count:
                report.find(
                    "dump_page_has_more", page.parent or page.kind, f"a {page.kind} page says has_more"
                )
        for file_id in self.archive.files.unfetched_ids():
            report.find("file_object_missing", file_id, "mentioned, but the dump holds no file object for it")
        for file_id in sorted(self.files_seen):
            held = self.archive.files.record(file_id)
            if held is not None and held[1].kind == "missing":
                report.find(
                    "file_content_missing", file_id, "neither its bytes nor its parsed text are in the dump"
                )


def _order_of(items: list[Any]) -> bool | None:
    """True for a page in the API's default order (`order=desc`, newest first), False for ascending,
    None when it cannot say.

    Timestamps decide when they differ. Within one second, a page of messages still shows its order
    at its ends: a turn starts with a message no run wrote (the user's) and ends with the run's answer.
    Otherwise the page is read in file order (ascending, as `migrate dump` writes and the export lists).
    """
    objects = [item for item in items if isinstance(item, dict)]
    times = [t for item in objects if isinstance(t := item.get("created_at"), int)]
    pairs = list(zip(times, times[1:], strict=False))
    if any(a != b for a, b in pairs):
        return any(a > b for a, b in pairs) and all(a >= b for a, b in pairs)
    messages = [o for o in objects if o.get("object") == "thread.message"]
    if len(messages) >= 2 and len(messages) == len(objects):
        first, last = bool(messages[0].get("run_id")), bool(messages[-1].get("run_id"))
        if first != last:
            return first  # the run's answer first: newest first
    return None


def _short(value: Any, n: int = 200) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= n else text[:n] + "..."


def _few(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")
