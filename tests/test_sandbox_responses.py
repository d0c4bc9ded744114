"""POST /v1/responses: what OpenAI rejects in a migrated history is rejected; the rest is replayed from the corpus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from test_sandbox_support import Raw, schema_errors, sdk, walk

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids

THREADS, SEED = 8, 13
TID = thread_ids(THREADS, SEED)[0]  # the showcase thread with parallel calls (as in test_sandbox_chat)
ROUTE = "POST /v1/responses"


@pytest.fixture(scope="module")
def srv() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as server:
        yield server


@pytest.fixture
def client(srv: SandboxServer) -> Iterator[openai.OpenAI]:
    c = sdk(srv.base_url)
    yield c
    c.close()


def _fn(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": f"{name} (migrated)",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


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
            first = messages.index(mine[0])  # list order: a turn's messages and its run share one second
            before = [m for m in messages[:first] if m["role"] == "user"]
            raw.close()
            return before[-1]["content"][0]["text"]["value"], calls, mine[-1]["content"][0]["text"]["value"]
    raise AssertionError("no parallel run in thread 0")


def _outputs(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": c["id"], "output": c["function"]["output"]} for c in calls
    ]


def test_a_string_input_gets_a_complete_response(srv, client):
    r = client.responses.create(
        model="gpt-4.1", input="hello there", instructions="Be brief.", truncation="auto"
    )
    assert (r.object, r.status, r.model, r.instructions, r.truncation) == (
        "response",
        "completed",
        "gpt-4.1",
        "Be brief.",
        "auto",
    )
    assert r.error is None and r.incomplete_details is None and r.tools == []
    assert [o.type for o in r.output] == ["message"] and r.output[0].role == "assistant"
    assert r.output[0].content[0].type == "output_text" and r.output_text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    again = client.responses.create(
        model="gpt-4.1", input="hello there", instructions="Be brief.", truncation="auto"
    )
    assert again.output_text == r.output_text and again.id != r.id  # deterministic text, a new response
    assert client.responses.create(model="gpt-4.1", input="something else").output_text != r.output_text


def test_replay_answers_calls_then_the_final_text(srv, client):
    text, calls, final = _parallel_turn(srv)
    tools = [_fn(n) for n in dict.fromkeys(c["function"]["name"] for c in calls)]
    history: list[Any] = [_user(text)]
    first = client.responses.create(model="gpt-4.1", instructions="x", input=history, tools=tools)
    got = [(o.type, o.call_id, o.name, o.arguments) for o in first.output]
    assert got == [
        ("function_call", c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls
    ]
    history += [o.model_dump(by_alias=True, exclude_none=True) for o in first.output] + _outputs(calls)
    second = client.responses.create(model="gpt-4.1", instructions="x", input=history, tools=tools)
    assert [o.type for o in second.output] == ["message"] and second.output_text == final
    # The SDK's own output objects can go back as input, as its docs show.
    objects = client.responses.create(
        model="m", input=[_user(text), *first.output, *_outputs(calls)], tools=tools
    )
    assert objects.output_text == final

    # One call at a time when parallel calls are off.
    history = [_user(text)]
    for call in calls:
        r = client.responses.create(model="m", input=history, tools=tools, parallel_tool_calls=False)
        assert [(o.type, o.call_id) for o in r.output] == [("function_call", call["id"])]
        history += [r.output[0].model_dump(by_alias=True, exclude_none=True), *_outputs([call])]
    assert (
        client.responses.create(model="m", input=history, tools=tools, parallel_tool_calls=False).output_text
        == final
    )

    # A model never calls a function it was not given, nor any with tool_choice "none".
    bare = client.responses.create(model="m", input=[_user(text)])
    assert [o.type for o in bare.output] == ["message"]
    none = client.responses.create(model="m", input=[_user(text)], tools=tools, tool_choice="none")
    assert [o.type for o in none.output] == ["message"]

    srv.configure(replay_drift=1.0)
    try:
        drifted = client.responses.create(model="m", input=[_user(text)], tools=tools)
        assert [o.arguments for o in drifted.output] != [c["function"]["arguments"] for c in calls]
        assert all(json.loads(o.arguments) is not None for o in drifted.output)
    finally:
        srv.configure(replay_drift=0.0)


def test_previous_response_id_carries_the_history(srv, client):
    text, calls, final = _parallel_turn(srv)
    tools = [_fn(n) for n in dict.fromkeys(c["function"]["name"] for c in calls)]
    first = client.responses.create(model="m", input=[_user(text)], tools=tools)
    assert all(o.type == "function_call" for o in first.output)
    second = client.responses.create(
        model="m", previous_response_id=first.id, input=_outputs(calls), tools=tools
    )
    assert second.output_text == final and second.previous_response_id == first.id
    with pytest.raises(openai.BadRequestError) as err:  # the previous calls still want their outputs
        client.responses.create(model="m", previous_response_id=first.id, input="and?", tools=tools)
    assert err.value.body["message"] == f"No tool output found for function call {calls[0]['id']}."
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="m", previous_response_id="resp_nope", input="hi")
    assert err.value.body["param"] == "previous_response_id"
    unstored = client.responses.create(model="m", input="hi", store=False)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", previous_response_id=unstored.id, input="again")


def test_native_tools_are_accepted_and_echoed(srv, client):
    upload = client.files.create(file=("kb.md", b"# kb"), purpose="assistants")
    store = client.vector_stores.create(name="rebuilt", file_ids=[upload.id])
    corpus_store = client.vector_stores.list(order="asc").data[0].id
    strict_fn = {
        "type": "function",
        "name": "lookup_order",
        "description": None,
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
            "additionalProperties": False,
        },
        "strict": True,
    }
    tools = [
        strict_fn,
        {"type": "file_search", "vector_store_ids": [store.id, corpus_store], "max_num_results": 8},
        {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [upload.id]}},
    ]
    history = [
        {"role": "system", "content": "You are the help desk."},
        {"role": "developer", "content": [{"type": "input_text", "text": "Cite sources."}]},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Where is A1?"},
                {"type": "input_file", "file_id": upload.id},
            ],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "Looking.", "annotations": []}]},
        {"type": "function_call", "call_id": "call_a", "name": "lookup_order", "arguments": '{"id": "A1"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": '{"status": "shipped"}'},
        {"role": "user", "content": "thanks"},
    ]
    r = client.responses.create(
        model="gpt-4.1",
        instructions="Help.",
        input=history,
        tools=tools,
        tool_choice={"type": "file_search"},
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=256,
        metadata={"thread_id": "thread_1"},
        store=False,
        parallel_tool_calls=True,
        text={"format": {"type": "text"}, "verbosity": "low"},
        reasoning={"effort": None},
        truncation="disabled",
    )
    assert [t.type for t in r.tools] == ["function", "file_search", "code_interpreter"]
    assert r.tools[1].vector_store_ids == [store.id, corpus_store] and r.tools[0].strict is True
    assert (r.temperature, r.top_p, r.max_output_tokens, r.metadata, r.store) == (
        0.2,
        0.9,
        256,
        {"thread_id": "thread_1"},
        False,
    )
    assert r.text.verbosity == "low" and r.tool_choice.type == "file_search"


def _base(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1", "input": [_user("hi")], **extra}


CALL = {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": "{}"}
OUT = {"type": "function_call_output", "call_id": "call_1", "output": "{}"}
TOOL = _fn("lookup_order")

# (request body, param, text in the message): each one what OpenAI rejects in a migrated history.
REJECTED: dict[str, tuple[dict[str, Any], str | None, str]] = {
    "call without output at the end": (
        _base(input=[_user("hi"), CALL], tools=[TOOL]),
        "input",
        "No tool output found for function call call_1.",
    ),
    "call without output before the next user turn": (
        _base(input=[_user("hi"), CALL, _user("and?")], tools=[TOOL]),
        "input",
        "No tool output found for function call call_1.",
    ),
    "one of two calls unanswered": (
        _base(input=[_user("hi"), CALL, {**CALL, "call_id": "call_2"}, OUT], tools=[TOOL]),
        "input",
        "No tool output found for function call call_2.",
    ),
    "output without call": (
        _base(input=[_user("hi"), {**OUT, "call_id": "call_9"}]),
        "input",
        "No tool call found for function call output with call_id call_9.",
    ),
    "output before its call": (
        _base(input=[_user("hi"), OUT, CALL], tools=[TOOL]),
        "input",
        "No tool call found for function call output with call_id call_1.",
    ),
    "chat-style tool": (
        _base(
            tools=[
                {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}
            ]
        ),
        "tools[0].name",
        "Missing required parameter: 'tools[0].name'.",
    ),
    "chat-style tool with a name beside it": (
        _base(tools=[{"type": "function", "name": "lookup_order", "function": {"name": "lookup_order"}}]),
        "tools[0].function",
        "Unknown parameter: 'tools[0].function'.",
    ),
    "output_text in a user message": (
        _base(input=[{"role": "user", "content": [{"type": "output_text", "text": "hi"}]}]),
        "input[0].content[0]",
        "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_image', and 'input_file'.",
    ),
    "chat-style text part in a user message": (
        _base(input=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
        "input[0].content[0]",
        "Invalid value: 'text'.",
    ),
    "input_text in an assistant message": (
        _base(input=[_user("hi"), {"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]),
        "input[1].content[0]",
        "Supported values are: 'output_text' and 'refusal'.",
    ),
    "chat-style image_url object": (
        _base(input=[{"role": "user", "content": [{"type": "input_image", "image_url": {"url": "data:,"}}]}]),
        "input[0].content[0].image_url",
        "expected a string",
    ),
    "unknown top-level key": (_base(messages=[]), "messages", "Unknown parameter: 'messages'."),
    "response_format moved": (
        _base(response_format={"type": "json_object"}),
        "response_format",
        "moved to 'text.format'",
    ),
    "unknown key in a message": (
        _base(input=[{"role": "user", "content": "hi", "name": "bob"}]),
        "input[0].name",
        "Unknown parameter: 'input[0].name'.",
    ),
    "chat-style tool_calls on an assistant message": (
        _base(input=[_user("hi"), {"role": "assistant", "content": "", "tool_calls": []}]),
        "input[1].tool_calls",
        "Unknown parameter: 'input[1].tool_calls'.",
    ),
    "chat-style tool message": (
        _base(input=[_user("hi"), {"role": "tool", "tool_call_id": "call_1", "content": "{}"}]),
        "input[1].role",
        "Invalid value: 'tool'.",
    ),
    "unknown key in a function_call": (
        _base(input=[_user("hi"), {**CALL, "function": {}}, OUT], tools=[TOOL]),
        "input[1].function",
        "Unknown parameter: 'input[1].function'.",
    ),
    "unknown key in a function_call_output": (
        _base(input=[_user("hi"), CALL, {**OUT, "tool_call_id": "call_1"}], tools=[TOOL]),
        "input[2].tool_call_id",
        "Unknown parameter: 'input[2].tool_call_id'.",
    ),
    "unknown key in a content part": (
        _base(input=[{"role": "user", "content": [{"type": "input_text", "text": "hi", "lang": "en"}]}]),
        "input[0].content[0].lang",
        "Unknown parameter: 'input[0].content[0].lang'.",
    ),
    "unknown key in a function tool": (
        _base(tools=[{**TOOL, "required": True}]),
        "tools[0].required",
        "Unknown parameter: 'tools[0].required'.",
    ),
    "unknown item type": (
        _base(input=[{"type": "file_search_call", "id": "fs_1"}]),
        "input[0].type",
        "Invalid value: 'file_search_call'.",
    ),
    "file_search store not on this server": (
        _base(tools=[{"type": "file_search", "vector_store_ids": ["vs_from_the_source"]}]),
        "tools[0].vector_store_ids",
        "vector store 'vs_from_the_source' was not found",
    ),
    "file_search without stores": (
        _base(tools=[{"type": "file_search"}]),
        "tools[0].vector_store_ids",
        "Missing required parameter: 'tools[0].vector_store_ids'.",
    ),
    "Assistants-style file_search options": (
        _base(tools=[{"type": "file_search", "vector_store_ids": [], "file_search": {"max_num_results": 5}}]),
        "tools[0].file_search",
        "Unknown parameter: 'tools[0].file_search'.",
    ),
    "code_interpreter without container": (
        _base(tools=[{"type": "code_interpreter"}]),
        "tools[0].container",
        "Missing required parameter: 'tools[0].container'.",
    ),
    "Assistants-style retrieval tool": (_base(tools=[{"type": "retrieval"}]), "tools[0].type", "'retrieval'"),
    "input_file of another server": (
        _base(input=[{"role": "user", "content": [{"type": "input_file", "file_id": "file-elsewhere"}]}]),
        "input[0].content[0].file_id",
        "no file with id 'file-elsewhere'",
    ),
    "chat-style tool_choice": (
        _base(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "lookup_order"}}),
        "tool_choice.name",
        "Missing required parameter: 'tool_choice.name'.",
    ),
    "tool_choice of an undeclared tool": (
        _base(tools=[TOOL], tool_choice={"type": "file_search"}),
        "tool_choice",
        "Tool choice 'file_search' not found in 'tools' parameter.",
    ),
    "strict schema that is not strict": (
        _base(
            tools=[
                {
                    **TOOL,
                    "strict": True,
                    "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
                }
            ]
        ),
        "tools",
        "'additionalProperties' is required to be supplied and to be false",
    ),
    "bad function name": (
        _base(tools=[{**TOOL, "name": "look up"}]),
        "tools[0].name",
        "does not match pattern",
    ),
    "bad truncation": (_base(truncation="last_messages"), "truncation", "Invalid value: 'last_messages'."),
    "temperature out of range": (_base(temperature=3), "temperature", "between 0 and 2"),
    "max_output_tokens too small": (_base(max_output_tokens=8), "max_output_tokens", ">= 16"),
    "too many metadata pairs": (_base(metadata={f"k{i}": "v" for i in range(17)}), "metadata", "at most 16"),
    "stream": (_base(stream=True), "stream", "not supported by the sandbox"),
    "missing model": ({"input": "hi"}, "model", "Missing required parameter: 'model'."),
    "missing input": ({"model": "m"}, "input", "Missing required parameter: 'input'."),
    "duplicate item ids": (
        _base(input=[{**_user("a"), "id": "msg_1"}, {**_user("b"), "id": "msg_1"}]),
        "input",
        "Duplicate item found with id msg_1.",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_what_openai_rejects_is_rejected(srv, case):
    body, param, text = REJECTED[case]
    before = srv.stats()["creates"].get(ROUTE, 0)
    raw = Raw(srv.port)
    status, answer = raw.post("/v1/responses", body)
    raw.close()
    assert status == 400, answer
    assert not schema_errors("ErrorResponse", answer), answer
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param, answer
    assert text in answer["error"]["message"], answer
    assert srv.stats()["creates"].get(ROUTE, 0) == before


def test_the_fixed_histories_are_accepted(srv):
    """Each rejection above, repaired the way a correct converter writes it, is a 200."""
    raw = Raw(srv.port)
    good = [
        _base(input=[_user("hi"), CALL, OUT, _user("and?")], tools=[TOOL]),
        _base(tools=[TOOL]),
        _base(input=[_user("hi"), {"role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}]),
        _base(
            input=[
                {
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA=="}],
                }
            ]
        ),
        _base(tools=[{"type": "code_interpreter", "container": {"type": "auto"}}]),
        _base(tools=[TOOL], tool_choice={"type": "function", "name": "lookup_order"}),
        _base(input="hi", stream=False),
    ]
    for body in good:
        status, answer = raw.post("/v1/responses", body)
        assert status == 200, (body, answer)
    raw.close()


def test_the_sdk_surfaces_a_rejection_with_its_param(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model="gpt-4.1",
            input="hi",
            tools=[{"type": "function", "function": {"name": "lookup_order"}}],  # type: ignore[list-item]
        )
    assert err.value.status_code == 400 and err.value.body["param"] == "tools[0].name"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4.1", input="hi", stream=True)
    assert "not supported by the sandbox" in err.value.body["message"]


def test_a_store_of_another_sandbox_is_not_bound(srv, client):
    """The migration trap: file_search bound to the source's store ids instead of the rebuilt ones."""
    with SandboxServer(SandboxConfig(threads=0, seed=99)) as other:
        foreign = sdk(other.base_url).vector_stores.create(name="only there").id
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model="m", input="hi", tools=[{"type": "file_search", "vector_store_ids": [foreign]}]
        )
    assert err.value.body["param"] == "tools[0].vector_store_ids"
    rebuilt = client.vector_stores.create(name="rebuilt here").id
    ok = client.responses.create(
        model="m", input="hi", tools=[{"type": "file_search", "vector_store_ids": [rebuilt]}]
    )
    assert ok.tools[0].vector_store_ids == [rebuilt]
