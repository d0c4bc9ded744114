"""The checks of `migrate verify` and `verify_archive`, which runs them all over one archive.

Every check has a stable code, a category and a severity (the catalogue, catalogue.py). They run
offline on the archive alone (only the opt-in drift phase, drift.py, asks the source), streaming:
rows come through cursors or keyset-paged batches (queries.py), so an archive of 340,000 threads is
never loaded at once. Each phase is a generator of findings; a phase the database cannot answer (a
damaged file) is reported as a check that could not run, never as a traceback.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from migrator.archive import RAW_TABLES, Archive, digest, object_hash
from migrator.archive.canonical import loads, sha256_hex
from migrator.archive.connection import read_only_connection
from migrator.archive.schema import ORDER_NOTE, known_migration_names
from migrator.convert import ConversionOptions, validate_session
from migrator.errors import UsageError
from migrator.sessions import DeriveFailed, check_workers, derive_batches, recorded_options
from migrator.verify import queries
from migrator.verify.budget import Budget
from migrator.verify.catalogue import CHECK_BY_CODE, CHECKS, DRIFT_CHECKS
from migrator.verify.report import MAX_FINDINGS, Finding, VerifyReport

if TYPE_CHECKING:
    from migrator.source import SourceSettings

__all__ = ["CHECKS", "DRIFT_CHECKS", "verify_archive"]

# How a finding names a row of a raw table.
_SINGULAR = {
    "assistants": "assistant",
    "threads": "thread",
    "messages": "message",
    "runs": "run",
    "run_steps": "run step",
    "vector_stores": "vector store",
    "vector_store_files": "vector store file",
    "files": "file",
    "record_rows": "record row",
}


# -- integrity ---------------------------------------------------------------------------------


class _IntegrityCheck:
    """`PRAGMA integrity_check` on a connection of its own, in a thread: it is C reading every page
    (6 s of a verify of 340,000 threads), and SQLite lets go of the GIL meanwhile, so the other
    checks run beside it instead of after it."""

    def __init__(self, path: Path) -> None:
        self._lines: list[str] = []
        self._error: sqlite3.DatabaseError | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="integrity-check", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            conn = read_only_connection(path)
            try:
                conn.execute("PRAGMA busy_timeout = 30000")
                self._lines = queries.integrity_lines(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:  # raised where the phase asks for the lines
            self._error = exc

    def lines(self) -> list[str]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._lines


def _integrity(archive: Archive, check: _IntegrityCheck) -> Iterator[Finding]:
    for line in check.lines()[:100]:
        yield Finding("sqlite_integrity", "archive", line)
    missing = known_migration_names() - archive.applied_migrations()
    for name in sorted(missing):
        yield Finding("schema_version", "archive", f"schema step {name} is not applied")
    note = archive.get_meta(ORDER_NOTE)
    if isinstance(note, dict):
        yield Finding(
            "order_ties_ambiguous",
            "archive",
            f"{note.get('threads')} thread(s) have objects sharing a second whose order was taken from their "
            "ids when this archive was upgraded; export them into a new archive to get the source's order",
        )


def _raw_hashes(archive: Archive, stats: dict[str, int]) -> Iterator[Finding]:
    for table in RAW_TABLES:
        singular = _SINGULAR[table]
        for key, raw, stored, thread_id in queries.raw_hashes(archive, table):
            stats["raw_objects"] += 1
            try:
                actual = object_hash(loads(raw))
            except (orjson.JSONDecodeError, TypeError):
                yield Finding("raw_unreadable", f"{singular} {key}", "raw JSON does not parse", thread_id)
                continue
            if actual != stored:
                yield Finding(
                    "raw_hash_mismatch",
                    f"{singular} {key}",
                    f"canonical hash {actual[:19]}… differs from the stored {str(stored)[:19]}…",
                    thread_id,
                )


def _blobs(archive: Archive, stats: dict[str, int]) -> Iterator[Finding]:
    for sha, size, data in queries.blobs(archive):
        stats["blobs"] += 1
        subject = f"blob {sha}"
        if not isinstance(data, bytes):
            yield Finding("blob_sha256_mismatch", subject, "blob has no bytes")
        elif sha256_hex(data) != sha:
            yield Finding(
                "blob_sha256_mismatch", subject, f"bytes hash to {sha256_hex(data)} ({len(data)} bytes)"
            )
        elif size is not None and size != len(data):
            yield Finding("blob_sha256_mismatch", subject, f"holds {len(data)} bytes, recorded {size}")


# -- completeness ------------------------------------------------------------------------------


def _threads(archive: Archive, stats: dict[str, int]) -> Iterator[Finding]:
    for t in queries.thread_tallies(archive):
        stats["threads"] += 1
        subject = f"thread {t.thread_id}"
        if t.status == "pending":
            yield Finding(
                "thread_pending", subject, "not exported yet; run `migrate export` again", t.thread_id
            )
            continue
        if t.status == "failed":
            why = f"{t.error_class}: {t.error_message}" if t.error_class else "no failure recorded"
            yield Finding(
                "thread_failed", subject, f"{why}; run `migrate export` again to retry", t.thread_id
            )
            continue
        if t.status == "missing":
            yield Finding("thread_missing", subject, "the source answered 404 for this thread", t.thread_id)
            continue
        stats["threads_done"] += 1
        if not t.has_thread:
            yield Finding(
                "thread_not_stored", subject, "marked done but the thread object is absent", t.thread_id
            )
        for code, what, stored, seen in (
            ("message_count_mismatch", "messages", t.messages, t.messages_seen),
            ("run_count_mismatch", "runs", t.runs, t.runs_seen),
            ("step_count_mismatch", "run steps", t.steps, t.steps_seen),
        ):
            if stored != seen:
                yield Finding(code, subject, f"{stored} {what} stored, the source listed {seen}", t.thread_id)


def _pages_and_failures(archive: Archive) -> Iterator[Finding]:
    for a in archive.findings.iter_anomalies():
        if a.kind == "route_missing":  # the source's shape, not a list that ended badly
            yield Finding("source_route_missing", f"{a.entity} {a.entity_id}", a.detail)
            continue
        yield Finding(
            "page_anomaly",
            f"{a.entity} {a.entity_id}",
            f"{a.kind}: {a.detail}",
            a.entity_id if a.entity == "thread" else None,
        )
    for f in archive.findings.iter_failures():
        if f.entity == "thread":
            continue  # reported with the thread's status
        status = f" (HTTP {f.status_code})" if f.status_code else ""
        yield Finding(
            "export_failure",
            f"{f.entity} {f.entity_id}",
            f"{f.error_class}{status}: {f.message}; export again",
        )
    for thread_id, run_id in queries.runs_missing_steps(archive):
        yield Finding(
            "run_steps_missing", f"run {run_id}", "declared tools but no run step is stored", thread_id
        )


_FILE_GAPS = {
    "unfetched": ("file_unfetched", "referenced but never fetched; run `migrate export` again"),
    "missing": ("file_content_missing", "the source gave neither its bytes nor a parsed text"),
    "no_blob": ("file_blob_missing", "recorded as obtained but its blob is not in the archive"),
    "size": (
        "file_size_mismatch",
        "its stored bytes are not as long as its file object says (an error page or a cut body, "
        "not the file); run `migrate export` again to download it",
    ),
}


def _files(archive: Archive) -> Iterator[Finding]:
    for file_id, problem, owner in queries.file_gaps(archive):
        code, message = _FILE_GAPS[problem]
        kind, _, owner_id = (owner or "").partition(" ")
        used_by = f" (used by {owner})" if owner else ""
        yield Finding(code, f"file {file_id}", message + used_by, owner_id if kind == "thread" else None)


# -- referential -------------------------------------------------------------------------------

_ORPHAN_CODE = {
    "messages": "orphan_message",
    "runs": "orphan_run",
    "run_steps": "orphan_step",
    "vector_store_files": "orphan_vector_store_file",
}


def _orphans(archive: Archive) -> Iterator[Finding]:
    for table, row_id, parent_kind, parent_id, thread in queries.orphans(archive):
        subject = f"{_SINGULAR[table]} {row_id}"
        if parent_kind == "message":
            yield Finding(
                "step_message_missing", subject, f"placed message {parent_id}, which is not stored", thread
            )
        else:
            yield Finding(
                _ORPHAN_CODE[table], subject, f"its {parent_kind} {parent_id} is not stored", thread
            )


# -- sessions and budget -----------------------------------------------------------------------


def _sessions(
    archive: Archive, budget: Budget, stats: dict[str, int], unknown: dict[str, int], workers: int
) -> Iterator[Finding]:
    try:
        options = recorded_options(archive)
    except ValueError as exc:  # written by a newer converter, or a damaged meta row
        yield Finding(
            "check_aborted", "archive", f"recorded conversion options unusable ({exc}); not re-derived"
        )
        options = None

    def rederived(rows: list[queries.DoneSession]) -> list[str]:
        if options is None:
            return []
        return [row.thread_id for row in rows if row.record is not None and not row.session_stale]

    batches = derive_batches(
        archive,
        queries.done_session_batches(archive),
        rederived,
        options or ConversionOptions(),
        rows=False,
        workers=workers,
        extras=lambda rows: {row.thread_id: row.extra for row in rows if row.extra is not None},
    )
    of_done = 0  # session rows of done threads
    try:
        for rows, derived in batches:
            for row in rows:
                stats["sessions"] += row.record is not None
                of_done += row.has_session
                yield from _session(row, options, budget, unknown, derived)
    finally:
        batches.close()
    if archive.sessions.counts()["sessions"] == of_done:
        return  # every session is of a done thread: no orphan (the query reads a work row for each)
    for thread_id, status in archive.sessions.orphans():
        why = f"its thread is {status}" if status else "its thread was never requested"
        yield Finding("session_orphan", f"session {thread_id}", why, thread_id)


def _session(
    row: queries.DoneSession,
    options: ConversionOptions | None,
    budget: Budget,
    unknown: dict[str, int],
    derived: dict[str, Any],
) -> Iterator[Finding]:
    tid = row.thread_id
    subject = f"session {tid}"
    if row.record is None:
        yield Finding("session_missing", subject, "done but no session; run `migrate rebuild`", tid)
        return
    if row.session_stale:
        yield Finding(
            "session_stale", subject, "raw rows changed since it was built; run `migrate rebuild`", tid
        )
    text_hash = digest(row.record.encode())
    if text_hash != row.hash:
        yield Finding("session_tampered", subject, "record text does not match its stored hash", tid)
    try:
        record = orjson.loads(row.record)
    except orjson.JSONDecodeError as exc:
        record = exc
    if not isinstance(record, dict):
        yield Finding("session_tampered", subject, "record is not a JSON object", tid)
        return
    if options is not None and not row.session_stale:
        yield from _rederive(tid, text_hash, record, derived.get(tid))
    for f in validate_session(record):
        code = f"session_{f.code}"
        if code in CHECK_BY_CODE:
            yield Finding(code, subject, f.detail, tid)
        else:
            fallback = "session_invalid" if f.severity == "error" else "session_lint"
            yield Finding(fallback, subject, f"{f.code}: {f.detail}", tid)
    model = record.get("model")
    window = budget.window_for(model)
    if window is None:
        if model:  # a session without a model is session_model_missing already
            unknown[str(model)] = unknown.get(str(model), 0) + 1
    elif (row.tokens or 0) > window:
        if budget.context_window is None:
            message = f"{row.tokens:,} tokens > {window:,} of its own model {model}"
            yield Finding("session_over_model_window", subject, message, tid)
        else:
            target = budget.model or "--context-window"
            yield Finding(
                "session_over_budget", subject, f"{row.tokens:,} tokens > {window:,} ({target})", tid
            )


def _rederive(
    tid: str, stored_hash: str, stored: dict[str, Any], derived: bytes | DeriveFailed | None
) -> Iterator[Finding]:
    """`derived`: the re-derivation's canonical JSON (derive.py), why it failed, or None when the
    thread has no raw thread object (reported as thread_not_stored)."""
    subject = f"session {tid}"
    if derived is None:
        return
    if isinstance(derived, DeriveFailed):
        yield Finding("session_derive_failed", subject, derived.message, tid)
        return
    if digest(derived) == stored_hash:
        return
    again = orjson.loads(derived)
    differs = sorted(k for k in set(again) | set(stored) if again.get(k) != stored.get(k)) or ["key order"]
    yield Finding(
        "session_mismatch",
        subject,
        f"differs from its re-derivation in {', '.join(differs)}; run `migrate rebuild`",
        tid,
    )


# -- the run -------------------------------------------------------------------------------------


def _run_phase(name: str, phase: Callable[[], Iterator[Finding]], add: Callable[[Finding], None]) -> None:
    try:
        for finding in phase():
            add(finding)
    except sqlite3.DatabaseError as exc:
        # A damaged page or table: the phase stops; what it found so far stays reported, and
        # check_aborted (an error) says which checks did not see everything.
        add(Finding("check_aborted", "archive", f"the {name} checks stopped: {exc}"))


def verify_archive(
    archive: Archive,
    *,
    context_window: int | None = None,
    model: str | None = None,
    strict: bool = False,
    against_source: SourceSettings | None = None,
    sample: int = 20,
    seed: int | None = None,
    max_findings: int = MAX_FINDINGS,
    on_phase: Callable[[str], None] | None = None,
    workers: int = 0,
) -> VerifyReport:
    """Run every check over an open archive; with `against_source`, also re-fetch `sample` random done
    threads from that source and report drift. `workers` > 0 re-derives the sessions in that many
    processes (derive.py); the report is the same. Raises UsageError for a bad budget or sample option,
    SourceRefusedError when the source refuses."""
    budget = Budget.resolve(context_window, model)
    check_workers(workers)
    if against_source is not None and sample < 1:
        raise UsageError(f"--sample must be at least 1, not {sample}")
    started = time.perf_counter()
    stats = {"threads": 0, "threads_done": 0, "raw_objects": 0, "blobs": 0, "sessions": 0}
    unknown_models: dict[str, int] = {}
    report = VerifyReport.empty(
        str(archive.path),
        CHECKS + (DRIFT_CHECKS if against_source is not None else ()),
        strict=strict,
        budget=budget.describe(),
        stats=stats,
        max_findings=max_findings,
    )
    integrity = _IntegrityCheck(archive.path)
    phases: list[tuple[str, Callable[[], Iterator[Finding]]]] = [
        ("raw hashes", lambda: _raw_hashes(archive, stats)),
        ("blobs", lambda: _blobs(archive, stats)),
        ("threads", lambda: _threads(archive, stats)),
        ("pages and failures", lambda: _pages_and_failures(archive)),
        ("files", lambda: _files(archive)),
        ("references", lambda: _orphans(archive)),
        ("sessions", lambda: _sessions(archive, budget, stats, unknown_models, workers)),
    ]
    # The integrity phase comes first in the report, but its SQLite check runs beside the others (see
    # _IntegrityCheck): its findings, and the schema version's, are put before theirs at the end.
    first: list[Finding] = []
    try:
        report.schema_version = archive.schema_version
    except sqlite3.DatabaseError as exc:
        first.append(Finding("check_aborted", "archive", f"schema version unreadable: {exc}"))
    if on_phase:
        on_phase("integrity")
    for name, phase in phases:
        if on_phase:
            on_phase(name)
        _run_phase(name, phase, report.add)
    _run_phase("integrity", lambda: _integrity(archive, integrity), first.append)
    report.add_first(first)
    for model_name, n in sorted(unknown_models.items()):
        report.add(
            Finding(
                "budget_unknown_model",
                f"model {model_name}",
                f"{n} session(s) not measured; pass --context-window",
            )
        )
    try:
        report.warnings_summary = archive.sessions.warning_totals()
    except sqlite3.DatabaseError as exc:
        report.add(Finding("check_aborted", "archive", f"warnings summary: {exc}"))
    for code, n in report.warnings_summary.items():
        report.add(Finding("conversion_warnings", f"warning {code}", f"{n:,}"))
    if against_source is not None:
        from migrator.verify.drift import source_drift  # the network path, only when asked for

        if on_phase:
            on_phase("source drift")
        sampled, drift = source_drift(archive, against_source, sample=sample, seed=seed)
        stats["threads_sampled"] = len(sampled)
        for finding in drift:
            report.add(finding)
    report.elapsed = time.perf_counter() - started
    return report
