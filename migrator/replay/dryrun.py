"""`migrate replay --dry-run`: build and validate every request, send nothing.

Each chosen session goes through `validate_session`, the same checks `migrate verify` runs (with
`--model` standing in for the session's model when given); every request is built and hashed, and
the ledger says how many a live run would still send. Exit 1 when a session has an error finding
or cannot be turned into requests, naming the thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from migrator.archive import Archive
from migrator.convert import validate_session
from migrator.errors import ExitCode
from migrator.replay.batch import MAX_FILE_BYTES
from migrator.replay.requests import iter_chunks, requests_for_record
from migrator.replay.run import FINAL, LOOKUP_CHUNK, ReplayOptions, StoreBindings, selected_sessions

__all__ = ["DryRunReport", "dry_run"]

MAX_FINDINGS = 1000  # findings kept; the count goes on


@dataclass
class DryRunReport:
    archive: str
    model: str | None
    turns: str
    sessions: int = 0
    requests: int = 0
    already_answered: int = 0
    request_bytes: int = 0
    errors: int = 0
    warnings: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # threads not done: left out unless included
    include_unfinished: bool = False

    def add(self, thread_id: str, code: str, severity: str, detail: str) -> None:
        if severity == "error":
            self.errors += 1
        else:
            self.warnings += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(
                {"thread_id": thread_id, "code": code, "severity": severity, "detail": detail}
            )

    def threads_with_errors(self) -> list[str]:
        return list(dict.fromkeys(f["thread_id"] for f in self.findings if f["severity"] == "error"))

    def exit_code(self) -> ExitCode:
        left_out = self.unfinished and not self.include_unfinished
        return ExitCode.ATTENTION if self.errors or left_out else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "model": self.model,
            "turns": self.turns,
            "dry_run": True,
            "sessions": self.sessions,
            "requests": self.requests,
            "already_answered": self.already_answered,
            "to_send": self.requests - self.already_answered,
            "request_bytes": self.request_bytes,
            # A rough figure for sizing (4 bytes of JSON a token); the target's usage is the real one.
            "approx_prompt_tokens": self.request_bytes // 4,
            "errors": self.errors,
            "warnings": self.warnings,
            "threads_with_errors": self.threads_with_errors(),
            "findings": self.findings,
            "unfinished": self.unfinished,
            "unfinished_included": self.include_unfinished,
            "exit_code": int(self.exit_code()),
        }


def dry_run(archive: Archive, options: ReplayOptions) -> DryRunReport:
    report = DryRunReport(str(archive.path), options.model, options.turns)

    choice = selected_sessions(archive, options)
    report.unfinished, report.include_unfinished = choice.unfinished, options.include_unfinished

    bindings = StoreBindings(archive, options.stores_of) if options.api == "responses" else None

    def requests() -> Any:
        for thread_id, record_json in choice.records(archive):
            report.sessions += 1
            try:
                record = orjson.loads(record_json)
            except orjson.JSONDecodeError as exc:
                report.add(thread_id, "record_unreadable", "error", f"the stored record is not JSON ({exc})")
                continue
            if isinstance(record, dict):
                checked = {**record, "model": options.model} if options.model else record
                for finding in validate_session(checked):
                    report.add(thread_id, finding.code, finding.severity, finding.detail)
            binding = bindings.of(thread_id, record_json) if bindings is not None else None
            if binding is not None and binding.unbound:
                unbound = ", ".join(binding.unbound)
                report.add(thread_id, "file_search_unbound", "warning",
                           f"no rebuilt vector store for {unbound}: file_search stays emulated")  # fmt: skip
            built, problem = requests_for_record(
                thread_id, record, turns=options.turns, model=options.model, api=options.api, binding=binding
            )
            if problem is not None and problem.code != "no_model":  # validate reports model_missing
                report.add(thread_id, problem.code, "error", problem.detail)
            for request in built:
                if len(request.body) + 200 > MAX_FILE_BYTES:
                    report.add(
                        thread_id,
                        "request_too_large",
                        "error",
                        f"turn {request.turn}: {len(request.body):,} bytes",
                    )
                yield request

    for chunk in iter_chunks(requests(), LOOKUP_CHUNK):
        rows = archive.ledger.rows(r.request_hash for r in chunk)
        for request in chunk:
            report.requests += 1
            report.request_bytes += len(request.body)
            row = rows.get(request.request_hash)
            report.already_answered += row is not None and row.state in FINAL
    return report
