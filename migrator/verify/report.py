"""The verify report: checks with stable codes, their findings, the verdict, and its renderings.

A check that finds nothing still appears (CI shows it as a passed test case), so the set of checks
in every report is the same catalogue, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

from migrator.errors import ExitCode

__all__ = ["Severity", "Check", "Finding", "CheckResult", "VerifyReport", "render_table", "MAX_FINDINGS"]

# Findings kept per check; the count goes on. 340,000 pending threads must not fill the memory.
MAX_FINDINGS = 1000


class Severity(StrEnum):
    ERROR = "error"  # data would be lost or a session would be refused: exit 1
    WARNING = "warning"  # needs a look; exit 1 only with --strict
    INFO = "info"  # a figure, never changes the exit code


@dataclass(frozen=True)
class Check:
    code: str  # stable identifier, documented in docs/verify.md
    category: str  # integrity | completeness | referential | sessions | budget | warnings
    severity: Severity
    title: str  # what the check makes sure of (a passed check reads as this)
    # What a finding means, `{n}` its count: "{n} referenced file(s) have neither bytes nor parsed
    # text". A check that found something reads as this, never as its title (which says the opposite).
    found: str = "{n} finding(s) against: {title}"

    def describe(self, count: int) -> str:
        return self.found.format(n=f"{count:,}", title=self.title)


@dataclass(frozen=True)
class Finding:
    code: str
    subject: str  # the object concerned: "thread thread_x", "message msg_y", "blob 3fa2…"
    message: str
    thread_id: str | None = None


@dataclass
class CheckResult:
    check: Check
    count: int = 0
    findings: list[Finding] = field(default_factory=list)

    def failed(self, strict: bool) -> bool:
        if self.check.severity is Severity.INFO:
            return False
        return self.count > 0 and (self.check.severity is Severity.ERROR or strict)

    @property
    def truncated(self) -> bool:
        return self.count > len(self.findings)

    def threads(self) -> list[str]:
        """The threads named by the kept findings, first seen first, without repeats."""
        return list(dict.fromkeys(f.thread_id for f in self.findings if f.thread_id))


@dataclass
class VerifyReport:
    archive: str
    checks: dict[str, CheckResult]
    strict: bool = False
    schema_version: int | None = None
    budget: str = ""
    stats: dict[str, int] = field(default_factory=dict)
    warnings_summary: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    max_findings: int = MAX_FINDINGS

    @classmethod
    def empty(cls, archive: str, catalogue: Iterable[Check], **kwargs: Any) -> VerifyReport:
        return cls(archive=archive, checks={c.code: CheckResult(c) for c in catalogue}, **kwargs)

    def add(self, finding: Finding) -> None:
        result = self.checks[finding.code]
        result.count += 1
        if len(result.findings) < self.max_findings:
            result.findings.append(finding)

    def add_first(self, findings: list[Finding]) -> None:
        """Add findings as if they had been added, in this order, before every one added so far."""
        for code in dict.fromkeys(f.code for f in findings):
            result = self.checks[code]
            mine = [f for f in findings if f.code == code]
            result.count += len(mine)
            result.findings[:0] = mine
            del result.findings[self.max_findings :]

    def exit_code(self, strict: bool | None = None) -> ExitCode:
        strict = self.strict if strict is None else strict
        return ExitCode.ATTENTION if any(r.failed(strict) for r in self.checks.values()) else ExitCode.OK

    def totals(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for result in self.checks.values():
            out[result.check.severity.value] += result.count
        return out

    def to_dict(self, strict: bool | None = None) -> dict[str, Any]:
        """The `--json` document."""
        strict = self.strict if strict is None else strict
        return {
            "archive": self.archive,
            "schema_version": self.schema_version,
            "strict": strict,
            "exit_code": int(self.exit_code(strict)),
            "ok": self.exit_code(strict) == ExitCode.OK,
            "budget": self.budget,
            "elapsed_seconds": round(self.elapsed, 3),
            "stats": self.stats,
            "totals": self.totals(),
            "warnings_summary": self.warnings_summary,
            "checks": [
                {
                    "code": r.check.code,
                    "category": r.check.category,
                    "severity": r.check.severity.value,
                    "title": r.check.title,
                    "status": "failed" if r.failed(strict) else "passed",
                    "count": r.count,
                    # What the findings mean, in words ("105 referenced file(s) have neither bytes ...").
                    "found": r.check.describe(r.count) if r.count else None,
                    "truncated": r.truncated,
                    "findings": [
                        {"subject": f.subject, "thread_id": f.thread_id, "message": f.message}
                        for f in r.findings
                    ],
                }
                for r in self.checks.values()
            ],
        }


_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_table(report: VerifyReport, console: Console, *, examples: int = 5) -> None:
    """The terminal summary: checks per category, then each check that found something, with examples."""
    strict = report.strict
    summary = Table(title=f"migrate verify {report.archive}", title_justify="left")
    for name in ("category", "checks", "passed", "failed", "findings"):
        summary.add_column(name, justify="left" if name == "category" else "right")
    categories: dict[str, list[CheckResult]] = {}
    for r in report.checks.values():
        categories.setdefault(r.check.category, []).append(r)
    for category, results in categories.items():
        failed = sum(r.failed(strict) for r in results)
        summary.add_row(
            category,
            str(len(results)),
            # A check that only informs (conversion warnings) has nothing to pass or fail: it counts as passed.
            str(sum(not r.count or r.check.severity is Severity.INFO for r in results)),
            f"[red]{failed}[/]" if failed else "0",
            f"{sum(r.count for r in results):,}",
        )
    console.print(summary)
    for r in report.checks.values():
        if not r.count or r.check.severity is Severity.INFO:
            continue
        colour = "red" if r.failed(strict) else _STYLE[r.check.severity]
        console.print(
            f"[{colour}]{r.check.code}[/] ({r.check.severity.value}, {r.count:,}): {r.check.describe(r.count)}",
            highlight=False,
            soft_wrap=True,
        )
        for finding in r.findings[:examples]:
            console.print(
                f"  {finding.subject}: {finding.message}", markup=False, highlight=False, soft_wrap=True
            )
        if r.count > examples:
            console.print(
                f"  … and {r.count - examples:,} more (--json lists them)", highlight=False, soft_wrap=True
            )
    if report.warnings_summary:
        counts = ", ".join(f"{code} {n:,}" for code, n in report.warnings_summary.items())
        console.print(f"conversion warnings (never fail): {counts}", highlight=False, soft_wrap=True)
    unknown = report.checks.get("budget_unknown_model")
    if unknown and unknown.count:
        models = ", ".join(f.subject.removeprefix("model ") for f in unknown.findings)
        console.print(
            f"budget not measured for model(s) {models}: pass --context-window N",
            highlight=False,
            soft_wrap=True,
        )
    stats = ", ".join(f"{k} {v:,}" for k, v in report.stats.items())
    console.print(
        f"checked {stats} in {report.elapsed:.1f}s; budget: {report.budget}", highlight=False, soft_wrap=True
    )
    totals = report.totals()
    verdict = "[green]clean[/]" if report.exit_code() == ExitCode.OK else "[red]needs attention[/]"
    console.print(
        f"{verdict}: {totals['error']:,} error(s), {totals['warning']:,} warning(s)"
        + (" (--strict: warnings fail)" if strict and totals["warning"] else ""),
        highlight=False,
        soft_wrap=True,
    )
