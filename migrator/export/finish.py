"""The last step of an export: the sessions of the threads it changed, then the archive's counts.

A room of its own, beside the fetching ones, because it needs none of them: a live export's build
runs in a fresh image of the process (`migrator/cli/handover.py`) that never imports the openai SDK.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator

from migrator.archive import Archive
from migrator.convert import ConversionOptions
from migrator.export.options import ExportSnapshot, ExportSummary, Report
from migrator.sessions import BuildSummary, build_sessions

__all__ = ["finish_export"]


def finish_export(
    archive: Archive,
    summary: ExportSummary,
    conversion: ConversionOptions,
    report: Report | None = None,
    started: float | None = None,
) -> ExportSummary:
    """After the fetch: build the sessions of the threads it changed, then count the archive.
    `started` (time.monotonic() when the export began) carries the elapsed time over."""
    started = time.monotonic() - summary.elapsed if started is None else started
    if not summary.interrupted:
        # Building sessions takes minutes at 340,000 threads: a signal stops it between batches too.
        with _stop_on_signal() as stopped:
            on_batch = _session_progress(archive, summary, report, started)
            summary.sessions = build_sessions(archive, conversion, stop=stopped, on_batch=on_batch)
        summary.interrupted = summary.sessions.interrupted
    # The verdict is about the archive, not just this run: a thread missing since last night still counts.
    work = archive.work.counts()
    summary.threads_left = work["pending"]
    summary.threads_done, summary.threads_failed, summary.threads_missing = (
        work["done"],
        work["failed"],
        work["missing"],
    )
    summary.failures = len(archive.findings.failures())
    summary.elapsed = time.monotonic() - started
    return summary


@contextlib.contextmanager
def _stop_on_signal() -> Iterator[Callable[[], bool]]:
    flag = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: flag.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _session_progress(
    archive: Archive, summary: ExportSummary, report: Report | None, started: float
) -> Callable[[BuildSummary], None] | None:
    """Session building after an export reports its own progress (minutes at 340,000 threads),
    instead of leaving the last export figures standing still."""
    if report is None:
        return None
    total = archive.work.stale_count()

    def on_batch(built: BuildSummary) -> None:
        report(
            ExportSnapshot(
                phase="sessions",
                threads_total=summary.threads_total,
                threads_finished=summary.threads_done + summary.threads_failed + summary.threads_missing,
                messages=summary.messages,
                requests=summary.requests,
                throttled=summary.throttled,
                retries=summary.retries,
                failures=summary.failures,
                elapsed=time.monotonic() - started,
                sessions_total=total,
                sessions_done=built.sessions,
            )
        )

    on_batch(BuildSummary())
    return on_batch
