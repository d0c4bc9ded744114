"""A session record's chat-completions messages -> Responses API input items. Pure, no I/O.

Both the Agents SDK's `SQLiteSession` and the Conversations API hold Responses input items, one per
entry: `message` (the `EasyInputMessage` shape), `function_call` and `function_call_output`. The
system/developer message is not an item: it is the agent's instructions (agents.json) or the
`instructions` of the next `responses.create`.

Choices, all deterministic:
- user content parts: `text` -> `input_text`, `image_url` -> `input_image` (detail kept, else `auto`);
- assistant content becomes one string (text and refusal parts joined by a blank line): the Responses
  API takes only `output_text`/`refusal` parts in assistant input, and those need an output item id
  that a migrated message does not have;
- an assistant message with `tool_calls` becomes its text (if any) then one `function_call` a call;
  each `tool` message becomes a `function_call_output` with the same `call_id`;
- a call id longer than the 64 characters `function_call_output` allows is replaced, in both items,
  by `call_` + the first 40 hex digits of its sha256 (counted as `call_id_shortened`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ConvertedItems",
    "MAX_CALL_ID",
    "agent_tools",
    "file_search_tool",
    "hosted_tools",
    "search_options",
    "session_store_ids",
    "session_instructions",
    "session_items",
]

MAX_CALL_ID = 64
_INSTRUCTION_ROLES = ("system", "developer")


@dataclass
class ConvertedItems:
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)  # note code -> count

    def note(self, code: str) -> None:
        self.notes[code] = self.notes.get(code, 0) + 1


def session_instructions(record: Mapping[str, Any]) -> str | None:
    """The session's system/developer message (the instructions its newest run used), if any."""
    messages = record.get("messages") or ()
    if messages and messages[0].get("role") in _INSTRUCTION_ROLES:
        return _text(messages[0].get("content"))
    return None


def session_items(record: Mapping[str, Any]) -> ConvertedItems:
    """The Responses input items of one session, in conversation order, instructions left out."""
    out = ConvertedItems()
    for index, message in enumerate(record.get("messages") or ()):
        role = message.get("role")
        if role in _INSTRUCTION_ROLES:
            if index:
                # Only the first message is the instructions; a later one is conversation content.
                out.items.append({"type": "message", "role": role, "content": _text(message.get("content"))})
            continue
        if role == "user":
            out.items.append({"type": "message", "role": "user", "content": _user_content(message, out)})
        elif role == "assistant":
            out.items.extend(_assistant_items(message, out))
        elif role == "tool":
            out.items.append(
                {
                    "type": "function_call_output",
                    "call_id": _call_id(message.get("tool_call_id") or "", out),
                    "output": _text(message.get("content")),
                }
            )
        else:
            out.note("message_role_unknown")
    return out


def agent_tools(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The session's chat-completions tools as Responses/Agents SDK function tools."""
    tools = []
    for tool in record.get("tools") or ():
        function = tool.get("function") or {}
        if tool.get("type") != "function" or not function.get("name"):
            continue
        tools.append(
            {
                "type": "function",
                "name": function["name"],
                "description": function.get("description") or "",
                "parameters": function.get("parameters") or {"type": "object", "properties": {}},
                "strict": bool(function.get("strict")),
            }
        )
    return tools


def session_store_ids(assistant: Mapping[str, Any] | None, thread: Mapping[str, Any] | None) -> list[str]:
    """The vector stores file_search read for a session: its assistant's, then its thread's, each once."""
    out: list[str] = []
    for owner in (assistant, thread):
        resources = (owner or {}).get("tool_resources")
        search = resources.get("file_search") if isinstance(resources, dict) else None
        ids = search.get("vector_store_ids") if isinstance(search, dict) else None
        for vs_id in ids if isinstance(ids, list) else ():
            if isinstance(vs_id, str) and vs_id not in out:
                out.append(vs_id)
    return out


def search_options(assistant: Mapping[str, Any] | None) -> dict[str, Any]:
    """The assistant's file_search settings the Responses tool takes (`max_num_results`, `ranking_options`)."""
    for tool in (assistant or {}).get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == "file_search":
            settings = tool.get("file_search") if isinstance(tool.get("file_search"), dict) else {}
            out: dict[str, Any] = {}
            limit = settings.get("max_num_results")
            if isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= 50:
                out["max_num_results"] = limit
            # The Assistants rankers (`default_2024_08_21`) are not the Responses API's (`auto`,
            # `default-2024-11-15`): only the threshold carries over, the target's ranker applies.
            ranking = settings.get("ranking_options")
            threshold = ranking.get("score_threshold") if isinstance(ranking, dict) else None
            if isinstance(threshold, int | float) and not isinstance(threshold, bool) and 0 <= threshold <= 1:
                out["ranking_options"] = {"score_threshold": threshold}
            return out
    return {}


def hosted_tools(record: Mapping[str, Any]) -> set[str]:
    """The hosted tools the converter emulated for this session (its `hosted_tool_emulated` warnings)."""
    found = set()
    for warning in record.get("warnings") or ():
        if isinstance(warning, dict) and warning.get("code") == "hosted_tool_emulated":
            found.add(str(warning.get("detail") or "").split(":", 1)[0])
    return found


def file_search_tool(
    assistant: Mapping[str, Any] | None, thread: Mapping[str, Any] | None, rebuilt: Mapping[str, str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The native `file_search` tool bound to the rebuilt stores, and the source stores left unbound.

    None (with every source store unbound) when none of them was rebuilt; a store the assistant
    named that the map lacks is listed, never silently dropped.
    """
    source = session_store_ids(assistant, thread)
    bound = [rebuilt[s] for s in source if s in rebuilt]
    unbound = [s for s in source if s not in rebuilt]
    if not bound:
        return None, unbound
    return {"type": "file_search", "vector_store_ids": bound, **search_options(assistant)}, unbound


def _user_content(message: Mapping[str, Any], out: ConvertedItems) -> str | list[dict[str, Any]]:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text") or ""})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            parts.append(
                {
                    "type": "input_image",
                    "image_url": image.get("url"),
                    "detail": image.get("detail") or "auto",
                }
            )
        elif kind == "refusal":
            parts.append({"type": "input_text", "text": part.get("refusal") or ""})
        else:
            out.note("content_part_unknown")
            parts.append({"type": "input_text", "text": f"[unsupported content part: {kind}]"})
    return parts


def _assistant_items(message: Mapping[str, Any], out: ConvertedItems) -> Iterator[dict[str, Any]]:
    texts = [t for t in _texts(message.get("content")) if t]
    if message.get("refusal") and message["refusal"] not in texts:
        texts.append(message["refusal"])
    calls = message.get("tool_calls") or ()
    if texts or not calls:
        yield {"type": "message", "role": "assistant", "content": "\n\n".join(texts)}
    for call in calls:
        function = call.get("function") or {}
        yield {
            "type": "function_call",
            "call_id": _call_id(call.get("id") or "", out),
            "name": function.get("name") or "",
            "arguments": function.get("arguments") or "",
        }


def _texts(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts = []
    for part in content:
        if part.get("type") == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            texts.append(part.get("text") or "")
    return texts


def _text(content: Any) -> str:
    return "\n\n".join(t for t in _texts(content) if t)


def _call_id(call_id: str, out: ConvertedItems) -> str:
    if len(call_id) <= MAX_CALL_ID:
        return call_id
    out.note("call_id_shortened")
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[:40]
