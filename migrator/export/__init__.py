"""`migrate export`: everything out of an Assistants v2 source into the archive, resumably.

Three rooms: `schedule.py` decides what to fetch next (the thread loop, the file queue, the phases),
`fetch.py` fetches one thread or one file (requests only; `plan` and `verify --against-source` read
threads with the same `ThreadFetcher`), and `storing.py` decides what becomes of each result in the
archive. Each thread commits its rows and its `done` mark in one transaction, so a kill at any
instant leaves either the whole thread or none of it, and a rerun picks up exactly what is left.
"""

from migrator.export.fetch import MAX_CONTENT_PAGES, Delta, FileFetcher, ThreadFetcher, failure_of
from migrator.export.options import (
    ALL_PARTS,
    DEFAULT_CONCURRENCY,
    ExportOptions,
    ExportSnapshot,
    ExportSummary,
    parse_parts,
    require_thread_ids,
)
from migrator.export.schedule import run_export

__all__ = [
    "ALL_PARTS",
    "DEFAULT_CONCURRENCY",
    "MAX_CONTENT_PAGES",
    "Delta",
    "ExportOptions",
    "ExportSnapshot",
    "ExportSummary",
    "FileFetcher",
    "ThreadFetcher",
    "failure_of",
    "parse_parts",
    "require_thread_ids",
    "run_export",
]
