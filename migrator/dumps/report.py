"""What an ingest found: objects stored, duplicates, skipped input, completeness findings."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Finding", "IngestReport", "Problem", "FINDING_CODES", "RECOGNISED"]

# Kept in memory for the report; the totals keep counting past it (a dump may hold millions of lines).
MAX_LISTED = 1000

# Completeness findings (stable codes, documented in the README). Those marked * are also written
# to the archive's anomalies table, because verify cannot re-derive them from the rows.
FINDING_CODES = {
    "dump_messages_missing": "* a thread object without its messages: pending, or done from its runs and steps "
    "when it has some (exit 1 either way)",
    "dump_page_has_more": "* a list page says has_more but the dump holds nothing further",
    "thread_object_missing": "runs or steps whose thread object and messages are absent: stored, thread pending",
    "thread_synthesized": "messages without their thread object: the thread is made from them (done when its "
    "pages are complete)",
    "thread_missing": "an exporter recorded the thread as deleted or not found: the thread is `missing`",
    "runs_missing": "messages or steps name runs the dump does not hold",
    "steps_missing": "completed runs that declared tools but whose steps the dump does not hold",
    "vector_store_missing": "vector store files whose vector store object is absent",
    "file_object_missing": "files the objects mention but the dump holds no file object for",
    "file_content_missing": "file objects with neither bytes nor parsed text",
    "dump_export_error": "an exporter recorded an error this list does not name (kept as it said it)",
    "stream_error": "a recorded event stream holds an `error` event",
    "zip_member_refused": "a .zip member over the size or inflation limit (a zip bomb?): not read",
}

# Objects that are not data to keep: recognised, counted, not stored, never a problem. `*.deleted`
# (and `{"deleted": true}` answers) are deletion confirmations: they remove nothing the dump holds.
RECOGNISED = {
    # Deltas build an object only when its final event is missing (counted under `assembled`).
    "thread.message.delta": "stream delta",
    "thread.run.step.delta": "stream delta",
    "done": "end of a stream",
    "vector_store.file_batch": "file batch; its files come as vector_store.file objects",
    "vector_store.files_batch": "file batch; its files come as vector_store.file objects",
    "vector_store.search_results.page": "search results",
    "thread.message.file": "v1 message file; the message's file_ids say the same",
    "assistant.file": "v1 assistant file; the assistant's file_ids say the same",
    "assistants-export-manifest/v1": "assistants-api-export manifest",
    "assistants-thread-export/v1": "assistants-api-export thread file; its objects are stored",
}


def recognised_why(kind: str) -> str:
    if kind.endswith(".deleted"):
        return "deletion confirmation"
    return RECOGNISED.get(kind, "stream event")


@dataclass(frozen=True)
class Problem:
    """Input that was skipped: where it is and why."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Finding:
    code: str
    entity_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code} {self.entity_id}: {self.detail}"


class _Printer(Protocol):
    def print(self, *objects: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class IngestProgress:
    """What a progress display shows while a dump is read: files and bytes read, objects stored."""

    files_read: int
    bytes_read: int  # of the files read to their end (a zip member counts as its zip's share: 0)
    bytes_total: int  # of every file on disk under the given paths; 0 (and bytes_read 0) when
    # objects_total is known
    objects: int  # stored, duplicate or replaced: every object handled so far
    elapsed: float
    objects_total: int = 0  # what the dumps' manifests say they hold; 0 when not every path has one

    @property
    def done(self) -> int:
        return self.bytes_read if self.bytes_total else self.objects

    @property
    def total(self) -> int:
        """What `done` counts towards (0: unknown)."""
        return self.bytes_total or self.objects_total

    @property
    def eta_seconds(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return self.elapsed / self.done * (self.total - self.done)


@dataclass
class IngestReport:
    """Counts are per `object` type (`thread.message`, `file`, …)."""

    stored: Counter[str] = field(default_factory=Counter)  # new or changed rows
    duplicates: Counter[str] = field(default_factory=Counter)  # identical to a row already held
    replaced: Counter[str] = field(default_factory=Counter)  # same id, other content: the later one kept
    unknown_types: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0
    findings: list[Finding] = field(default_factory=list)
    findings_total: Counter[str] = field(default_factory=Counter)
    # Recognised objects that are not stored (deletions, batches, stream deltas, ...), by kind.
    recognised: Counter[str] = field(default_factory=Counter)
    assembled: Counter[str] = field(default_factory=Counter)  # objects only deltas built
    versions: Counter[str] = field(default_factory=Counter)  # older than the version held: kept as a version
    versions_read: int = 0  # from a dump's versions file
    refused: int = 0  # zip members not read (limits)
    files_read: int = 0
    files_ignored: int = 0  # not .json/.jsonl/.ndjson/.sse (optionally .gz), .txt/.log or .zip data
    loose_files_matched: int = 0
    threads_done: int = 0
    threads_pending: int = 0
    threads_missing: int = 0
    # Done from what the dump holds, though its messages are absent (runs and steps only).
    threads_partial: int = 0

    def skip(self, path: object, line: int | None, reason: str) -> None:
        self.problems_total += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(str(path), line, reason))

    def recognise(self, kind: str) -> None:
        self.recognised[kind] += 1

    def refuse(self, label: str, why: str) -> None:
        self.refused += 1
        self.find("zip_member_refused", label, why)

    def skipped_by_reason(self) -> Counter[str]:
        """The problems listed, by the kind of reason (ids, names and positions left out)."""
        return Counter(_reason_kind(p.reason) for p in self.problems)

    def find(self, code: str, entity_id: str, detail: str) -> None:
        self.findings_total[code] += 1
        if len(self.findings) < MAX_LISTED:
            self.findings.append(Finding(code, entity_id, detail))

    @property
    def empty(self) -> bool:
        """Nothing the dump held was an Assistants API object (new or already held)."""
        return not (self.stored or self.duplicates)

    def exit_code(self) -> int:
        """0 clean; 1 when any input was skipped (a bad file or line, an unknown object type, a zip
        member over the limits), a thread is left pending (the dump does not hold all of it) or
        missing, or the dump held no Assistants objects."""
        attention = self.problems_total or self.refused or self.threads_pending or self.threads_missing
        attention = attention or self.threads_partial
        return 1 if attention or self.empty else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": dict(sorted(self.stored.items())),
            "duplicates": dict(sorted(self.duplicates.items())),
            "replaced": dict(sorted(self.replaced.items())),
            "unknown_types": dict(sorted(self.unknown_types.items())),
            "recognised": dict(sorted(self.recognised.items())),
            "assembled": dict(sorted(self.assembled.items())),
            "versions": dict(sorted(self.versions.items())),
            "versions_read": self.versions_read,
            "refused": self.refused,
            "skipped_by_reason": dict(sorted(self.skipped_by_reason().items())),
            "problems": [{"path": p.path, "line": p.line, "reason": p.reason} for p in self.problems],
            "problems_total": self.problems_total,
            "findings": [{"code": f.code, "id": f.entity_id, "detail": f.detail} for f in self.findings],
            "findings_total": dict(sorted(self.findings_total.items())),
            "files_read": self.files_read,
            "files_ignored": self.files_ignored,
            "loose_files_matched": self.loose_files_matched,
            "threads_done": self.threads_done,
            "threads_pending": self.threads_pending,
            "threads_missing": self.threads_missing,
            "threads_partial": self.threads_partial,
        }

    def render(self, out: _Printer) -> None:
        """A few plain lines for a person (stderr); `as_dict` is the machine form."""

        def counts(c: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"

        say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
        say(f"read {self.files_read} files; stored: {counts(self.stored)}")
        if self.empty:
            say("no Assistants API objects (assistant, thread, thread.message, ...) in these files")
        if self.duplicates:
            say(f"already held (duplicates): {counts(self.duplicates)}")
        if self.replaced:
            say(f"replaced by a newer version: {counts(self.replaced)}")
        if self.versions:
            say(f"older versions kept beside the current one: {counts(self.versions)}")
        if self.assembled:
            say(f"assembled from stream deltas: {counts(self.assembled)}")
        if self.recognised:
            say(
                "recognised, not stored: "
                + ", ".join(f"{k} {v} ({recognised_why(k)})" for k, v in sorted(self.recognised.items()))
            )
        if self.files_ignored:
            say(f"not data, ignored: {self.files_ignored} file(s)")
        missing = f", missing {self.threads_missing}" if self.threads_missing else ""
        if self.threads_partial:
            missing += f" ({self.threads_partial} done without their messages)"
        say(f"threads done {self.threads_done}, pending {self.threads_pending}{missing}")
        for finding in self.findings[:20]:
            say(f"  finding {finding}")
        if sum(self.findings_total.values()) > 20:
            say(f"  findings in all: {counts(self.findings_total)}")
        for problem in self.problems[:50]:
            say(f"  skipped {problem}")
        if self.problems_total:
            more = self.problems_total - min(50, len(self.problems))
            say(f"skipped {self.problems_total} input item(s)" + (f" ({more} not shown)" if more else ""))
            say("  skipped by reason: " + counts(self.skipped_by_reason()))


def _reason_kind(reason: str) -> str:
    """ "item [3]: unknown object type 'x'" -> "unknown object type": what was wrong, not where."""
    text = re.sub(r"^item \S+: ", "", reason)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "…", text)
    text = text.split(" (", 1)[0]
    return re.sub(r"\b(?:[\w-]+_[A-Za-z0-9]{6,}|file-[\w-]+|\d+)\b", "…", text).strip()
