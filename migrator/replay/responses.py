"""`replay --api responses`: one Responses API request (`POST /v1/responses`) per chosen turn. Pure, no I/O.

The same session prefix as the chat-completions request, in the Responses API's terms:

- `instructions` is the session's system message: the instructions its newest run used, with the
  run's `additional_instructions` already appended to the assistant's (the converter takes the run's
  effective `instructions`, never the assistant's bare ones), so nothing a run added is replaced;
- `input` is the history as `message`, `function_call` and `function_call_output` items (the items
  of `importers/items.py`, the ones `--to conversations` and `--to agents-sqlite` write), a message
  of text parts only as one string (see `_plain`); past hosted calls stay the function calls and
  outputs they were converted to;
- `tools` are flat function tools `{type, name, description, parameters, strict}`; a hosted tool
  the session emulated becomes native where it can: `code_interpreter` as
  `{type: "code_interpreter", container: {type: "auto"}}`, `file_search` as
  `{type: "file_search", vector_store_ids}` bound to the stores `import --to vector-stores` rebuilt.
  A session whose stores were not rebuilt keeps the emulated function, and its binding says which
  stores were unbound (the report warns: retrieval on the target would find nothing);
- `truncation` is `auto`, as the Assistants API truncated, where the Responses default (`disabled`)
  fails a long history; `store` is false (a replay is a test, not a conversation to keep);
- `params` map to their Responses names: `response_format` -> `text.format`, the rest as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migrator.importers.items import (
    agent_tools,
    hosted_tools,
    search_options,
    session_instructions,
    session_items,
    session_store_ids,
)

__all__ = [
    "RESPONSES_URL",
    "StoreBinding",
    "hosted_tools",
    "responses_body",
    "search_options",
    "session_store_ids",
]

RESPONSES_URL = "/v1/responses"
EMULATED_CODE = "code_interpreter"
EMULATED_SEARCH = "file_search"
_SAME_NAME = ("temperature", "top_p", "parallel_tool_calls", "max_output_tokens", "tool_choice")


@dataclass(frozen=True)
class StoreBinding:
    """A session's source vector stores (its assistant's and its thread's) and what they became."""

    source: tuple[str, ...] = ()
    target: tuple[str, ...] = ()  # the rebuilt stores' ids, in the order of `source`
    unbound: tuple[str, ...] = ()  # source stores with no rebuilt store on the target
    options: dict[str, Any] = field(default_factory=dict)  # max_num_results, ranking_options


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A message whose parts are all text, as one string (parts joined by a blank line).

    The spec's `InputItem` is a oneOf under which a message with typed parts matches both
    `EasyInputMessage` and `InputMessage`, so a strict validator refuses it; a string matches one.
    Parts with an image keep their list: the spec offers no unambiguous form for them.
    """
    content = item.get("content")
    if item.get("type") != "message" or not isinstance(content, list) or not content:
        return item
    if all(isinstance(p, dict) and p.get("type") == "input_text" for p in content):
        return {**item, "content": "\n\n".join(str(p.get("text") or "") for p in content)}
    return item


def _text_format(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), dict):
        schema = response_format["json_schema"]
        keys = ("name", "schema", "strict", "description")
        return {"type": "json_schema", **{k: schema[k] for k in keys if k in schema}}
    if kind in ("json_object", "text"):
        return {"type": kind}
    return None


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def responses_body(
    record: Mapping[str, Any], turn: int, model: str, binding: StoreBinding | None = None
) -> dict[str, Any]:
    """The CreateResponse body replaying `turn` of the session (see the module doc)."""
    prefix = {**record, "messages": list(record.get("messages") or ())[:turn]}
    body: dict[str, Any] = {"model": model}
    instructions = session_instructions(prefix)
    if instructions:
        body["instructions"] = instructions
    body["input"] = [_plain(item) for item in session_items(prefix).items]
    hosted = hosted_tools(record)
    tools: list[dict[str, Any]] = []
    for tool in agent_tools(record):
        name = tool["name"]
        if name == EMULATED_CODE and EMULATED_CODE in hosted:
            tools.append({"type": "code_interpreter", "container": {"type": "auto"}})
        elif name == EMULATED_SEARCH and EMULATED_SEARCH in hosted and binding is not None and binding.target:
            tools.append({"type": "file_search", "vector_store_ids": list(binding.target), **binding.options})
        else:
            tools.append(tool)
    if tools:
        body["tools"] = tools
    params = dict(record.get("params") or {})
    if "max_completion_tokens" in params or "max_tokens" in params:
        params["max_output_tokens"] = params.pop("max_completion_tokens", None) or params.pop("max_tokens")
        params.pop("max_tokens", None)
    for key in _SAME_NAME:
        if key in params and (key != "parallel_tool_calls" or tools):
            body[key] = _tool_choice(params[key]) if key == "tool_choice" else params[key]
    text_format = _text_format(params.get("response_format"))
    if text_format is not None:
        body["text"] = {"format": text_format}
    if isinstance(params.get("reasoning_effort"), str):
        body["reasoning"] = {"effort": params["reasoning_effort"]}
    body["truncation"] = "auto"
    body["store"] = False
    return body
