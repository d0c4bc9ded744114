"""What an export is asked to do, and what it reports while and after it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from migrator.archive import Archive
from migrator.convert import ConversionOptions
from migrator.errors import UsageError
from migrator.sessions import BuildSummary
from migrator.threadlist import Shard, ThreadEntry

__all__ = [
    "ALL_PARTS",
    "DEFAULT_CONCURRENCY",
    "ExportOptions",
    "ExportSnapshot",
    "ExportSummary",
    "Report",
    "parse_parts",
    "require_thread_ids",
]

ALL_PARTS = frozenset({"assistants", "threads", "vector-stores", "files"})
DEFAULT_CONCURRENCY = 32


def parse_parts(text: str | None) -> frozenset[str]:
    """`--only`: a comma list of parts (all of them when not given)."""
    if not text:
        return ALL_PARTS
    parts = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = parts - ALL_PARTS
    if unknown or not parts:
        raise UsageError(f"--only {text!r}: choose from {','.join(sorted(ALL_PARTS))}")
    return parts


def require_thread_ids(path: Path, entries: Iterable[ThreadEntry] | None, options: ExportOptions) -> None:
    """Refuse a threads export with no ids given and none in the archive (a rerun may leave them out:
    the archive keeps the list), before anything is created."""
    if entries is not None or options.all_threads or "threads" not in options.parts:
        return
    if path.exists():
        with Archive.open(path) as store:
            if sum(store.work.counts().values()) > 0:
                return
    raise UsageError(
        "no thread ids to export",
        hint="pass --threads FILE, or --all-threads on a source that lists threads (Foundry does)",
    )


@dataclass
class ExportOptions:
    parts: frozenset[str] = ALL_PARTS
    concurrency: int = DEFAULT_CONCURRENCY
    max_rps: float | None = None
    refresh: bool = False
    shard: Shard | None = None
    # List the threads at the source (GET /threads) into the work list, every run: new ones are added.
    all_threads: bool = False
    conversion: ConversionOptions = field(default_factory=ConversionOptions)
    # How often the caller's report callback may be called at most, in seconds.
    report_every: float = 0.2


@dataclass
class ExportSnapshot:
    """What a progress display shows; handed to the caller's callback."""

    phase: str
    threads_total: int
    threads_finished: int
    messages: int
    requests: int
    throttled: int
    retries: int
    failures: int
    elapsed: float
    # What `requests` counts, shown as "<unit>/s": `export --from-records` counts the rows it reads.
    unit: str = "req"
    # The files phase counts files, the sessions phase sessions: what each is waiting on.
    files_total: int = 0
    files_done: int = 0
    sessions_total: int = 0
    sessions_done: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.threads_finished or self.threads_finished >= self.threads_total:
            return None
        per_thread = self.elapsed / self.threads_finished
        return per_thread * (self.threads_total - self.threads_finished)


@dataclass
class ExportSummary:
    threads_total: int = 0
    threads_done: int = 0
    threads_failed: int = 0
    threads_missing: int = 0
    threads_left: int = 0
    messages: int = 0
    runs: int = 0
    run_steps: int = 0
    files: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    failures: int = 0
    elapsed: float = 0.0
    # Seconds spent talking to the source (elapsed also counts building the sessions afterwards).
    network_seconds: float = 0.0
    interrupted: bool = False
    sessions: BuildSummary = field(default_factory=BuildSummary)

    @property
    def clean(self) -> bool:
        return not (self.failures or self.threads_failed or self.threads_missing or self.threads_left)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "sessions"}
        out["sessions"] = self.sessions.__dict__.copy()
        seconds = self.network_seconds or self.elapsed
        out["requests_per_second"] = round(self.requests / seconds, 2) if seconds else 0.0
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ExportSummary:
        """The summary `as_dict` gave (what is derived from it, such as the rate, is left out)."""
        known = {f.name for f in fields(cls)} - {"sessions"}
        summary = cls(**{k: v for k, v in doc.items() if k in known})
        summary.sessions = BuildSummary(**doc.get("sessions", {}))
        return summary


Report = Callable[[ExportSnapshot], None]
