"""A support platform's own message log, made from a sandbox corpus, for the --from-records tests.

The log is shaped like a real one: one row per message in time order across every conversation (so
a thread's rows are scattered through it), ISO 8601 timestamps with one-second resolution (several
rows in one second), a customer id column and a user id column, and the function calls of each turn
as an assistant row with `tool_calls` (chat-completions form) followed by one `tool` row per output.
What the sessions must hold comes from the corpus itself, never from the code under test.
"""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from migrator.sandbox.corpus import Corpus

COLUMNS = (
    "id",
    "conversation_id",
    "role",
    "body",
    "sent_at",
    "customer_id",
    "user_id",
    "tool_calls",
    "tool_call_id",
)
# How the log's columns map to the fields (`--map FIELD=COLUMN`); role, user_id etc. keep their names.
MAPS = ("thread_id=conversation_id", "content=body", "created_at=sent_at")


@dataclass
class Log:
    rows: list[dict[str, Any]]  # in the log's order (time order across threads)
    texts: dict[str, list[tuple[str, str]]]  # thread id -> (role, text) of each message, in order
    users: dict[str, str]  # thread id -> user_id
    calls: dict[str, int]  # thread id -> function calls in its rows


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(message: dict[str, Any]) -> str:
    return "\n\n".join(
        p["text"]["value"] if p["type"] == "text" else p["refusal"]
        for p in message["content"]
        if p["type"] in ("text", "refusal")
    )


def corpus_log(threads: int = 24, seed: int = 11) -> Log:
    corpus = Corpus(threads, seed)
    per_thread: list[list[tuple[int, dict[str, Any]]]] = []
    texts: dict[str, list[tuple[str, str]]] = {}
    users: dict[str, str] = {}
    calls: dict[str, int] = {}
    for index in range(threads):
        data = corpus.thread(index)
        tid = data.thread["id"]
        user = data.thread["metadata"].get("user_id") or f"u_anon_{index}"
        users[tid] = user
        customer = 1000 + index % 7
        rows: list[tuple[int, dict[str, Any]]] = []
        emitted: set[str] = set()

        def row(at: int, role: str, body: str, tool_calls: str = "", tool_call_id: str = "") -> None:
            at = max(at, rows[-1][0]) if rows else at  # noqa: B023  a log's clock never goes back
            rows.append(  # noqa: B023
                (
                    at,
                    {
                        "conversation_id": tid,  # noqa: B023  (called inside this loop only)
                        "role": role,
                        "body": body,
                        "sent_at": iso(at),
                        "customer_id": customer,  # noqa: B023
                        "user_id": user,  # noqa: B023
                        "tool_calls": tool_calls,
                        "tool_call_id": tool_call_id,
                    },
                )
            )

        texts[tid] = []
        calls[tid] = 0
        for message in data.messages:
            run_id = message["run_id"]
            if message["role"] == "assistant" and run_id and run_id not in emitted:
                emitted.add(run_id)
                for step in data.steps[run_id]:
                    details = step["step_details"]
                    functions = [c for c in details.get("tool_calls", []) if c["type"] == "function"]
                    if not functions:
                        continue
                    chat = [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {
                                "name": c["function"]["name"],
                                "arguments": c["function"]["arguments"],
                            },
                        }
                        for c in functions
                    ]
                    row(step["created_at"], "assistant", "", orjson.dumps(chat).decode())
                    calls[tid] += len(chat)
                    for c in functions:
                        if c["function"]["output"] is not None:
                            row(step["created_at"], "tool", c["function"]["output"], tool_call_id=c["id"])
            text = _text(message)
            row(message["created_at"], message["role"], text)
            texts[tid].append((message["role"], text))
        per_thread.append(rows)
    # The log is in time order across conversations; within a second, each thread keeps its own order.
    merged = sorted(
        ((at, n, i, r) for i, rows in enumerate(per_thread) for n, (at, r) in enumerate(rows)),
        key=lambda item: item[0],
    )
    log_rows = [{"id": k + 1, **r} for k, (_, _, _, r) in enumerate(merged)]
    return Log(log_rows, texts, users, calls)


def write_sqlite(log: Log, path: Path, table: str = "support_messages") -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        f"create table {table} (id integer primary key, conversation_id text not null, role text not null, "
        "body text, sent_at text not null, customer_id integer, user_id text, tool_calls text, tool_call_id text)"
    )
    conn.executemany(
        f"insert into {table} values ({', '.join('?' * len(COLUMNS))})",
        [tuple(r[c] if r[c] != "" else None for c in COLUMNS) for r in log.rows],
    )
    conn.commit()
    conn.close()


def write_csv(log: Log, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in log.rows:
            writer.writerow([r[c] for c in COLUMNS])


def sessions(path: Path) -> dict[str, dict[str, Any]]:
    return {
        (record := orjson.loads(line))["thread_id"]: record
        for line in path.read_bytes().splitlines()
        if line.strip()
    }


def texts_of(session: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every user and assistant message that carries text (not tool-call messages)."""
    return [
        (m["role"], m["content"])
        for m in session["messages"]
        if m["role"] in ("user", "assistant") and not m.get("tool_calls")
    ]
