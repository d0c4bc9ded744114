"""Saved dumps: read Assistants API JSON saved before the sunset into an archive, and write one back.

`ingest_dump` (used by `migrate export --from-dump`) and `write_dump` (`migrate dump`) are inverses:
an archive written out and read back gives the same raw objects, hashes and sessions.
"""

from migrator.dumps.ingest import DumpIngest, check_dump_paths, ingest_dump, read_dump
from migrator.dumps.report import FINDING_CODES, Finding, IngestProgress, IngestReport, Problem
from migrator.dumps.writer import DumpSummary, write_dump

__all__ = [
    "DumpIngest",
    "IngestProgress",
    "DumpSummary",
    "FINDING_CODES",
    "Finding",
    "IngestReport",
    "Problem",
    "check_dump_paths",
    "ingest_dump",
    "read_dump",
    "write_dump",
]
