"""Which files an object mentions. Pure functions over raw API objects (no I/O).

The export fetches exactly these files, the dump ingest records the same references, and verify
checks that each was obtained.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["files_in_message", "files_in_step", "files_in_assistant", "files_in_thread", "thread_file_refs"]


def files_in_message(message: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for attachment in message.get("attachments") or ():
        if attachment.get("file_id"):
            found.add(attachment["file_id"])
    for part in message.get("content") or ():
        kind = part.get("type")
        if kind == "image_file":
            file_id = (part.get("image_file") or {}).get("file_id")
            if file_id:
                found.add(file_id)
        elif kind == "text":
            for annotation in (part.get("text") or {}).get("annotations") or ():
                for key in ("file_citation", "file_path"):
                    file_id = (annotation.get(key) or {}).get("file_id")
                    if file_id:
                        found.add(file_id)
    return found


def files_in_step(step: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    details = step.get("step_details") or {}
    for call in details.get("tool_calls") or ():
        if call.get("type") == "code_interpreter":
            for output in (call.get("code_interpreter") or {}).get("outputs") or ():
                file_id = (output.get("image") or {}).get("file_id")
                if file_id:
                    found.add(file_id)
        elif call.get("type") == "file_search":
            for result in (call.get("file_search") or {}).get("results") or ():
                if result.get("file_id"):
                    found.add(result["file_id"])
    return found


def _tool_resource_files(obj: dict[str, Any]) -> set[str]:
    resources = obj.get("tool_resources") or {}
    return set((resources.get("code_interpreter") or {}).get("file_ids") or ())


def files_in_assistant(assistant: dict[str, Any]) -> set[str]:
    return _tool_resource_files(assistant)


def files_in_thread(thread: dict[str, Any]) -> set[str]:
    return _tool_resource_files(thread)


def thread_file_refs(
    thread: dict[str, Any] | None, messages: Iterable[dict[str, Any]], steps: Iterable[dict[str, Any]]
) -> set[str]:
    found = files_in_thread(thread) if thread else set()
    for message in messages:
        found |= files_in_message(message)
    for step in steps:
        found |= files_in_step(step)
    return found
