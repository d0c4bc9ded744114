"""POST /v1/responses: validated like OpenAI validates a migrated history, answered by deterministic replay.

Refused with a 400 ErrorResponse naming the parameter, as the live endpoint refuses them:
- a `function_call` with no later `function_call_output` ("No tool output found for function call
  ...") and an output with no earlier call ("No tool call found for function call output with
  call_id ...");
- chat-style tools `{type: "function", function: {...}}` ("Missing required parameter: 'tools[0].name'");
  Responses wants them flat, `{type, name, description, parameters, strict}`;
- content a role cannot carry: `output_text` in a user message (user, system and developer content is
  `input_text`, `input_image`, `input_file`; assistant content is `output_text` or `refusal`);
- unknown keys at the top level and inside items, tools and content parts;
- a `file_search` tool whose `vector_store_ids` name a store this server does not hold (corpus or
  created), and file ids in content or a code_interpreter container that it does not hold.

Input items are `message` (roles user, assistant, system, developer), `function_call` and
`function_call_output`; tools are `function`, `file_search` and `code_interpreter` (with its
`container`). Other real item and tool types, `stream: true`, `background`, `conversation` and
`prompt` get a 400 that says the sandbox does not serve them. `previous_response_id` works for the
last 256 stored responses (`store` is not false).

The answer replays the corpus like chat.py does: when the last user message is a corpus message, the
output is what the corpus's assistant did next, as `function_call` items (only functions the request
declares, one at a time when `parallel_tool_calls` is false, none when `tool_choice` is "none") or an
assistant `message` with `output_text`; anything else gets a text derived from a hash of the request.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from migrator.sandbox.chat import _check_name, _expect, _strict_schema, _tokens
from migrator.sandbox.conversations import check_metadata
from migrator.sandbox.errors import bad_request
from migrator.sandbox.ids import token
from migrator.sandbox.text import ASSISTANT_TEXTS

if TYPE_CHECKING:
    from migrator.sandbox.chat import ChatApi
    from migrator.sandbox.routes import Request
    from migrator.sandbox.stats import Stats
    from migrator.sandbox.stores import Stores
    from migrator.sandbox.uploads import Uploads

Obj = dict[str, Any]
ROUTE = "POST /v1/responses"
STORED = 256  # responses kept for previous_response_id
REQUEST_KEYS = frozenset(
    [
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    ]
)
NOT_SERVED = ("background", "conversation", "prompt", "context_management")
MESSAGE_KEYS = {"type", "id", "role", "content", "status", "phase"}
CALL_KEYS = {"type", "id", "call_id", "name", "arguments", "status", "namespace", "caller", "async"}
OUTPUT_KEYS = {"type", "id", "call_id", "output", "status", "name", "namespace", "caller"}
PART_KEYS = {
    "input_text": {"type", "text", "prompt_cache_breakpoint"},
    "input_image": {"type", "image_url", "file_id", "detail", "prompt_cache_breakpoint"},
    "input_file": {
        "type",
        "file_id",
        "filename",
        "file_data",
        "file_url",
        "detail",
        "prompt_cache_breakpoint",
    },
    "output_text": {"type", "text", "annotations", "logprobs"},
    "refusal": {"type", "refusal"},
}
INPUT_PARTS = ("input_text", "input_image", "input_file")
OUTPUT_PARTS = ("output_text", "refusal")
FUNCTION_KEYS = {
    *("type", "name", "description", "parameters", "strict"),
    *("defer_loading", "output_schema", "allowed_callers"),
}
FILE_SEARCH_KEYS = {"type", "vector_store_ids", "max_num_results", "ranking_options", "filters"}
CODE_KEYS = {"type", "container", "allowed_callers"}
CONTAINER_KEYS = {"type", "file_ids", "memory_limit", "network_policy"}
# Real tool types (the spec's Tool union) that the sandbox does not emulate.
OTHER_TOOLS = [
    "computer",
    "computer_use_preview",
    "web_search",
    "web_search_2025_08_26",
    "mcp",
    "programmatic_tool_calling",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "namespace",
    "tool_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "apply_patch",
]
HOSTED_CHOICES = [
    "file_search",
    "web_search_preview",
    "computer",
    "computer_use_preview",
    "computer_use",
    "web_search_preview_2025_03_11",
    "image_generation",
    "code_interpreter",
]
INCLUDE = [
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]
EFFORTS = (None, "none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = (None, "auto", "concise", "detailed")
TIERS = (None, "auto", "default", "flex", "scale", "priority", "fast", "ultrafast")


def _values(values: tuple[str | None, ...] | list[str]) -> str:
    names = [f"'{v}'" for v in values if v is not None]
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + f", and {names[-1]}"


def _enum(value: Any, allowed: tuple[str | None, ...] | list[str], where: str) -> None:
    if value not in allowed:
        raise bad_request(
            f"Invalid value: '{value}'. Supported values are: {_values(allowed)}.", where, "invalid_value"
        )


def _unknown(obj: Obj, allowed: set[str] | frozenset[str], where: str | None = None) -> None:
    for key in obj:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            raise bad_request(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def _required(obj: Obj, key: str, where: str) -> Any:
    if obj.get(key) is None:
        raise bad_request(
            f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}", "missing_required_parameter"
        )
    return obj[key]


def _number(body: Obj, key: str, lo: float, hi: float) -> None:
    if body.get(key) is None:
        return
    _expect(body[key], (int, float), key, "a number")
    if not lo <= body[key] <= hi:
        raise bad_request(
            f"Invalid '{key}': expected a value between {lo:g} and {hi:g}, but got {body[key]} instead.",
            key,
            "invalid_value",
        )


class ResponsesApi:
    def __init__(self, chat: ChatApi, uploads: Uploads, stores: Stores, seed: int, stats: Stats) -> None:
        self.chat = chat
        self.uploads = uploads
        self.stores = stores
        self.seed = seed
        self.stats = stats
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._stored: OrderedDict[str, list[Obj]] = OrderedDict()  # id -> history and output items

    def stored(self) -> int:
        with self._lock:
            return len(self._stored)

    # -- validation --------------------------------------------------------------------------------
    def _file(self, file_id: Any, where: str) -> None:
        _expect(file_id, str, where, "a string")
        if self.uploads.lookup(file_id) is None:
            raise bad_request(
                f"Invalid '{where}': no file with id '{file_id}' on this server.", where, "invalid_value"
            )

    def _part(self, part: Any, role: str, where: str) -> None:
        _expect(part, dict, where, "an object")
        kind = part.get("type")
        allowed = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
        if kind not in allowed:
            raise bad_request(
                f"Invalid value: '{kind}'. Supported values are: {_values(allowed)}.", where, "invalid_value"
            )
        _unknown(part, PART_KEYS[kind], where)
        if kind in ("input_text", "output_text"):
            _expect(_required(part, "text", where), str, f"{where}.text", "a string")
            if kind == "output_text" and part.get("annotations") is not None:
                _expect(part["annotations"], list, f"{where}.annotations", "an array")
        elif kind == "refusal":
            _expect(_required(part, "refusal", where), str, f"{where}.refusal", "a string")
        elif kind == "input_image":
            if part.get("image_url") is None and part.get("file_id") is None:
                raise bad_request(
                    f"Missing required parameter: '{where}.image_url' or '{where}.file_id'.",
                    f"{where}.image_url",
                    "missing_required_parameter",
                )
            if part.get("image_url") is not None:  # chat's {"url": ...} object is refused here
                _expect(part["image_url"], str, f"{where}.image_url", "a string")
            if part.get("file_id") is not None:
                self._file(part["file_id"], f"{where}.file_id")
            _enum(part.get("detail", "auto"), ("low", "high", "auto", "original"), f"{where}.detail")
        else:  # input_file
            if all(part.get(k) is None for k in ("file_id", "file_data", "file_url")):
                raise bad_request(
                    f"Missing required parameter: one of '{where}.file_id', '{where}.file_data' or "
                    f"'{where}.file_url'.",
                    f"{where}.file_id",
                    "missing_required_parameter",
                )
            if part.get("file_id") is not None:
                self._file(part["file_id"], f"{where}.file_id")
            for key in ("file_data", "file_url", "filename"):
                if part.get(key) is not None:
                    _expect(part[key], str, f"{where}.{key}", "a string")

    def _item(self, item: Any, where: str) -> Obj:
        _expect(item, dict, where, "an object")
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"  # an easy input message may leave out its type
        if kind == "message":
            role = item.get("role")
            if role is None:
                raise bad_request(
                    f"Missing required parameter: '{where}.role'.",
                    f"{where}.role",
                    "missing_required_parameter",
                )
            _enum(role, ("assistant", "system", "developer", "user"), f"{where}.role")  # chat's "tool" first
            _unknown(item, MESSAGE_KEYS, where)
            if "content" not in item:
                raise bad_request(
                    f"Missing required parameter: '{where}.content'.",
                    f"{where}.content",
                    "missing_required_parameter",
                )
            content = item["content"]
            if not isinstance(content, str):
                _expect(content, list, f"{where}.content", "a string or an array of content parts")
                for j, part in enumerate(content):
                    self._part(part, role, f"{where}.content[{j}]")
            if item.get("status") is not None:
                _enum(item["status"], ("in_progress", "completed", "incomplete"), f"{where}.status")
            return {**item, "type": "message"}
        if kind == "function_call":
            _unknown(item, CALL_KEYS, where)
            for key in ("call_id", "name", "arguments"):
                _expect(_required(item, key, where), str, f"{where}.{key}", "a string")
            return item
        if kind == "function_call_output":
            _unknown(item, OUTPUT_KEYS, where)
            _expect(_required(item, "call_id", where), str, f"{where}.call_id", "a string")
            output = _required(item, "output", where)
            if not isinstance(output, str):
                _expect(output, list, f"{where}.output", "a string or an array of content parts")
                for j, part in enumerate(output):
                    self._part(part, "user", f"{where}.output[{j}]")
            return item
        if kind is None:
            raise bad_request(
                f"Missing required parameter: '{where}.type'.", f"{where}.type", "missing_required_parameter"
            )
        raise bad_request(
            f"Invalid value: '{kind}'. The sandbox accepts input items of type 'message', 'function_call', and "
            "'function_call_output' (a migrated history needs no other).",
            f"{where}.type",
            "invalid_value",
        )

    def _input(self, raw: Any) -> list[Obj]:
        if isinstance(raw, str):
            return [{"type": "message", "role": "user", "content": raw}]
        _expect(raw, list, "input", "a string or an array of input items")
        return [self._item(item, f"input[{i}]") for i, item in enumerate(raw)]

    @staticmethod
    def _pairs(history: list[Obj]) -> None:
        """Every call answered by a later output, every output answering an earlier open call."""
        open_calls: dict[str, None] = {}
        seen: set[str] = set()
        for item in history:
            if item.get("id") is not None:
                if item["id"] in seen:
                    raise bad_request(
                        f"Duplicate item found with id {item['id']}. Remove the duplicate item from your input "
                        "and try again.",
                        "input",
                    )
                seen.add(item["id"])
            if item["type"] == "function_call":
                open_calls[item["call_id"]] = None
            elif item["type"] == "function_call_output":
                if item["call_id"] not in open_calls:
                    raise bad_request(
                        f"No tool call found for function call output with call_id {item['call_id']}.",
                        "input",
                    )
                del open_calls[item["call_id"]]
        if open_calls:
            raise bad_request(f"No tool output found for function call {next(iter(open_calls))}.", "input")

    def _tools(self, tools: Any) -> tuple[set[str], set[str], list[Obj]]:
        """(function names, hosted tool types, the tools as a response echoes them)."""
        _expect(tools, list, "tools", "an array")
        names: set[str] = set()
        hosted: set[str] = set()
        echo: list[Obj] = []
        for i, tool in enumerate(tools):
            w = f"tools[{i}]"
            _expect(tool, dict, w, "an object")
            kind = tool.get("type")
            if kind == "function":
                # Before the unknown keys: a chat-style {type, function: {...}} lacks a name first of all.
                name = _required(tool, "name", w)
                _unknown(tool, FUNCTION_KEYS, w)
                _check_name(name, f"{w}.name")
                if tool.get("description") is not None:
                    _expect(tool["description"], str, f"{w}.description", "a string")
                params = tool.get("parameters")
                if params is not None:
                    _expect(params, dict, f"{w}.parameters", "an object")
                    if params and params.get("type") != "object":
                        raise bad_request(
                            f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: "
                            f'"object"\', got \'type: "{params.get("type")}"\'.',
                            f"{w}.parameters",
                            "invalid_function_parameters",
                        )
                if tool.get("strict") is not None:
                    _expect(tool["strict"], bool, f"{w}.strict", "a boolean")
                    if tool["strict"] and params:
                        _strict_schema(params, name)
                names.add(name)
                echo.append(
                    {
                        "type": "function",
                        "name": name,
                        "description": tool.get("description"),
                        "parameters": params,
                        "strict": tool.get("strict"),
                    }
                )
            elif kind == "file_search":
                _unknown(tool, FILE_SEARCH_KEYS, w)
                ids = _required(tool, "vector_store_ids", w)
                if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
                    raise bad_request(
                        f"Invalid type for '{w}.vector_store_ids': expected an array of strings.",
                        f"{w}.vector_store_ids",
                        "invalid_type",
                    )
                for vs_id in ids:
                    if not self.stores.exists(vs_id):
                        raise bad_request(
                            f"Invalid '{w}.vector_store_ids': vector store '{vs_id}' was not found.",
                            f"{w}.vector_store_ids",
                            "invalid_value",
                        )
                results = tool.get("max_num_results")
                if results is not None:
                    _expect(results, int, f"{w}.max_num_results", "an integer")
                    if not 1 <= results <= 50:
                        raise bad_request(
                            f"Invalid '{w}.max_num_results': expected a value between 1 and 50, but got {results} "
                            "instead.",
                            f"{w}.max_num_results",
                            "invalid_value",
                        )
                hosted.add(kind)
                echo.append(
                    {
                        "type": "file_search",
                        "vector_store_ids": ids,
                        "max_num_results": results if results is not None else 20,
                        "ranking_options": tool.get("ranking_options")
                        or {"ranker": "auto", "score_threshold": 0.0},
                        "filters": tool.get("filters"),
                    }
                )
            elif kind == "code_interpreter":
                _unknown(tool, CODE_KEYS, w)
                container = _required(tool, "container", w)
                if not isinstance(container, str):
                    _expect(container, dict, f"{w}.container", "a string or an object")
                    _unknown(container, CONTAINER_KEYS, f"{w}.container")
                    _enum(container.get("type"), ("auto",), f"{w}.container.type")
                    for j, fid in enumerate(container.get("file_ids") or []):
                        self._file(fid, f"{w}.container.file_ids[{j}]")
                hosted.add(kind)
                echo.append({"type": "code_interpreter", "container": container})
            elif kind in OTHER_TOOLS:
                raise bad_request(
                    f"The sandbox does not emulate tools of type '{kind}'; it serves 'function', 'file_search', and "
                    "'code_interpreter'.",
                    f"{w}.type",
                    "unsupported_value",
                )
            else:
                _enum(kind, ["function", "file_search", "code_interpreter", *OTHER_TOOLS], f"{w}.type")
        return names, hosted, echo

    @staticmethod
    def _tool_choice(choice: Any, names: set[str], hosted: set[str]) -> None:
        if isinstance(choice, str):
            _enum(choice, ("none", "auto", "required"), "tool_choice")
            return
        _expect(choice, dict, "tool_choice", "a string or an object")
        kind = choice.get("type")
        if kind == "function":
            name = _required(choice, "name", "tool_choice")  # chat's {function: {name}} is refused here
            _unknown(choice, {"type", "name"}, "tool_choice")
            if name not in names:
                raise bad_request(
                    f"Tool choice 'function' with name '{name}' not found in 'tools' parameter.",
                    "tool_choice",
                )
        elif kind in HOSTED_CHOICES:
            _unknown(choice, {"type"}, "tool_choice")
            if kind not in hosted:
                raise bad_request(f"Tool choice '{kind}' not found in 'tools' parameter.", "tool_choice")
        elif kind == "allowed_tools":
            _unknown(choice, {"type", "mode", "tools"}, "tool_choice")
            _enum(choice.get("mode"), ("auto", "required"), "tool_choice.mode")
            _expect(_required(choice, "tools", "tool_choice"), list, "tool_choice.tools", "an array")
        else:
            _enum(kind, ["function", "allowed_tools", *HOSTED_CHOICES], "tool_choice.type")

    @staticmethod
    def _text(text: Any) -> Obj:
        _expect(text, dict, "text", "an object")
        _unknown(text, {"format", "verbosity"}, "text")
        fmt = text.get("format")
        if fmt is not None:
            _expect(fmt, dict, "text.format", "an object")
            kind = fmt.get("type")
            if kind in ("text", "json_object"):
                _unknown(fmt, {"type"}, "text.format")
            elif kind == "json_schema":
                _unknown(fmt, {"type", "name", "schema", "description", "strict"}, "text.format")
                _check_name(_required(fmt, "name", "text.format"), "text.format.name")
                _expect(_required(fmt, "schema", "text.format"), dict, "text.format.schema", "an object")
            else:
                _enum(kind, ("text", "json_schema", "json_object"), "text.format.type")
        _enum(text.get("verbosity"), (None, "low", "medium", "high"), "text.verbosity")
        return {"format": fmt or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"}

    def validate(self, body: Any) -> tuple[list[Obj], set[str], list[Obj], Obj]:
        """(the whole history, declared function names, the echoed tools, the echoed text) or a 400."""
        _expect(body, dict, "body", "an object")
        for key in body:
            if key == "response_format":
                raise bad_request(
                    "Unsupported parameter: 'response_format'. In the Responses API, this parameter has moved to "
                    "'text.format'. Try again with the new parameter.",
                    "response_format",
                    "unsupported_parameter",
                )
            if key not in REQUEST_KEYS:
                raise bad_request(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
        if not body.get("model"):
            raise bad_request("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        _expect(body["model"], str, "model", "a string")
        if body.get("stream"):
            raise bad_request(
                "Streaming is not supported by the sandbox: send 'stream': false (or leave it out).",
                "stream",
                "unsupported_value",
            )
        for key in NOT_SERVED:
            if body.get(key):
                raise bad_request(
                    f"'{key}' is not supported by the sandbox: send the whole history as 'input'.",
                    key,
                    "unsupported_parameter",
                )
        if body.get("instructions") is not None:
            _expect(body["instructions"], str, "instructions", "a string")
        history: list[Obj] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            _expect(previous, str, "previous_response_id", "a string")
            with self._lock:
                kept = self._stored.get(previous)
            if kept is None:
                raise bad_request(
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            history = list(kept)
        elif body.get("input") is None:
            raise bad_request("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        if body.get("input") is not None:
            history += self._input(body["input"])
        names: set[str] = set()
        hosted: set[str] = set()
        echo: list[Obj] = []
        if body.get("tools") is not None:
            names, hosted, echo = self._tools(body["tools"])
        if body.get("tool_choice") is not None:
            self._tool_choice(body["tool_choice"], names, hosted)
        text = self._text(body["text"]) if body.get("text") is not None else self._text({})
        reasoning = body.get("reasoning")
        if reasoning is not None:
            _expect(reasoning, dict, "reasoning", "an object")
            _unknown(reasoning, {"effort", "summary", "generate_summary", "mode", "context"}, "reasoning")
            _enum(reasoning.get("effort"), EFFORTS, "reasoning.effort")
            _enum(reasoning.get("summary"), SUMMARIES, "reasoning.summary")
        _enum(body.get("truncation"), (None, "auto", "disabled"), "truncation")
        _enum(body.get("service_tier"), TIERS, "service_tier")
        _number(body, "temperature", 0, 2)
        _number(body, "top_p", 0, 1)
        if body.get("max_output_tokens") is not None:
            _expect(body["max_output_tokens"], int, "max_output_tokens", "an integer")
            if body["max_output_tokens"] < 16:
                raise bad_request(
                    "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got "
                    f"{body['max_output_tokens']} instead.",
                    "max_output_tokens",
                    "integer_below_min_value",
                )
        for key in ("store", "parallel_tool_calls"):
            if body.get(key) is not None:
                _expect(body[key], bool, key, "a boolean")
        for key in ("max_tool_calls", "top_logprobs"):
            if body.get(key) is not None:
                _expect(body[key], int, key, "an integer")
        for key in ("user", "safety_identifier", "prompt_cache_key"):
            if body.get(key) is not None:
                _expect(body[key], str, key, "a string")
        if body.get("include") is not None:
            _expect(body["include"], list, "include", "an array")
            for i, value in enumerate(body["include"]):
                _enum(value, INCLUDE, f"include[{i}]")
        check_metadata(body.get("metadata"))
        self._pairs(history)
        return history, names, echo, text

    # -- the answer ----------------------------------------------------------------------------------
    @staticmethod
    def _chat_view(history: list[Obj]) -> list[Obj]:
        """The history as the chat messages chat.py's replay reads: user texts and the call ids answered."""
        view: list[Obj] = []
        for item in history:
            if item["type"] == "message":
                content = item["content"]
                if isinstance(content, list):
                    content = [
                        {"type": "text", "text": p["text"]}
                        for p in content
                        if p.get("type") in ("input_text", "output_text")
                    ]
                view.append({"role": item["role"], "content": content})
            elif item["type"] == "function_call":
                view.append({"role": "assistant", "content": None, "tool_calls": [{"id": item["call_id"]}]})
            else:
                view.append({"role": "tool", "tool_call_id": item["call_id"]})
        return view

    def _output(self, body: Obj, history: list[Obj], names: set[str], drift: float, digest: str) -> list[Obj]:
        n = next(self._counter)
        answer = self.chat.replay(self._chat_view(history), drift)
        text: str | None = None
        if answer is not None:
            text, calls = answer
            if calls:
                done = {item["call_id"] for item in history if item["type"] == "function_call"}
                calls = [c for c in calls if c["id"] not in done and c["function"]["name"] in names]
                if body.get("tool_choice") == "none":
                    calls = []
                if calls and body.get("parallel_tool_calls") is False:
                    calls = calls[:1]
                if calls:
                    return [
                        {
                            "type": "function_call",
                            "id": "fc_" + token(self.seed, "resp-fc", n, k, length=40),
                            "call_id": c["id"],
                            "name": c["function"]["name"],
                            "arguments": c["function"]["arguments"],
                            "status": "completed",
                        }
                        for k, c in enumerate(calls)
                    ]
        if text is None:
            words = ASSISTANT_TEXTS[int(digest[:16], 16) % len(ASSISTANT_TEXTS)]
            text = f"{words} (sandbox reply {digest[:8]})"
        return [
            {
                "type": "message",
                "id": "msg_" + token(self.seed, "resp-msg", n, length=40),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        ]

    def create(self, req: Request) -> Obj:
        try:
            body = orjson.loads(req.body or b"null")
        except orjson.JSONDecodeError:
            raise bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            ) from None
        history, names, tools, text = self.validate(body)
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        output = self._output(body, history, names, req.cfg.replay_drift, digest)
        rid = "resp_" + token(self.seed, "resp", digest, next(self._counter), length=48)
        if body.get("store") is not False:
            with self._lock:
                self._stored[rid] = [*history, *output]
                while len(self._stored) > STORED:
                    self._stored.popitem(last=False)
        reasoning = body.get("reasoning") or {}
        input_tokens = _tokens(history) + (_tokens(body["instructions"]) if body.get("instructions") else 0)
        input_tokens += _tokens(tools) if tools else 0
        output_tokens = _tokens(output)
        now = int(time.time())
        self.stats.created(ROUTE)
        return {
            "id": rid,
            "object": "response",
            "created_at": now,
            "status": "completed",
            "completed_at": now,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": body["model"],
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": body.get("store") is not False,
            "temperature": body["temperature"] if body.get("temperature") is not None else 1.0,
            "text": text,
            "tool_choice": body["tool_choice"] if body.get("tool_choice") is not None else "auto",
            "tools": tools,
            "top_logprobs": body.get("top_logprobs") or 0,
            "top_p": body["top_p"] if body.get("top_p") is not None else 1.0,
            "truncation": body.get("truncation") or "disabled",
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
            "metadata": check_metadata(body.get("metadata")),
            # `user` is deprecated and typed as a string, so it is echoed only when it was sent.
            **({"user": body["user"]} if body.get("user") is not None else {}),
        }
