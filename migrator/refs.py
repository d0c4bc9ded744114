"""Which files an object mentions. Pure functions over raw API objects (no I/O).

The export fetches exactly these files, the dump ingest records the same references, and verify
checks that each was obtained.

Look-alike servers send strings, lists and nulls where the spec has objects. Nothing here raises on
such a shape: an odd field is read as empty, and when the caller passes an `odd` list, each odd shape
is described there ("msg_1: content[0].text is a list, not an object"), so the export can record the
thread as a failure instead of claiming it whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["files_in_message", "files_in_step", "files_in_assistant", "files_in_thread", "thread_file_refs"]

Odd = list[str] | None


def _kind(value: Any) -> str:
    return {str: "a string", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _obj(value: Any, where: str, odd: Odd) -> dict[str, Any]:
    """`value` when it is an object; an absent one (null) is empty, anything else is odd."""
    if isinstance(value, dict):
        return value
    if value is not None and odd is not None:
        odd.append(f"{where} is {_kind(value)}, not an object")
    return {}


def _objs(value: Any, where: str, odd: Odd) -> Iterator[tuple[str, dict[str, Any]]]:
    """(place, item) for the object items of a list field; a non-list or a non-object item is odd."""
    if value is None:
        return
    if not isinstance(value, list):
        if odd is not None:
            odd.append(f"{where} is {_kind(value)}, not a list")
        return
    for i, item in enumerate(value):
        place = f"{where}[{i}]"
        if isinstance(item, dict):
            yield place, item
        elif odd is not None:
            odd.append(f"{place} is {_kind(item)}, not an object")


def _file_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(obj: dict[str, Any]) -> str:
    oid = obj.get("id")
    return oid if isinstance(oid, str) and oid else "an object without id"


def files_in_message(message: dict[str, Any], odd: Odd = None) -> set[str]:
    found: set[str] = set()
    name = _name(message)
    for _, attachment in _objs(message.get("attachments"), f"{name}: attachments", odd):
        if file_id := _file_id(attachment.get("file_id")):
            found.add(file_id)
    for place, part in _objs(message.get("content"), f"{name}: content", odd):
        kind = part.get("type")
        if kind == "image_file":
            if file_id := _file_id(_obj(part.get("image_file"), f"{place}.image_file", odd).get("file_id")):
                found.add(file_id)
        elif kind == "text":
            text = _obj(part.get("text"), f"{place}.text", odd)
            for spot, annotation in _objs(text.get("annotations"), f"{place}.text.annotations", odd):
                for key in ("file_citation", "file_path"):
                    if file_id := _file_id(_obj(annotation.get(key), f"{spot}.{key}", odd).get("file_id")):
                        found.add(file_id)
    return found


def files_in_step(step: dict[str, Any], odd: Odd = None) -> set[str]:
    found: set[str] = set()
    name = _name(step)
    details = _obj(step.get("step_details"), f"{name}: step_details", odd)
    for place, call in _objs(details.get("tool_calls"), f"{name}: step_details.tool_calls", odd):
        if call.get("type") == "code_interpreter":
            interpreter = _obj(call.get("code_interpreter"), f"{place}.code_interpreter", odd)
            for spot, output in _objs(interpreter.get("outputs"), f"{place}.code_interpreter.outputs", odd):
                if file_id := _file_id(_obj(output.get("image"), f"{spot}.image", odd).get("file_id")):
                    found.add(file_id)
        elif call.get("type") == "file_search":
            search = _obj(call.get("file_search"), f"{place}.file_search", odd)
            for _, result in _objs(search.get("results"), f"{place}.file_search.results", odd):
                if file_id := _file_id(result.get("file_id")):
                    found.add(file_id)
    return found


def _tool_resource_files(obj: dict[str, Any], odd: Odd = None) -> set[str]:
    name = _name(obj)
    resources = _obj(obj.get("tool_resources"), f"{name}: tool_resources", odd)
    interpreter = _obj(resources.get("code_interpreter"), f"{name}: tool_resources.code_interpreter", odd)
    ids = interpreter.get("file_ids")
    if ids is not None and not isinstance(ids, list) and odd is not None:
        odd.append(f"{name}: tool_resources.code_interpreter.file_ids is {_kind(ids)}, not a list")
    return {file_id for file_id in (ids if isinstance(ids, list) else ()) if _file_id(file_id)}


def files_in_assistant(assistant: dict[str, Any], odd: Odd = None) -> set[str]:
    return _tool_resource_files(assistant, odd)


def files_in_thread(thread: dict[str, Any], odd: Odd = None) -> set[str]:
    return _tool_resource_files(thread, odd)


def thread_file_refs(
    thread: dict[str, Any] | None,
    messages: Iterable[dict[str, Any]],
    steps: Iterable[dict[str, Any]],
    odd: Odd = None,
) -> set[str]:
    found = files_in_thread(thread, odd) if isinstance(thread, dict) else set()
    for message in messages:
        if isinstance(message, dict):
            found |= files_in_message(message, odd)
    for step in steps:
        if isinstance(step, dict):
            found |= files_in_step(step, odd)
    return found
