"""`migrate import --to agents-sqlite`, checked with the real `openai-agents` package (a dev dependency)."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, FunctionTool, ModelSettings, RunConfig, Runner, SQLiteSession
from agents.models.chatcmpl_converter import Converter
from agents.testing import ScriptedModel, assistant_message
from test_import_support import (
    build_archive,
    copy_archive,
    golden_records,
    records_of,
    run_cli,
    sandbox_archive,  # noqa: F401  (a fixture)
)

from migrator.archive import Archive
from migrator.importers import import_agents_sqlite, session_items


def _schema(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("select name, sql from sqlite_master where name not like 'sqlite_%'"))
    finally:
        conn.close()


def _agent(definition: dict[str, Any], model: ScriptedModel, instructions: str | None) -> Agent[Any]:
    """What docs/import.md tells the user to write: an Agent from one agents.json entry."""

    async def not_called(ctx: Any, arguments: str) -> str:
        raise AssertionError("history replay must not run tools")

    tools = [
        FunctionTool(
            name=t["name"],
            description=t["description"],
            params_json_schema=t["parameters"],
            on_invoke_tool=not_called,
            strict_json_schema=t["strict"],
        )
        for t in definition["tools"]
    ]
    return Agent(
        name=definition["name"],
        instructions=instructions,
        model=model,
        model_settings=ModelSettings(**definition["model_settings"]),
        tools=tools,
    )


def test_sandbox_archive_resumes_in_the_agents_sdk(sandbox_archive, tmp_path):  # noqa: F811
    archive = copy_archive(sandbox_archive, tmp_path)
    out = tmp_path / "sessions.db"
    code, _, err = run_cli("import", str(archive), "--to", "agents-sqlite", "--out", str(out))
    assert code == 0, err
    records = records_of(archive)
    sidecar = json.loads((tmp_path / "agents.json").read_text())

    # The SDK's own SQLiteSession creates exactly the schema we wrote (its DDL is a no-op on our file).
    reference = tmp_path / "reference.db"
    SQLiteSession("probe", reference).close()
    assert _schema(out) == _schema(reference)

    async def check() -> int:
        with_calls = 0
        for thread_id, record in records.items():
            items = session_items(record).items
            session = SQLiteSession(thread_id, out)
            try:
                assert await session.get_items() == items, thread_id
                with_calls += any(i["type"] == "function_call" for i in items)
                assistant_id = record["assistant_id"]
                definition = sidecar["agents"].get(assistant_id) if assistant_id else None
                instructions = sidecar["thread_instructions"].get(
                    thread_id, (definition or {}).get("instructions")
                )
                model = ScriptedModel([[assistant_message("Welcome back!")]])
                agent = (
                    _agent(definition, model, instructions) if definition else Agent(name="x", model=model)
                )
                result = await Runner.run(
                    agent, "I'm back.", session=session, run_config=RunConfig(tracing_disabled=True)
                )
                assert result.final_output == "Welcome back!"
                call = model.first_call
                # The restored history reaches the model whole and in order, then the new turn.
                assert call.input == [*items, {"role": "user", "content": "I'm back."}], thread_id
                assert call.system_instructions == instructions
                if definition:
                    assert sorted(t.name for t in call.tools) == [t["name"] for t in definition["tools"]]
                stored = await session.get_items()
                assert stored[: len(items)] == items and len(stored) == len(items) + 2
            finally:
                session.close()
        return with_calls

    assert asyncio.run(check()) > 0  # the sandbox corpus has function calls and emulated hosted tools


def test_items_read_back_as_the_sessions_chat_messages(sandbox_archive, tmp_path):  # noqa: F811
    """The SDK's chat-completions converter turns the items back into the session's own messages
    (assistant content parts are one string by design)."""
    records = list(records_of(sandbox_archive).values()) + golden_records()
    for record in records:
        want = []
        for message in (
            record["messages"][1:]
            if record["messages"][0]["role"] in ("system", "developer")
            else record["messages"]
        ):
            message = dict(message)
            if message["role"] == "assistant" and isinstance(message.get("content"), list):
                message["content"] = "\n\n".join(
                    p.get("text") or p.get("refusal") for p in message["content"]
                )
            if message["role"] == "assistant" and message.get("content") is None:
                message.pop("content")
            want.append(message)
        got = [dict(m) for m in Converter.items_to_messages(session_items(record).items)]
        for message in got:
            if message.get("content") is None:
                message.pop("content", None)
        assert got == want, record["thread_id"]


def test_reimport_is_a_no_op_and_a_different_session_is_never_overwritten(tmp_path):
    records = golden_records()
    archive = build_archive(tmp_path / "a.db", records)
    out = tmp_path / "s.db"
    with Archive.open(archive) as store:
        first = import_agents_sqlite(store, out)
    assert first.imported == len(records) and first.clean

    # The conversation of one thread went on in production; another was replaced by hand.
    async def tamper() -> None:
        going_on = SQLiteSession("thread_basic_chat", out)
        await going_on.add_items([{"role": "user", "content": "later turn"}])
        going_on.close()
        replaced = SQLiteSession("thread_unicode", out)
        await replaced.clear_session()
        await replaced.add_items([{"role": "user", "content": "someone else"}])
        replaced.close()

    asyncio.run(tamper())
    mapping = tmp_path / "map.csv"
    code, _, err = run_cli(
        "import", str(archive), "--to", "agents-sqlite", "--out", str(out), "--mapping-out", str(mapping)
    )
    assert code == 1, err
    assert "thread_unicode" in err and "left untouched" in err
    rows = {r["thread_id"]: r for r in csv.DictReader(mapping.open())}
    assert rows["thread_basic_chat"]["status"] == "already_imported"
    assert rows["thread_unicode"]["status"] == "conflict"

    async def read(thread_id: str) -> list[Any]:
        session = SQLiteSession(thread_id, out)
        try:
            return await session.get_items()
        finally:
            session.close()

    assert asyncio.run(read("thread_unicode")) == [{"role": "user", "content": "someone else"}]
    assert asyncio.run(read("thread_basic_chat"))[-1] == {"role": "user", "content": "later turn"}


def test_sidecar_has_one_agent_per_assistant_and_the_threads_with_other_instructions(tmp_path):
    records = golden_records()
    assistants = [
        {"id": "asst_basic", "object": "assistant", "name": "Basic", "model": "gpt-4o", "instructions": "Be kind.",
         "temperature": 0.2, "top_p": 1.0, "tools": []},
        {"id": "asst_dev", "object": "assistant", "name": "Thinker", "model": "o3-mini", "instructions": "Think.",
         "temperature": 1.0, "top_p": 1.0, "tools": []},
    ]  # fmt: skip
    archive = build_archive(tmp_path / "a.db", records, assistants)
    with Archive.open(archive) as store:
        summary = import_agents_sqlite(store, tmp_path / "s.db")
    sidecar = json.loads(Path(summary.sidecar).read_text())
    assert sidecar["format"] == "migrator.agents/v1"
    assert set(sidecar["agents"]) == {r["assistant_id"] for r in records}
    basic = sidecar["agents"]["asst_basic"]
    assert basic["name"] == "Basic" and basic["instructions"] == "Be kind." and basic["model"] == "gpt-4o"
    assert basic["model_settings"] == {"temperature": 0.2, "top_p": 1.0}
    assert sidecar["agents"]["asst_dev"]["model_settings"] == {}  # a reasoning model takes only defaults
    # The run used other instructions than the assistant's: kept per thread, not lost.
    basic_session = next(r for r in records if r["assistant_id"] == "asst_basic")
    assert sidecar["thread_instructions"]["thread_basic_chat"] == basic_session["messages"][0]["content"]
    # An assistant gone from the archive lends its session's instructions; its tools are the sessions'.
    par = sidecar["agents"]["asst_par"]
    assert (
        par["instructions"]
        == next(r for r in records if r["assistant_id"] == "asst_par")["messages"][0]["content"]
    )
    assert "thread_parallel_function_calls" not in sidecar["thread_instructions"]
    assert [t["name"] for t in par["tools"]] == sorted(t["name"] for t in par["tools"]) and par["tools"]
    assert summary.notes["thread_instructions_differ"] >= 1


@pytest.mark.parametrize("bad", ["folder", "text"])
def test_an_unusable_out_is_exit_2(tmp_path, bad):
    archive = build_archive(tmp_path / "a.db", golden_records()[:1])
    out = tmp_path / "out"
    if bad == "folder":
        out.mkdir()
    else:
        out.write_text("not a database, just some text that is long enough to be read as a header\n" * 20)
    code, _, err = run_cli("import", str(archive), "--to", "agents-sqlite", "--out", str(out))
    assert code == 2 and "--out" in err, err
