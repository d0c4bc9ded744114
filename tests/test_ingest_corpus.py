"""A small hand-made Assistants corpus, stored the way `migrate export` stores what it fetches.

The dump tests write it out and read it back; the tests here keep it honest: every object has the
shape the OpenAI spec gives it, and the archive holds what an export of it would hold.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from test_sandbox_support import schema_errors

from migrator.archive import Archive, FileContent, ThreadResult
from migrator.refs import files_in_assistant, thread_file_refs

# A 1x1 PNG: an image the converter inlines as a data: URL when its bytes were downloaded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n% a tiny stand-in\n"
T0 = 1_700_000_000


def assistant(
    aid: str, *, tools: list[dict[str, Any]] | None = None, files: list[str] = ()
) -> dict[str, Any]:
    return {
        "id": aid,
        "object": "assistant",
        "created_at": T0,
        "name": "Support",
        "description": None,
        "model": "gpt-4.1",
        "instructions": "You help customers. ¿Qué tal? 🙂",
        "tools": tools or [],
        "tool_resources": {"code_interpreter": {"file_ids": list(files)}} if files else {},
        "metadata": {},
        "temperature": 0.5,
        "top_p": 1.0,
        "response_format": "auto",
    }


def thread(tid: str, *, user: str = "u1") -> dict[str, Any]:
    return {
        "id": tid,
        "object": "thread",
        "created_at": T0 + 1,
        "tool_resources": None,
        "metadata": {"user": user},
    }


def message(mid: str, tid: str, role: str, text: str, *, at: int, run_id: str | None = None, **extra: Any):
    return {
        "id": mid,
        "object": "thread.message",
        "created_at": T0 + at,
        "thread_id": tid,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": T0 + at,
        "incomplete_at": None,
        "role": role,
        "content": extra.pop("content", None)
        or [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": "asst_A" if role == "assistant" else None,
        "run_id": run_id,
        "attachments": extra.pop("attachments", []),
        "metadata": {},
    }


def run(rid: str, tid: str, *, at: int, tools: list[dict[str, Any]] | None = None, status: str = "completed"):
    return {
        "id": rid,
        "object": "thread.run",
        "created_at": T0 + at,
        "thread_id": tid,
        "assistant_id": "asst_A",
        "status": status,
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": T0 + at,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": T0 + at + 1,
        "incomplete_details": None,
        "model": "gpt-4.1",
        "instructions": "You help customers.",
        "tools": tools or [],
        "metadata": {},
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "temperature": 0.5,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
    }


def step(sid: str, tid: str, rid: str, *, at: int, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": sid,
        "object": "thread.run.step",
        "created_at": T0 + at,
        "assistant_id": "asst_A",
        "thread_id": tid,
        "run_id": rid,
        "type": details["type"],
        "status": "completed",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": T0 + at,
        "metadata": {},
        "usage": None,
    }


def file_object(fid: str, filename: str, size: int, purpose: str = "assistants") -> dict[str, Any]:
    return {
        "id": fid,
        "object": "file",
        "bytes": size,
        "created_at": T0,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


def vector_store(vsid: str) -> dict[str, Any]:
    return {
        "id": vsid,
        "object": "vector_store",
        "created_at": T0,
        "name": "Manuals",
        "usage_bytes": 100,
        "file_counts": {"in_progress": 0, "completed": 1, "failed": 0, "cancelled": 0, "total": 1},
        "status": "completed",
        "expires_at": None,
        "last_active_at": T0,
        "metadata": {},
    }


def vector_store_file(fid: str, vsid: str) -> dict[str, Any]:
    return {
        "id": fid,
        "object": "vector_store.file",
        "usage_bytes": 40,
        "created_at": T0,
        "vector_store_id": vsid,
        "status": "completed",
        "last_error": None,
        "chunking_strategy": {
            "type": "static",
            "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
        },
        "attributes": {},
    }


FUNCTION = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    },
}


def corpus() -> dict[str, Any]:
    """Assistants, vector stores, files and threads: plain, with a function call, with files, empty."""
    t1, t2, t3, t4 = "thread_plain", "thread_tools", "thread_files", "thread_empty"
    call = {
        "id": "call_1",
        "type": "function",
        "function": {
            "name": "lookup_order",
            "arguments": '{"order":"A-1"}',
            "output": '{"status":"shipped"}',
        },
    }
    threads = [
        {
            "thread": thread(t1),
            "messages": [
                message("msg_1a", t1, "user", "Hello", at=10),
                message("msg_1b", t1, "assistant", "Hi! How can I help?", at=12, run_id="run_1"),
            ],
            "runs": [run("run_1", t1, at=11)],
            "steps": [],
        },
        {
            "thread": thread(t2, user="u2"),
            "messages": [
                message("msg_2a", t2, "user", "Where is order A-1?", at=20),
                message("msg_2b", t2, "assistant", "It has shipped.", at=24, run_id="run_2"),
            ],
            "runs": [run("run_2", t2, at=21, tools=[FUNCTION])],
            "steps": [
                step("step_2a", t2, "run_2", at=22, details={"type": "tool_calls", "tool_calls": [call]}),
                step(
                    "step_2b",
                    t2,
                    "run_2",
                    at=23,
                    details={"type": "message_creation", "message_creation": {"message_id": "msg_2b"}},
                ),
            ],
        },
        {
            "thread": thread(t3, user="u3"),
            "messages": [
                message(
                    "msg_3a",
                    t3,
                    "user",
                    "See the picture and the manual",
                    at=30,
                    content=[
                        {
                            "type": "text",
                            "text": {"value": "See the picture and the manual", "annotations": []},
                        },
                        {"type": "image_file", "image_file": {"file_id": "file-img", "detail": "auto"}},
                    ],
                    attachments=[{"file_id": "file-manual", "tools": [{"type": "file_search"}]}],
                ),
                message(
                    "msg_3b", t3, "assistant", "Page 2 says reboot【4:0†source】.", at=32, run_id="run_3"
                ),
            ],
            "runs": [run("run_3", t3, at=31)],
            "steps": [],
        },
        {"thread": thread(t4, user="u4"), "messages": [], "runs": [], "steps": []},
    ]
    return {
        "assistants": [assistant("asst_A", tools=[FUNCTION], files=["file-code"])],
        "vector_stores": [(vector_store("vs_1"), [vector_store_file("file-manual", "vs_1")])],
        "threads": threads,
        "files": [
            (file_object("file-img", "photo.png", len(PNG), "vision"), FileContent("downloaded", PNG)),
            (
                file_object("file-manual", "manual.pdf", 5000),
                FileContent("parsed_text", "Page 1: plug in.\nPage 2: reboot. Ünïcødé ✓".encode(), "vs_1"),
            ),
            (file_object("file-code", "data.csv", 99), FileContent("missing")),
            (file_object("file-spare", "spare.pdf", len(PDF)), FileContent("downloaded", PDF)),
        ],
        "extra": {t1: {"user_id": "u1"}, t2: {"user_id": "u2", "tier": "gold"}, t3: {}, t4: {}},
    }


def store_as_export(archive: Archive, data: dict[str, Any]) -> None:
    """What `run_export` writes for these objects (same store calls, same file references)."""
    archive.work.add((t["thread"]["id"], data["extra"][t["thread"]["id"]]) for t in data["threads"])
    assistants = data["assistants"]
    archive.raw.store_assistants(
        assistants, {(f, a["id"]) for a in assistants for f in files_in_assistant(a)}
    )
    for store, files in data["vector_stores"]:
        archive.raw.store_vector_store(store, files)
    for t in data["threads"]:
        result = ThreadResult(
            t["thread"]["id"],
            "done",
            thread=t["thread"],
            messages=t["messages"],
            runs=t["runs"],
            steps=t["steps"],
            messages_seen=len(t["messages"]),
            runs_seen=len(t["runs"]),
            steps_seen=len(t["steps"]),
        )
        result.file_refs = thread_file_refs(t["thread"], t["messages"], t["steps"])
        archive.raw.store_thread(result)
    for meta, content in data["files"]:
        archive.files.store(meta, content)


def exported_archive(path: Path) -> Archive:
    archive = Archive.create(path)
    store_as_export(archive, corpus())
    return archive


# -- the corpus itself is honest -----------------------------------------------------------------

_COMPONENTS = {
    "assistant": "AssistantObject",
    "thread": "ThreadObject",
    "thread.message": "MessageObject",
    "thread.run": "RunObject",
    "thread.run.step": "RunStepObject",
    "vector_store": "VectorStoreObject",
    "vector_store.file": "VectorStoreFileObject",
    "file": "OpenAIFile",
}


def _all_objects(data: dict[str, Any]) -> list[dict[str, Any]]:
    objects = list(data["assistants"])
    for store, files in data["vector_stores"]:
        objects += [store, *files]
    for t in data["threads"]:
        objects += [t["thread"], *t["messages"], *t["runs"], *t["steps"]]
    objects += [meta for meta, _ in data["files"]]
    return objects


@pytest.mark.parametrize("obj", _all_objects(corpus()), ids=lambda o: o["id"])
def test_corpus_objects_have_the_spec_shape(obj: dict[str, Any]) -> None:
    assert schema_errors(_COMPONENTS[obj["object"]], obj) == []


def test_corpus_is_stored_like_an_export(tmp_path: Path) -> None:
    with exported_archive(tmp_path / "a.db") as archive:
        counts = archive.counts()
        assert (counts["threads"], counts["messages"], counts["runs"], counts["run_steps"]) == (4, 6, 3, 2)
        assert (counts["files"], counts["files_downloaded"], counts["files_parsed_text"]) == (4, 2, 1)
        assert archive.files.refs_of("thread_files") == ["file-img", "file-manual"]
        assert archive.work.counts()["done"] == 4
