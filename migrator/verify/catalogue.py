"""Every check `migrate verify` runs: a stable code (documented in docs/verify.md), a category, a
severity and what it asserts. The checks themselves are in checks.py; drift's in drift.py."""

from __future__ import annotations

from migrator.convert import FINDING_CODES
from migrator.verify.report import Check, Severity

__all__ = ["CHECKS", "CHECK_BY_CODE", "DRIFT_CHECKS"]

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

_CORE: tuple[Check, ...] = (
    # integrity: the file and every stored byte are what was written
    Check(
        "sqlite_integrity",
        "integrity",
        E,
        "PRAGMA integrity_check reports no damage",
        "PRAGMA integrity_check reported {n} problem(s): the file is damaged",
    ),
    Check(
        "schema_version",
        "integrity",
        E,
        "every schema step this migrate knows is applied",
        "{n} schema step(s) this migrate knows are not applied",
    ),
    Check("raw_unreadable", "integrity", E, "every raw object is JSON", "{n} raw object(s) are not JSON"),
    Check(
        "raw_hash_mismatch",
        "integrity",
        E,
        "every raw object matches its stored canonical hash",
        "{n} raw object(s) differ from their stored canonical hash",
    ),
    Check(
        "blob_sha256_mismatch",
        "integrity",
        E,
        "every blob matches its sha256 and recorded size",
        "{n} blob(s) differ from their sha256 or recorded size",
    ),
    Check(
        "check_aborted",
        "integrity",
        E,
        "every check could read what it needed",
        "{n} check(s) could not read what they needed",
    ),
    Check(
        "order_ties_ambiguous",
        "integrity",
        W,
        "every same-second tie is in the source's list order, not a guess",
        "{n} same-second tie(s) are in a guessed order, not the source's list order",
    ),
    # completeness: everything the source holds is in the archive
    Check(
        "thread_pending",
        "completeness",
        E,
        "no requested thread is still waiting to be exported",
        "{n} requested thread(s) still wait to be exported",
    ),
    Check("thread_failed", "completeness", E, "no thread failed to export", "{n} thread(s) failed to export"),
    Check(
        "thread_missing",
        "completeness",
        E,
        "no requested thread was unknown to the source (404)",
        "{n} requested thread(s) were unknown to the source (404)",
    ),
    Check(
        "thread_not_stored",
        "completeness",
        E,
        "every done thread has its raw thread object",
        "{n} done thread(s) have no raw thread object",
    ),
    Check(
        "page_anomaly",
        "completeness",
        E,
        "no list ended abnormally (repeated cursor, empty page)",
        "{n} list(s) ended abnormally (repeated cursor, empty page)",
    ),
    Check(
        "source_route_missing",
        "completeness",
        W,
        "the source served every optional route (vector stores, files, run steps); a look-alike may not",
        "{n} optional route(s) the source does not serve (vector stores, files, run steps)",
    ),
    Check(
        "message_count_mismatch",
        "completeness",
        E,
        "stored messages per thread = what the source listed",
        "{n} thread(s) store another number of messages than the source listed",
    ),
    Check(
        "run_count_mismatch",
        "completeness",
        E,
        "stored runs per thread = what the source listed",
        "{n} thread(s) store another number of runs than the source listed",
    ),
    Check(
        "step_count_mismatch",
        "completeness",
        E,
        "stored run steps per thread = what the source listed",
        "{n} thread(s) store another number of run steps than the source listed",
    ),
    Check(
        "run_steps_missing",
        "completeness",
        E,
        "every completed run that declared tools has its steps",
        "{n} completed run(s) that declared tools have no steps",
    ),
    Check(
        "export_failure",
        "completeness",
        E,
        "no assistant, vector store or file listing failed",
        "{n} assistant, vector store or file listing(s) failed",
    ),
    Check(
        "file_unfetched",
        "completeness",
        E,
        "every referenced file was fetched",
        "{n} referenced file(s) were never fetched",
    ),
    Check(
        "file_blob_missing",
        "completeness",
        E,
        "every file recorded as obtained has its blob",
        "{n} file(s) recorded as obtained have no blob",
    ),
    Check(
        "file_size_mismatch",
        "completeness",
        E,
        "every downloaded file is as long as its file object says",
        "{n} downloaded file(s) are not as long as their file object says",
    ),
    Check(
        "file_content_missing",
        "completeness",
        W,
        "every referenced file has bytes or parsed text",
        "{n} referenced file(s) have neither bytes nor parsed text",
    ),
    # referential: nothing points at what is not there
    Check(
        "orphan_message",
        "referential",
        E,
        "every message's thread (and run, if named) is stored",
        "{n} message(s) point at a thread or run that is not stored",
    ),
    Check(
        "orphan_run",
        "referential",
        E,
        "every run's thread is stored",
        "{n} run(s) point at a thread that is not stored",
    ),
    Check(
        "orphan_step",
        "referential",
        E,
        "every run step's thread and run are stored",
        "{n} run step(s) point at a thread or run that is not stored",
    ),
    Check(
        "step_message_missing",
        "referential",
        E,
        "every message a message_creation step placed is stored",
        "{n} message(s) placed by a message_creation step are not stored",
    ),
    Check(
        "orphan_vector_store_file",
        "referential",
        E,
        "every vector store file's store is stored",
        "{n} vector store file(s) point at a store that is not stored",
    ),
    # sessions: what import and replay will send is what the raw rows say
    Check(
        "session_missing",
        "sessions",
        E,
        "every done thread has a session",
        "{n} done thread(s) have no session",
    ),
    Check(
        "session_stale",
        "sessions",
        E,
        "no session is older than the raw rows it came from",
        "{n} session(s) are older than the raw rows they came from",
    ),
    Check(
        "session_tampered",
        "sessions",
        E,
        "every stored session is JSON and matches its stored hash",
        "{n} stored session(s) are not JSON or differ from their stored hash",
    ),
    Check(
        "session_mismatch",
        "sessions",
        E,
        "every session equals its re-derivation (recorded options)",
        "{n} session(s) differ from their re-derivation (recorded options)",
    ),
    Check(
        "session_derive_failed",
        "sessions",
        E,
        "the converter re-derives every thread",
        "the converter failed on {n} thread(s)",
    ),
    Check(
        "session_orphan",
        "sessions",
        W,
        "no session belongs to a thread that is not done",
        "{n} session(s) belong to a thread that is not done",
    ),
)

# The converter's session validator (chat-completions validity, tool-call pairing, tool names, JSON
# Schemas, strict mode) has its own stable catalogue; each of its codes is one check here, named
# `session_<code>`. Pairing is about references (a tool output without its call), so it is filed there.
_PAIRING = {
    "tool_call_unanswered",
    "tool_call_answered_twice",
    "tool_call_id_duplicate",
    "tool_message_orphan",
}
_VALIDATOR: tuple[Check, ...] = tuple(
    Check(
        f"session_{code}",
        "referential" if code in _PAIRING else "sessions",
        Severity(severity),
        "validator: " + description.rstrip("."),
        "{n} session(s), validator: " + description.rstrip("."),
    )
    for code, (severity, description) in FINDING_CODES.items()
)

_TAIL: tuple[Check, ...] = (
    # A validator code this verify does not know yet still counts, at the validator's severity.
    Check(
        "session_invalid",
        "sessions",
        E,
        "validator errors under codes this verify does not know",
        "{n} validator error(s) under codes this verify does not know",
    ),
    Check(
        "session_lint",
        "sessions",
        W,
        "validator warnings under codes this verify does not know",
        "{n} validator warning(s) under codes this verify does not know",
    ),
    # budget: sessions fit the model they are meant for. Against a target named with --model or
    # --context-window an oversized session is an error; against the session's own (source) model,
    # when no target is named, it is a warning: that model is not necessarily where it is going.
    Check(
        "session_over_budget",
        "budget",
        E,
        "every session fits the target context window",
        "{n} session(s) exceed the target context window",
    ),
    Check(
        "session_over_model_window",
        "budget",
        W,
        "every session fits its own model's context window",
        "{n} session(s) exceed their own model's context window",
    ),
    Check(
        "budget_unknown_model",
        "budget",
        INFO,
        "every session's model has a known context window",
        "{n} model(s) have no known context window",
    ),
    # warnings: informational, conversion warnings never change an exit code
    Check(
        "conversion_warnings",
        "warnings",
        INFO,
        "conversion warnings, counted per code",
        "{n} conversion warning(s), counted per code",
    ),
)

CHECKS: tuple[Check, ...] = _CORE + _VALIDATOR + _TAIL
CHECK_BY_CODE: dict[str, Check] = {c.code: c for c in CHECKS}

# verify --against-source only (drift.py), here so that a verify without it never imports the
# source client and the export path drift.py fetches with.
DRIFT_CHECKS: tuple[Check, ...] = (
    # New or changed at the source since export: migrating now would lose them (export --refresh).
    Check("source_new", "drift", E, "the source holds no object the archive lacks"),
    Check("source_changed", "drift", E, "every archived object is unchanged at the source"),
    # Deleted at the source: the archive keeps more than the source, nothing is lost.
    Check("source_gone", "drift", W, "every archived object still exists at the source"),
    Check("source_fetch_failed", "drift", W, "every sampled thread could be re-fetched"),
)
