"""Is a session record sendable? Checks for `migrate verify`, fast enough to run on every session.

Shapes are checked against the openai SDK's own param types, made strict (sdkstrict.py); the rules
no type expresses (tool-call pairing, names, schemas, strict mode, sources) are checked here. Every
validator is built once per process and schema checks are memoized by schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from migrator.convert.codes import WARNING_CODES
from migrator.convert.schemas import NAME_RE, schema_problems, strict_problems
from migrator.convert.session import FORMAT

__all__ = ["FINDING_CODES", "Finding", "validate_session"]

Severity = Literal["error", "warning"]

FINDING_CODES: dict[str, tuple[Severity, str]] = {
    "record_shape": (
        "error",
        "The record lacks a key of migrator.session/v1, has an unknown one, or a wrong type.",
    ),
    # A thread that never ran and names no assistant has no model to give: a fact of the source, not
    # a conversion fault, so a warning; whoever sends the session (replay --model, import) picks one.
    "model_missing": (
        "warning",
        "The session names no model (the thread never ran); the sender must pick one.",
    ),
    "sources_misaligned": ("error", "`sources` is not one string per message."),
    "message_shape": (
        "error",
        "A message breaks the chat-completions message types (role, keys, content parts).",
    ),
    "tool_call_unanswered": ("error", "An assistant tool call has no tool message right after it."),
    "tool_call_answered_twice": ("error", "Two tool messages answer one tool call."),
    "tool_call_id_duplicate": ("error", "One assistant message lists a tool call id twice."),
    "tool_message_orphan": (
        "error",
        "A tool message does not answer a call of the assistant message before it.",
    ),
    "tool_shape": ("error", "A tool definition breaks the chat-completions tool type."),
    "tool_name_invalid": ("error", "A tool name breaks ^[a-zA-Z0-9_-]{1,64}$."),
    "tool_name_duplicate": ("error", "Two tool definitions share one name."),
    "tool_schema_invalid": ("error", "A tool's parameters are not a valid JSON Schema object."),
    "tool_strict_invalid": ("error", "A strict tool's parameters break the strict-mode rules."),
    "params_invalid": ("error", "`params` holds a key or value chat completions refuses."),
    "empty_session": ("warning", "The session has no messages (the thread was empty)."),
    "system_not_first": ("warning", "A system or developer message is not the first message."),
    "tool_call_undeclared": (
        "warning",
        "A past tool call names a function the session's tools do not define.",
    ),
    "arguments_not_json": ("warning", "A past tool call's arguments are not valid JSON."),
    "warning_code_unknown": ("warning", "The record carries a warning code this version does not document."),
}

_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "thread_id": (str,),
    "created_at": (int, type(None)),
    "metadata": (dict,),
    "assistant_id": (str, type(None)),
    "model": (str, type(None)),
    "params": (dict,),
    "messages": (list,),
    "tools": (list,),
    "sources": (list,),
    "files": (list,),
    "warnings": (list,),
}
_RECORD_KEYS = _RECORD_TYPES.keys()
_RECORD_ITEMS = tuple(_RECORD_TYPES.items())
_ROLES = ("system", "developer", "user", "assistant", "tool")
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    thread_id: str
    detail: str


def validate_session(record: dict[str, Any]) -> list[Finding]:
    """Everything that would stop this session being sent to chat completions, plus softer warnings."""
    thread_id = str(record.get("thread_id") or "?")
    found: list[Finding] = []

    def add(code: str, detail: str) -> None:
        found.append(Finding(code, FINDING_CODES[code][0], thread_id, detail))

    if record.keys() == _RECORD_KEYS:  # every session verify reads: only the types to check
        for key, kinds in _RECORD_ITEMS:
            if not isinstance(record[key], kinds):
                add("record_shape", f"{key} is a {type(record[key]).__name__}")
    else:
        for key, kinds in _RECORD_ITEMS:
            if key not in record:
                add("record_shape", f"missing key {key!r}")
            elif not isinstance(record[key], kinds):
                add("record_shape", f"{key} is a {type(record[key]).__name__}")
        for key in sorted(record.keys() - _RECORD_KEYS):
            add("record_shape", f"unknown key {key!r}")
    if record.get("format") != FORMAT:
        add("record_shape", f"format is {record.get('format')!r}, not {FORMAT!r}")
    if found and any(finding.code == "record_shape" and "missing" in finding.detail for finding in found):
        return found
    messages = record["messages"] if isinstance(record["messages"], list) else []
    if not record.get("model") and messages:  # an empty thread needs no model
        add("model_missing", "model is empty")
    sources = record["sources"] if isinstance(record["sources"], list) else []
    if len(sources) != len(messages) or not all(isinstance(s, str) and s for s in sources):
        add("sources_misaligned", f"{len(sources)} sources for {len(messages)} messages")
    if not messages:
        add("empty_session", "no messages")
    tools = record["tools"] if isinstance(record["tools"], list) else []
    declared = _check_tools(tools, add)
    _check_messages(messages, declared, add)
    _check_params(record["params"] if isinstance(record["params"], dict) else {}, bool(tools), add)
    for warning in record["warnings"] if isinstance(record["warnings"], list) else ():
        code = warning.get("code") if isinstance(warning, dict) else None
        if _key(code) not in WARNING_CODES:
            add("warning_code_unknown", repr(code))
    return found


def _check_messages(messages: list[Any], declared: set[str], add: Any) -> None:
    # pydantic and the SDK's types, at the first validation: a rebuild or an import never validates.
    from migrator.convert.sdkstrict import message_adapter, sdk_errors

    pending: dict[str, bool] = {}  # call id -> answered, for the assistant message being answered
    pending_at = -1
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        where = f"messages[{index}]"
        if role not in _ROLES:
            add("message_shape", f"{where}: role {role!r}")
            continue
        errors = sdk_errors(message_adapter(role), message)
        errors += _spec_only_rules(message, role)
        if errors:
            add("message_shape", f"{where} ({role}): {'; '.join(errors[:3])}")
        if role == "tool":
            call_id = _key(message.get("tool_call_id"))
            if call_id not in pending:
                add("tool_message_orphan", f"{where}: tool_call_id {call_id!r}")
            elif pending[call_id]:
                add("tool_call_answered_twice", f"{where}: tool_call_id {call_id!r}")
            else:
                pending[call_id] = True
            continue
        _close_pending(pending, pending_at, add)
        pending, pending_at = {}, index
        if role in ("system", "developer") and index > 0:
            add("system_not_first", where)
        calls = message.get("tool_calls") if role == "assistant" else None
        for call in calls if isinstance(calls, list) else ():
            if not isinstance(call, dict):
                continue
            call_id = _key(call.get("id"))
            if call_id in pending:
                add("tool_call_id_duplicate", f"{where}: {call_id!r}")
            pending[call_id] = False
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            if _key(function.get("name")) not in declared:
                add("tool_call_undeclared", f"{where}: {function.get('name')!r}")
            try:
                orjson.loads(function.get("arguments") or "")
            except (orjson.JSONDecodeError, TypeError):
                add("arguments_not_json", f"{where}: call {call_id!r}")
    _close_pending(pending, pending_at, add)


def _key(value: Any) -> str:
    """A dict key for any JSON value (ids of a broken record may be lists)."""
    return value if isinstance(value, str) else repr(value)


def _close_pending(pending: dict[str, bool], at: int, add: Any) -> None:
    for call_id, answered in pending.items():
        if not answered:
            add("tool_call_unanswered", f"messages[{at}]: {call_id!r}")


def _spec_only_rules(message: dict[str, Any], role: str) -> list[str]:
    """What the API refuses but the SDK's types let through."""
    content = message.get("content")
    problems = []
    if isinstance(content, list) and not content:
        problems.append("content is an empty list")
    if role == "assistant":
        calls = message.get("tool_calls")
        if content is None and not calls and not message.get("function_call"):
            problems.append("content is required unless tool_calls are given")
        if calls is not None and not calls:
            problems.append("tool_calls is an empty list")
    return problems


def _check_tools(tools: list[Any], add: Any) -> set[str]:
    names: set[str] = set()
    if not tools:
        return names
    from migrator.convert.sdkstrict import sdk_errors, tool_adapter

    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        errors = sdk_errors(tool_adapter(), tool)
        if errors:
            add("tool_shape", f"{where}: {'; '.join(errors[:3])}")
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            continue
        name = function.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            add("tool_name_invalid", f"{where}: {name!r}")
        elif name in names:
            add("tool_name_duplicate", f"{where}: {name!r}")
        if isinstance(name, str):
            names.add(name)
        if "parameters" in function:
            problems = schema_problems(function["parameters"])
            if problems:
                add("tool_schema_invalid", f"{where} {name}: {'; '.join(problems)}")
            if function.get("strict") is True:
                problems = strict_problems(function["parameters"])
                if problems:
                    add("tool_strict_invalid", f"{where} {name}: {'; '.join(problems)}")
    return names


def _check_params(params: dict[str, Any], has_tools: bool, add: Any) -> None:
    if not params:
        return
    for key, value in sorted(params.items()):
        if key == "temperature":
            ok = _number(value) and 0 <= value <= 2
        elif key == "top_p":
            ok = _number(value) and 0 <= value <= 1
        elif key == "response_format":
            ok = isinstance(value, dict) and value.get("type") in _RESPONSE_FORMATS
            if ok and value["type"] == "json_schema":
                schema = value.get("json_schema")
                ok = isinstance(schema, dict) and isinstance(schema.get("name"), str)
        elif key == "parallel_tool_calls":
            ok = isinstance(value, bool) and has_tools
        elif key in ("max_completion_tokens", "seed"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = False
        if not ok:
            add("params_invalid", f"{key}={value!r}"[:200])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
