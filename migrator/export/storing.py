"""The storing of what the export fetched: what goes into the archive, and what is counted.

A thread's result commits whole (its rows, refs, findings and status in one transaction); an object
the archive cannot hold costs its thread, never the run; a file another thread brought in is not read
twice, and one recorded `missing` earlier is asked only for what may have changed. Every failure is
a row in the archive (and counted), never only a log line.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from migrator.archive import Anomaly, Archive, FileContent, ThreadResult
from migrator.errors import MigrateError
from migrator.export.fetch import Delta, failure_of
from migrator.export.options import ExportSummary
from migrator.refs import files_in_assistant
from migrator.source import RouteMissing

__all__ = ["Storing"]


class Storing:
    def __init__(self, archive: Archive, summary: ExportSummary) -> None:
        self.archive = archive
        self.summary = summary

    def failed(self, entity: str, entity_id: str, exc: BaseException) -> None:
        """A listing, a vector store or a file that could not be read: a failure row, counted."""
        self.summary.failures += 1
        self.archive.findings.record_failure(failure_of(entity, entity_id, exc))

    def route_missing(self, exc: RouteMissing) -> None:
        """A route the source does not serve: one anomaly row whatever the number of times it was met
        (not a failure: there is nothing to retry)."""
        with self.archive.atomic():
            self.archive.findings.add_anomalies([Anomaly("source", exc.kind, "route_missing", str(exc))])

    def listed(self, entity: str) -> None:
        """A listing read to its end: an earlier run's failure to list it is over."""
        with self.archive.atomic():
            self.archive.findings.clear_failure(entity, "list")

    # -- global listings ---------------------------------------------------------------------------

    def assistants(self, assistants: list[dict[str, Any]], *, complete: bool) -> None:
        refs = {(file_id, a["id"]) for a in assistants for file_id in files_in_assistant(a)}
        # Only a complete listing is marked done (and clears an earlier failure).
        self.archive.raw.store_assistants(assistants, refs, complete=complete)

    def vector_store(
        self, position: int, store: dict[str, Any], files: list[dict[str, Any]], anomalies: list[Anomaly]
    ) -> None:
        self.archive.raw.store_vector_store(store, files, anomalies=anomalies, position=position)

    def vector_stores_listed(self) -> None:
        self.archive.raw.vector_stores_listed()

    # -- threads -----------------------------------------------------------------------------------

    def delta(
        self, thread_id: str, status: str, last_message: str | None, last_run: str | None, *, refresh: bool
    ) -> Delta | None:
        """What a --refresh fetches of a thread; None: the whole thread. Only a thread known whole may
        be refreshed by its delta; a failed one is fetched again whole."""
        if not (refresh and status == "done"):
            return None
        messages, runs = self.archive.raw.unfinished(thread_id)
        return Delta(last_message, last_run, messages, runs)

    def commit(self, result: ThreadResult) -> ThreadResult:
        """Store a thread's result and count it; returns what was stored."""
        try:
            self.archive.raw.store_thread(result)
        except (sqlite3.Error, MigrateError):
            raise  # the database or the disk, not the thread: stop
        except Exception as exc:  # noqa: BLE001  an object the archive cannot hold (no id...) costs its thread
            result = ThreadResult(
                result.thread_id, "failed", failure=failure_of("thread", result.thread_id, exc)
            )
            self.archive.raw.store_thread(result)
        s = self.summary
        s.failures += result.failure is not None
        if result.status == "done":
            s.threads_done += 1
        elif result.status == "missing":
            s.threads_missing += 1
        else:
            s.threads_failed += 1
        s.messages += len(result.messages)
        s.runs += len(result.runs)
        s.run_steps += len(result.steps)
        return result

    # -- files -------------------------------------------------------------------------------------

    def wants_file(self, file_id: str) -> bool:
        """Not held with its content yet (one recorded `missing` is asked again once a run)."""
        return not self.archive.files.has(file_id, with_content=True)

    def held_file(self, file_id: str) -> dict[str, Any] | None:
        """The file object recorded by an earlier run (its content `missing`), if any."""
        held = self.archive.files.record(file_id)
        return held[0] if held is not None else None

    def stores_holding(self, file_id: str) -> list[str]:
        return self.archive.raw.vector_stores_holding(file_id)

    def file(self, meta: dict[str, Any], content: FileContent) -> None:
        if self.archive.files.store(meta, content):
            self.summary.files += 1
