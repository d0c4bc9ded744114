"""Bring a big dump's folders and files into the page cache a little ahead of the ingest, from a
second process with many reads in flight.

The ingest reads one file at a time, in order: right for what it parses, slow for a cold disk. A
dump of 340,000 threads is 680,000 small files in 340,000 folders; read cold on this machine one at a
time that was 204 s before any parsing (a third of it listing the folders), and 101 s with eight
reads in flight. This process only reads (it never writes, and the ingest still reads and parses
every file itself), so it changes how long an ingest waits for the disk, never what it stores.

It runs as a plain script (`python -I readahead.py WINDOW N EXCLUDED... ROOT...`, N excluded
folders), importing nothing of migrate: its start costs a bare interpreter, not the CLI. It is told
how far the ingest has got on its standard input (a count of files, a line now and then), stays at
most WINDOW files ahead, skips what the ingest has already read, and ends when its input closes:
when the ingest is done, fails or is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["ReadAhead", "Walk", "read_all"]

# The ingest starts its read-ahead only after this many files from disk: a small dump is read
# before a second interpreter would have started.
START_AFTER_FILES = 2000
_WINDOW = 20_000  # files ahead of the ingest (about 3 s of its reading: long before a page is reclaimed)
_READS_IN_FLIGHT = 8
_TELL_EVERY = 500  # files between two lines to the read-ahead


class ReadAhead:
    """The ingest's side: `seen(files_read)` after each file it reads; `close()` at the end (also on
    failure).

    Nothing here may fail an ingest: a read-ahead that cannot start or dies only makes it slower."""

    def __init__(self, roots: Iterable[Path], excluded: Iterable[Path] = (), window: int = _WINDOW) -> None:
        self.roots = [str(r) for r in roots if r.is_dir()]
        # Folders the ingest does not walk (saved file bytes, read when their file object comes):
        # counted here, they would put every later file that many places off the ingest's count.
        self.excluded = [str(p.resolve()) for p in excluded if p.is_dir()]
        self.window = window
        self.files = 0
        self._told = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = not self.roots

    def seen(self, files_read: int) -> None:
        self.files = files_read
        if self._failed or self.files - self._told < _TELL_EVERY:
            return
        if self._process is None and self.files >= START_AFTER_FILES:
            self._start()
        self._tell()

    def _start(self) -> None:
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    __file__,
                    str(self.window),
                    str(len(self.excluded)),
                    *self.excluded,
                    *self.roots,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._failed = True

    def _tell(self) -> None:
        self._told = self.files
        if self._process is None or self._process.stdin is None:
            return
        try:
            self._process.stdin.write(b"%d\n" % self.files)
            self._process.stdin.flush()
        except OSError:  # it ended: read on without it
            self._failed = True

    def close(self) -> None:
        process, self._process, self._failed = self._process, None, True
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stuck in a read of a dead disk: it only ever read
            process.kill()
            process.wait()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- the read-ahead process ------------------------------------------------------------------------


class Walk:
    """Every file under a folder in the ingest's order (sorted; hidden entries, links to folders and
    the excluded folders left out, as its walk does); the listings of sub-folders are read in the
    pool ahead of their turn."""

    def __init__(self, pool: ThreadPoolExecutor, excluded: Iterable[str] = ()) -> None:
        self.pool = pool
        self.excluded = frozenset(excluded)  # resolved paths
        # A folder's path is resolved only when its name is one of these: 340,000 are not.
        self._excluded_names = frozenset(os.path.basename(p) for p in self.excluded)

    def files_under(self, folder: str) -> Iterator[str]:
        files, folders = self._listing(folder)
        for name in files:
            yield os.path.join(folder, name)
        paths = [os.path.join(folder, name) for name in folders]
        listings = ordered(self.pool, self._listing, paths, 4 * _READS_IN_FLIGHT)
        for path, (sub_files, sub_folders) in zip(paths, listings, strict=True):
            for name in sub_files:
                yield os.path.join(path, name)
            for name in sub_folders:
                yield from self.files_under(os.path.join(path, name))

    def _listing(self, folder: str) -> tuple[list[str], list[str]]:
        """(files, folders) of a folder, sorted."""
        files: list[str] = []
        folders: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.name.startswith("."):
                        self._sort_out(entry, files, folders)
        except OSError:
            pass
        return sorted(files), sorted(folders)

    def _sort_out(self, entry: os.DirEntry[str], files: list[str], folders: list[str]) -> None:
        try:
            if entry.is_dir(follow_symlinks=False):
                if (
                    entry.name not in self._excluded_names
                    or os.path.realpath(entry.path) not in self.excluded
                ):
                    folders.append(entry.name)
            elif not entry.is_dir():
                files.append(entry.name)
        except OSError:
            pass


def read_through(path: str) -> None:
    """Read a file to its end, for the page cache; a file that cannot be read is the ingest's to report."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        while os.read(fd, 1 << 20):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def ordered(
    pool: ThreadPoolExecutor, fn: Callable[[str], Any], items: Iterable[str], ahead: int
) -> Iterator[Any]:
    """`pool.map(fn, items)` with at most `ahead` calls in flight (340,000 folders are not 340,000
    futures at once)."""
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def read_all(pool: ThreadPoolExecutor, paths: Iterable[str], in_flight: int) -> None:
    """Read every file, `in_flight` reads at a time, in order."""
    for _ in ordered(pool, read_through, paths, in_flight):
        pass


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


class _Progress:
    """How many files the ingest has read, as its lines say; `ended` once its input closed."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.files = 0
        self.ended = threading.Event()
        self.moved = threading.Condition()

    def listen(self) -> None:
        # os.read, not sys.stdin: a daemon thread inside a buffered read aborts the interpreter's exit.
        tail = b""
        while chunk := _read_some(0):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            if lines and lines[-1].isdigit():
                with self.moved:
                    self.files = int(lines[-1])
                    self.moved.notify_all()
        self.ended.set()
        with self.moved:
            self.moved.notify_all()

    def wait_until_below(self, index: int) -> bool:
        """Wait until file `index` is within the window ahead of the ingest; False once it ended."""
        with self.moved:
            while index - self.files > self.window and not self.ended.is_set():
                self.moved.wait(1.0)
        return not self.ended.is_set()


def main(argv: list[str]) -> int:
    window, count = int(argv[0]), int(argv[1])
    excluded, roots = argv[2 : 2 + count], argv[2 + count :]
    progress = _Progress(window)
    threading.Thread(target=progress.listen, daemon=True).start()
    with ThreadPoolExecutor(_READS_IN_FLIGHT) as pool:
        walk = Walk(pool, excluded)

        def ahead_of_the_ingest() -> Iterator[str]:
            index = 0
            for root in roots:
                for path in walk.files_under(root):
                    index += 1
                    if index <= progress.files:
                        continue  # the ingest read it already
                    if not progress.wait_until_below(index):
                        return
                    yield path

        read_all(pool, ahead_of_the_ingest(), 2 * _READS_IN_FLIGHT)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    os._exit(code)  # no interpreter shutdown to wait on the thread that reads the ingest's lines
