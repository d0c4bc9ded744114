"""The public face of saved-dump support (the implementation lives in `migrator.dumps`).

`ingest_dump(archive, [Path("saved/")], files_dir=Path("saved/bytes"))` reads saved API JSON in;
`write_dump(archive, Path("dump/"))` writes an archive out in the layout the former reads back.
"""

from migrator.dumps import (
    FINDING_CODES,
    DumpSummary,
    Finding,
    IngestReport,
    Problem,
    check_dump_paths,
    ingest_dump,
    write_dump,
)

__all__ = [
    "DumpSummary",
    "FINDING_CODES",
    "Finding",
    "IngestReport",
    "Problem",
    "check_dump_paths",
    "ingest_dump",
    "write_dump",
]
