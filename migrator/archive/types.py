"""The values the archive's rooms take and give: plain dataclasses, no database in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BATCH_TARGET",
    "Anomaly",
    "ConversationLink",
    "Failure",
    "FileContent",
    "LooseObject",
    "RecordThread",
    "ReplayRow",
    "PackedSession",
    "SessionRow",
    "SessionState",
    "StoredFile",
    "ThreadOutline",
    "ThreadRaw",
    "ThreadResult",
    "ThreadSettlement",
    "VectorLink",
]


@dataclass(frozen=True)
class Failure:
    entity: str  # thread | file | assistants | vector_stores | vector_store
    entity_id: str
    error_class: str
    message: str
    status_code: int | None = None
    attempts: int = 1


@dataclass(frozen=True)
class Anomaly:
    entity: str
    entity_id: str
    kind: str  # repeated_cursor | empty_page_has_more
    detail: str


@dataclass
class ThreadResult:
    """Everything one thread's export produced, committed in one transaction."""

    thread_id: str
    status: str  # done | failed | missing
    thread: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    file_refs: set[str] = field(default_factory=set)  # ids of the files this thread mentions
    failure: Failure | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    messages_seen: int = 0
    runs_seen: int = 0
    steps_seen: int = 0
    # A --refresh delta adds to what was seen before; a full fetch replaces it.
    delta: bool = False


@dataclass(frozen=True)
class FileContent:
    """What we obtained of a file's bytes: the bytes, the vector store's parsed text, or nothing."""

    kind: str  # downloaded | parsed_text | missing
    data: bytes | None = None
    vector_store_id: str | None = None


@dataclass(frozen=True)
class LooseObject:
    """One raw object that arrived on its own (a saved dump), not grouped under its thread."""

    table: str  # a RAW_TABLES name other than `files` (files go through archive.files.store)
    obj: dict[str, Any]
    # The thread (messages, runs, run_steps) or vector store (vector_store_files) it belongs to.
    parent_id: str | None = None
    # Files an assistant's tool resources mention (the refs store_assistants records).
    file_refs: frozenset[str] = frozenset()
    # Where the dump put it (file, then line order): the tie-break between objects of one second.
    position: int | None = None
    # Where it was read (file and line), kept beside a version for the report.
    origin: str | None = None


@dataclass(frozen=True)
class ThreadSettlement:
    """A thread's verdict once every row a dump holds for it is in: its status, refs and findings."""

    thread_id: str
    status: str  # done | pending
    file_refs: frozenset[str] = frozenset()
    anomalies: tuple[Anomaly, ...] = ()
    # Anomaly kinds this verdict owns: cleared first, so a later, fuller dump takes them back.
    owned_kinds: tuple[str, ...] = ()
    # Messages, runs and steps the dump held for the thread but that could not be kept: they count
    # as seen beside the rows held, so verify reports what was lost.
    unkept: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class ThreadRaw:
    """The stored raw text of one thread's rows (the thread itself may be absent), ascending."""

    thread_id: str
    thread: str | None
    messages: list[str]
    runs: list[str]
    steps: list[str]


@dataclass(frozen=True)
class ThreadOutline:
    """What ruling on a dumped thread needs of its rows, read from their columns: the run each
    message and step names, each run's (id, status, has_tools), and the raw text of only the thread
    and the messages and steps that may name a file (see `RawObjects.threads_outline`)."""

    thread_id: str
    thread: str | None
    message_runs: list[Any]
    runs: list[tuple[str, Any, int]]
    step_runs: list[Any]
    message_texts: list[str]
    step_texts: list[str]


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    filename: str | None
    sha256: str | None
    bytes: int | None
    content: str
    mime: str | None


@dataclass(frozen=True)
class SessionRow:
    thread_id: str
    record: dict[str, Any]
    tokens: int
    tools: list[dict[str, Any]]
    warnings: dict[str, int]


@dataclass(frozen=True)
class PackedSession:
    """A SessionRow as it is stored (`archive.sessions.pack`): made where it was derived, so a
    worker process sends back a few strings instead of the record's objects, and the writer only
    inserts them."""

    thread_id: str
    record: str  # the canonical JSON
    hash: str
    messages: int
    tokens: int
    tools: tuple[tuple[str, str, str], ...]  # (name, hash, canonical JSON) of each definition
    warnings: tuple[tuple[str, int], ...]  # (code, count), by code


@dataclass(frozen=True)
class SessionState:
    """A thread an import or a replay may send: its work status, whether its session is stale, the
    stored record (None when there is none, or when it was not asked for)."""

    thread_id: str
    status: str | None  # the work status; None for a session with no work row
    stale: bool
    has_session: bool
    record: str | None

    @property
    def unfinished(self) -> bool:
        return self.status is not None and self.status != "done"


# The ledger target of rows carried by the Batch API (whichever endpoint the files were uploaded to).
BATCH_TARGET = "batch"


@dataclass(frozen=True)
class ReplayRow:
    """One row of the replay ledger: a request (by hash) and what became of it."""

    request_hash: str
    state: str  # batched | sent | done | rejected | failed
    thread_id: str | None = None
    turn: int | None = None
    model: str | None = None
    attempts: int = 0
    status_code: int | None = None
    response: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    via: str | None = None
    target: str = BATCH_TARGET  # the base URL that answered (live), or `batch`


@dataclass(frozen=True)
class ConversationLink:
    """One row of the thread -> conversation map (see m004_create_conversation_map)."""

    target: str
    thread_id: str
    conversation_id: str | None
    status: str  # creating | open | done | failed | diverged
    idempotency_key: str
    unconfirmed_creates: int
    items_total: int | None
    items_sent: int
    sent_digest: str | None
    metadata_dropped: str | None
    error: str | None


@dataclass(frozen=True)
class RecordThread:
    """One thread made from log rows (`export --from-records`): its Assistants objects, its rows
    verbatim, and their digest."""

    thread_id: str
    digest: str
    thread: dict[str, Any]
    messages: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    rows: list[tuple[str, str]]  # each row's verbatim JSON and digest, in (created_at, row order)
    source: str  # the file, or the database URL with its password masked
    file_refs: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class VectorLink:
    """One row of the vector-store map (see m008_create_vector_map)."""

    target: str
    kind: str  # store | file | attachment
    source_store_id: str
    source_file_id: str
    target_id: str | None
    status: str
    content: str | None = None
    upload_name: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    unconfirmed_creates: int = 0
    error: str | None = None
