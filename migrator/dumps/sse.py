"""Recorded server-sent-event streams: the events of a `stream=true` run, and objects built from deltas.

A stream holds every state an object went through (`thread.run.created`, `.queued`, `.in_progress`,
`.completed`, ...) as whole objects, and the text and tool-call arguments of messages and steps as
deltas in between. The whole objects are read like any other saved object (each a snapshot of its
id); the deltas only matter when a stream stops before an object's final (`.completed`) event: then
the object is its last whole snapshot with the deltas that followed it applied, as a client would
have assembled it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["DELTA_KINDS", "DONE", "Assembler", "iter_events", "looks_like_sse"]

# The delta objects of a stream and the object each one builds.
DELTA_KINDS = {"thread.message.delta": "thread.message", "thread.run.step.delta": "thread.run.step"}
DONE = "[DONE]"
# Fields whose delta chunks are pieces of one string; every other string field is sent whole.
_CONCATENATED = frozenset({"value", "arguments", "input"})


def looks_like_sse(head: bytes) -> bool:
    """True when the first lines are `event:` / `data:` fields (a stream saved as .txt or .log)."""
    for raw in head.splitlines()[:20]:
        line = raw.strip()
        if not line or line.startswith(b":"):
            continue
        return line.startswith((b"event:", b"data:", b"id:", b"retry:"))
    return False


def iter_events(lines: Iterator[bytes] | IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
    """(line of the data field, event name, data) per event, as the SSE spec dispatches them."""
    event: str | None = None
    data: list[str] = []
    first = 0
    lineno = 0
    for lineno, raw in enumerate(lines, 1):  # noqa: B007
        line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
        if not line:
            if data:
                yield first, event, "\n".join(data)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            if not data:
                first = lineno
            data.append(value)
    if data:
        yield first, event, "\n".join(data)


@dataclass
class _Building:
    base: dict[str, Any]
    deltas: int = 0
    # The snapshot is shared with the reader until a delta changes it: almost every object of a dump
    # is never followed by a delta, and copying each one was a tenth of an ingest.
    owned: bool = False


@dataclass
class Assembler:
    """The objects of one stream that only deltas finished: fed in stream order, read at its end."""

    building: dict[str, _Building] = field(default_factory=dict)
    # The thread and run the stream belongs to, for a delta whose object was never sent whole.
    thread_id: str | None = None
    run_id: str | None = None

    def whole(self, obj: dict[str, Any]) -> None:
        """A whole snapshot: what later deltas of its id build on."""
        kind = obj.get("object")
        if kind == "thread.run":
            self.run_id = obj.get("id") if isinstance(obj.get("id"), str) else self.run_id
        if isinstance(obj.get("thread_id"), str):
            self.thread_id = obj["thread_id"]
        if kind in DELTA_KINDS.values() and isinstance(obj.get("id"), str):
            self.building[obj["id"]] = _Building(obj)

    def delta(self, obj: dict[str, Any]) -> bool:
        """Apply one delta event; False when it is not one a stream sends (no id, no delta)."""
        object_id, delta = obj.get("id"), obj.get("delta")
        if not isinstance(object_id, str) or not isinstance(delta, dict):
            return False
        held = self.building.get(object_id)
        if held is None:
            held = self.building[object_id] = _Building(
                self._skeleton(object_id, DELTA_KINDS[obj["object"]]), owned=True
            )
        if not held.owned:
            held.base, held.owned = copy.deepcopy(held.base), True
        _merge(held.base, delta)
        held.deltas += 1
        return True

    def finished(self) -> Iterator[dict[str, Any]]:
        """Objects that deltas changed after their last whole snapshot, assembled."""
        for held in self.building.values():
            if held.deltas:
                yield held.base

    def _skeleton(self, object_id: str, kind: str) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": object_id, "object": kind, "status": "in_progress"}
        if self.thread_id:
            obj["thread_id"] = self.thread_id
        if self.run_id:
            obj["run_id"] = self.run_id
        return obj


def _merge(into: dict[str, Any], delta: dict[str, Any]) -> None:
    for key, value in delta.items():
        held = into.get(key)
        if isinstance(value, dict):
            if not isinstance(held, dict):
                held = into[key] = {}
            _merge(held, value)
        elif isinstance(value, list):
            into[key] = _merge_list(held if isinstance(held, list) else [], value)
        elif isinstance(value, str) and key in _CONCATENATED and isinstance(held, str):
            into[key] = held + value
        else:
            into[key] = value


def _merge_list(held: list[Any], items: list[Any]) -> list[Any]:
    """Indexed items (content parts, tool calls) merge into the item of their index; others append."""
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            index = item["index"]
            rest = {k: v for k, v in item.items() if k != "index"}
            while len(held) <= index:
                held.append({})
            if not isinstance(held[index], dict):
                held[index] = {}
            _merge(held[index], rest)
        else:
            held.append(item)
    return held
