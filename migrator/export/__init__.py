"""`migrate export`: everything out of an Assistants v2 source into the archive, resumably.

Three rooms: `schedule.py` decides what to fetch next (the thread loop, the file queue, the phases),
`fetch.py` fetches one thread or one file (requests only; `plan` and `verify --against-source` read
threads with the same `ThreadFetcher`), and `storing.py` decides what becomes of each result in the
archive. Each thread commits its rows and its `done` mark in one transaction, so a kill at any
instant leaves either the whole thread or none of it, and a rerun picks up exactly what is left.
"""

from migrator.export.options import (
    ALL_PARTS,
    DEFAULT_CONCURRENCY,
    ExportOptions,
    ExportSnapshot,
    ExportSummary,
    parse_parts,
    require_thread_ids,
)
from migrator.lazy import lazy_attributes

# The fetching rooms (the openai SDK, 50 MB a process) are imported when first named, so that what
# only needs the options (the progress display, --from-records, a build of the sessions) starts without them.
_FETCHING = {
    "MAX_CONTENT_PAGES": "migrator.export.fetch",
    "Delta": "migrator.export.fetch",
    "FileFetcher": "migrator.export.fetch",
    "ThreadFetcher": "migrator.export.fetch",
    "failure_of": "migrator.export.fetch",
    "finish_export": "migrator.export.finish",
    "run_export": "migrator.export.schedule",
}
__getattr__ = lazy_attributes(__name__, _FETCHING)


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
    "finish_export",
    "parse_parts",
    "require_thread_ids",
    "run_export",
]
