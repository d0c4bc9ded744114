"""Which files an object mentions. Pure functions over raw API objects (no I/O).

The export fetches exactly these files, the dump ingest records the same references, and verify
checks that each was obtained.

Look-alike servers send strings, lists and nulls where the spec has objects (a message's `text` as a
string or a list of `{value}`, say). Nothing here raises on such a shape: an odd field holds no file
reference, as `migrator.convert.raw` reads it for the converter.
"""

from __future__ import annotations

from collections.abc import Iterable

from migrator.convert.raw import as_dict, as_str, dicts

__all__ = ["files_in_message", "files_in_step", "files_in_assistant", "files_in_thread", "thread_file_refs"]


def _v1_file_ids(obj: dict[str, object]) -> set[str]:
    """Assistants v1 kept a message's or an assistant's files in `file_ids`."""
    ids = obj.get("file_ids")
    return {f for f in (ids if isinstance(ids, list) else ()) if isinstance(f, str) and f}


def files_in_message(message: dict[str, object]) -> set[str]:
    found: set[str] = _v1_file_ids(message)
    for attachment in dicts(message.get("attachments")):
        found.add(as_str(attachment.get("file_id")))
    for part in dicts(message.get("content")):
        kind = part.get("type")
        if kind == "image_file":
            found.add(as_str(as_dict(part.get("image_file")).get("file_id")))
        elif kind == "text":
            for annotation in dicts(as_dict(part.get("text")).get("annotations")):
                for key in ("file_citation", "file_path"):
                    found.add(as_str(as_dict(annotation.get(key)).get("file_id")))
    found.discard("")
    return found


def files_in_step(step: dict[str, object]) -> set[str]:
    found: set[str] = set()
    for call in dicts(as_dict(step.get("step_details")).get("tool_calls")):
        if call.get("type") == "code_interpreter":
            for output in dicts(as_dict(call.get("code_interpreter")).get("outputs")):
                found.add(as_str(as_dict(output.get("image")).get("file_id")))
        elif call.get("type") == "file_search":
            for result in dicts(as_dict(call.get("file_search")).get("results")):
                found.add(as_str(result.get("file_id")))
    found.discard("")
    return found


def _tool_resource_files(obj: dict[str, object]) -> set[str]:
    interpreter = as_dict(as_dict(obj.get("tool_resources")).get("code_interpreter"))
    ids = interpreter.get("file_ids")
    return {
        file_id for file_id in (ids if isinstance(ids, list) else ()) if isinstance(file_id, str) and file_id
    }


def files_in_assistant(assistant: dict[str, object]) -> set[str]:
    return _tool_resource_files(assistant) | _v1_file_ids(assistant)


def files_in_thread(thread: dict[str, object]) -> set[str]:
    return _tool_resource_files(thread)


def thread_file_refs(
    thread: dict[str, object] | None, messages: Iterable[object], steps: Iterable[object]
) -> set[str]:
    found = files_in_thread(thread) if isinstance(thread, dict) else set()
    for message in messages:
        if isinstance(message, dict):
            found |= files_in_message(message)
    for step in steps:
        if isinstance(step, dict):
            found |= files_in_step(step)
    return found
