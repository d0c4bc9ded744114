"""Every response kind of the sandbox's target endpoints against the spec's component schemas.

Files, vector stores and their files in every state (in progress, completed, failed), every list
envelope, the Response object with text and with function calls and every tool echoed, the delete
answer and the error bodies. The requests the tests send are checked against the request schemas too,
so the sandbox is shown to accept what the spec describes.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
import spec
from test_sandbox_support import Raw, schema_errors, sdk, walk

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids
from migrator.sandbox.catalogue import FUNCTIONS

THREADS, SEED = 8, 13


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """(component, body, where) for every answer of a scripted target session, and a few named bodies."""
    checks: list[tuple[str, Any, str]] = []
    named: dict[str, Any] = {}
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, ingest_polls=1)) as srv:
        client = sdk(srv.base_url)
        raw = Raw(srv.port)

        def get(path: str, component: str, **query: Any) -> Any:
            status, body = raw.get(path, **query)
            assert status == 200, (path, body)
            checks.append((component, body, path))
            return body

        def pages(path: str, component: str, **query: Any) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            while True:
                page = get(path, component, limit=2, order="asc", **query)
                items += page["data"]
                if not page["has_more"]:
                    return items
                query["after"] = page["last_id"]

        def post(path: str, body: Any, component: str, request: str | None = None) -> Any:
            if request:
                assert not spec.errors(request, body), (request, spec.errors(request, body))
            status, answer = raw.post(path, body)
            assert status == 200, (path, answer)
            checks.append((component, answer, f"POST {path}"))
            return answer

        uploads = []
        for name, purpose, extra in [
            ("faq.md", "assistants", None),
            ("manual.pdf", "assistants", None),
            ("chart.png", "assistants", None),  # file_search cannot index it: it ends failed
            ("notes.txt", "user_data", ("created_at", 7200)),
            ("batch.jsonl", "batch", None),
        ]:
            kwargs: dict[str, Any] = (
                {"expires_after": {"anchor": extra[0], "seconds": extra[1]}} if extra else {}
            )
            answer = client.files.with_raw_response.create(
                file=(name, f"{name} body".encode()), purpose=purpose, **kwargs
            )
            body = json.loads(answer.content)  # the bytes on the wire, not the SDK's model of them
            checks.append(("OpenAIFile", body, "POST /v1/files"))
            uploads.append(body["id"])
            assert get(f"/v1/files/{body['id']}", "OpenAIFile") == body
        pages("/v1/files", "ListFilesResponse", purpose="assistants")
        pages("/v1/files", "ListFilesResponse", purpose="user_data")

        store = post(
            "/v1/vector_stores",
            {
                "name": "Help centre",
                "description": "rebuilt",
                "metadata": {"source_vector_store_id": "vs_src"},
                "expires_after": {"anchor": "last_active_at", "days": 365},
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 1000, "chunk_overlap_tokens": 100},
                },
                "file_ids": uploads[:3],
            },
            "VectorStoreObject",
            "CreateVectorStoreRequest",
        )
        named["in_progress_store"] = store
        empty = post("/v1/vector_stores", {"name": "empty"}, "VectorStoreObject", "CreateVectorStoreRequest")
        added = post(
            f"/v1/vector_stores/{empty['id']}/files",
            {"file_id": uploads[0], "attributes": {"source": "zendesk", "version": 2, "public": True}},
            "VectorStoreFileObject",
            "CreateVectorStoreFileRequest",
        )
        named["in_progress_file"] = added
        for vs in (store, empty):
            for f_id in uploads[:3] if vs is store else uploads[:1]:
                get(f"/v1/vector_stores/{vs['id']}/files/{f_id}", "VectorStoreFileObject")
            get(f"/v1/vector_stores/{vs['id']}", "VectorStoreObject")
            pages(f"/v1/vector_stores/{vs['id']}/files", "ListVectorStoreFilesResponse")
            for status in ("completed", "failed", "in_progress"):
                pages(f"/v1/vector_stores/{vs['id']}/files", "ListVectorStoreFilesResponse", filter=status)
        named["files"] = pages(f"/v1/vector_stores/{store['id']}/files", "ListVectorStoreFilesResponse")
        pages(
            "/v1/vector_stores", "ListVectorStoresResponse"
        )  # the corpus's five and the two made, all named
        named["nameless"] = raw.post("/v1/vector_stores", {})[1]
        store_pages, query = [], {"limit": 3, "order": "asc"}
        while True:  # kept apart from `checks`: the nameless store is on one of these pages
            status, page = raw.get("/v1/vector_stores", **query)
            assert status == 200
            store_pages.append(page)
            if not page["has_more"]:
                break
            query["after"] = page["last_id"]
        named["store_pages"] = store_pages

        # Responses: text, function calls, every tool kind echoed.
        tools = [
            {"type": "function", "name": "lookup_order", "description": "Look up an order.",
             "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}, "strict": False},
            {"type": "file_search", "vector_store_ids": [store["id"]], "max_num_results": 5},
            {"type": "code_interpreter", "container": {"type": "auto"}},
        ]  # fmt: skip
        requests = [
            {"model": "gpt-4.1", "input": "hello"},
            {
                "model": "gpt-4.1",
                "instructions": "Help.",
                # Text content as a string: the spec's InputItem is a oneOf under which a user message
                # with typed parts is valid twice (EasyInputMessage and InputMessage), hence invalid.
                "input": [
                    {"type": "message", "role": "user", "content": "A1?"},
                    {"type": "message", "role": "assistant", "content": "Let me look."},
                    {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
                ],
                "tools": tools,
                "truncation": "auto",
                "temperature": 0.5,
                "top_p": 1.0,
                "max_output_tokens": 500,
                "metadata": {"thread_id": "thread_1"},
                "store": True,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "text": {"format": {"type": "text"}},
                "reasoning": {"effort": None},
            },
        ]
        # Corpus turns, with the corpus's functions declared flat: some are replayed as function calls.
        flat = [{"type": "function", "strict": False, **f.tool()["function"]} for f in FUNCTIONS]
        texts = {m["content"][0]["text"]["value"] for m in _corpus_user_messages(raw)}
        calls = 0
        for text in sorted(texts)[:60]:
            requests.append({"model": "gpt-4o", "input": [{"role": "user", "content": text}], "tools": flat})
        for body in requests:
            answer = post("/v1/responses", body, "Response", "CreateResponse")
            calls += any(o["type"] == "function_call" for o in answer["output"])
        named["function_call_responses"] = calls

        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("DELETE", f"/v1/files/{uploads[-1]}")
        resp = conn.getresponse()
        checks.append(("DeleteFileResponse", json.loads(resp.read()), "DELETE /v1/files/{id}"))
        conn.close()

        errors = [
            raw.post("/v1/vector_stores", {"nope": 1}),
            raw.post(f"/v1/vector_stores/{empty['id']}/files", {"file_id": "file-missing"}),
            raw.post("/v1/responses", {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": ""}]}),
            raw.get("/v1/vector_stores/vs_nope"),
            raw.get("/v1/files/file-nope"),
        ]  # fmt: skip
        srv.configure(api_key="right")
        errors.append(raw.post("/v1/responses", {"model": "m", "input": "hi"}))
        srv.configure(api_key=None, rps_limit=1)
        errors += [raw.post("/v1/vector_stores", {"name": f"b{i}"}) for i in range(4)]
        for status, body in errors:
            if status >= 400:
                checks.append(("ErrorResponse", body, f"error {status}"))
        named["error_statuses"] = sorted({status for status, _ in errors if status >= 400})
        raw.close()
        client.close()
    return {"checks": checks, **named}


def _corpus_user_messages(raw: Raw) -> list[dict[str, Any]]:
    out = []
    for tid in thread_ids(THREADS, SEED):
        messages, _ = walk(raw, f"/v1/threads/{tid}/messages")
        out += [
            m for m in messages if m["role"] == "user" and m["content"] and m["content"][0]["type"] == "text"
        ]
    return out


def test_every_target_response_matches_its_schema(seen):
    problems = [
        (where, component, errs[:3])
        for component, body, where in seen["checks"]
        if (errs := schema_errors(component, body))
    ]
    assert not problems, problems[:5]
    kinds = {component for component, _, _ in seen["checks"]}
    assert kinds >= {
        "OpenAIFile",
        "ListFilesResponse",
        "VectorStoreObject",
        "ListVectorStoresResponse",
        "VectorStoreFileObject",
        "ListVectorStoreFilesResponse",
        "Response",
        "DeleteFileResponse",
        "ErrorResponse",
    }


def test_the_session_covered_every_state(seen):
    assert seen["in_progress_store"]["status"] == "in_progress"
    assert seen["in_progress_store"]["file_counts"]["in_progress"] == 3
    assert seen["in_progress_file"]["status"] == "in_progress"
    statuses = {f["status"] for f in seen["files"]}
    assert statuses == {"completed", "failed"}
    assert [f["last_error"]["code"] for f in seen["files"] if f["status"] == "failed"] == ["unsupported_file"]
    assert seen["function_call_responses"] >= 5  # the replay answered corpus turns with calls
    assert seen["error_statuses"] == [400, 401, 404, 429]


def test_a_nameless_store_answers_null_as_the_live_api_does(seen):
    """The live API answers `name: null` for a store made without one (../shared/realdata/ruby-openai
    `vector_stores` create and openai-dotnet `CanApplyChunkingStrategy` record it) while the spec types
    `name` as a string: that null is the only thing the schema finds wrong."""
    assert seen["nameless"]["name"] is None
    assert schema_errors("VectorStoreObject", seen["nameless"]) == ["name: None is not of type 'string'"]
    listed = [s["id"] for page in seen["store_pages"] for s in page["data"]]
    assert len(listed) == 5 + 3 and seen["nameless"]["id"] in listed  # the corpus's five and the three made
    for page in seen["store_pages"]:
        ids = [s["id"] for s in page["data"]]
        want = (
            [f"data/{ids.index(seen['nameless']['id'])}/name: None is not of type 'string'"]
            if (seen["nameless"]["id"] in ids)
            else []
        )
        assert schema_errors("ListVectorStoresResponse", page) == want
