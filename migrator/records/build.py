"""One thread's log rows -> Assistants-shaped objects. Pure: no I/O, no clock; same rows, same objects.

The rows arrive in the thread's order, (created_at, row order). What they become:
- the thread: its id, the time of its first row, and as `metadata` the columns no field uses (the
  first non-empty value of each, e.g. `user_id`);
- a `user` or `assistant` row: a message (its text or content parts);
- a `system` row: the instructions of the runs that follow it (the session's system message);
- an `assistant` row with `tool_calls`: a `tool_calls` run step holding the calls; a `tool` row: the
  output of the call its `tool_call_id` names (or of the oldest call still unanswered).
Runs exist only when something needs one (tool calls, a `run_id`, a `model`, a `system` row): each
turn of assistant rows is one completed run, and inside a run with steps every message gets its
`message_creation` step, so text and tool calls keep their order within a second. Every object is
marked `"source": "records"`. Ids are derived from the thread id and the row's `message_id` (or its
place in the thread), so a rerun gives the same ids, and threads never collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from migrator.records.values import Fields

__all__ = ["BuildSettings", "BuiltThread", "RowIn", "build_thread", "SOURCE"]

SOURCE = "records"


@dataclass(frozen=True)
class BuildSettings:
    """What the command line adds to the rows (`--system-prompt` or `--assistant-id`)."""

    assistant_id: str | None = None  # for rows that name none
    instructions: str | None = None  # the system prompt: --system-prompt, or the assistant's
    model: str | None = None  # the assistant's model, for runs whose rows name none
    tools: tuple[dict[str, Any], ...] = ()  # the assistant's tools, declared on each run


class RowIn(NamedTuple):
    number: int  # the row's number in the source (1 = the first row)
    fields: Fields
    raw: Any  # the row verbatim, in whatever form the caller keeps it: passed through to `rows`


@dataclass
class BuiltThread:
    thread: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)  # the rows kept (each one's `raw`), in order
    rejected: list[tuple[RowIn, str]] = field(default_factory=list)


def _digest(thread_id: str, kind: str, key: str) -> str:
    return hashlib.sha256(f"{thread_id}\x1f{kind}\x1f{key}".encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _plain(content: str | list[dict[str, Any]]) -> str:
    """The text of a content (the parts' texts joined): a system prompt or a tool's output."""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        text = part.get("text")
        texts.append(
            text.get("value", "") if isinstance(text, dict) else text if isinstance(text, str) else ""
        )
    return "\n".join(t for t in texts if t)


def _parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    return content


def _needs_runs(rows: Sequence[RowIn]) -> bool:
    return any(
        r.fields.role in ("system", "tool") or r.fields.tool_calls or r.fields.run_id or r.fields.model
        for r in rows
    )


class _Thread:
    def __init__(self, thread_id: str, settings: BuildSettings, with_runs: bool) -> None:
        self.tid = thread_id
        self.settings = settings
        self.with_runs = with_runs
        self.instructions = settings.instructions or ""
        self.system_at: int | None = None  # when the newest system row came, until a run uses it
        self.run: dict[str, Any] | None = None  # the run of the current assistant turn
        self.run_key: str | None = None
        self.runs: dict[str, dict[str, Any]] = {}  # by key (the row's run_id, or the turn's number)
        self.steps_of: dict[str, list[dict[str, Any]]] = {}
        self.calls: dict[str, dict[str, Any]] = {}  # call id -> the call, for the tool rows
        self.unanswered: list[dict[str, Any]] = []  # function calls without output, oldest first
        self.message_keys: set[str] = set()

    def start_run(self, key: str, at: int, aid: str | None, model: str | None) -> dict[str, Any]:
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = {
                "id": "run_" + _digest(self.tid, "run", key),
                "object": "thread.run",
                "created_at": at,
                "thread_id": self.tid,
                "assistant_id": aid,
                "status": "completed",
                "started_at": at,
                "completed_at": at,
                "model": model,
                "instructions": self.instructions,
                "tools": list(self.settings.tools),
                "metadata": {},
                "source": SOURCE,
            }
            self.steps_of[run["id"]] = []
            self.system_at = None
        self.run, self.run_key = run, key
        return run

    def step(self, run: dict[str, Any], at: int, kind: str, details: dict[str, Any], n: int) -> None:
        self.steps_of[run["id"]].append(
            {
                "id": "step_" + _digest(self.tid, "step", f"{kind}:{n}"),
                "object": "thread.run.step",
                "created_at": at,
                "run_id": run["id"],
                "assistant_id": run["assistant_id"],
                "thread_id": self.tid,
                "type": kind,
                "status": "completed",
                "step_details": details,
                "completed_at": at,
                "source": SOURCE,
            }
        )


def build_thread(
    thread_id: str, rows: Sequence[RowIn], settings: BuildSettings = BuildSettings()
) -> BuiltThread:
    """The objects of one thread from its rows, in (created_at, row order)."""
    t = _Thread(thread_id, settings, _needs_runs(rows))
    metadata: dict[str, str] = {}
    for row in rows:
        for key, value in (row.fields.thread_metadata or {}).items():
            metadata.setdefault(key, value)
    out = BuiltThread(
        thread={
            "id": thread_id,
            "object": "thread",
            "created_at": int(rows[0].fields.at) if rows else 0,
            "metadata": metadata,
            "tool_resources": {},
            "source": SOURCE,
        }
    )
    for n, row in enumerate(rows):
        problem = _row(t, out, row, n)
        if problem:
            out.rejected.append((row, problem))
        else:
            out.rows.append(row.raw)
    if t.system_at is not None and t.runs:
        # The newest system row came after every run: an empty run carries it, so the session's
        # system message is the newest one the thread had.
        t.start_run(f"system:{len(t.runs)}", t.system_at, settings.assistant_id, None)
    elif t.system_at is not None:
        t.start_run("system", t.system_at, settings.assistant_id, settings.model)
    out.runs = sorted(t.runs.values(), key=lambda r: r["created_at"])  # stable: ties keep their order
    with_steps = [
        r["id"] for r in out.runs if r["tools"] or any(s["type"] == "tool_calls" for s in t.steps_of[r["id"]])
    ]
    out.steps = sorted((s for rid in with_steps for s in t.steps_of[rid]), key=lambda s: s["created_at"])
    return out


def _row(t: _Thread, out: BuiltThread, row: RowIn, n: int) -> str | None:
    f = row.fields
    at = int(f.at)
    if f.role == "system":
        t.instructions = _plain(f.content)
        t.system_at = at
        t.run = t.run_key = None
        return None
    if f.role == "tool":
        return _tool_output(t, f)
    if f.message_id is not None:
        if f.message_id in t.message_keys:
            return f"message_id {f.message_id!r} repeats an earlier row of thread {t.tid}"
        t.message_keys.add(f.message_id)
    run = None
    aid = None
    if f.role == "user":
        t.run = t.run_key = None
    else:
        aid = f.assistant_id or t.settings.assistant_id
        if t.with_runs:
            key = f.run_id or (t.run_key if t.run is not None else f"turn:{len(t.runs)}")
            run = t.run if t.run is not None and key == t.run_key else t.start_run(key, at, aid, None)
            run["completed_at"] = max(run["completed_at"], at)
            run["model"] = run["model"] or f.model or t.settings.model
    has_text = bool(f.content) if isinstance(f.content, list) else bool(f.content.strip())
    if f.role == "user" or has_text or not f.tool_calls:
        message = {
            "id": "msg_" + _digest(t.tid, "msg", f.message_id or f"#{n}"),
            "object": "thread.message",
            "created_at": at,
            "thread_id": t.tid,
            "status": "completed",
            "role": f.role,
            "content": _parts(f.content),
            "assistant_id": aid,
            "run_id": run["id"] if run else None,
            "attachments": [],
            "metadata": {**(f.metadata or {}), **({"name": f.name} if f.name else {})},
            "source": SOURCE,
        }
        out.messages.append(message)
        if run is not None:
            details = {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
            t.step(run, at, "message_creation", details, n)
    if f.tool_calls and run is not None:
        calls = []
        for i, given in enumerate(f.tool_calls):
            call = {**given, "id": given.get("id") or "call_" + _digest(t.tid, "call", f"{n}:{i}")}
            if call["type"] == "function":
                call["function"] = dict(call["function"])
                if call["function"].get("output") is None:
                    t.unanswered.append(call)
            t.calls[call["id"]] = call
            calls.append(call)
        t.step(run, at, "tool_calls", {"type": "tool_calls", "tool_calls": calls}, n)
    return None


def _tool_output(t: _Thread, f: Fields) -> str | None:
    if f.tool_call_id is not None:
        call = t.calls.get(f.tool_call_id)
        if call is None:
            return f"a tool output for call {f.tool_call_id!r}, which no earlier assistant row of the thread made"
    elif t.unanswered:
        call = t.unanswered[0]
    else:
        return "a tool output without tool_call_id, and no call of the thread is waiting for one"
    if call.get("type") != "function":
        return f"a tool output for the {call.get('type')} call {call['id']!r}, which holds its own output"
    if call["function"].get("output") is not None:
        return f"a second tool output for call {call['id']!r}"
    call["function"]["output"] = _plain(f.content)
    t.unanswered = [c for c in t.unanswered if c is not call]
    return None
