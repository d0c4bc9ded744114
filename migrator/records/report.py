"""What a `--from-records` run did, for the terminal and for `--json`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

__all__ = ["RecordsReport", "SHOWN"]

SHOWN = 20  # skipped rows printed one a line; every one of them is in the archive (verify lists them)


@dataclass
class RecordsReport:
    source: str
    rows_read: int = 0
    rows_skipped: int = 0
    threads_new: int = 0
    threads_updated: int = 0
    threads_unchanged: int = 0
    threads_kept: int = 0  # held from another source (an API export, a dump): never replaced
    messages: int = 0  # stored by this run (new and updated threads)
    runs: int = 0
    run_steps: int = 0
    skipped: list[str] = field(default_factory=list)  # the first SHOWN, "row N: why"
    kept: list[str] = field(default_factory=list)  # the first SHOWN ids of threads kept
    elapsed: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time for the run (the machine may be shared)

    def skip(self, number: int, reason: str) -> None:
        self.rows_skipped += 1
        if len(self.skipped) < SHOWN:
            self.skipped.append(f"row {number}: {reason}")

    @property
    def threads(self) -> int:
        return self.threads_new + self.threads_updated + self.threads_unchanged + self.threads_kept

    @property
    def empty(self) -> bool:
        return self.threads == 0

    def exit_code(self) -> int:
        return 1 if self.rows_skipped or self.empty else 0

    def state(self) -> dict[str, Any]:
        """Every field, for `from_state` in the image an ingest hands its build to."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RecordsReport:
        return cls(**state)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_skipped": self.rows_skipped,
            "threads": self.threads,
            "threads_new": self.threads_new,
            "threads_updated": self.threads_updated,
            "threads_unchanged": self.threads_unchanged,
            "threads_kept": self.threads_kept,
            "messages": self.messages,
            "runs": self.runs,
            "run_steps": self.run_steps,
            "skipped": self.skipped,
            "elapsed": round(self.elapsed, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }

    def render(self, console: Console) -> None:
        def say(text: str) -> None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)

        rate = self.rows_read / self.elapsed * 60 if self.elapsed > 0 else 0.0
        say(
            f"{self.source}: {self.rows_read} rows read ({rate:,.0f} a minute), {self.rows_skipped} skipped; "
            f"threads {self.threads_new} new, {self.threads_updated} updated, {self.threads_unchanged} unchanged"
            + (f", {self.threads_kept} kept from another source" if self.threads_kept else "")
            + f"; stored {self.messages} messages, {self.runs} runs, {self.run_steps} steps in {self.elapsed:.1f}s"
        )
        for line in self.skipped:
            say(f"  skipped {line}")
        if self.rows_skipped > len(self.skipped):
            say(f"  ... and {self.rows_skipped - len(self.skipped)} more skipped rows")
        if self.rows_skipped:
            say(
                "every skipped row is recorded in the archive (`migrate verify` lists them); fix them and rerun"
            )
        for tid in self.kept:
            say(f"  kept {tid}: the archive holds it from another source (an API export or a dump)")
        if self.threads_kept > len(self.kept):
            say(f"  ... and {self.threads_kept - len(self.kept)} more threads kept")
        if self.empty:
            say("no thread was made: the source holds no usable row")
