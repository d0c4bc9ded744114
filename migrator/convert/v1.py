"""Assistants v1 objects (2023-2024 dumps) read as their v2 equivalents, with a `v1_object` warning.

v1 had `file_ids` on assistants, messages and runs where v2 has `tool_resources` and `attachments`,
the `retrieval` tool where v2 has `file_search`, and `retrieval` tool calls in run steps. The raw
objects stay in the archive as the source sent them; only the converter's copy is mapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.convert.codes import Notes
from migrator.convert.raw import as_dict, as_list, dicts, oid

__all__ = ["v2_assistant", "v2_message", "v2_run", "v2_step"]


def _tools(tools: Any) -> tuple[Any, bool]:
    if not any(isinstance(t, dict) and t.get("type") == "retrieval" for t in as_list(tools)):
        return tools, False
    mapped = [
        {**t, "type": "file_search"} if isinstance(t, dict) and t.get("type") == "retrieval" else t
        for t in tools
    ]
    return mapped, True


def _declaring(obj: dict[str, Any], kind: str, notes: Notes) -> dict[str, Any]:
    tools, retrieval = _tools(obj.get("tools"))
    if not retrieval and "file_ids" not in obj:
        return obj
    what = [w for w, on in (("retrieval -> file_search", retrieval), ("file_ids", "file_ids" in obj)) if on]
    notes.add("v1_object", f"{kind} {oid(obj) or '?'}: {', '.join(what)}")
    return {**obj, "tools": tools} if retrieval else obj


def v2_assistant(assistant: dict[str, Any], notes: Notes) -> dict[str, Any]:
    return _declaring(assistant, "assistant", notes)


def v2_run(run: dict[str, Any], notes: Notes) -> dict[str, Any]:
    return _declaring(run, "run", notes)


def v2_message(message: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """A v1 message's `file_ids` as v2 attachments (v1 attached files for retrieval)."""
    if "file_ids" not in message:
        return message
    notes.add("v1_object", f"message {oid(message) or '?'}: file_ids -> attachments")
    if as_list(message.get("attachments")):
        return message
    files = [f for f in as_list(message.get("file_ids")) if isinstance(f, str) and f]
    return {**message, "attachments": [{"file_id": f, "tools": [{"type": "file_search"}]} for f in files]}


def v2_step(step: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """A v1 `retrieval` tool call as the file_search call it became (v1 recorded no results)."""
    details = as_dict(step.get("step_details"))
    calls = list(dicts(details.get("tool_calls")))
    if not any(call.get("type") == "retrieval" for call in calls):
        return step
    notes.add("v1_object", f"step {oid(step) or '?'}: retrieval -> file_search")
    mapped = [_search_call(call) if call.get("type") == "retrieval" else call for call in calls]
    return {**step, "step_details": {**details, "tool_calls": mapped}}


def _search_call(call: Mapping[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in call.items() if k != "retrieval"}
    return {**rest, "type": "file_search", "file_search": {}}
