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

__all__ = ["ReadAhead"]

# The ingest starts its read-ahead only after this many files from disk: a small dump is read
# before a second interpreter would have started.
START_AFTER_FILES = 2000
_WINDOW = 20_000  # files ahead of the ingest (about 3 s of its reading: long before a page is reclaimed)
_READS_IN_FLIGHT = 8
_TELL_EVERY = 500  # files between two lines to the read-ahead


class ReadAhead:
    """The ingest's side: `seen()` after each file it reads; `close()` at the end (also on failure).

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

    def seen(self) -> None:
        self.files += 1
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


_EXCLUDED: set[str] = set()  # resolved paths of folders the ingest does not walk
_EXCLUDED_NAMES: set[str] = set()


def exclude(folders: Iterable[str]) -> None:
    """Leave these folders (resolved paths) out of every walk of this process."""
    for folder in folders:
        _EXCLUDED.add(folder)
        _EXCLUDED_NAMES.add(os.path.basename(folder))


def _listing(folder: str) -> tuple[list[str], list[str]]:
    """(files, folders) of a folder, sorted, hidden entries, excluded folders and links to folders
    left out (as the ingest's walk does)."""
    files: list[str] = []
    folders: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name in _EXCLUDED_NAMES and os.path.realpath(entry.path) in _EXCLUDED:
                            continue
                        folders.append(entry.name)
                    elif not entry.is_dir():
                        files.append(entry.name)
                except OSError:
                    continue
    except OSError:
        pass
    return sorted(files), sorted(folders)


def _read(path: str) -> None:
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


def _ordered(
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


def _files_under(folder: str, pool: ThreadPoolExecutor) -> Iterator[str]:
    """Every file under a folder in the ingest's order; the listings of its sub-folders are read in
    the pool ahead of their turn."""
    files, folders = _listing(folder)
    for name in files:
        yield os.path.join(folder, name)
    paths = [os.path.join(folder, name) for name in folders]
    for path, (sub_files, sub_folders) in zip(
        paths, _ordered(pool, _listing, paths, 4 * _READS_IN_FLIGHT), strict=True
    ):
        for name in sub_files:
            yield os.path.join(path, name)
        for name in sub_folders:
            yield from _files_under(os.path.join(path, name), pool)


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
    exclude(excluded)
    progress = _Progress(window)
    threading.Thread(target=progress.listen, daemon=True).start()
    with ThreadPoolExecutor(_READS_IN_FLIGHT) as pool:
        in_flight: deque[Future[None]] = deque()
        index = 0
        for root in roots:
            for path in _files_under(root, pool):
                index += 1
                if index <= progress.files:
                    continue  # the ingest read it already
                if not progress.wait_until_below(index):
                    return 0
                in_flight.append(pool.submit(_read, path))
                if len(in_flight) >= 2 * _READS_IN_FLIGHT:
                    in_flight.popleft().result()
        for future in in_flight:
            future.result()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    os._exit(code)  # no interpreter shutdown to wait on the thread that reads the ingest's lines
