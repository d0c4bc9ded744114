"""Progress for long runs: a live rich display on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from migrator.cli.app import console_err
from migrator.export import ExportSnapshot

if TYPE_CHECKING:  # the dumps package loads only for --from-dump: every command starts faster
    from migrator.dumps import IngestProgress

__all__ = ["DumpProgress", "ExportProgress"]

PLAIN_EVERY = 10.0  # seconds between lines in a log file or CI


def _counted(s: ExportSnapshot) -> tuple[str, int, int]:
    """What the phase waits on: files in the files phase, sessions in the sessions phase, else threads."""
    if s.phase == "sessions":
        return "sessions", s.sessions_done, s.sessions_total
    if s.phase == "files":
        return "files", s.files_done, s.files_total
    return "threads", s.threads_finished, s.threads_total


def _line(s: ExportSnapshot) -> str:
    what, done, total = _counted(s)
    if s.phase == "sessions":
        return f"sessions: built {done}/{total}"
    eta = f", eta {s.eta_seconds / 60:.0f} min" if s.eta_seconds is not None and what == "threads" else ""
    threads = f", threads {s.threads_finished}/{s.threads_total}" if what != "threads" else ""
    return (
        f"{s.phase}: {what} {done}/{total}{threads}, messages {s.messages}, "
        f"{s.rate:.1f} {s.unit}/s, 429s {s.throttled}, retries {s.retries}, failures {s.failures}{eta}"
    )


class ExportProgress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = enabled and console_err.is_terminal
        self._last_plain = 0.0
        self._last_phase = ""
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> ExportProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.fields[phase]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=console_err,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("export", total=None, phase="starting", detail="")
        return self

    def __call__(self, s: ExportSnapshot) -> None:
        if not self.enabled:
            return
        if self._progress is not None and self._task is not None:
            detail = (
                f"msgs {s.messages}  {s.rate:.1f} {s.unit}/s  429s {s.throttled}  retries {s.retries}  "
                f"failures {s.failures}"
            )
            what, done, total = _counted(s)
            self._progress.update(
                self._task,
                total=total or None,
                completed=done,
                phase=s.phase,
                detail="" if s.phase == "sessions" else detail,
            )
            return
        now = time.monotonic()
        # A new phase gets its line at once: "sessions: built 0/2000" says what the wait is now.
        if now - self._last_plain >= PLAIN_EVERY or s.phase != self._last_phase:
            self._last_phase = s.phase
            self._last_plain = now
            console_err.print(_line(s), markup=False, highlight=False, soft_wrap=True)  # one line a tick

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def dump_line(p: IngestProgress) -> str:
    eta = f", eta {p.eta_seconds / 60:.0f} min" if p.eta_seconds is not None else ""
    rate = p.objects / p.elapsed if p.elapsed > 0 else 0.0
    return f"dump: {_dump_detail(p, ', ')}, {rate:.0f} objects/s{eta}"


def _dump_detail(p: IngestProgress, sep: str) -> str:
    # A dump of ours is counted in objects against its manifest, and its bytes are not counted at all.
    read = [f"{_mb(p.bytes_read)}/{_mb(p.bytes_total)} read"] if p.bytes_total else []
    objects = f"objects stored {p.objects}" + (f"/{p.objects_total}" if p.objects_total else "")
    return sep.join((f"files {p.files_read}", *read, objects))


class DumpProgress:
    """`export --from-dump`: the export's display for a dump (files and bytes read, objects, ETA)."""

    def __init__(self) -> None:
        self._last_plain = 0.0
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> DumpProgress:
        if console_err.is_terminal:
            self._progress = Progress(
                TextColumn("dump"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=console_err,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("dump", total=None, detail="")
        return self

    def __call__(self, p: IngestProgress) -> None:
        if self._progress is not None and self._task is not None:
            detail = _dump_detail(p, "  ")
            self._progress.update(self._task, total=p.total or None, completed=p.done, detail=detail)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY:
            self._last_plain = now
            console_err.print(dump_line(p), markup=False, highlight=False, soft_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
