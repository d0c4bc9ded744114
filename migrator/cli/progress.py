"""Progress for long runs: a live rich display on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from migrator.cli.app import console_err
from migrator.export import ExportSnapshot

__all__ = ["ExportProgress"]

PLAIN_EVERY = 10.0  # seconds between lines in a log file or CI


def _line(s: ExportSnapshot) -> str:
    eta = f", eta {s.eta_seconds / 60:.0f} min" if s.eta_seconds is not None else ""
    return (
        f"{s.phase}: threads {s.threads_finished}/{s.threads_total}, messages {s.messages}, "
        f"{s.rate:.1f} {s.unit}/s, 429s {s.throttled}, retries {s.retries}, failures {s.failures}{eta}"
    )


class ExportProgress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = enabled and console_err.is_terminal
        self._last_plain = 0.0
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
            self._progress.update(
                self._task,
                total=s.threads_total or None,
                completed=s.threads_finished,
                phase=s.phase,
                detail=detail,
            )
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY:
            self._last_plain = now
            console_err.print(_line(s), markup=False, highlight=False, soft_wrap=True)  # one line a tick

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
