"""Finding the saved JSON and reading it: files, folders and `.zip` members; JSON, JSONL or recorded
server-sent events (`.sse`, or a `.txt`/`.log` holding them); optionally gzip, any BOM.

JSONL and streams are read line by line (a dump may be gigabytes); a `.json` document is read whole,
which JSON needs. Nothing here raises on bad input: every unreadable file or line goes to `skip` with
its path and line, and reading carries on.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from migrator.archive.canonical import loads
from migrator.dumps.layout import MANIFEST, THREAD_LIST, VERSIONS
from migrator.dumps.sse import DONE, iter_events, looks_like_sse
from migrator.dumps.zipped import ZipLimits, zip_members

__all__ = [
    "Doc",
    "Input",
    "Skip",
    "ZipLimits",
    "data_format",
    "iter_input_files",
    "on_disk",
    "read_documents",
    "read_lines",
]

Skip = Callable[[Any, int | None, str], None]

_LINE_SUFFIXES = (".jsonl", ".ndjson")
_GZIP_MAGIC = b"\x1f\x8b"
# What a cut-short or corrupt gzip stream raises while it is being read.
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class Input:
    """One file to read: on disk, or a member of a `.zip` (opened from the zip, never extracted).

    `label` names it in the report; `name` (its last component) only says its format. Neither is ever
    used as a path.
    """

    label: str
    name: str
    opener: Callable[[], IO[bytes]]
    path: str | None = None  # on disk; None for a zip member

    def __str__(self) -> str:
        return self.label


def on_disk(path: Path | str, name: str | None = None) -> Input:
    full = str(path)
    return Input(full, name or os.path.basename(full), partial(open, full, "rb"), full)


@dataclass(frozen=True)
class Doc:
    """One JSON value and where it came from (`line` is None for a whole `.json` document).

    From a stream, `event` is the event's name (`thread.run.completed`; "done" for the end marker,
    whose `value` is None).
    """

    path: Any  # an Input or a Path: printed, never opened again
    line: int | None
    value: Any
    event: str | None = None


def data_format(name: str) -> str | None:
    """ "lines" for .jsonl/.ndjson, "json" for .json, "sse" for .sse (each optionally .gz), "text" for
    .txt/.log (a stream or JSON lines, told from the content), "zip", or None for anything else."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    lower = lower.removesuffix(".gz")
    if lower.endswith(_LINE_SUFFIXES):
        return "lines"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".sse"):
        return "sse"
    if lower.endswith((".txt", ".log")):
        return "text"
    return None


# A folder's (folders, files, links to folders) as someone listed it already, or None: list it.
Listed = Callable[[str], tuple[list[str], list[str], set[str]] | None]


def iter_input_files(
    paths: Iterable[Path],
    exclude_dirs: Iterable[Path],
    on_ignored: Callable[[Any], None],
    skip: Skip,
    refuse: Callable[[str, str], None] = lambda label, why: None,
    zip_limits: ZipLimits = ZipLimits(),
    listed: Listed = lambda _top: None,
) -> Iterator[Input]:
    """Every data file under the paths, in a stable (sorted) order; a `.zip`'s members in its place.

    Explicit files are read whatever their name. In folders: hidden entries are skipped, so are the
    folders holding loose file bytes, a dump's manifest and its thread list. A zip member over the
    limits goes to `refuse(label, why)` unread.
    """

    def expand(path: Path) -> Iterator[Input]:
        if data_format(path.name) != "zip":
            yield on_disk(path)
            return
        for member in zip_members(path, zip_limits, refuse, lambda why: skip(path, None, why), MANIFEST):
            if member.name == MANIFEST or (member.in_dump and member.name in (THREAD_LIST, VERSIONS)):
                continue  # read through the manifest, as in a folder
            if data_format(member.name) in (None, "zip"):
                on_ignored(member.label)
                continue
            yield Input(member.label, member.name, member.opener)

    def unreadable(error: OSError) -> None:  # os.walk would skip such a folder in silence
        skip(Path(str(error.filename)), None, f"folder not readable ({error.strerror or error})")

    excluded = {p.resolve() for p in exclude_dirs}
    excluded_names = {p.name for p in excluded}
    for root in paths:
        if not root.is_dir():
            yield from expand(root)
            continue
        for dirpath, dirnames, filenames in walk_folders(str(root), unreadable, listed):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".")
                and not (d in excluded_names and (Path(dirpath) / d).resolve() in excluded)
            )
            is_dump = MANIFEST in filenames
            for name in sorted(filenames):
                if name.startswith(".") or name == MANIFEST or (is_dump and name in (THREAD_LIST, VERSIONS)):
                    continue
                kind = data_format(name)
                if kind is None:
                    on_ignored(Path(dirpath) / name)
                elif kind == "zip":
                    yield from expand(Path(dirpath) / name)
                else:
                    yield on_disk(os.path.join(dirpath, name), name)


def walk_folders(
    top: str, onerror: Callable[[OSError], None] = lambda _error: None, listed: Listed = lambda _top: None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk(top, onerror=onerror)` (top down, links to folders listed but not followed), without
    its one `lstat` a folder: a dump of 340,000 threads is 340,000 folders. `listed` may give a
    folder's listing read elsewhere (the read-ahead's)."""
    listing = listed(top) or _listing(top, onerror)
    if listing is None:
        return
    dirs, files, links = listing
    yield top, dirs, files
    for name in dirs:
        if name not in links:
            yield from walk_folders(os.path.join(top, name), onerror, listed)


def _listing(top: str, onerror: Callable[[OSError], None]) -> tuple[list[str], list[str], set[str]] | None:
    try:
        with os.scandir(top) as entries:
            dirs: list[str] = []
            files: list[str] = []
            links: set[str] = set()
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    dirs.append(entry.name)
                    if entry.is_symlink():
                        links.add(entry.name)
                else:
                    files.append(entry.name)
    except OSError as error:
        onerror(error)
        return None
    return dirs, files, links


def _text_codec(head: bytes) -> tuple[str, int]:
    """(codec, BOM bytes to drop). Windows tools like to write a BOM, PowerShell even UTF-16."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the utf-16 codec reads the BOM itself
    return "utf-8", 0


def _as_input(source: Input | Path) -> Input:
    return source if isinstance(source, Input) else on_disk(Path(source))


def _open(source: Input | Path, stack: ExitStack) -> IO[bytes]:
    raw = stack.enter_context(_as_input(source).opener())
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)  # type: ignore[arg-type]
    if raw.peek(2)[:2] == _GZIP_MAGIC:  # type: ignore[attr-defined]
        return stack.enter_context(gzip.GzipFile(fileobj=raw))  # type: ignore[return-value]
    return raw


def _decode_error(exc: orjson.JSONDecodeError) -> str:
    if "end of data" in exc.msg.lower() or "eof" in exc.msg.lower():
        return f"not valid JSON, the file looks cut short ({exc.msg})"
    return f"not valid JSON ({exc.msg})"


def _iter_lines(fh: IO[bytes], codec: str, bom: int) -> Iterator[bytes]:
    if codec == "utf-8":
        fh.read(bom)
        yield from fh
        return
    for text in io.TextIOWrapper(fh, encoding=codec, newline=None):
        yield text.encode("utf-8")


def read_lines(path: Input | Path, skip: Skip) -> Iterator[Doc]:
    """JSON values one a line, streamed; blank lines are fine, a bad line is skipped and reported.

    A stream's data payloads saved one a line end with `[DONE]`: the end marker, not bad input.
    """
    lineno = 0
    with ExitStack() as stack:
        try:
            fh = _open(path, stack)
            codec, bom = _text_codec(fh.peek(4)[:4])  # type: ignore[attr-defined]
            for lineno, line in enumerate(_iter_lines(fh, codec, bom), 1):  # noqa: B007
                line = line.strip()  # a line cut mid-string must read as cut short, not as a bad newline
                if not line:
                    continue
                if line == DONE.encode():
                    yield Doc(path, lineno, None, "done")
                    continue
                try:
                    yield Doc(path, lineno, loads(line))
                except orjson.JSONDecodeError as exc:
                    skip(path, lineno, _decode_error(exc))
        except UnicodeDecodeError as exc:
            skip(path, lineno + 1, f"not text in the encoding its BOM names ({exc.reason})")
        except _STREAM_ERRORS as exc:
            skip(path, lineno + 1, f"unreadable from here on ({type(exc).__name__}: {exc})")


def read_events(path: Input | Path, skip: Skip) -> Iterator[Doc]:
    """A recorded event stream: one Doc per event, its data parsed (`[DONE]` is the "done" event)."""
    lineno = 0
    with ExitStack() as stack:
        try:
            fh = _open(path, stack)
            codec, bom = _text_codec(fh.peek(4)[:4])  # type: ignore[attr-defined]
            for lineno, event, data in iter_events(_iter_lines(fh, codec, bom)):  # noqa: B007
                if data.strip() == DONE:
                    yield Doc(path, lineno, None, event or "done")
                    continue
                try:
                    yield Doc(path, lineno, loads(data), event)
                except orjson.JSONDecodeError as exc:
                    skip(path, lineno, f"event {event or 'message'}: " + _decode_error(exc))
        except UnicodeDecodeError as exc:
            skip(path, lineno + 1, f"not text in the encoding its BOM names ({exc.reason})")
        except _STREAM_ERRORS as exc:
            skip(path, lineno + 1, f"unreadable from here on ({type(exc).__name__}: {exc})")


def _head(path: Input | Path) -> bytes:
    with ExitStack() as stack:
        try:
            return _open(path, stack).peek(4096)[:4096]  # type: ignore[attr-defined]
        except _STREAM_ERRORS:
            return b""


def _read_whole(path: Input | Path) -> str | bytes:
    source = _as_input(path)
    if source.path is not None:
        data = _read_file(source.path)
    else:
        with source.opener() as fh:
            data = fh.read()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    codec, bom = _text_codec(data[:4])
    return data[bom:] if codec == "utf-8" else data.decode(codec)


def _read_file(path: str) -> bytes:
    """A file's bytes without a buffered reader around them: a dump of 340,000 threads is 680,000
    small files, and building the reader cost more than reading (0.65 s against 0.28 s for 68,000)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        parts = []
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_documents(
    path: Input | Path, skip: Skip, on_ignored: Callable[[Any], None] | None = None
) -> Iterator[Doc]:
    """The JSON values a file holds: one document, one a line, or one an event of a recorded stream.

    A `.json` file that is not one document but whose first line is valid JSON on its own is read
    as JSONL (scripts often name their JSONL output .json). A `.txt` or `.log` is a stream when it
    starts with `event:`/`data:` fields, JSON when it starts with `{` or `[`, and otherwise not data
    (`on_ignored`). Files of other names are tried every way.
    """
    source = _as_input(path)
    kind = data_format(source.name)
    if kind == "lines":
        yield from read_lines(path, skip)
        return
    if kind in ("sse", "text", None):
        head = _head(path)
        if kind == "sse" or looks_like_sse(head):
            yield from read_events(path, skip)
            return
        if kind == "text" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
            if on_ignored is not None:
                on_ignored(path)
            return
    try:
        data = _read_whole(path)
    except UnicodeDecodeError as exc:
        skip(path, None, f"not text in the encoding its BOM names ({exc.reason})")
        return
    except _STREAM_ERRORS as exc:
        skip(path, None, f"unreadable ({type(exc).__name__}: {exc})")
        return
    try:
        yield Doc(path, None, loads(data))
        return
    except orjson.JSONDecodeError as exc:
        error = exc
    if _looks_like_lines(data):
        yield from read_lines(path, skip)
        return
    skip(path, error.lineno, _decode_error(error))


def _looks_like_lines(data: str | bytes) -> bool:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(orjson.loads(lines[0]), dict | list)
    except orjson.JSONDecodeError:
        return False
