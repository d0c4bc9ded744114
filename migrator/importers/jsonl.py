"""`--to jsonl`: the portable form, one `migrator.session/v1` record a line, sorted by thread id.

The bytes written are the archive's stored canonical record (sorted keys, compact), so two archives
with the same content give byte-identical files, and nothing is parsed or re-encoded on the way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from migrator.archive import Archive
from migrator.importers.common import (
    ImportSummary,
    MappingWriter,
    ProgressCallback,
    Selection,
    Ticker,
    atomic_output,
)

__all__ = ["import_jsonl"]

TARGET = "jsonl"


def import_jsonl(
    archive: Archive,
    out: Path | str,
    selection: Selection = Selection(),
    *,
    mapping_out: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Write the selected sessions to OUT (`-` for stdout), streaming; a file appears only when whole."""
    summary = ImportSummary(TARGET, out=str(out))
    records = selection.records(archive, summary)
    summary.mapping_out = str(mapping_out) if mapping_out else None
    ticker = Ticker(TARGET, summary.selected, progress)
    with MappingWriter(mapping_out) as mapping:
        if str(out) == "-":
            _write(sys.stdout.buffer, records, summary, mapping, ticker)
            sys.stdout.buffer.flush()
        else:
            with atomic_output(Path(out)) as handle:
                _write(handle, records, summary, mapping, ticker)
    ticker(summary.imported, summary.items, final=True)
    summary.elapsed = ticker.elapsed
    return summary


def _write(
    handle: IO[bytes],
    records: Iterator[tuple[str, bytes]],
    summary: ImportSummary,
    mapping: MappingWriter,
    ticker: Ticker,
) -> None:
    mapped = mapping.path is not None
    for line, (thread_id, record) in enumerate(records, start=1):
        handle.write(record)
        handle.write(b"\n")
        summary.imported += 1
        summary.items += 1
        if mapped:
            parsed = orjson.loads(record)
            mapping.row(thread_id, TARGET, line, "written", len(parsed.get("messages") or ()), parsed)
        ticker(summary.imported, summary.items)
