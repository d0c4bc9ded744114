"""`--to agents-sqlite`: the OpenAI Agents SDK's `SQLiteSession` database, written with plain sqlite3.

    Runner.run(agent, "next question", session=SQLiteSession(thread_id, "sessions.db"))

resumes the conversation. The schema is the one `agents.memory.SQLiteSession` creates (same DDL,
same default table names), one Responses input item a row in conversation order, each stored as
`json.dumps(item)` exactly as the SDK stores what it adds; `session_id` is the thread id.

Instructions are not session items: the sidecar `agents.json` maps each assistant id to an Agent
definition (name, instructions, model, model settings, function tools), and lists the threads whose
runs used other instructions than their assistant's. `docs/import.md` shows how to load it.

Re-running is safe: a session already in the database with the same items (or more, when the
conversation went on since) is left alone; one holding different items is never overwritten and is
reported. Sessions are committed in batches, so a killed import leaves each session whole or absent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from migrator.archive import Archive
from migrator.convert.models import is_reasoning_model
from migrator.errors import UsageError
from migrator.importers.common import ImportSummary, MappingWriter, ProgressCallback, Selection, Ticker
from migrator.importers.items import (
    agent_tools,
    file_search_tool,
    hosted_tools,
    session_instructions,
    session_items,
)
from migrator.outputs import check_output, create_private, write_private

__all__ = ["AGENTS_FORMAT", "SESSIONS_TABLE", "MESSAGES_TABLE", "import_agents_sqlite", "sidecar_path"]

TARGET = "agents-sqlite"
AGENTS_FORMAT = "migrator.agents/v1"
SESSIONS_TABLE = "agent_sessions"
MESSAGES_TABLE = "agent_messages"
BATCH = 500

# The DDL of agents.memory.sqlite_session.SQLiteSession._create_schema_for_connection (openai-agents
# 0.24), so the SDK finds the tables it would have created and `CREATE ... IF NOT EXISTS` is a no-op.
_SCHEMA = (
    f"""
            CREATE TABLE IF NOT EXISTS {SESSIONS_TABLE} (
                session_id TEXT PRIMARY KEY,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
            )
        """,
    f"""
            CREATE TABLE IF NOT EXISTS {MESSAGES_TABLE} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                message_data TEXT NOT NULL,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                FOREIGN KEY (session_id) REFERENCES {SESSIONS_TABLE} (session_id)
                    ON DELETE CASCADE
            )
        """,
    f"""
            CREATE INDEX IF NOT EXISTS idx_{MESSAGES_TABLE}_session_id
            ON {MESSAGES_TABLE} (session_id, id)
        """,
)


def sidecar_path(out: Path) -> Path:
    """Where agents.json goes: beside the session database."""
    return out.parent / "agents.json"


def import_agents_sqlite(
    archive: Archive,
    out: Path,
    selection: Selection = Selection(),
    *,
    mapping_out: Path | None = None,
    sidecar: Path | None = None,
    progress: ProgressCallback | None = None,
    stores_of: str | None = None,
) -> ImportSummary:
    """Write the selected sessions into the SQLiteSession database OUT and the agents sidecar.

    An assistant that used file_search gets the native `file_search` tool in agents.json, bound to
    the vector stores `import --to vector-stores` rebuilt (on `stores_of`, a base URL; by default
    the one target the archive's map names), when they were; else its emulated function stays and
    `file_search_unbound` is noted.
    """
    out = Path(out)
    sidecar = sidecar or sidecar_path(out)
    summary = ImportSummary(TARGET, out=str(out), sidecar=str(sidecar))
    records = selection.records(archive, summary)
    summary.mapping_out = str(mapping_out) if mapping_out else None
    target = archive.vector_map.target_for(stores_of)
    agents = _AgentBook(archive.raw.assistants(), archive.vector_map.rebuilt_stores(target) if target else {})
    ticker = Ticker(TARGET, summary.selected, progress)
    conn = _open(out)
    try:
        with MappingWriter(mapping_out) as mapping:
            for batch in _batches(records, BATCH):
                with conn:  # one transaction a batch: a kill leaves each session whole or absent
                    for thread_id, raw in batch:
                        record = orjson.loads(raw)
                        _import_one(conn, thread_id, record, summary, mapping)
                        agents.add(thread_id, record)
                ticker(summary.imported + summary.already + len(summary.failed), summary.items)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    agents.write(sidecar, summary)
    ticker(summary.imported + summary.already + len(summary.failed), summary.items, final=True)
    summary.elapsed = ticker.elapsed
    return summary


def _open(out: Path) -> sqlite3.Connection:
    check_output(out, "--out", what="the session database's")
    try:
        create_private(out)  # before SQLite creates it with the umask's mode: it holds the conversations
        conn = sqlite3.connect(str(out), isolation_level="DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")  # what the SDK sets on every connection it opens
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.commit()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"--out {out}: not a SQLite database the Agents SDK can use ({exc})") from None
    return conn


def _batches(records: Iterator[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    batch: list[tuple[str, bytes]] = []
    for entry in records:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _import_one(
    conn: sqlite3.Connection,
    thread_id: str,
    record: dict[str, Any],
    summary: ImportSummary,
    mapping: MappingWriter,
) -> None:
    converted = session_items(record)
    items = converted.items
    stored = conn.execute(
        f"select message_data from {MESSAGES_TABLE} where session_id = ? order by id limit ?",
        [thread_id, len(items) + 1],
    ).fetchall()
    exists = (
        stored or conn.execute(f"select 1 from {SESSIONS_TABLE} where session_id = ?", [thread_id]).fetchone()
    )
    if exists:
        if [json.loads(row[0]) for row in stored[: len(items)]] == items:
            summary.already += 1
            mapping.row(thread_id, TARGET, thread_id, "already_imported", len(items), record)
            return
        reason = f"SQLiteSession {thread_id} already holds other items; left untouched"
        summary.failed.append((thread_id, reason))
        mapping.row(thread_id, TARGET, thread_id, "conflict", len(stored), record, reason)
        return
    conn.execute(
        f"insert into {SESSIONS_TABLE} (session_id, created_at) values (?, ?)",
        [thread_id, _timestamp(record.get("created_at"))],
    )
    conn.executemany(
        f"insert into {MESSAGES_TABLE} (session_id, message_data) values (?, ?)",
        [(thread_id, json.dumps(item)) for item in items],
    )
    for code, n in converted.notes.items():
        summary.note(code, n)
    summary.imported += 1
    summary.items += len(items)
    mapping.row(thread_id, TARGET, thread_id, "imported", len(items), record)


def _timestamp(created_at: Any) -> str | None:
    """The thread's creation time in SQLite's CURRENT_TIMESTAMP form (UTC), as the SDK's column holds."""
    if not isinstance(created_at, int | float):
        return None
    return datetime.fromtimestamp(created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class _Agent:
    definition: dict[str, Any]
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: int = 0


class _AgentBook:
    """Collects one Agent definition per assistant while the sessions stream past."""

    def __init__(self, assistants: dict[str, dict[str, Any]], rebuilt: dict[str, str]) -> None:
        self.assistants = assistants
        self.rebuilt = rebuilt  # source vector store -> rebuilt store
        self.unbound: set[str] = set()  # assistants whose file_search stays emulated
        self.agents: dict[str, _Agent] = {}
        self.thread_instructions: dict[str, str | None] = {}  # thread -> its own, when they differ
        self.conflicts = 0
        self.without_assistant = 0

    def add(self, thread_id: str, record: dict[str, Any]) -> None:
        assistant_id = record.get("assistant_id")
        instructions = session_instructions(record)
        if not assistant_id:
            self.without_assistant += 1
            self.thread_instructions[thread_id] = instructions
            return
        agent = self.agents.get(assistant_id)
        if agent is None:
            agent = self.agents[assistant_id] = _Agent(self._definition(assistant_id, record, instructions))
        agent.sessions += 1
        search = None
        if "file_search" in hosted_tools(record):
            search, unbound = file_search_tool(self.assistants.get(assistant_id), None, self.rebuilt)
            if search is None or unbound:
                self.unbound.add(assistant_id)
        for tool in agent_tools(record):
            if tool["name"] == "file_search" and search is not None:
                tool = {**search, "name": "file_search"}  # named for the merge below; dropped on write
            known = agent.tools.setdefault(tool["name"], tool)
            if known != tool:
                self.conflicts += 1  # sessions are sorted: the lowest thread id's definition wins
        # None marks "same as the agent", so a re-import of a fixed thread clears an old entry.
        differs = instructions is not None and instructions != agent.definition["instructions"]
        self.thread_instructions[thread_id] = instructions if differs else None

    def _definition(
        self, assistant_id: str, record: dict[str, Any], instructions: str | None
    ) -> dict[str, Any]:
        raw = self.assistants.get(assistant_id) or {}
        model = raw.get("model") or record.get("model")
        settings: dict[str, Any] = {}
        if not is_reasoning_model(model):
            settings = {k: raw[k] for k in ("temperature", "top_p") if raw.get(k) is not None}
        definition: dict[str, Any] = {
            "name": raw.get("name") or assistant_id,
            # The assistant's own instructions; an assistant gone from the archive lends its first
            # session's (the instructions its newest run used).
            "instructions": raw.get("instructions") if raw else instructions,
            "model": model,
            "model_settings": settings,
        }
        response_format = raw.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") in (
            "json_object",
            "json_schema",
        ):
            definition["response_format"] = response_format
        return definition

    def write(self, path: Path, summary: ImportSummary) -> None:
        """Merge into an existing agents.json (a filtered import adds to it), then replace it whole."""
        document: dict[str, Any] = {"format": AGENTS_FORMAT, "agents": {}, "thread_instructions": {}}
        if path.exists():
            try:
                existing = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                existing = None
            if not isinstance(existing, dict) or existing.get("format") != AGENTS_FORMAT:
                raise UsageError(f"{path}: exists and is not a {AGENTS_FORMAT} sidecar; move it away")
            document["agents"].update(existing.get("agents") or {})
            document["thread_instructions"].update(existing.get("thread_instructions") or {})
        for assistant_id, agent in self.agents.items():
            tools = [
                {k: v for k, v in tool.items() if k != "name"} if tool.get("type") == "file_search" else tool
                for tool in (agent.tools[name] for name in sorted(agent.tools))
            ]
            document["agents"][assistant_id] = {**agent.definition, "tools": tools}
        for thread_id, instructions in self.thread_instructions.items():
            if instructions is None:
                document["thread_instructions"].pop(thread_id, None)
            else:
                document["thread_instructions"][thread_id] = instructions
        write_private(path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        if self.conflicts:
            summary.note("agent_tool_conflict", self.conflicts)
        if self.without_assistant:
            summary.note("session_without_assistant", self.without_assistant)
        if self.unbound:
            summary.note("file_search_unbound", len(self.unbound))
        differing = sum(1 for v in self.thread_instructions.values() if v is not None)
        if differing:
            summary.note("thread_instructions_differ", differing)
