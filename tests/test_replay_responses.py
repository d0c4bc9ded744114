"""`replay --api responses` and agents.json's file_search, after the knowledge base was rebuilt, over real HTTP.

The target is a sandbox of the same corpus (so its /v1/responses answers like the source did); it
refuses what OpenAI refuses in a migrated history, and a file_search naming a store it does not hold.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import spec
from agents import Agent, FileSearchTool, FunctionTool, RunConfig, Runner, SQLiteSession
from agents.models.openai_responses import OpenAIResponsesModel
from test_import_support import SANDBOX_THREADS, copy_archive, run_cli, sandbox_archive  # noqa: F401
from test_replay import line_validator

from migrator.importers.items import session_store_ids
from migrator.replay.compare import compare, reply_message
from migrator.replay.responses import StoreBinding, responses_body
from migrator.sandbox import SandboxConfig, SandboxServer

RESPONSES = "POST /v1/responses"


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=SANDBOX_THREADS, seed=7, ingest_polls=1), port=0) as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_API_KEY", "target-key")


def _json(*args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(*args, "--json")
    return code, orjson.loads(out), err


def _raw(
    db: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """(sessions, assistants, threads by id, source store -> rebuilt store) as the archive holds them."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sessions = {t: orjson.loads(r) for t, r in conn.execute("select thread_id, record from sessions")}
        assistants = {i: orjson.loads(r) for i, r in conn.execute("select id, raw from assistants")}
        threads = {i: orjson.loads(r) for i, r in conn.execute("select id, raw from threads")}
        try:
            rebuilt = dict(
                conn.execute("select source_store_id, target_id from vector_map where kind = 'store'")
            )
        except sqlite3.OperationalError:
            rebuilt = {}
    finally:
        conn.close()
    return sessions, assistants, threads, rebuilt


def _batch_bodies(db: Path, tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    out = tmp_path / "batch"
    code, summary, err = _json(
        "replay", str(db), "--api", "responses", "--model", "gpt-4.1", "--batch-out", str(out), *extra
    )
    assert code == 0, err
    request_line = line_validator("BatchRequestInput")
    lines = []
    for path in sorted(out.glob("*.jsonl")):
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            obj = orjson.loads(line)
            assert list(request_line.iter_errors(obj)) == [], number
            assert obj["url"] == "/v1/responses" and obj["method"] == "POST"
            # Strict: the spec's CreateResponse schema. One thing it cannot take unambiguously: a message
            # with an image part is valid under two branches of its InputItem oneOf (EasyInputMessage and
            # InputMessage). Only that is let through, and only for such a message.
            errors = spec.errors("CreateResponse", obj["body"])
            if errors:
                assert all(e.startswith("input: ") for e in errors), (number, errors)
                _only_image_messages_are_ambiguous(obj["body"]["input"])
            lines.append(obj)
    assert len(lines) == summary["requests"] > 0
    assert orjson.loads((out / "manifest.json").read_bytes())["url"] == "/v1/responses"
    return lines


def _only_image_messages_are_ambiguous(items: list[dict[str, Any]]) -> None:
    """The input is refused as a whole (InputParam is itself a oneOf): each item, checked alone, is
    valid, but for messages carrying an image, valid under both EasyInputMessage and InputMessage."""
    item_validator = spec.validator("InputItem")
    for index, item in enumerate(items):
        errors = [e.message for e in item_validator.iter_errors(item)]
        if not errors:
            continue
        content = item.get("content")
        imaged = isinstance(content, list) and any(p.get("type") == "input_image" for p in content)
        assert imaged and all("is valid under each of" in e for e in errors), (index, errors)


def test_responses_replay_binds_file_search_to_the_rebuilt_stores(sandbox_archive, target, env, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    code, _, err = run_cli("import", str(db), "--to", "vector-stores", "--target-base-url", target.base_url)
    assert code == 0, err
    batch_db = Path(tmp_path / "batch.db")
    batch_db.write_bytes(db.read_bytes())
    sessions, assistants, threads, rebuilt = _raw(db)
    assert len(rebuilt) == 5

    before = target.stats()["by_route"].get(RESPONSES, 0)
    code, doc, err = _json(
        "replay", str(db), "--api", "responses", "--target-base-url", target.base_url, "--model", "gpt-4.1"
    )
    assert doc["acceptance"] == 1.0 and doc["requests"]["rejected"] == 0, doc["rejections"]
    assert doc["api"] == "responses" and doc["warnings"] == []
    # The chat report's figures, read off Responses bodies: function_call items are the tool calls, usage
    # is input/output tokens.
    assert doc["parity"]["equal"] == doc["parity"]["tool_call_turns"] > 0
    assert doc["text"]["turns"] > 0 and doc["text"]["similarity_mean"] is not None
    assert doc["usage"]["prompt_tokens"] > 0 and doc["usage"]["completion_tokens"] > 0
    assert doc["latency_ms"]["count"] == doc["requests"]["accepted"]
    searching = {t for t, r in sessions.items() if _emulated(r, "file_search")}
    assert doc["file_search"] == {
        "bound_sessions": len(searching),
        "unbound_sessions": 0,
        "unbound_stores": [],
    }
    assert len(searching) >= 10
    sent = target.stats()["by_route"][RESPONSES] - before
    assert sent == doc["requests"]["accepted"]

    # The bodies (the same ones, as batch lines): native file_search with the rebuilt ids, flat tools.
    lines = _batch_bodies(batch_db, tmp_path)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        thread_of = dict(
            conn.execute("select request_hash, thread_id from replay_ledger where state = 'done'")
        )
    assert {line["custom_id"] for line in lines} == set(thread_of)  # the live run sent these very bodies
    assert len(set(thread_of.values())) == len(lines)  # --turns last: one request a session
    for line in lines:
        body, thread_id = line["body"], thread_of[line["custom_id"]]
        record = sessions[thread_id]
        assert body["truncation"] == "auto" and body["store"] is False
        tools = body.get("tools", [])
        assert all("function" not in tool for tool in tools)  # flat, never chat-style
        names = {t.get("name") for t in tools if t["type"] == "function"}
        if thread_id in searching:
            source = session_store_ids(assistants.get(record["assistant_id"]), threads.get(thread_id))
            native = [t for t in tools if t["type"] == "file_search"]
            assert native and native[0]["vector_store_ids"] == [rebuilt[s] for s in source], thread_id
            assert "file_search" not in names
        else:
            assert not any(t["type"] == "file_search" for t in tools)
        if _emulated(record, "code_interpreter"):
            assert {"type": "code_interpreter", "container": {"type": "auto"}} in tools
            assert "code_interpreter" not in names
        if record["messages"][0]["role"] == "system":
            assert body["instructions"] == record["messages"][0]["content"]


def _emulated(record: dict[str, Any], tool: str) -> bool:
    return any(
        w["code"] == "hosted_tool_emulated" and w["detail"].startswith(tool + ":") for w in record["warnings"]
    )


def test_without_the_mapping_a_warning_names_the_unbound_stores(sandbox_archive, target, env, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    batch_db = tmp_path / "batch.db"
    batch_db.write_bytes(db.read_bytes())
    sessions, assistants, threads, _ = _raw(db)
    code, doc, err = _json(
        "replay", str(db), "--api", "responses", "--target-base-url", target.base_url, "--model", "gpt-4.1"
    )
    assert doc["acceptance"] == 1.0, doc["rejections"]
    expected = set()
    for thread_id, record in sessions.items():
        if _emulated(record, "file_search"):
            expected.update(session_store_ids(assistants.get(record["assistant_id"]), threads.get(thread_id)))
    assert doc["file_search"]["bound_sessions"] == 0 and doc["file_search"]["unbound_stores"] == sorted(
        expected
    )
    assert len(doc["warnings"]) == 1 and "retrieval was not bound" in doc["warnings"][0]
    assert all(store in doc["warnings"][0] for store in expected)
    # The terminal report says it too, and the emulated function stays in the bodies.
    code, out, _ = run_cli(
        "replay", str(db), "--api", "responses", "--target-base-url", target.base_url, "--model", "gpt-4.1"
    )
    assert "warning: retrieval was not bound" in out.decode()
    lines = _batch_bodies(batch_db, tmp_path)
    assert not any(t["type"] == "file_search" for line in lines for t in line["body"].get("tools", []))
    assert any(t.get("name") == "file_search" for line in lines for t in line["body"].get("tools", []))


def test_responses_body_units():
    record = {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "Assistant rules.\n\nRun addition."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "file_search", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "passages"},
            {"role": "assistant", "content": "answer"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "file_search", "description": "d", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "code_interpreter", "description": "c", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "lookup", "description": "l", "parameters": {"type": "object"}, "strict": True}},
        ],
        "params": {"temperature": 0.2, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}},
        "warnings": [{"code": "hosted_tool_emulated", "detail": "file_search: ..."}, {"code": "hosted_tool_emulated", "detail": "code_interpreter: ..."}],
    }  # fmt: skip
    bound = responses_body(
        record, 4, "gpt-4.1", StoreBinding(("vs_src",), ("vs_new",), (), {"max_num_results": 5})
    )
    assert bound["instructions"] == "Assistant rules.\n\nRun addition."
    assert [i["type"] for i in bound["input"]] == ["message", "function_call", "function_call_output"]
    assert bound["tools"] == [
        {"type": "file_search", "vector_store_ids": ["vs_new"], "max_num_results": 5},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {
            "type": "function",
            "name": "lookup",
            "description": "l",
            "parameters": {"type": "object"},
            "strict": True,
        },
    ]
    assert bound["text"] == {
        "format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}
    }
    assert bound["temperature"] == 0.2 and bound["truncation"] == "auto" and bound["store"] is False
    assert "response_format" not in bound and "messages" not in bound
    assert spec.errors("CreateResponse", bound) == []
    unbound = responses_body(record, 4, "gpt-4.1", StoreBinding(("vs_src",), (), ("vs_src",)))
    assert unbound["tools"][0] == {"type": "function", "name": "file_search", "description": "d",
                                   "parameters": {"type": "object"}, "strict": False}  # fmt: skip
    # The reply's function_call items are its tool calls; its message the text.
    reply = reply_message({"object": "response", "output": [
        {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": []},
        {"type": "function_call", "call_id": "c", "name": "lookup", "arguments": "{\"n\": 1}"},
    ]})  # fmt: skip
    assert compare(
        {"role": "assistant", "tool_calls": [{"function": {"name": "lookup", "arguments": '{"n":1}'}}]}, reply
    ).parity
    text = reply_message(
        {
            "object": "response",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "answer"}]}],
        }
    )
    assert compare({"role": "assistant", "content": "answer"}, text).similarity == 1.0


def test_agents_json_binds_file_search_and_the_agents_sdk_runs_it(sandbox_archive, target, env, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    out = tmp_path / "sessions.db"
    code, _, err = run_cli("import", str(db), "--to", "agents-sqlite", "--out", str(out))
    assert code == 0 and "file_search_unbound" in err, err  # nothing rebuilt yet: said, left emulated
    code, _, err = run_cli("import", str(db), "--to", "vector-stores", "--target-base-url", target.base_url)
    assert code == 0, err
    code, _, err = run_cli("import", str(db), "--to", "agents-sqlite", "--out", str(out))
    assert code == 0 and "file_search_unbound" not in err, err
    sessions, assistants, _, rebuilt = _raw(db)
    agents_doc = json.loads((tmp_path / "agents.json").read_text())["agents"]
    bound = 0
    for assistant_id, definition in agents_doc.items():
        raw = assistants[assistant_id]
        native = [t for t in definition["tools"] if t["type"] == "file_search"]
        if any(t["type"] == "file_search" for t in raw["tools"]):
            source = session_store_ids(raw, None)
            assert len(native) == 1 and native[0]["vector_store_ids"] == [rebuilt[s] for s in source], native
            assert not any(t.get("name") == "file_search" for t in definition["tools"])
            bound += 1
        else:
            assert not native
    assert bound >= 5

    # The real Agents SDK: an Agent from agents.json (FileSearchTool for the native entry) continues a
    # migrated session on the target's Responses API, which refuses unknown stores.
    thread_id, record = next(
        (t, r) for t, r in sorted(sessions.items())
        if any(x["type"] == "file_search" for x in agents_doc.get(r.get("assistant_id") or "", {}).get("tools", []))
    )  # fmt: skip
    definition = agents_doc[record["assistant_id"]]

    async def never(ctx: Any, arguments: str) -> str:
        return "not run"

    tools: list[Any] = []
    for t in definition["tools"]:
        if t["type"] == "file_search":
            tools.append(
                FileSearchTool(
                    vector_store_ids=t["vector_store_ids"], max_num_results=t.get("max_num_results")
                )
            )
        else:
            tools.append(FunctionTool(name=t["name"], description=t["description"], params_json_schema=t["parameters"],
                                      on_invoke_tool=never, strict_json_schema=t["strict"]))  # fmt: skip
    client = openai.AsyncOpenAI(base_url=target.base_url, api_key="target-key", max_retries=0)
    agent = Agent(name=definition["name"], instructions=definition["instructions"], tools=tools,
                  model=OpenAIResponsesModel(model="gpt-4.1", openai_client=client))  # fmt: skip
    before = target.stats()["by_route"].get(RESPONSES, 0)

    async def run() -> str:
        session = SQLiteSession(thread_id, out)
        try:
            result = await Runner.run(agent, "One more question, please.", session=session,
                                      run_config=RunConfig(tracing_disabled=True))  # fmt: skip
            return str(result.final_output)
        finally:
            session.close()
            await client.close()

    assert asyncio.run(run())
    assert target.stats()["by_route"][RESPONSES] > before


def test_responses_batch_results_dry_run_and_resume_like_chat(sandbox_archive, target, env, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    code, doc, err = _json("replay", str(db), "--api", "responses", "--model", "gpt-4.1", "--dry-run")
    assert doc["requests"] > 0 and doc["to_send"] == doc["requests"]
    unbound = [f for f in doc["findings"] if f["code"] == "file_search_unbound"]
    assert unbound and all(f["severity"] == "warning" for f in unbound)

    lines = _batch_bodies(db, tmp_path)
    import httpx2 as http  # the HTTP library the openai SDK ships with

    results = []
    with http.Client(base_url=target.base_url, headers={"Authorization": "Bearer k"}) as client:
        for number, line in enumerate(lines, 1):
            answer = client.post("/responses", content=orjson.dumps(line["body"]))
            assert answer.status_code == 200, answer.text
            results.append(orjson.dumps({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "error": None,
                                         "response": {"status_code": 200, "request_id": f"r{number}", "body": answer.json()}}))  # fmt: skip
    (tmp_path / "out.jsonl").write_bytes(b"\n".join(results) + b"\n")
    # --batch-results takes the API from what --batch-out recorded: the same requests, the same ledger rows.
    code, report, err = _json("replay", str(db), "--batch-results", str(tmp_path / "out.jsonl"))
    assert code == 0, report["needs_attention"]
    assert report["api"] == "responses" and report["acceptance"] == 1.0
    assert report["requests"]["accepted"] == len(lines) and report["unmatched_results"] == 0
    # Answered requests are never written to a batch file again (the ledger is kept per target, and
    # a batch is its own target: a live replay against a named target is another replay).
    code, again, err = _json(
        "replay", str(db), "--api", "responses", "--batch-out", str(tmp_path / "again"), "--model", "gpt-4.1"
    )
    assert code == 0 and again["requests"] == 0 and again["already_answered"] == len(lines), err
