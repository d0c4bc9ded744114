"""Archives and helpers for the replay tests: hand-built sessions and sandbox exports. No tests here."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from migrator.archive import Archive, SessionRow
from migrator.cli import app

__all__ = ["cli", "export_archive", "record", "session_archive", "store_records", "tool_turn_record"]

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    },
}


def record(thread_id: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A migrator.session/v1 record around these messages."""
    rec = {
        "format": "migrator.session/v1",
        "thread_id": thread_id,
        "created_at": 1_700_000_000,
        "metadata": {},
        "assistant_id": "asst_1",
        "model": "gpt-4.1",
        "params": {"temperature": 0.5},
        "messages": messages,
        "tools": [],
        "sources": [f"msg_{i}" for i in range(len(messages))],
        "files": [],
        "warnings": [],
    }
    rec.update(extra)
    return rec


def tool_turn_record(thread_id: str) -> dict[str, Any]:
    """system, user, assistant tool call, tool output, assistant text: two turns."""
    return record(
        thread_id,
        [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is order #123?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup_order", "arguments": '{"order": "#123"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
            {"role": "assistant", "content": "Your order #123 has shipped."},
        ],
        tools=[LOOKUP],
    )


def store_records(archive: Archive, records: list[dict[str, Any]]) -> None:
    archive.sessions.store([SessionRow(r["thread_id"], r, 10, r.get("tools") or [], {}) for r in records])


def session_archive(path: Path, records: list[dict[str, Any]]) -> Path:
    with Archive.create(path) as archive:
        store_records(archive, records)
    return path


_EXPORTS: dict[tuple[str, int, int], Path] = {}


def export_archive(base_url: str, threads: int, seed: int, path: Path) -> Path:
    """A real archive exported from a sandbox (cached per sandbox), copied to `path`."""
    from migrator.export import ExportOptions, run_export
    from migrator.sandbox import thread_ids
    from migrator.source import SourceSettings
    from migrator.threadlist import ThreadEntry

    key = (base_url, threads, seed)
    if key not in _EXPORTS:
        cached = path.parent / f"export-{threads}-{seed}.db"
        with Archive.create(cached) as archive:
            entries = [ThreadEntry(t, {}) for t in thread_ids(threads, seed)]
            run_export(
                archive, entries, SourceSettings(base_url=base_url, api_key="k"), ExportOptions(), None
            )
        _EXPORTS[key] = cached
    return Path(shutil.copy(_EXPORTS[key], path))


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`migrate replay ARGS` through typer's runner: (exit code, stdout, stderr), never a traceback."""
    result = CliRunner().invoke(app, ["replay", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def cli_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    code, out, err = cli(*args, "--json", env=env)
    return code, orjson.loads(out)
