"""Tool definitions of a session: the union of what runs and assistants declared, made sendable.

Precedence is newest first: the newest run's definition of a name wins over older runs', which win
over the assistants' defaults, because the newest is what the conversation will continue with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from migrator.convert.codes import Notes
from migrator.convert.raw import as_list
from migrator.convert.schemas import NAME_RE, canonical, schema_problems, strict_problems

__all__ = [
    "EMULATED_TOOLS",
    "HOSTED_TYPES",
    "OUTPUT_KEYS",
    "ToolPlan",
    "emulated_tool",
    "is_foreign",
    "plan_tools",
    "tool_payload",
]

HOSTED_TYPES = ("code_interpreter", "file_search")
# Keys of a foreign tool call's payload that are its result, not its request (Foundry's tools name them so).
OUTPUT_KEYS = ("output", "outputs", "response_metadata")
_FUNCTION_KEYS = ("name", "description", "parameters", "strict")
_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")

# The documented stand-ins for the hosted tools (--hosted-tools emulate). Implement them on the target
# to keep the assistant's abilities; their past calls in the session follow these shapes.
EMULATED_TOOLS: dict[str, dict[str, Any]] = {
    "code_interpreter": {
        "name": "code_interpreter",
        "description": (
            "Run Python code in a stateful sandbox and return what it printed (logs) and the ids of any "
            "files or images it created. Stands in for the Assistants API code_interpreter tool."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
            "additionalProperties": False,
        },
    },
    "file_search": {
        "name": "file_search",
        "description": (
            "Search the user's uploaded files and return the best-matching passages with file names, "
            "file ids and scores. Stands in for the Assistants API file_search tool, which did not "
            "record queries: its past calls have empty arguments."
        ),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to search for."}},
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}


def is_foreign(kind: Any) -> bool:
    """A tool type of another service (Azure AI Foundry's bing_grounding, openapi, mcp..., or one not yet
    known): emulated like the hosted tools, never dropped."""
    return isinstance(kind, str) and bool(kind) and kind != "function" and kind not in HOSTED_TYPES


def tool_payload(call: dict[str, Any]) -> dict[str, Any]:
    """What a foreign call carries: its same-named object, else the fields on the call itself (mcp)."""
    inner = call.get(call.get("type"))  # type: ignore[arg-type]
    if isinstance(inner, dict):
        return inner
    return {k: v for k, v in call.items() if k not in ("id", "type")}


def emulated_tool(kind: str) -> dict[str, Any]:
    """The stand-in function for a hosted tool, or for a foreign one: it takes the call's request."""
    if kind in EMULATED_TOOLS:
        return EMULATED_TOOLS[kind]
    return {
        "name": kind,
        "description": (
            f"Stands in for the {kind} tool of the source (Azure AI Foundry or another Assistants-shaped "
            "service), which chat completions cannot run. Past calls carry the original request as "
            "arguments; implement it on the target to keep the ability."
        ),
        "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
    }


@dataclass(frozen=True)
class ToolPlan:
    tools: list[dict[str, Any]]  # chat-completions tools, sorted by name
    rename: dict[str, str]  # original function name -> the valid name sent (only renamed ones)
    hosted: dict[str, list[str]]  # hosted tool type -> the runs/assistants that declared it


@dataclass
class _Chosen:
    source: str
    function: dict[str, Any]
    key: bytes


def plan_tools(
    declarations: Sequence[tuple[str, Sequence[Any]]],
    call_names: Iterable[str],
    hosted_called: Iterable[str],
    emulate_hosted: bool,
    notes: Notes,
    emulate_foreign: bool = True,
) -> ToolPlan:
    """Tools from `declarations` ((source id, tools) pairs, newest first) and the names calls used.

    Hosted tools (`HOSTED_TYPES`) and foreign ones are listed in `hosted`; the hosted ones become
    functions with `emulate_hosted`, the foreign ones with `emulate_foreign` (every mode but text)."""
    if not call_names and not hosted_called and not any(as_list(tools) for _, tools in declarations):
        return ToolPlan(tools=[], rename={}, hosted={})  # nothing declared, nothing called
    chosen: dict[str, _Chosen] = {}
    reported: set[tuple[str, bytes]] = set()
    hosted: dict[str, list[str]] = {}
    for source, tools in declarations:
        for tool in as_list(tools):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind == "function":
                _declare(source, tool.get("function"), chosen, reported, notes)
            elif kind in HOSTED_TYPES or is_foreign(kind):
                sources = hosted.setdefault(kind, [])
                if source not in sources:
                    sources.append(source)
            else:
                notes.add("tool_unsupported", f"{source}: tool type {kind!r}")

    for kind in sorted(set(hosted) | set(hosted_called)):
        if not (emulate_hosted if kind in HOSTED_TYPES else emulate_foreign):
            continue
        if kind in chosen:
            notes.add(
                "tool_schema_conflict",
                f"{kind}: the emulated hosted tool clashes with the function declared by "
                f"{chosen[kind].source}; kept the function",
            )
        else:
            chosen[kind] = _Chosen("emulated", emulated_tool(kind), b"")

    calls = set(call_names)
    for name in sorted(calls - chosen.keys()):
        notes.add("tool_call_undeclared", name)
    rename = _renames(chosen.keys() | calls, notes)

    tools = []
    for name, entry in chosen.items():
        function = dict(entry.function)
        function["name"] = rename.get(name, name)
        _check_schema(function, entry.source, notes)
        tools.append({"type": "function", "function": function})
    tools.sort(key=lambda tool: tool["function"]["name"])
    return ToolPlan(tools=tools, rename=rename, hosted={k: sorted(v) for k, v in hosted.items()})


def _declare(
    source: str,
    function: Any,
    chosen: dict[str, _Chosen],
    reported: set[tuple[str, bytes]],
    notes: Notes,
) -> None:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        notes.add("tool_schema_invalid", f"{source}: a function tool without a name was left out")
        return
    # Only the keys chat completions knows travel; the raw definition stays in the archive.
    normalized = {key: function[key] for key in _FUNCTION_KEYS if key in function}
    strict = normalized.get("strict")
    if not isinstance(normalized.get("description", ""), str) or not (
        strict is None or isinstance(strict, bool)
    ):
        # Wrong types chat completions would refuse; the raw definition keeps them.
        notes.add(
            "malformed_input",
            f"{source}: function {function['name']!r} has a non-string description "
            "or a non-boolean strict; left out",
        )
        normalized = {k: v for k, v in normalized.items() if k not in ("description", "strict")}
    name = normalized["name"]
    key = canonical(normalized)
    winner = chosen.get(name)
    if winner is None:
        chosen[name] = _Chosen(source, normalized, key)
    elif key != winner.key and (name, key) not in reported:
        reported.add((name, key))
        differ = [k for k in _FUNCTION_KEYS if normalized.get(k) != winner.function.get(k)]
        notes.add(
            "tool_schema_conflict",
            f"{name}: {source} differs from {winner.source} in {', '.join(differ)}; kept {winner.source}'s",
        )


def _renames(names: Iterable[str], notes: Notes) -> dict[str, str]:
    """A valid, unique name for every invalid one, stable whatever order the names came in."""
    ordered = sorted(names)
    used = {name for name in ordered if NAME_RE.match(name)}
    rename: dict[str, str] = {}
    for name in ordered:
        if NAME_RE.match(name):
            continue
        base = _BAD_NAME_CHARS.sub("_", name)[:64] or "function"
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base[:60]}_{n}", n + 1
        used.add(candidate)
        rename[name] = candidate
        notes.add("tool_name_invalid", f"{name!r} renamed {candidate!r}")
    return rename


def _check_schema(function: dict[str, Any], source: str, notes: Notes) -> None:
    name = function["name"]
    if "parameters" in function:
        problems = schema_problems(function["parameters"])
        if problems:
            notes.add("tool_schema_invalid", f"{name} ({source}): {'; '.join(problems)}")
        if not isinstance(function["parameters"], dict):
            # Not even an object: the request would be malformed, so the key goes (raw stays archived).
            del function["parameters"]
    if function.get("strict") is True and "parameters" in function:
        problems = strict_problems(function["parameters"])
        if problems:
            notes.add("tool_strict_invalid", f"{name} ({source}): {'; '.join(problems)}")
