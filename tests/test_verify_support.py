"""Archives and CLI helpers for the verify tests: synthetic raw objects stored through the Archive API.

Spec-shaped (components AssistantObject, ThreadObject, MessageObject, RunObject, RunStepObject,
OpenAIFile) and small. `synthetic_archive(path, threads=N)` writes N threads that each have a user
message, a run with a function tool whose call and output live in a run step, and the assistant's
answer; every third thread also shows a downloaded image. No tests here.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from migrator.archive import Archive, FileContent, ThreadResult
from migrator.cli import main

__all__ = ["synthetic_archive", "sandbox_export", "thread_objects", "cli", "PNG", "IMAGE_ID", "ASSISTANT_ID"]

ASSISTANT_ID = "asst_verify1"
IMAGE_ID = "file-verifyimage1"
T0 = 1_700_000_000

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )  # fmt: skip


PNG = _png()


def _assistant() -> dict[str, Any]:
    return {
        "id": ASSISTANT_ID,
        "object": "assistant",
        "created_at": T0,
        "name": "Support",
        "description": None,
        "model": "gpt-4o",
        "instructions": "You help customers.",
        "tools": [WEATHER_TOOL],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }


def _text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": value, "annotations": []}}]


def _message(
    tid: str, n: int, i: int, role: str, content: list[dict[str, Any]], run_id: str | None
) -> dict[str, Any]:
    return {
        "id": f"msg_{n:05d}_{i}",
        "object": "thread.message",
        "created_at": T0 + n * 100 + i * 10,
        "thread_id": tid,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": T0 + n * 100 + i * 10,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": ASSISTANT_ID if role == "assistant" else None,
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
    }


def thread_objects(n: int) -> ThreadResult:
    """Thread number n: user asks, the run calls get_weather, then answers."""
    tid = f"thread_{n:05d}"
    run_id = f"run_{n:05d}"
    at = T0 + n * 100
    user_content = _text(f"What is the weather in city {n}?")
    file_refs: set[str] = set()
    if n % 3 == 0:
        user_content.append({"type": "image_file", "image_file": {"file_id": IMAGE_ID, "detail": "auto"}})
        file_refs.add(IMAGE_ID)
    user = _message(tid, n, 0, "user", user_content, None)
    answer = _message(tid, n, 5, "assistant", _text(f"It is sunny in city {n}."), run_id)
    run = {
        "id": run_id,
        "object": "thread.run",
        "created_at": at + 1,
        "thread_id": tid,
        "assistant_id": ASSISTANT_ID,
        "status": "completed",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": at + 1,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": at + 9,
        "incomplete_details": None,
        "model": "gpt-4o",
        "instructions": "You help customers.",
        "tools": [WEATHER_TOOL],
        "metadata": {},
        "usage": {"completion_tokens": 10, "prompt_tokens": 20, "total_tokens": 30},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }

    def step(i: int, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"step_{n:05d}_{i}",
            "object": "thread.run.step",
            "created_at": at + 2 + i,
            "assistant_id": ASSISTANT_ID,
            "thread_id": tid,
            "run_id": run_id,
            "type": details["type"],
            "status": "completed",
            "step_details": details,
            "last_error": None,
            "expired_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": at + 3 + i,
            "metadata": {},
            "usage": None,
        }

    call = {
        "id": f"call_{n:05d}",
        "type": "function",
        "function": {"name": "get_weather", "arguments": f'{{"city": "city {n}"}}', "output": "sunny"},
    }
    steps = [
        step(0, {"type": "tool_calls", "tool_calls": [call]}),
        step(1, {"type": "message_creation", "message_creation": {"message_id": answer["id"]}}),
    ]
    thread = {
        "id": tid,
        "object": "thread",
        "created_at": at,
        "metadata": {"n": str(n)},
        "tool_resources": None,
    }
    return ThreadResult(
        thread_id=tid,
        status="done",
        thread=thread,
        messages=[user, answer],
        runs=[run],
        steps=steps,
        file_refs=file_refs,
        messages_seen=2,
        runs_seen=1,
        steps_seen=2,
    )


def synthetic_archive(path: Path, threads: int = 6) -> Path:
    """A clean archive of `threads` done threads with their sessions built."""
    from migrator.convert import ConversionOptions
    from migrator.sessions import build_sessions

    with Archive.create(path) as archive:
        archive.work.add((f"thread_{n:05d}", {"user_id": f"u{n % 7}"}) for n in range(threads))
        archive.raw.store_assistants([_assistant()], set())
        for n in range(threads):
            archive.raw.store_thread(thread_objects(n))
        image = {
            "id": IMAGE_ID,
            "object": "file",
            "bytes": len(PNG),
            "created_at": T0,
            "filename": "chart.png",
            "purpose": "vision",
        }
        archive.files.store(image, FileContent("downloaded", data=PNG))
        build_sessions(archive, ConversionOptions())
    return path


def cli(*args: str) -> tuple[int, str, str]:
    """`migrate verify ARGS` through `main()`, the console script's entry point, where errors become
    exit codes: (exit code, stdout, stderr), never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", *args])
    assert "Traceback" not in out.getvalue() + err.getvalue(), out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


SANDBOX_THREADS = 15  # of the shared sandbox's 40 (seed 7): enough for tools, files, images, steps
_EXPORTS: dict[str, Path] = {}


def sandbox_export(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real export of the first threads of the shared sandbox corpus, made once per test process
    (the matrix and the drift tests share it); callers copy it before changing anything."""
    from migrator.sandbox import thread_ids

    if sandbox.base_url not in _EXPORTS:
        folder = tmp_path_factory.mktemp("sandbox-export")
        ids = folder / "ids.txt"
        ids.write_text("\n".join(thread_ids(40, 7)[:SANDBOX_THREADS]) + "\n")
        path = folder / "clean.db"
        # Session scope runs before the per-test environment fixture: give the SDK its key here.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OPENAI_API_KEY", "sandbox-key")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(
                    ["export", str(path), "--threads", str(ids), "--base-url", sandbox.base_url, "--json"]
                )
        assert code == 0, out.getvalue() + err.getvalue()
        _EXPORTS[sandbox.base_url] = path
    return _EXPORTS[sandbox.base_url]
