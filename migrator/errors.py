"""The one error tree of the project.

Every error a user can hit carries a one-line message that names the fix (which flag, which
environment variable, how to resume) and the exit code the CLI turns it into, in one place.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ExitCode",
    "MigrateError",
    "UsageError",
    "BadInputError",
    "NotAnArchiveError",
    "NewerSchemaError",
    "ArchiveBusyError",
    "ArchiveLockedError",
    "IncompleteDumpError",
    "WriteError",
    "RefusedError",
    "SourceRefusedError",
    "SourceGoneError",
    "NoAssistantsApiError",
    "CannotListThreadsError",
    "TargetRefusedError",
    "UnreachableError",
    "Interrupted",
]


class ExitCode(IntEnum):
    OK = 0
    ATTENTION = 1  # done, but something needs a look: failed threads, findings, low parity
    USAGE = 2  # bad usage or bad input, including a file that is not an archive
    REFUSED = 3  # the source or target refused to go on (401/403, quota, 410 Gone) or cannot be reached
    INTERRUPTED = 130


class MigrateError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MigrateError):
    exit_code = ExitCode.USAGE


class BadInputError(MigrateError):
    """An input file has lines or content we cannot use; all offending lines are listed."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []


class IncompleteDumpError(MigrateError):
    """A folder laid out like a `migrate dump` but without its manifest (written last): the dump
    was cut short, so what it holds is not all there is."""

    exit_code = ExitCode.ATTENTION


class NotAnArchiveError(MigrateError):
    exit_code = ExitCode.USAGE


class NewerSchemaError(MigrateError):
    exit_code = ExitCode.USAGE


class ArchiveLockedError(MigrateError):
    """Another process held a SQLite lock on the archive (a `sqlite3` shell in a transaction, a
    backup tool) for longer than a write may wait. What was committed is kept; the CLI adds the
    command to run again."""

    exit_code = ExitCode.ATTENTION
    resumable = True


class WriteError(MigrateError):
    """The disk refused a write (full, or gone read-only). The open transaction was rolled back;
    the CLI adds the command to run again."""

    exit_code = ExitCode.ATTENTION
    resumable = True


class ArchiveBusyError(MigrateError):
    """Another process is writing the archive (it holds the writer lock): one writer at a time."""

    exit_code = ExitCode.USAGE


class RefusedError(MigrateError):
    """401/403, exhausted quota, 410 Gone: going on would only repeat the refusal."""

    exit_code = ExitCode.REFUSED
    sent = False  # the request path sets it: was this request on the wire when the refusal came?


class SourceRefusedError(RefusedError):
    """The Assistants source refused."""


class TargetRefusedError(RefusedError):
    """The target provider (chat completions, Conversations API) refused."""


class SourceGoneError(SourceRefusedError):
    """410 Gone: the Assistants API of this source has been shut down."""


class NoAssistantsApiError(SourceGoneError):
    """The source has no Assistants API at that URL: OpenAI's 404 "Invalid URL" since 2026-08-26, a 404 on
    the assistants collection, a 400 saying the API is deprecated, or 410 Gone. No thread is marked
    missing for it: the run stops at once."""


class CannotListThreadsError(UsageError):
    """`--all-threads` on a source that serves no thread list (OpenAI never did): give the ids instead."""


class UnreachableError(MigrateError):
    """Connections to the source or target keep failing (refused, no answer...): the run stops soon
    instead of failing every thread one by one. What was done is kept."""

    exit_code = ExitCode.REFUSED
    sent = False  # the request path sets it: was this request on the wire when the run stopped?

    def __init__(self, host: str, reason: str, flag: str) -> None:
        super().__init__(f"cannot connect to {host} ({reason})", hint=f"check {flag}")
        self.host = host
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}"


class Interrupted(MigrateError):
    """SIGINT/SIGTERM after a clean stop; the hint carries the resume command (the CLI adds it
    when the library could not know it)."""

    exit_code = ExitCode.INTERRUPTED
    resumable = True
    sent = False  # raised inside the request path: was the request on the wire (its outcome unknown)?
