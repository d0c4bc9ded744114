"""Helpers of the `migrate import` tests: session archives, the CLI through `main()`, sandbox reads."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from typer.testing import CliRunner

from migrator.archive import Archive, SessionRow
from migrator.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "convert"
SANDBOX_THREADS = 30
_BUILT: dict[str, Path] = {}


def golden_records() -> list[dict[str, Any]]:
    """The converter's golden sessions, one thread id per fixture (several fixtures share one)."""
    records = []
    for expected in sorted(FIXTURES.glob("*/expected.json")):
        record = json.loads(expected.read_text())
        record["thread_id"] = f"thread_{expected.parent.name}"
        records.append(record)
    return records


def long_record(thread_id: str, turns: int, *, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A session of 1 system + `turns` x (user, assistant tool call, tool, assistant) messages."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are the support bot."}]
    sources = ["instructions:run_x"]
    for i in range(turns):
        call_id = f"call_{thread_id[-6:]}_{i}"
        messages += [
            {"role": "user", "content": f"question {i} of {thread_id}"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "lookup", "arguments": f'{{"n": {i}}}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": f"result {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
        sources += [f"msg_u{i}", f"step_{i}", f"step_{i}:{call_id}", f"msg_a{i}"]
    return {
        "format": "migrator.session/v1",
        "thread_id": thread_id,
        "created_at": 1_700_000_000,
        "metadata": metadata if metadata is not None else {"user_id": f"user-{thread_id[-4:]}"},
        "assistant_id": "asst_long",
        "model": "gpt-4.1",
        "params": {"temperature": 0.5},
        "messages": messages,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Look a number up.",
                    "parameters": {
                        "type": "object",
                        "properties": {"n": {"type": "integer"}},
                        "required": ["n"],
                    },
                },
            }
        ],
        "sources": sources,
        "files": [],
        "warnings": [],
    }


def build_archive(
    path: Path, records: Iterable[dict[str, Any]], assistants: list[dict[str, Any]] = ()
) -> Path:
    """An archive holding exactly these sessions (and assistants), as export would store them."""
    with Archive.create(path) as archive:
        if assistants:
            archive.raw.store_assistants(list(assistants), set())
        archive.sessions.store(
            [SessionRow(r["thread_id"], copy.deepcopy(r), tokens=0, tools=r.get("tools") or [], warnings={})
             for r in records]
        )  # fmt: skip
    return path


def run_cli(*args: str) -> tuple[int, bytes, str]:
    """`migrate ARGS` through `main()`, the console script's entry point, where errors become exit
    codes: (exit code, stdout bytes, stderr). Never a traceback."""
    with CliRunner().isolation() as (out, err, _):
        code = main(list(args))
        stdout, stderr = out.getvalue(), err.getvalue().decode()
    assert "Traceback" not in stderr, stderr
    return code, stdout, stderr


def conversation_items(base_url: str, conversation_id: str) -> list[dict[str, Any]]:
    """Every item of a conversation on the sandbox, oldest first, over real HTTP."""
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    items: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.conversations.items.list(
            conversation_id, limit=100, order="asc", **({"after": after} if after else {})
        )
        items += [item.model_dump(exclude_none=True) for item in page.data]
        if not page.has_more:
            return items
        after = page.data[-1].id


def same_item(sent: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Does the item the server holds say what we sent (ids, status and typed parts are the server's)?"""
    if sent["type"] != stored["type"]:
        return False
    if sent["type"] == "message":
        texts = [p.get("text") or p.get("refusal") or p.get("image_url") for p in stored["content"]]
        content = sent["content"]
        wanted = (
            [content] if isinstance(content, str) else [p.get("text") or p.get("image_url") for p in content]
        )
        return sent["role"] == stored["role"] and texts == wanted
    keys = ("call_id", "name", "arguments") if sent["type"] == "function_call" else ("call_id", "output")
    return all(sent[k] == stored[k] for k in keys)


def read_map(db: Path) -> list[dict[str, Any]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from conversation_map order by thread_id")]
    finally:
        conn.close()


def loads_lines(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines()]


@pytest.fixture(scope="session")
def sandbox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real archive: 30 sandbox threads exported by `run_export`, sessions built (read-only: copy it)."""
    from migrator.export import ExportOptions, run_export
    from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids
    from migrator.source import SourceSettings
    from migrator.threadlist import ThreadEntry

    # Imported into several test modules, so pytest sees one fixture per module: build it once.
    if "sandbox" in _BUILT:
        return _BUILT["sandbox"]
    path = tmp_path_factory.mktemp("sandbox-archive") / "archive.db"
    entries = [ThreadEntry(tid, {"user_id": f"u{i}"}) for i, tid in enumerate(thread_ids(SANDBOX_THREADS, 7))]
    with (
        SandboxServer(SandboxConfig(threads=SANDBOX_THREADS, seed=7), port=0) as srv,
        Archive.create(path) as archive,
    ):
        summary = run_export(
            archive, entries, SourceSettings(base_url=srv.base_url, api_key="k"), ExportOptions(), None
        )
        assert summary.threads_done == SANDBOX_THREADS, summary
    _BUILT["sandbox"] = path
    return path


def copy_archive(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "archive.db"
    shutil.copyfile(source, target)
    return target


def records_of(archive_path: Path) -> dict[str, dict[str, Any]]:
    with Archive.open(archive_path) as archive:
        return {tid: orjson.loads(raw) for tid, raw in archive.sessions.records()}


def sandbox_conversations(server: Any) -> list[dict[str, Any]]:
    """Every conversation the sandbox holds (there is no API to list them; the sandbox has no public
    accessor yet, so this reads its Conversations handler's table, read-only)."""
    _, handler, _ = server.app.router.match("POST", "/v1/conversations")
    api = handler.__self__
    with api._lock:
        return list(api._conversations.values())
