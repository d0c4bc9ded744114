"""Files a command writes beside the archive (JSONL, session databases, agents.json, mapping CSVs,
batch files, JUnit): checked before any work, written whole, and private.

They hold the same conversations as the archive, so they are created 0600 like it. A path mistake
(a folder where a file goes, a folder that does not exist, a place we may not write) is one line
naming the flag, found before anything is read or created. A file appears only when it is whole:
it is written as `NAME.part` beside it and renamed over NAME at the end; a failure removes the part.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from migrator.errors import UsageError

__all__ = [
    "PRIVATE",
    "check_output",
    "create_private",
    "open_private",
    "part_path",
    "private_output",
    "write_private",
]

PRIVATE = 0o600


def check_output(path: Path, flag: str, *, what: str = "a file") -> None:
    """Refuse, before any work, a PATH the command could not write as `flag PATH`."""
    parent = path.parent
    if _special(path):
        return  # /dev/null, a FIFO, a terminal: written in place, so its folder need not be writable
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give {what} name (e.g. {path / 'out'})")
    if not parent.exists():
        raise UsageError(f"{flag} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in the folder {parent} (permission denied)")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: exists and is not writable")


def _special(path: Path) -> bool:
    """An existing PATH that is not a regular file or a folder (/dev/null, a FIFO, /dev/stdout)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def part_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def create_private(path: Path) -> None:
    """Create PATH empty with mode 0600 when it does not exist (before SQLite or anyone opens it)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE))


def open_private(path: Path, mode: str = "wb") -> IO[Any]:
    """PATH opened to write, created afresh with mode 0600."""
    path.unlink(missing_ok=True)  # a part left by a killed run: its mode could be anyone's
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE)
    return os.fdopen(fd, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"}))


@contextlib.contextmanager
def private_output(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write PATH.part (0600) and rename it over PATH only when everything was written, so an
    interrupted command never leaves a file that looks complete, nor a part behind. A device or a
    FIFO is written in place: renaming a part over /dev/null would replace the device itself."""
    if _special(path):
        with open(path, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as handle:
            yield handle
        return
    tmp = part_path(path)
    try:
        with open_private(tmp, mode) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """The whole of DATA as PATH, 0600, through a part file."""
    with private_output(path) as handle:
        handle.write(data)
