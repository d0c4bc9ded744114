"""`export --from-records` end to end: open the log, fill the archive, build the sessions.

The source is opened before the archive: a bad column or an unreachable database leaves no archive.
A new archive that nothing was made of is removed again, so a wrong file leaves nothing behind.
The installed command builds the sessions in a fresh image of itself (`migrator/cli/handover.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.archive import Archive
from migrator.convert import ConversionOptions
from migrator.export.options import ExportSnapshot
from migrator.records.ingest import RecordsRequest, ingest_records, open_records
from migrator.records.report import RecordsReport
from migrator.sessions import build_sessions, resolve_options

__all__ = ["RecordsOutcome", "build_records_sessions", "export_records"]


@dataclass(frozen=True)
class RecordsOutcome:
    report: RecordsReport
    sessions: int
    archive_kept: bool  # False: the archive was new and nothing was made of the log, so it is gone
    # With `hand_over`: the sessions are not built yet; the writer lock's descriptor, kept open for
    # the image that builds them, and the conversion options it builds with.
    lock_fd: int | None = None
    options: dict[str, Any] | None = None


def export_records(
    path: Path,
    request: RecordsRequest,
    conversion: dict[str, Any],
    open_archive: Callable[[Path], Archive],
    on_progress: Callable[[ExportSnapshot], None] | None = None,
    *,
    hand_over: Callable[[], None] | None = None,
) -> RecordsOutcome:
    """Read the log into the archive at `path` (opened for writing by `open_archive`) and build the
    sessions of the threads it changed; `conversion` holds the converter flags given. With
    `hand_over` (called just before the writer lock is handed over: the CLI holds signals there) the
    sessions are left to a fresh image of the process (`migrator/cli/handover.py`):
    the ingest's memory (SQLAlchemy, the spill's and the archive's caches, freed objects the
    allocator keeps) and the tokenizer's then never add up."""
    new = not path.exists()
    lock_fd, options, sessions = None, None, 0
    with open_records(request) as opened, open_archive(path) as store:
        report = ingest_records(store, opened, on_progress)
        resolved = resolve_options(store, **conversion)
        kept = not (new and report.empty)
        # A rerun that changed nothing has nothing to build: no second image for it.
        if hand_over is not None and kept and store.lock is not None and store.work.stale_count():
            hand_over()
            lock_fd, options = store.lock.hand_over(), resolved.as_dict()
        else:
            sessions = build_sessions(store, resolved).sessions
    if not kept:
        path.unlink()
    return RecordsOutcome(report, sessions, kept, lock_fd, options)


def build_records_sessions(store: Archive, options: dict[str, Any]) -> int:
    """The sessions an ingest handed over (in the image it handed them to)."""
    return build_sessions(store, ConversionOptions.from_dict(options)).sessions
