"""`export --from-records` end to end: open the log, fill the archive, build the sessions.

The source is opened before the archive: a bad column or an unreachable database leaves no archive.
A new archive that nothing was made of is removed again, so a wrong file leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.archive import Archive
from migrator.export.options import ExportSnapshot
from migrator.records.ingest import RecordsRequest, ingest_records, open_records
from migrator.records.report import RecordsReport
from migrator.sessions import build_sessions, resolve_options

__all__ = ["RecordsOutcome", "export_records"]


@dataclass(frozen=True)
class RecordsOutcome:
    report: RecordsReport
    sessions: int
    archive_kept: bool  # False: the archive was new and nothing was made of the log, so it is gone


def export_records(
    path: Path,
    request: RecordsRequest,
    conversion: dict[str, Any],
    open_archive: Callable[[Path], Archive],
    on_progress: Callable[[ExportSnapshot], None] | None = None,
) -> RecordsOutcome:
    """Read the log into the archive at `path` (opened for writing by `open_archive`) and build the
    sessions of the threads it changed; `conversion` holds the converter flags given."""
    new = not path.exists()
    with open_records(request) as opened, open_archive(path) as store:
        report = ingest_records(store, opened, on_progress)
        sessions = build_sessions(store, resolve_options(store, **conversion))
    kept = not (new and report.empty)
    if not kept:
        path.unlink()
    return RecordsOutcome(report, sessions.sessions, kept)
