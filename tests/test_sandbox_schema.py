"""Every response kind of the sandbox, for a whole small corpus, against the spec's component schemas."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from test_sandbox_support import Raw, schema_errors, walk

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids
from migrator.sandbox.corpus import Corpus

THREADS, SEED = 20, 3
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


@pytest.fixture(scope="module")
def srv():
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as server:
        yield server


@pytest.fixture(scope="module")
def corpus(srv) -> dict[str, Any]:
    """The whole corpus as the API serves it, every list walked and every object retrieved.

    `checks` holds (component, instance, where) for every response; the objects are kept by kind.
    """
    raw = Raw(srv.port)
    checks: list[tuple[str, Any, str]] = []
    out: dict[str, Any] = defaultdict(list)

    def get(path: str, component: str, **query: Any) -> Any:
        status, body = raw.get(path, **query)
        assert status == 200, (path, body)
        checks.append((component, body, path))
        return body

    out["assistants"], _ = walk(raw, "/v1/assistants", "ListAssistantsResponse")
    for a in out["assistants"]:
        assert get(f"/v1/assistants/{a['id']}", "AssistantObject") == a
    out["vector_stores"], _ = walk(raw, "/v1/vector_stores", "ListVectorStoresResponse")
    for vs in out["vector_stores"]:
        assert get(f"/v1/vector_stores/{vs['id']}", "VectorStoreObject") == vs
        files, _ = walk(raw, f"/v1/vector_stores/{vs['id']}/files", "ListVectorStoreFilesResponse")
        for f in files:
            assert get(f"/v1/vector_stores/{vs['id']}/files/{f['id']}", "VectorStoreFileObject") == f
            pages, query = [], {}
            while True:
                page = get(
                    f"/v1/vector_stores/{vs['id']}/files/{f['id']}/content",
                    "VectorStoreFileContentResponse",
                    **query,
                )
                pages.append(page)
                if not page["has_more"]:
                    break
                query = {"page": page["next_page"]}
            out["content_pages"].append((f["id"], pages))
        out["vector_store_files"] += files
    for tid in thread_ids(THREADS, SEED):
        thread = get(f"/v1/threads/{tid}", "ThreadObject")
        messages, _ = walk(raw, f"/v1/threads/{tid}/messages", "ListMessagesResponse")
        for m in messages:
            assert get(f"/v1/threads/{tid}/messages/{m['id']}", "MessageObject") == m
        runs, _ = walk(raw, f"/v1/threads/{tid}/runs", "ListRunsResponse")
        steps_of = {}
        for r in runs:
            assert get(f"/v1/threads/{tid}/runs/{r['id']}", "RunObject") == r
            plain, _ = walk(raw, f"/v1/threads/{tid}/runs/{r['id']}/steps", "ListRunStepsResponse")
            full, _ = walk(
                raw,
                f"/v1/threads/{tid}/runs/{r['id']}/steps",
                "ListRunStepsResponse",
                **{"include[]": INCLUDE},
            )
            for s in plain:
                assert get(f"/v1/threads/{tid}/runs/{r['id']}/steps/{s['id']}", "RunStepObject") == s
            for s in full:
                path = f"/v1/threads/{tid}/runs/{r['id']}/steps/{s['id']}"
                assert get(path, "RunStepObject", **{"include[]": INCLUDE}) == s
            steps_of[r["id"]] = (plain, full)
        out["threads"].append({"thread": thread, "messages": messages, "runs": runs, "steps": steps_of})
    out["files"], _ = walk(raw, "/v1/files", "ListFilesResponse")
    for f in out["files"]:
        assert get(f"/v1/files/{f['id']}", "OpenAIFile") == f
    raw.close()
    out["checks"] = checks
    return out


def test_every_response_of_the_whole_corpus_matches_its_schema(corpus):
    assert len(corpus["threads"]) == THREADS
    problems = [
        (where, component, errs[:3])
        for component, obj, where in corpus["checks"]
        if (errs := schema_errors(component, obj))
    ]
    assert not problems, problems[:5]
    assert len(corpus["checks"]) > 1000


def test_file_search_results_carry_content_only_when_included(corpus):
    seen = 0
    for t in corpus["threads"]:
        for plain, full in t["steps"].values():
            for ps, fs in zip(plain, full, strict=True):
                for pc, fc in zip(
                    ps["step_details"].get("tool_calls", []),
                    fs["step_details"].get("tool_calls", []),
                    strict=True,
                ):
                    if pc["type"] == "file_search":
                        seen += 1
                        assert all("content" not in r for r in pc["file_search"]["results"])
                        assert all(r["content"] for r in fc["file_search"]["results"])
    assert seen


def test_downloads_answer_bytes_or_the_refusal(srv, corpus):
    raw = Raw(srv.port)
    signatures = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".csv": b"region,"}
    for f in corpus["files"]:
        status, headers, body = raw.request("GET", f"/v1/files/{f['id']}/content")
        if f["purpose"] == "assistants":
            assert status == 400
            error = __import__("json").loads(body)
            assert not schema_errors("ErrorResponse", error)
            assert error["error"]["message"] == "Not allowed to download files of purpose: assistants."
            assert error["error"]["type"] == "invalid_request_error"
            continue
        assert status == 200 and headers["content-type"] == "application/octet-stream"
        assert len(body) == f["bytes"]
        for ext, magic in signatures.items():
            if f["filename"].endswith(ext):
                assert body.startswith(magic), f
        if f["filename"].endswith(".jpg"):
            assert body.endswith(b"\xff\xd9")
    raw.close()


def _texts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["text"] for c in message["content"] if c["type"] == "text"]


def test_the_corpus_holds_every_special_shape(corpus):
    found: dict[str, bool] = defaultdict(bool)
    assistants = {a["id"]: a for a in corpus["assistants"]}
    files = {f["id"]: f for f in corpus["files"]}
    for t in corpus["threads"]:
        found["thread metadata"] |= bool(t["thread"]["metadata"])
        found["two assistants"] |= len({r["assistant_id"] for r in t["runs"]}) >= 2
        for m in t["messages"]:
            found["message metadata"] |= bool(m["metadata"])
            found["attachments"] |= bool(m["attachments"])
            found["incomplete message"] |= m["status"] == "incomplete" and m["incomplete_details"] is not None
            kinds = {c["type"] for c in m["content"]}
            found["image_url"] |= "image_url" in kinds
            found["refusal"] |= "refusal" in kinds
            for c in m["content"]:
                if c["type"] == "image_file":
                    found[f"image_file {files[c['image_file']['file_id']]['purpose']}"] = True
            for text in _texts(m):
                value = text["value"]
                found["emoji"] |= bool(re.search("[\U0001f300-\U0001faff]", value))
                found["rtl"] |= bool(re.search("[\u0590-\u06ff]", value))
                found["cjk"] |= bool(re.search("[\u4e00-\u9fff]", value))
                found["zwj"] |= "\u200d" in value
                found["control"] |= (
                    bool(re.search("[\x01-\x08\x0b\x0c\x0e-\x1f]", value)) and "\x00" not in value
                )
                for ann in text["annotations"]:
                    assert value[ann["start_index"] : ann["end_index"]] == ann["text"]
                    found[ann["type"]] = True
                    if ann["type"] == "file_citation":
                        assert re.fullmatch(r"【\d+:\d+†source】", ann["text"])
        for r in t["runs"]:
            plain, _ = t["steps"][r["id"]]
            asst = assistants[r["assistant_id"]]
            found["instructions override"] |= r["instructions"] != (asst["instructions"] or "")
            found["tools override"] |= r["tools"] != asst["tools"]
            found["cancelled run"] |= r["status"] == "cancelled"
            found["failed run"] |= r["status"] == "failed"
            if not r["tools"]:
                assert [s["type"] for s in plain] == ["message_creation"], r["id"]
                found["tool-less run"] = True
            if r["status"] == "expired" and r["required_action"]:
                open_ids = {c["id"] for c in r["required_action"]["submit_tool_outputs"]["tool_calls"]}
                calls = [
                    c for s in plain for c in s["step_details"].get("tool_calls", []) if c["id"] in open_ids
                ]
                found["expired run, call never answered"] |= bool(calls) and all(
                    c["function"]["output"] is None for c in calls
                )
            for s in plain:
                calls = s["step_details"].get("tool_calls", [])
                fns = [c for c in calls if c["type"] == "function"]
                found["parallel function calls"] |= len(fns) >= 2 and all(
                    c["function"]["output"] for c in fns
                )
                for c in calls:
                    if c["type"] == "code_interpreter":
                        outs = {o["type"]: o for o in c["code_interpreter"]["outputs"]}
                        if "logs" in outs and "image" in outs:
                            found["code_interpreter logs+image"] = True
                            assert files[outs["image"]["image"]["file_id"]]["purpose"] == "assistants_output"
                    if c["type"] == "file_search" and c["file_search"]["results"]:
                        found["file_search results"] = True
    found["assistant metadata"] = any(a["metadata"] for a in corpus["assistants"])
    found["multi-page file content"] = any(len(pages) > 1 for _, pages in corpus["content_pages"])
    in_store = {f["id"] for f in corpus["vector_store_files"]}
    found["assistants file outside every store"] = any(
        f["purpose"] == "assistants" and f["id"] not in in_store for f in corpus["files"]
    )
    expected = [
        "thread metadata", "message metadata", "assistant metadata", "two assistants", "attachments",
        "incomplete message", "image_url", "image_file vision", "image_file assistants_output", "refusal",
        "emoji", "rtl", "cjk", "zwj", "control", "file_citation", "file_path", "instructions override",
        "tools override", "cancelled run", "failed run", "tool-less run", "expired run, call never answered",
        "parallel function calls", "code_interpreter logs+image", "file_search results", "multi-page file content",
        "assistants file outside every store",
    ]  # fmt: skip
    assert [k for k in expected if not found[k]] == []
    assert len(corpus["assistants"]) > 100
    assert max(len(t["messages"]) for t in corpus["threads"]) > 300
    assert min(len(t["messages"]) for t in corpus["threads"]) == 1


def test_a_turn_shares_one_second_as_the_api_s_does(corpus):
    """The rude default: a turn's user message, run, steps and answer carry one created_at."""
    shared = 0
    for t in corpus["threads"]:
        messages, runs = t["messages"], t["runs"]
        for items in (messages, runs, *(plain for plain, _ in t["steps"].values())):
            times = [o["created_at"] for o in items]
            assert times == sorted(times)  # creation order never goes back in time
        for run in runs:
            steps = t["steps"][run["id"]][0]
            assert {s["created_at"] for s in steps} <= {run["created_at"]}
            mine = [m for m in messages if m["run_id"] == run["id"]]
            assert {m["created_at"] for m in mine} <= {run["created_at"]}
            if mine:
                users = [m for m in messages[: messages.index(mine[0])] if m["role"] == "user"]
                assert users[-1]["created_at"] == run["created_at"]
                shared += 1
    assert shared > 20


def test_the_polite_clock_gives_each_object_its_own_second():
    polite = Corpus(THREADS, SEED, polite_clock=True)
    rude = Corpus(THREADS, SEED)
    for index in range(THREADS):
        kind, other = polite.thread(index), rude.thread(index)
        for items in (kind.messages, kind.runs, *kind.steps_plain.values()):
            times = [o["created_at"] for o in items]
            assert times == sorted(set(times))
        # The same corpus otherwise: same ids, same texts, only timestamps differ.
        strip = lambda objs: [{k: v for k, v in o.items() if not k.endswith("_at")} for o in objs]  # noqa: E731
        assert strip(kind.messages) == strip(other.messages) and strip(kind.runs) == strip(other.runs)


def test_chat_conversation_and_error_bodies_match_their_schemas(srv):
    raw = Raw(srv.port)
    status, body = raw.post(
        "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert status == 200 and not schema_errors("CreateChatCompletionResponse", body)
    status, conv = raw.post(
        "/v1/conversations", {"items": [{"role": "user", "content": "hi"}], "metadata": {"a": "b"}}
    )
    assert status == 200 and not schema_errors("ConversationResource", conv)
    status, body = raw.get(f"/v1/conversations/{conv['id']}")
    assert status == 200 and not schema_errors("ConversationResource", body)
    items = [
        {"type": "message", "role": "assistant", "content": "hello"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"ok": true}'},
    ]
    status, body = raw.post(f"/v1/conversations/{conv['id']}/items", {"items": items})
    assert status == 200 and not schema_errors("ConversationItemList", body)
    status, body = raw.get(f"/v1/conversations/{conv['id']}/items")
    assert status == 200 and not schema_errors("ConversationItemList", body) and len(body["data"]) == 4
    status, body = raw.get(
        f"/v1/conversations/{conv['id']}/items", limit=1, order="asc", after=body["data"][0]["id"]
    )
    assert status == 200 and body["data"] == [] and not schema_errors("ConversationItemList", body)
    raw.close()

    errors: dict[int, Any] = {}
    errors[400] = Raw(srv.port).get("/v1/assistants", limit=0)
    errors[404] = Raw(srv.port).get("/v1/threads/thread_nope")
    with SandboxServer(SandboxConfig(threads=2, api_key="right", gone=True, rps_limit=1)) as other:
        errors[401] = Raw(other.port, key="wrong").get("/v1/assistants")
        gone = Raw(other.port, key="right")
        errors[410] = gone.get("/v1/assistants")
        other.configure(gone=False)
        gone.get("/v1/assistants")
        errors[429] = gone.get("/v1/assistants")
    for status, (got, body) in errors.items():
        assert got == status, (status, body)
        assert not schema_errors("ErrorResponse", body), body
    assert errors[404][1]["error"]["message"] == "No thread found with id 'thread_nope'."
    assert errors[401][1]["error"]["code"] == "invalid_api_key"
    assert errors[429][1]["error"]["code"] == "rate_limit_exceeded"
