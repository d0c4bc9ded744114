"""POST /v1/chat/completions: validated like OpenAI validates, answered by deterministic replay.

Validation rejects what the live endpoint rejects and a migration can get wrong: unknown request
or message keys, bad roles, tool calls without one tool message per call id, orphan tool
messages, malformed tools, function names outside `^[a-zA-Z0-9_-]{1,64}$`, strict schemas that
break strict-mode rules, `parallel_tool_calls` without tools, the Assistants-only
`response_format: "auto"`.

Replay: when the last user message is a user message of the corpus (found through its ticket tag
and compared exactly), the answer is what the corpus's assistant did next in that thread, the
same function calls with the same arguments (the next batch whose call ids the history does not
hold yet) or the run's final text. `replay_drift` perturbs a seeded fraction of those answers.
Anything else gets a text derived from a hash of the request.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import TYPE_CHECKING, Any

import orjson

from migrator.sandbox.errors import bad_request
from migrator.sandbox.ids import token, unit
from migrator.sandbox.plan import EPOCH
from migrator.sandbox.text import ASSISTANT_TEXTS, TICKET

if TYPE_CHECKING:
    from migrator.sandbox.corpus import Corpus
    from migrator.sandbox.routes import Request

Obj = dict[str, Any]

NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
REQUEST_KEYS = frozenset(
    [
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)
MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "refusal", "name", "audio", "tool_calls", "function_call"},
    "tool": {"role", "content", "tool_call_id"},
    "function": {"role", "content", "name"},
}
ROLES_TEXT = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'"
USER_PARTS = {"text", "image_url", "input_audio", "file"}


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _expect(value: Any, kind: type | tuple[type, ...], where: str, expected: str) -> None:
    if not isinstance(value, kind) or (kind in (int, float, (int, float)) and isinstance(value, bool)):
        raise bad_request(
            f"Invalid type for '{where}': expected {expected}, but got {_type_name(value)} instead.",
            where,
            "invalid_type",
        )


def _check_name(name: Any, where: str) -> None:
    _expect(name, str, where, "a string")
    if len(name) > 64:
        raise bad_request(
            f"Invalid '{where}': string too long. Expected a string with maximum length 64, "
            f"but got a string with length {len(name)} instead.",
            where,
            "string_above_max_length",
        )
    if not NAME.match(name):
        raise bad_request(
            f"Invalid '{where}': string does not match pattern. Expected a string that matches the pattern "
            "'^[a-zA-Z0-9_-]+$'.",
            where,
            "invalid_value",
        )


def _unknown_keys(obj: Obj, allowed: set[str] | frozenset[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise bad_request(
                f"Invalid '{where}': unknown parameter '{key}'.", f"{where}.{key}", "unknown_parameter"
            )


def _text_parts(parts: Any, where: str, allowed: set[str]) -> None:
    if not parts:
        raise bad_request(
            f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            where,
            "empty_array",
        )
    for j, part in enumerate(parts):
        pw = f"{where}[{j}]"
        _expect(part, dict, pw, "an object")
        kind = part.get("type")
        if kind not in allowed:
            supported = ", ".join(f"'{a}'" for a in sorted(allowed))
            raise bad_request(
                f"Invalid value: '{kind}'. Supported values are: {supported}.", f"{pw}.type", "invalid_value"
            )
        if kind == "text":
            _unknown_keys(part, {"type", "text"}, pw)
            _expect(part.get("text"), str, f"{pw}.text", "a string")
        elif kind == "refusal":
            _unknown_keys(part, {"type", "refusal"}, pw)
            _expect(part.get("refusal"), str, f"{pw}.refusal", "a string")
        elif kind == "image_url":
            _unknown_keys(part, {"type", "image_url"}, pw)
            image = part.get("image_url")
            _expect(image, dict, f"{pw}.image_url", "an object")
            _unknown_keys(image, {"url", "detail"}, f"{pw}.image_url")
            _expect(image.get("url"), str, f"{pw}.image_url.url", "a string")
            if image.get("detail", "auto") not in ("auto", "low", "high"):
                raise bad_request(
                    f"Invalid value: '{image.get('detail')}'. Supported values are: 'auto', 'low', and 'high'.",
                    f"{pw}.image_url.detail",
                    "invalid_value",
                )
        elif kind == "file":
            _unknown_keys(part, {"type", "file"}, pw)
            _expect(part.get("file"), dict, f"{pw}.file", "an object")
            _unknown_keys(part["file"], {"file_data", "file_id", "filename"}, f"{pw}.file")


def _content(msg: Obj, where: str) -> None:
    role = msg["role"]
    cw = f"{where}.content"
    if "content" not in msg and role != "assistant":
        raise bad_request(f"Missing required parameter: '{cw}'.", cw, "missing_required_parameter")
    content = msg.get("content")
    if role == "assistant":
        if content is None:
            if not msg.get("tool_calls") and not msg.get("function_call"):
                raise bad_request(
                    f"Invalid value for '{cw}': expected a string, got null.", cw, "invalid_value"
                )
            return
        allowed = {"text", "refusal"}
    elif role == "user":
        allowed = USER_PARTS
    else:
        allowed = {"text"}
    if isinstance(content, str):
        return
    _expect(content, list, cw, "a string or an array of content parts")
    _text_parts(content, cw, allowed)


def _tool_calls(calls: Any, where: str) -> list[str]:
    _expect(calls, list, where, "an array")
    if not calls:
        raise bad_request(
            f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            where,
            "empty_array",
        )
    ids = []
    for j, call in enumerate(calls):
        w = f"{where}[{j}]"
        _expect(call, dict, w, "an object")
        kind = call.get("type")
        if kind == "function":
            _unknown_keys(call, {"id", "type", "function"}, w)
            fn = call.get("function")
            _expect(fn, dict, f"{w}.function", "an object")
            _unknown_keys(fn, {"name", "arguments"}, f"{w}.function")
            _check_name(fn.get("name"), f"{w}.function.name")
            _expect(fn.get("arguments"), str, f"{w}.function.arguments", "a string")
        elif kind == "custom":
            _unknown_keys(call, {"id", "type", "custom"}, w)
            _expect(call.get("custom"), dict, f"{w}.custom", "an object")
        else:
            raise bad_request(
                f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
                f"{w}.type",
                "invalid_value",
            )
        _expect(call.get("id"), str, f"{w}.id", "a string")
        ids.append(call["id"])
    return ids


def _strict_schema(schema: Any, name: str, context: tuple[str, ...] = ()) -> None:
    """Strict mode: every object closes its properties and requires all of them."""
    if not isinstance(schema, dict):
        return
    where = f"Invalid schema for function '{name}': In context={context!r}"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            raise bad_request(
                f"{where}, 'additionalProperties' is required to be supplied and to be false.",
                "tools",
                "invalid_function_parameters",
            )
        props = schema.get("properties", {})
        missing = [k for k in props if k not in (schema.get("required") or [])]
        if missing:
            raise bad_request(
                f"{where}, 'required' is required to be supplied and to be an array including every key in "
                f"properties. Missing '{missing[0]}'.",
                "tools",
                "invalid_function_parameters",
            )
        for key, sub in props.items():
            _strict_schema(sub, name, (*context, "properties", key))
    for key in ("items",):
        if key in schema:
            _strict_schema(schema[key], name, (*context, key))
    for key in ("anyOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            _strict_schema(sub, name, (*context, key, str(i)))
    for key in ("$defs", "definitions"):
        for sub_name, sub in schema.get(key, {}).items():
            _strict_schema(sub, name, (*context, key, sub_name))


def _tools(tools: Any) -> set[str]:
    _expect(tools, list, "tools", "an array")
    if len(tools) > 128:
        raise bad_request(
            f"Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with "
            f"length {len(tools)} instead.",
            "tools",
            "array_above_max_length",
        )
    names = set()
    for i, tool in enumerate(tools):
        w = f"tools[{i}]"
        _expect(tool, dict, w, "an object")
        kind = tool.get("type")
        if kind == "custom":
            _unknown_keys(tool, {"type", "custom"}, w)
            _expect(tool.get("custom"), dict, f"{w}.custom", "an object")
            _check_name(tool["custom"].get("name"), f"{w}.custom.name")
            names.add(tool["custom"]["name"])
            continue
        if kind != "function":
            raise bad_request(
                f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
                f"{w}.type",
                "invalid_value",
            )
        _unknown_keys(tool, {"type", "function"}, w)
        fn = tool.get("function")
        if fn is None:
            raise bad_request(
                f"Missing required parameter: '{w}.function'.", f"{w}.function", "missing_required_parameter"
            )
        _expect(fn, dict, f"{w}.function", "an object")
        _unknown_keys(fn, {"name", "description", "parameters", "strict"}, f"{w}.function")
        _check_name(fn.get("name"), f"{w}.function.name")
        if "description" in fn:
            _expect(fn["description"], str, f"{w}.function.description", "a string")
        if fn.get("strict") is not None:
            _expect(fn["strict"], bool, f"{w}.function.strict", "a boolean")
        params = fn.get("parameters")
        if params is not None:
            _expect(params, dict, f"{w}.function.parameters", "an object")
            if params and params.get("type") != "object":
                raise bad_request(
                    f"Invalid schema for function '{fn['name']}': schema must be a JSON Schema of 'type: \"object\"', "
                    f"got 'type: \"{params.get('type')}\"'.",
                    f"{w}.function.parameters",
                    "invalid_function_parameters",
                )
            if fn.get("strict"):
                _strict_schema(params, fn["name"])
        names.add(fn["name"])
    return names


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


def validate(body: Any) -> None:
    """Raise a 400 ApiError for anything the live endpoint would refuse (the subset that matters here)."""
    _expect(body, dict, "body", "an object")
    for key in body:
        if key not in REQUEST_KEYS:
            raise bad_request(f"Unrecognized request argument supplied: {key}", key, "unknown_parameter")
    if not body.get("model"):
        raise bad_request("you must provide a model parameter", "model", "missing_required_parameter")
    _expect(body["model"], str, "model", "a string")
    if "messages" not in body:
        raise bad_request("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    messages = body["messages"]
    _expect(messages, list, "messages", "an array")
    if not messages:
        raise bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    pending: list[str] = []  # call ids still owed a tool message
    pending_at = -1
    for i, msg in enumerate(messages):
        w = f"messages[{i}]"
        _expect(msg, dict, w, "an object")
        role = msg.get("role")
        if role not in MESSAGE_KEYS:
            if role is None:
                raise bad_request(
                    f"Missing required parameter: '{w}.role'.", f"{w}.role", "missing_required_parameter"
                )
            raise bad_request(
                f"Invalid value: '{role}'. Supported values are: {ROLES_TEXT}.", f"{w}.role", "invalid_value"
            )
        _unknown_keys(msg, MESSAGE_KEYS[role], w)
        if "name" in msg:
            _expect(msg["name"], str, f"{w}.name", "a string")
        _content(msg, w)
        if role == "tool":
            _expect(msg.get("tool_call_id"), str, f"{w}.tool_call_id", "a string")
            if msg["tool_call_id"] not in pending:
                raise bad_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                    f"'tool_calls' (messages[{i}].tool_call_id '{msg['tool_call_id']}' answers no open call).",
                    f"{w}.role",
                )
            pending.remove(msg["tool_call_id"])
            continue
        if pending:
            break
        if role == "assistant" and msg.get("tool_calls") is not None:
            pending = _tool_calls(msg["tool_calls"], f"{w}.tool_calls")
            pending_at = i
    if pending:
        raise bad_request(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            f"messages[{pending_at}].role",
        )
    tool_names: set[str] = set()
    if body.get("tools") is not None:
        tool_names = _tools(body["tools"])
    if body.get("parallel_tool_calls") is not None:
        _expect(body["parallel_tool_calls"], bool, "parallel_tool_calls", "a boolean")
        if not body.get("tools"):
            raise bad_request(
                "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
                "specified.",
                "parallel_tool_calls",
                "invalid_value",
            )
    choice = body.get("tool_choice")
    if choice is not None:
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                raise bad_request(
                    f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                    "tool_choice",
                    "invalid_value",
                )
        else:
            _expect(choice, dict, "tool_choice", "a string or an object")
            name = (choice.get("function") or {}).get("name")
            if choice.get("type") == "function" and name not in tool_names:
                raise bad_request(
                    f"Invalid value for 'tool_choice': tool '{name}' is not among the declared tools.",
                    "tool_choice",
                    "invalid_value",
                )
    fmt = body.get("response_format")
    if fmt is not None:
        _expect(fmt, dict, "response_format", "an object")
        if fmt.get("type") not in ("text", "json_object", "json_schema"):
            raise bad_request(
                f"Invalid value: '{fmt.get('type')}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
                "response_format.type",
                "invalid_value",
            )
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    for key in ("n", "max_tokens", "max_completion_tokens", "seed"):
        if body.get(key) is not None:
            _expect(body[key], int, key, "an integer")
    if body.get("n") is not None and not 1 <= body["n"] <= 128:
        raise bad_request(
            f"Invalid 'n': expected a value between 1 and 128, but got {body['n']} instead.",
            "n",
            "invalid_value",
        )
    if body.get("stream"):
        raise bad_request("The sandbox does not stream: send 'stream': false.", "stream", "unsupported_value")
    meta = body.get("metadata")
    if meta is not None:
        _expect(meta, dict, "metadata", "an object")


# -- answers -----------------------------------------------------------------------------------
def _user_texts(msg: Obj) -> list[str]:
    content = msg.get("content")
    if isinstance(content, str):
        return [content]
    texts = [p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
    return [*texts, "\n".join(texts)] if len(texts) > 1 else texts


def _tokens(value: Any) -> int:
    return max(1, math.ceil(len(orjson.dumps(value)) / 4))


class ChatApi:
    def __init__(self, corpus: Corpus) -> None:
        self.c = corpus

    def replay(self, messages: list[Obj], drift: float) -> tuple[str | None, list[Obj] | None] | None:
        """(text, None) or (None, calls) that the corpus's assistant answered to this history; None if
        the last user message is not a corpus message. Also answers /v1/responses (responses.py)."""
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
        if last_user is None:
            return None
        for text in _user_texts(messages[last_user]):
            m = TICKET.search(text)
            if not m:
                continue
            index, k = int(m.group(1)), int(m.group(2))
            if index >= self.c.n_threads:
                continue
            data = self.c.thread(index)
            if data.user_texts.get(k) != text:
                continue
            reply = data.replies.get(k)
            if reply is None:
                return None
            done = set()
            for later in messages[last_user + 1 :]:
                for call in later.get("tool_calls") or []:
                    done.add(call.get("id"))
                if later.get("role") == "tool":
                    done.add(later.get("tool_call_id"))
            for n, batch in enumerate(reply.calls):
                if not all(call_id in done for call_id, _, _ in batch):
                    drifted = unit(self.c.seed, "drift", reply.key, n) < drift
                    calls = [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {
                                "name": name,
                                "arguments": _drift_arguments(args) if drifted else args,
                            },
                        }
                        for call_id, name, args in batch
                    ]
                    return None, calls
            if reply.text is None:
                return None
            if unit(self.c.seed, "drift", reply.key, "text") < drift:
                return "Let me double-check that with the team and come back to you shortly.", None
            return reply.text, None
        return None

    def create(self, req: Request) -> Obj:
        try:
            body = orjson.loads(req.body or b"null")
        except orjson.JSONDecodeError:
            raise bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
                "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            ) from None
        validate(body)
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        answer = self.replay(body["messages"], req.cfg.replay_drift)
        if answer is None:
            h = int(digest[:16], 16)
            words = ASSISTANT_TEXTS[h % len(ASSISTANT_TEXTS)]
            answer = (f"{words} (sandbox reply {digest[:8]})", None)
        content, calls = answer
        message: Obj = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = calls
        choices = [
            {
                "index": i,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
                "logprobs": None,
            }
            for i in range(body.get("n") or 1)
        ]
        prompt = _tokens(body["messages"]) + (_tokens(body["tools"]) if body.get("tools") else 0)
        completion = _tokens(calls or content) * len(choices)
        return {
            "id": "chatcmpl-" + token(digest, length=29),
            "object": "chat.completion",
            "created": EPOCH + int(digest[16:22], 16) % 10_000_000,
            "model": body["model"],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox",
        }


def _drift_arguments(arguments: str) -> str:
    """The same call with one argument changed, so a parity check sees a different answer."""
    try:
        args = json.loads(arguments)
    except ValueError:
        return arguments + " "
    if not isinstance(args, dict) or not args:
        return json.dumps({"note": "drifted"})
    key = next(iter(args))
    value = args[key]
    if isinstance(value, bool):
        args[key] = not value
    elif isinstance(value, int | float):
        args[key] = value + 1
    elif isinstance(value, str):
        args[key] = value + "-2"
    else:
        args[key] = "drifted"
    return json.dumps(args, ensure_ascii=False, separators=(", ", ": "))
