"""Chat completions: validation like the live endpoint, deterministic replay; conversations and their limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from test_sandbox_support import Raw, schema_errors, sdk, walk

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids

THREADS, SEED = 8, 13
TID = thread_ids(THREADS, SEED)[0]  # the showcase thread with parallel calls, hosted tools, citations

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": "A1"}'}}


@pytest.fixture(scope="module")
def srv() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as server:
        yield server


@pytest.fixture
def client(srv: SandboxServer) -> Iterator[openai.OpenAI]:
    c = sdk(srv.base_url)
    yield c
    c.close()


def _user(text: str = "hi") -> dict[str, Any]:
    return {"role": "user", "content": text}


INVALID = {
    "dangling tool_calls": (
        {
            "messages": [
                _user(),
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                _user("and?"),
            ],
            "tools": [TOOL],
        },
        "did not have response messages: call_1",
    ),
    "one of two calls unanswered": (
        {
            "messages": [
                _user(),
                {"role": "assistant", "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            ],
            "tools": [TOOL],
        },
        "did not have response messages: call_2",
    ),
    "orphan tool message": (
        {"messages": [_user(), {"role": "tool", "tool_call_id": "call_9", "content": "ok"}]},
        "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
    ),
    "unknown message key": ({"messages": [{**_user(), "sources": ["x"]}]}, "unknown parameter 'sources'"),
    "bad role": ({"messages": [{"role": "bot", "content": "x"}]}, "Invalid value: 'bot'"),
    "bad tool name": (
        {"messages": [_user()], "tools": [{"type": "function", "function": {"name": "look up"}}]},
        "Invalid 'tools[0].function.name': string does not match pattern",
    ),
    "tool name too long": (
        {"messages": [_user()], "tools": [{"type": "function", "function": {"name": "x" * 65}}]},
        "string too long. Expected a string with maximum length 64",
    ),
    "bad call name in history": (
        {
            "messages": [
                _user(),
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "a.b", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            ]
        },
        "Invalid 'messages[1].tool_calls[0].function.name'",
    ),
    "hosted tool type": (
        {"messages": [_user()], "tools": [{"type": "code_interpreter"}]},
        "Invalid value: 'code_interpreter'",
    ),
    "tool without function": (
        {"messages": [_user()], "tools": [{"type": "function"}]},
        "'tools[0].function'",
    ),
    "tool with unknown key": (
        {"messages": [_user()], "tools": [{"type": "function", "function": {"name": "f", "returns": "x"}}]},
        "unknown parameter 'returns'",
    ),
    "parameters not an object schema": (
        {
            "messages": [_user()],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}],
        },
        "schema must be a JSON Schema of 'type: \"object\"'",
    ),
    "strict schema open": (
        {
            "messages": [_user()],
            "tools": [{"type": "function", "function": {**TOOL["function"], "strict": True}}],
        },
        "'additionalProperties' is required to be supplied and to be false",
    ),
    "assistants response_format": (
        {"messages": [_user()], "response_format": "auto"},
        "Invalid type for 'response_format'",
    ),
    "parallel_tool_calls without tools": (
        {"messages": [_user()], "parallel_tool_calls": True},
        "'parallel_tool_calls' is only allowed when 'tools' are specified",
    ),
    "empty messages": ({"messages": []}, "empty array"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_histories_are_400s_with_a_clear_message(client, case):
    body, message = INVALID[case]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4.1", **body)
    assert message in info.value.message
    assert not schema_errors("ErrorResponse", info.value.response.json())


def test_unknown_request_argument(client):
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: sources"):
        client.chat.completions.create(model="m", messages=[_user()], extra_body={"sources": []})


def test_a_valid_history_is_answered(client):
    strict = {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "tags"],
                "additionalProperties": False,
            },
        },
    }
    messages = [
        {"role": "system", "content": "You help."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "ok"},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok"}]},
        {"role": "assistant", "content": "Done."},
        {"role": "developer", "content": "Be brief."},
        _user("thanks"),
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4.1",
        messages=messages,
        tools=[strict],
        parallel_tool_calls=True,
        temperature=0.5,
        top_p=1.0,
    )
    body = raw.http_response.json()
    assert not schema_errors("CreateChatCompletionResponse", body)
    answer = raw.parse()
    assert answer.choices[0].finish_reason == "stop" and answer.usage.total_tokens > 0
    again = client.chat.completions.create(
        model="gpt-4.1",
        messages=messages,
        tools=[strict],
        parallel_tool_calls=True,
        temperature=0.5,
        top_p=1.0,
    )
    assert again.choices[0].message.content == answer.choices[0].message.content  # a hash of the request
    other = client.chat.completions.create(model="gpt-4.1", messages=[_user("something else")])
    assert other.choices[0].message.content != answer.choices[0].message.content


def _parallel_turn(srv: SandboxServer) -> tuple[str, list[dict[str, Any]], str]:
    """(user text, the corpus's function calls, the run's final text) for the parallel-call turn of thread 0."""
    raw = Raw(srv.port)
    messages, _ = walk(raw, f"/v1/threads/{TID}/messages")
    runs, _ = walk(raw, f"/v1/threads/{TID}/runs")
    for run in runs:
        steps, _ = walk(raw, f"/v1/threads/{TID}/runs/{run['id']}/steps")
        calls = [c for s in steps for c in s["step_details"].get("tool_calls", []) if c["type"] == "function"]
        if len(calls) >= 2:
            mine = [m for m in messages if m["run_id"] == run["id"]]
            # The list order, not created_at: a turn's messages and its run share one second.
            first = messages.index(mine[0])
            before = [m for m in messages[:first] if m["role"] == "user"]
            raw.close()
            return before[-1]["content"][0]["text"]["value"], calls, mine[-1]["content"][0]["text"]["value"]
    raise AssertionError("no parallel run in thread 0")


def test_replay_answers_what_the_corpus_assistant_did(srv, client):
    text, calls, final = _parallel_turn(srv)
    history = [{"role": "system", "content": "anything"}, _user(text)]
    first = client.chat.completions.create(model="m", messages=history, tools=[TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    got = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert got == [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls]
    history.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [c.model_dump() for c in choice.message.tool_calls],
        }
    )
    history += [{"role": "tool", "tool_call_id": c["id"], "content": c["function"]["output"]} for c in calls]
    second = client.chat.completions.create(model="m", messages=history, tools=[TOOL])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content == final

    srv.configure(replay_drift=1.0)
    try:
        drifted = client.chat.completions.create(model="m", messages=history[:2], tools=[TOOL])
        args = [c.function.arguments for c in drifted.choices[0].message.tool_calls]
        assert args != [c["function"]["arguments"] for c in calls] and all(
            json.loads(a) is not None for a in args
        )
        assert (
            client.chat.completions.create(model="m", messages=history, tools=[TOOL])
            .choices[0]
            .message.content
            != final
        )
    finally:
        srv.configure(replay_drift=0.0)
    # A text that only resembles a corpus message is not a replay.
    near = client.chat.completions.create(model="m", messages=[_user(text + " ")])
    assert near.choices[0].message.content != final and not near.choices[0].message.tool_calls


def test_conversations_keep_items_and_enforce_limits(client, srv):
    items = [{"type": "message", "role": "user", "content": f"m{i}"} for i in range(20)]
    conv = client.conversations.create(items=items, metadata={"k" * 64: "v" * 512})
    assert client.conversations.retrieve(conv.id).metadata == {"k" * 64: "v" * 512}
    listed = client.conversations.items.list(conv.id, limit=100, order="asc")
    assert [i.content[0].text for i in listed.data] == [f"m{i}" for i in range(20)]
    added = client.conversations.items.create(conv.id, items=items[:3])
    assert len(added.data) == 3
    first = client.conversations.items.list(conv.id, limit=10)
    assert len(first.data) == 10 and first.has_more is True
    everything = list(client.conversations.items.list(conv.id, limit=7))  # the SDK pages by last_id
    assert len(everything) == 23 and len({i.id for i in everything}) == 23
    refused = {
        "21 items": lambda: client.conversations.create(items=items + items[:1]),
        "17 metadata pairs": lambda: client.conversations.create(metadata={str(i): "v" for i in range(17)}),
        "long key": lambda: client.conversations.create(metadata={"k" * 65: "v"}),
        "long value": lambda: client.conversations.create(metadata={"k": "v" * 513}),
        "21 items added": lambda: client.conversations.items.create(conv.id, items=items + items[:1]),
    }
    for what, call in refused.items():
        with pytest.raises(openai.BadRequestError) as info:
            call()
        assert not schema_errors("ErrorResponse", info.value.response.json()), what
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve("conv_nope")
