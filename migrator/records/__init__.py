"""The application's own message log as a source: `migrate export ARCHIVE --from-records SOURCE`.

SOURCE is a CSV file, a JSONL file or a database URL (SQLAlchemy's form). Rows are read as they
stream (`read.py`), checked field by field (`fields.py`, `values.py`), turned into Assistants-shaped
objects by pure functions (`build.py`), and stored thread by thread beside the rows themselves
(`ingest.py`), then sessions are built (`run.py`); every later command works on them as on an API export.
"""

from migrator.records.build import SOURCE, BuildSettings, build_thread
from migrator.records.fields import FIELDS, OPTIONAL, REQUIRED
from migrator.records.ingest import OpenRecords, RecordsRequest, ingest_records, open_records
from migrator.records.read import mask_url
from migrator.records.report import RecordsReport
from migrator.records.run import RecordsOutcome, build_records_sessions, export_records

__all__ = [
    "FIELDS",
    "OPTIONAL",
    "REQUIRED",
    "SOURCE",
    "BuildSettings",
    "OpenRecords",
    "RecordsOutcome",
    "RecordsReport",
    "RecordsRequest",
    "build_records_sessions",
    "build_thread",
    "export_records",
    "ingest_records",
    "mask_url",
    "open_records",
]
