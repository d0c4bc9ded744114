"""Read a big dump's folders and files from a second process with many reads in flight, a little
ahead of the ingest, and hand it their bytes.

The ingest reads one file at a time, in order: right for what it parses, slow for a cold disk. A
dump of 340,000 threads is 680,000 small files in 340,000 folders; read cold on this machine one at a
time that was 204 s before any parsing (a third of it listing the folders), and 101 s with eight
reads in flight. Even warm, opening and reading them was 9 s of the ingest's own time; handed over
through a pipe they cost it a fraction of that while it parses.

It runs as a plain script (`python -I readahead.py SKIP N EXCLUDED... ROOT...`: the first SKIP files
the ingest read already, N excluded folders), importing nothing of migrate: its start costs a bare
interpreter, not the CLI. It writes each file it read to its standard output, in the ingest's order,
as a frame: the path's length and the data's (-1: not handed over, too big or unreadable, the ingest
reads that one itself), the path, the data. The pipe is its window: a full pipe stops it until the
ingest reads on, and a closed one (the ingest done, failed or killed) ends it.

The ingest takes a file's bytes only from the frame of that very path, and reads the file itself
whenever there is none: what is stored never depends on this process, only how long it waits.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import IO, Any, NamedTuple

__all__ = ["ReadAhead", "Walk", "read_all"]

# The ingest starts its read-ahead only after this many files from disk: a small dump is read
# before a second interpreter would have started.
START_AFTER_FILES = 2000
_READS_IN_FLIGHT = 8
_FRAME = struct.Struct("<Iq")  # the path's length, the data's (-1: read it yourself)
# Bigger files are neither read nor handed over: the ingest streams a big JSONL file itself, and a
# frame is held whole.
HAND_OVER_BYTES = 1 << 20
_PIPE_BYTES = 1 << 20  # asked of Linux for the pipe (64 KiB by default): about 1,500 small files


class ReadAhead:
    """The ingest's side: `seen(files_read)` after each file it reads from disk, `handed(source)` for
    the file it is about to parse, `close()` at the end (also on failure).

    Nothing here may fail an ingest: a read-ahead that cannot start or dies only makes it slower."""

    def __init__(self, roots: Iterable[Path], excluded: Iterable[Path] = ()) -> None:
        self.roots = [str(r) for r in roots if r.is_dir()]
        # Folders the ingest does not walk (saved file bytes, read when their file object comes).
        self.excluded = [str(p.resolve()) for p in excluded if p.is_dir()]
        self.files = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._frames: IO[bytes] | None = None
        self._next: tuple[str, bytes | None] | None = None  # the frame read but not taken yet
        self._failed = not self.roots

    def seen(self, files_read: int) -> None:
        self.files = files_read
        if self._process is None and not self._failed and files_read >= START_AFTER_FILES:
            self._start()

    def _start(self) -> None:
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-X",
                    f"utf8={sys.flags.utf8_mode}",  # -I ignores PYTHONUTF8: names decode as here
                    __file__,
                    str(self.files),
                    str(len(self.excluded)),
                    *self.excluded,
                    *self.roots,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=1 << 16,
            )
            self._frames = self._process.stdout
        except OSError:
            self._failed = True

    def handed(self, source: Any) -> Any:
        """`source` (a reader.Input) as an Input of the bytes read ahead for its path, or itself
        when there are none (the ingest then reads it as it always does)."""
        data = self._taken(source.path) if source.path is not None else None
        if data is None:
            return source
        return type(source)(source.label, source.name, partial(io.BytesIO, data))

    def listed(self, folder: str) -> tuple[list[str], list[str], set[str]] | None:
        """The folder's (folders, files, links to folders) as read ahead (reader.walk_folders's
        `listed`), or None: the ingest lists it itself."""
        data = self._taken(_listing_path(folder))
        if data is None:
            return None
        dirs: list[str] = []
        files: list[str] = []
        links: set[str] = set()
        for entry in data.split(b"\0") if data else ():
            name = os.fsdecode(entry[1:])
            if entry[:1] == b"f":
                files.append(name)
            else:
                dirs.append(name)
                if entry[:1] == b"l":
                    links.add(name)
        return dirs, files, links

    def _taken(self, path: str) -> bytes | None:
        """The data of the frame of `path`, or None: none came (or it said to read the path itself)."""
        if self._frames is None or _root_of(self.roots, path) is None:
            return None
        while (frame := self._frame()) is not None:
            if frame[0] == path:
                self._next = None
                return frame[1]
            if not _walked_before(self.roots, frame[0], path):
                return None  # not read ahead: after an entry it skipped, or before it started
            self._next = None  # an entry the ingest does not read (a manifest, a .md)
        return None

    def _frame(self) -> tuple[str, bytes | None] | None:
        if self._next is None and self._frames is not None:
            self._next = _read_frame(self._frames)
            if self._next is None:  # it ended (or died): the ingest reads the rest itself
                self._frames = None
        return self._next

    def close(self) -> None:
        process, self._process, self._frames, self._failed = self._process, None, None, True
        if process is None:
            return
        if process.stdout is not None:
            process.stdout.close()  # its next write fails: it ends
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stuck in a read of a dead disk: it only ever read
            process.kill()
            process.wait()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _read_frame(frames: IO[bytes]) -> tuple[str, bytes | None] | None:
    try:
        header = frames.read(_FRAME.size)
        if len(header) < _FRAME.size:
            return None
        path_length, data_length = _FRAME.unpack(header)
        path = frames.read(path_length)
        data = frames.read(data_length) if data_length >= 0 else None
    except (OSError, ValueError):
        return None
    if len(path) < path_length or (data is not None and len(data) < data_length):
        return None
    return os.fsdecode(path), data


def _listing_path(folder: str) -> str:
    """What a folder's listing goes by in the frames: its path and a separator, no file's path."""
    return folder + os.sep


def _root_of(roots: list[str], path: str) -> int | None:
    for index, root in enumerate(roots):
        if path.startswith(root) and path[len(root) : len(root) + 1] == os.sep:
            return index
    return None


def _walk_key(roots: list[str], path: str) -> tuple[Any, ...]:
    """Sorts paths as the walk reads them: root by root, and in a folder its listing (its path and a
    separator) first, then its files (sorted), then its sub-folders (sorted, each one whole)."""
    index = _root_of(roots, path)
    if index is None:
        return (-1,)
    parts = path[len(roots[index]) + 1 :].split(os.sep)
    return (index, *((1, part) for part in parts[:-1]), (0, parts[-1]))


def _walked_before(roots: list[str], path: str, other: str) -> bool:
    return _walk_key(roots, path) < _walk_key(roots, other)


# -- the read-ahead process ------------------------------------------------------------------------


class Listing(NamedTuple):
    """A folder's listing as the ingest's walk takes it (reader.walk_folders): every entry, hidden
    ones too, each a kind (d: folder, l: link to a folder, f: anything else) and its name, NUL-separated;
    None when the folder cannot be listed (the ingest lists it itself, and says so)."""

    folder: str
    data: bytes | None


class Walk:
    """Every file under a folder in the ingest's order (sorted; hidden entries, links to folders and
    the excluded folders left out, as its walk does), each folder's listing just before its files;
    the listings of sub-folders are read in the pool ahead of their turn."""

    def __init__(self, pool: ThreadPoolExecutor, excluded: Iterable[str] = ()) -> None:
        self.pool = pool
        self.excluded = frozenset(excluded)  # resolved paths
        # A folder's path is resolved only when its name is one of these: 340,000 are not.
        self._excluded_names = frozenset(os.path.basename(p) for p in self.excluded)

    def files_under(self, folder: str) -> Iterator[str]:
        return (entry for entry in self.entries_under(folder) if isinstance(entry, str))

    def entries_under(self, folder: str) -> Iterator[str | Listing]:
        listing, files, folders = self._listing(folder)
        yield listing
        yield from (os.path.join(folder, name) for name in files)
        paths = [os.path.join(folder, name) for name in folders]
        listings = ordered(self.pool, self._listing, paths, 4 * _READS_IN_FLIGHT)
        for path, (sub_listing, sub_files, sub_folders) in zip(paths, listings, strict=True):
            yield sub_listing
            yield from (os.path.join(path, name) for name in sub_files)
            for name in sub_folders:
                yield from self.entries_under(os.path.join(path, name))

    def _listing(self, folder: str) -> tuple[Listing, list[str], list[str]]:
        """The folder's listing, and the files and folders to walk of it, sorted."""
        entries: list[bytes] = []
        files: list[str] = []
        folders: list[str] = []
        try:
            with os.scandir(folder) as scan:
                for entry in scan:
                    kind = self._sort_out(entry, files, folders)
                    entries.append(kind + os.fsencode(entry.name))
        except OSError:
            return Listing(folder, None), [], []
        return Listing(folder, b"\0".join(entries)), sorted(files), sorted(folders)

    def _sort_out(self, entry: os.DirEntry[str], files: list[str], folders: list[str]) -> bytes:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            if not entry.name.startswith("."):
                files.append(entry.name)
            return b"f"
        if entry.is_symlink():
            return b"l"
        if not entry.name.startswith(".") and (
            entry.name not in self._excluded_names or os.path.realpath(entry.path) not in self.excluded
        ):
            folders.append(entry.name)
        return b"d"


def read_through(path: str) -> None:
    """Read a file to its end, for the page cache; a file that cannot be read is the ingest's to report."""
    _read(path, None)


def _read(path: str, keep: int | None) -> bytes | None:
    """A regular file's bytes when it has at most `keep` of them (read to its end but kept for none
    when `keep` is None); None otherwise. A FIFO or a device is never read: one the ingest ignores
    (a `notes.md` that is a link to /dev/zero) must not hold it up."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or (keep is not None and status.st_size > keep):
            return None
        parts, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if keep is not None:
                if size > keep:  # it grew since its stat
                    return None
                parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)


def ordered(
    pool: ThreadPoolExecutor,
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    ahead: int,
    before_waiting: Callable[[], None] = lambda: None,
) -> Iterator[Any]:
    """`pool.map(fn, items)` with at most `ahead` calls in flight (340,000 folders are not 340,000
    futures at once); `before_waiting` is called before it waits on a result not there yet."""
    pending: deque[Future[Any]] = deque()

    def first() -> Any:
        head = pending.popleft()
        if not head.done():
            before_waiting()
        return head.result()

    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield first()
    while pending:
        yield first()


def read_all(pool: ThreadPoolExecutor, paths: Iterable[str], in_flight: int) -> None:
    """Read every file, `in_flight` reads at a time, in order."""
    for _ in ordered(pool, read_through, paths, in_flight):
        pass


def _hand_over(entry: str | Listing) -> tuple[str, bytes | None]:
    """A frame's path and data: a file's bytes, or a folder's listing under its path and a separator."""
    if isinstance(entry, Listing):
        return _listing_path(entry.folder), entry.data
    return entry, _read(entry, HAND_OVER_BYTES)


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError):
        pass  # not Linux, or over its limit: the default pipe only makes the window smaller


def main(argv: list[str]) -> int:
    skip, count = int(argv[0]), int(argv[1])
    excluded, roots = argv[2 : 2 + count], argv[2 + count :]
    _die_with_the_ingest()
    _widen(1)
    out = os.fdopen(1, "wb", buffering=1 << 16)

    def after_the_first(entries: Iterator[str | Listing]) -> Iterator[str | Listing]:
        index = 0
        for entry in entries:
            if isinstance(entry, str):
                index += 1
            if index > skip:  # the ingest read those already
                yield entry

    pool = ThreadPoolExecutor(_READS_IN_FLIGHT)
    walk = Walk(pool, excluded)
    entries = after_the_first(entry for root in roots for entry in walk.entries_under(root))
    try:
        # Whole frames reach the ingest before this waits on a read.
        for path, data in ordered(pool, _hand_over, entries, 2 * _READS_IN_FLIGHT, out.flush):
            _write_frame(out, path, data)
        out.flush()
    except OSError:  # the ingest closed the pipe: it is done, failed or was killed
        pass
    pool.shutdown(wait=False, cancel_futures=True)
    return 0


def _write_frame(out: IO[bytes], path: str, data: bytes | None) -> None:
    name = os.fsencode(path)
    out.write(_FRAME.pack(len(name), -1 if data is None else len(data)) + name)
    if data is not None:
        out.write(data)


def _die_with_the_ingest() -> None:
    """Linux: SIGKILL when the ingest is gone, even while a read of a dead disk holds this process."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (ImportError, OSError, AttributeError):
        pass  # elsewhere the closed pipe ends it, at its next write


if __name__ == "__main__":
    code = main(sys.argv[1:])
    os._exit(code)  # no interpreter shutdown: it would wait for the reads still in the pool
