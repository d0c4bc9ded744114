"""What every importer shares: which sessions to import, the summary, progress, the mapping CSV."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from migrator.archive import Archive
from migrator.outputs import private_output
from migrator.redact import redact
from migrator.sessions import SessionChoice, choose_sessions

__all__ = [
    "ImportProgress",
    "ImportSummary",
    "MappingWriter",
    "ProgressCallback",
    "Selection",
    "atomic_output",
    "fit_metadata",
]

MAX_PAIRS, MAX_KEY, MAX_VALUE = 16, 64, 512  # Metadata: 16 pairs, keys <= 64, values <= 512 characters
MAPPING_COLUMNS = ("thread_id", "target", "target_id", "status", "items", "assistant_id", "metadata", "note")


def fit_metadata(
    ours: dict[str, str], source: dict[str, Any], reserved: tuple[str, ...] = ()
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(metadata within the API's limits, [(dropped key, why)]): our pairs first, then the source's.

    The source's pairs follow in sorted key order. Nothing is truncated, since a cut value looks valid
    and joins wrong: a key over 64 characters (`key_too_long`), a value over 512 (`value_too_long`), a
    pair beyond the 16th (`too_many_pairs`) or a key named like ours (`reserved`) is dropped and
    reported. Non-string values become JSON text.
    """
    metadata = dict(ours)
    dropped: list[tuple[str, str]] = []
    for key in sorted(source):
        value = source[key]
        text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        if key in ours or key in reserved:
            dropped.append((key, "reserved"))
        elif len(key) > MAX_KEY:
            dropped.append((key, "key_too_long"))
        elif len(text) > MAX_VALUE:
            dropped.append((key, "value_too_long"))
        elif len(metadata) >= MAX_PAIRS:
            dropped.append((key, "too_many_pairs"))
        else:
            metadata[key] = text
    return metadata, dropped


@dataclass(frozen=True)
class Selection:
    """Which sessions to import: all, the given threads, or a deterministic sample of N. Sessions
    of threads that are not done are left out (and listed) unless `include_unfinished`."""

    thread_ids: tuple[str, ...] = ()
    sample: int | None = None
    include_unfinished: bool = False

    def choose(self, archive: Archive) -> SessionChoice:
        return choose_sessions(
            archive, self.thread_ids, self.sample, include_unfinished=self.include_unfinished
        )

    def resolve(self, archive: Archive) -> tuple[list[str] | None, list[str]]:
        """(sorted thread ids to import, or None for every session; requested ids with no session)."""
        choice = self.choose(archive)
        return choice.ids, choice.missing

    def records(self, archive: Archive, summary: ImportSummary) -> Iterator[tuple[str, bytes]]:
        """The (thread_id, canonical record) stream sorted by thread id; fills in the summary's
        selected count, the ids not found and the unfinished threads."""
        choice = self.choose(archive)
        summary.selected, summary.not_found = choice.count(archive), choice.missing
        summary.unfinished, summary.include_unfinished = choice.unfinished, self.include_unfinished
        return choice.records(archive)


@dataclass
class ImportProgress:
    """What a progress display shows; handed to the caller's callback."""

    target: str
    total: int
    done: int
    items: int
    elapsed: float


ProgressCallback = Callable[[ImportProgress], None]


@dataclass
class ImportSummary:
    target: str  # jsonl | agents-sqlite | conversations
    selected: int = 0  # sessions chosen for this import
    imported: int = 0  # written or completed by this run
    already: int = 0  # found complete from an earlier run, left alone
    items: int = 0  # records (jsonl) or items written/sent by this run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (thread_id, one-line reason)
    not_found: list[str] = field(default_factory=list)  # requested with --thread, no session in the archive
    notes: dict[str, int] = field(default_factory=dict)  # code -> count (metadata dropped, ids shortened...)
    out: str | None = None
    sidecar: str | None = None
    mapping_out: str | None = None
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    # Threads whose conversation may have an unmapped twin (a create whose answer never came back).
    unconfirmed: list[str] = field(default_factory=list)
    # Threads not done (pending, failed, missing) that hold a session: left out unless included.
    unfinished: list[str] = field(default_factory=list)
    include_unfinished: bool = False
    interrupted: bool = False
    elapsed: float = 0.0

    def note(self, code: str, n: int = 1) -> None:
        self.notes[code] = self.notes.get(code, 0) + n

    @property
    def clean(self) -> bool:
        left_out = self.unfinished and not self.include_unfinished
        return not self.failed and not self.not_found and not left_out

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "selected": self.selected,
            "imported": self.imported,
            "already_imported": self.already,
            "items": self.items,
            "failed": [{"thread_id": t, "error": e} for t, e in self.failed],
            "not_found": self.not_found,
            "notes": dict(sorted(self.notes.items())),
            "out": self.out,
            "sidecar": self.sidecar,
            "mapping_out": self.mapping_out,
            "requests": self.requests,
            "throttled": self.throttled,
            "retries": self.retries,
            "unconfirmed_creates": self.unconfirmed,
            "unfinished": self.unfinished,
            "unfinished_included": self.include_unfinished,
            "interrupted": self.interrupted,
            "elapsed_seconds": round(self.elapsed, 3),
        }


class Ticker:
    """Calls the progress callback at most every `every` seconds (and once at the end)."""

    def __init__(
        self, target: str, total: int, callback: ProgressCallback | None, every: float = 0.2
    ) -> None:
        self.target, self.total, self.callback, self.every = target, total, callback, every
        self.start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, items: int, *, final: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if final or now - self._last >= self.every:
            self._last = now
            self.callback(ImportProgress(self.target, self.total, done, items, now - self.start))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


class MappingWriter:
    """`--mapping-out CSV`: one row per imported thread, to join against the user's own tables.

    Columns: thread_id, target (jsonl | agents-sqlite | the base URL), target_id (the line number, the
    SQLiteSession id, the conversation id), status, items, assistant_id, metadata (the session's
    metadata as JSON, e.g. the user_id of the --threads file), note.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._output: Any = None

    def __enter__(self) -> MappingWriter:
        if self.path is not None:
            self._output = private_output(self.path, "w")
            self._file = self._output.__enter__()
            self._csv = csv.writer(self._file)
            self._csv.writerow(MAPPING_COLUMNS)
        return self

    def row(
        self,
        thread_id: str,
        target: str,
        target_id: str | int | None,
        status: str,
        items: int | None,
        record: dict[str, Any] | None = None,
        note: str = "",
    ) -> None:
        if self._file is None:
            return
        record = record or {}
        metadata = orjson.dumps(record.get("metadata") or {}, option=orjson.OPT_SORT_KEYS).decode()
        cells = [thread_id, target, target_id or "", status, "" if items is None else items,
                 record.get("assistant_id") or "", metadata, note]  # fmt: skip
        # A note is the target's own words (an error it answered): it may echo the key.
        self._csv.writerow([redact(c) if isinstance(c, str) else c for c in cells])

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._file is not None:
            self._output.__exit__(exc_type, exc, tb)


# Write to PATH.part (0600) and rename it over PATH only when everything was written, so an
# interrupted import never leaves a file that looks complete.
atomic_output = private_output
