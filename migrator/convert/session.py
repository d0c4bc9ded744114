"""One thread's raw objects -> one `migrator.session/v1` record. Pure: no I/O, no clock.

`sources` says where each message came from, aligned 1:1 with `messages`:
    instructions:<run_id>      the system/developer message: the instructions that run used
    instructions:<asst_id>     ... or, for a thread with no runs, the assistant's instructions
    <msg_id>                   an Assistants message
    <step_id>                  the assistant tool_calls message of a tool_calls step
    <step_id>:<call_id>        the tool message answering that call (or, with --hosted-tools text,
                               the assistant text that inlines a hosted call)
    <run_id>                   tool_calls a run's open required_action lists but no step recorded
    <run_id>:<call_id>         the tool message closing such a call
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from migrator.convert.bundle import ThreadBundle
from migrator.convert.codes import Notes
from migrator.convert.content import ContentContext, convert_content, file_label
from migrator.convert.interleave import order_thread
from migrator.convert.models import is_reasoning_model
from migrator.convert.options import ConversionOptions
from migrator.convert.schemas import canonical
from migrator.convert.tools import HOSTED_TYPES, ToolPlan, plan_tools

__all__ = ["FORMAT", "convert_thread", "session_tool_definitions"]

FORMAT = "migrator.session/v1"

_UNFINISHED = ("queued", "in_progress", "requires_action", "cancelling")
_WHY_NO_OUTPUT = {
    "requires_action": "was still waiting for it when the thread was archived",
    "expired": "expired waiting for it",
    "cancelled": "was cancelled before it arrived",
    "cancelling": "was being cancelled before it arrived",
    "failed": "failed before it arrived",
    "incomplete": "ended incomplete before it arrived",
}
_OVERRIDABLE = ("instructions", "model", "temperature", "top_p", "response_format")


def _created(obj: Mapping[str, Any]) -> tuple[int, str]:
    value = obj.get("created_at")
    return (value if isinstance(value, int) else 0, obj.get("id") or "")


@dataclass
class _Out:
    """The messages being built, their sources, and the state of tool-call emission."""

    ctx: ContentContext
    plan: ToolPlan
    messages: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    seen_calls: set[str] = field(default_factory=set)
    hosted_calls: dict[str, int] = field(default_factory=dict)

    def add(self, message: dict[str, Any], source: str) -> None:
        self.messages.append(message)
        self.sources.append(source)


def convert_thread(bundle: ThreadBundle, options: ConversionOptions = ConversionOptions()) -> dict[str, Any]:
    """The session record of one thread. Same input, byte-identical output (whatever the list order)."""
    notes = Notes()
    thread = bundle.thread
    runs = sorted(bundle.runs, key=_created)
    newest = runs[-1] if runs else None
    ctx = ContentContext(options=options, files=bundle.files, notes=notes)
    call_names, hosted_called = _survey_calls(bundle.steps, runs, ctx)

    assistant_ids = _assistant_ids(runs, bundle.messages)
    assistant_id = assistant_ids[0] if assistant_ids else None
    assistant = bundle.assistants.get(assistant_id) if assistant_id else None
    declarations: list[tuple[str, Any]] = [(run.get("id") or "?", run.get("tools")) for run in reversed(runs)]
    declarations += [
        (aid, bundle.assistants[aid].get("tools")) for aid in assistant_ids if aid in bundle.assistants
    ]
    emulate = options.hosted_tools == "emulate"
    plan = plan_tools(declarations, call_names, hosted_called if emulate else (), emulate, notes)

    out = _Out(ctx=ctx, plan=plan)
    _system_message(runs, assistant_id, assistant, options, out, notes)
    timeline, missing = order_thread(bundle.messages, bundle.runs, bundle.steps)
    for message_id in missing:
        notes.add("step_message_missing", message_id)
    for entry in timeline:
        if entry.kind == "message":
            _emit_message(entry.obj, out)
        elif entry.kind == "tool_calls":
            _emit_step(entry.obj, entry.run, out)
        else:
            _emit_open_calls(entry.obj, entry.calls, out)

    _hosted_notes(plan, out.hosted_calls, options, notes)
    for run in runs:
        _run_notes(run, bundle.assistants.get(run.get("assistant_id") or ""), notes)
    if len({run.get("assistant_id") for run in runs}) > 1:
        notes.add(
            "multiple_assistants", f"{', '.join(sorted(assistant_ids))}; the session follows {assistant_id}"
        )

    model = (newest or {}).get("model") or (assistant or {}).get("model")
    if not model:
        notes.add("model_unknown", thread.get("id") or "?")
    settings = newest if newest is not None else assistant
    return {
        "format": FORMAT,
        "thread_id": thread.get("id"),
        "created_at": thread.get("created_at"),
        "metadata": {**(thread.get("metadata") or {}), **bundle.extra_metadata},
        "assistant_id": assistant_id,
        "model": model or None,
        "params": _params(settings, model, bool(plan.tools), newest is not None, notes),
        "messages": out.messages,
        "tools": plan.tools,
        "sources": out.sources,
        "files": _files(ctx, thread, notes),
        "warnings": notes.as_list(),
    }


def session_tool_definitions(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chat-completions tools of a session, one per function name (rows of tool_definitions)."""
    return list(record.get("tools") or ())


def _survey_calls(
    steps: Iterable[dict[str, Any]], runs: list[dict[str, Any]], ctx: ContentContext
) -> tuple[set[str], set[str]]:
    """Names the function calls use, hosted tools called, file names seen in search results."""
    names: set[str] = set()
    hosted: set[str] = set()
    for step in sorted(steps, key=_created):
        for call in (step.get("step_details") or {}).get("tool_calls") or ():
            kind = call.get("type")
            if kind == "function":
                names.add(_str((call.get("function") or {}).get("name")))
            elif kind in HOSTED_TYPES:
                hosted.add(kind)
                for result in (call.get("file_search") or {}).get("results") or ():
                    if result.get("file_id") and result.get("file_name"):
                        ctx.result_names.setdefault(result["file_id"], result["file_name"])
    for run in runs:
        action = (run.get("required_action") or {}).get("submit_tool_outputs") or {}
        for call in action.get("tool_calls") or ():
            names.add(_str((call.get("function") or {}).get("name")))
    return names, hosted


def _assistant_ids(runs: list[dict[str, Any]], messages: Iterable[dict[str, Any]]) -> list[str]:
    """Assistants of the thread, most recently used first (runs, then messages for run-less threads)."""
    ordered: list[str] = []
    for run in reversed(runs):
        if run.get("assistant_id") and run["assistant_id"] not in ordered:
            ordered.append(run["assistant_id"])
    for message in sorted(messages, key=_created, reverse=True):
        if message.get("assistant_id") and message["assistant_id"] not in ordered:
            ordered.append(message["assistant_id"])
    return ordered


def _system_message(
    runs: list[dict[str, Any]],
    assistant_id: str | None,
    assistant: dict[str, Any] | None,
    options: ConversionOptions,
    out: _Out,
    notes: Notes,
) -> None:
    if runs:
        newest = runs[-1]
        instructions, source = newest.get("instructions") or "", f"instructions:{newest.get('id')}"
        changed = [
            run.get("id") or "?" for run in runs[:-1] if (run.get("instructions") or "") != instructions
        ]
        if changed:
            notes.add(
                "instructions_changed",
                f"system message from {newest.get('id')}; other instructions in {', '.join(changed)}",
            )
    elif assistant is not None:
        instructions, source = assistant.get("instructions") or "", f"instructions:{assistant_id}"
    else:
        return
    if instructions:
        out.add({"role": options.system_role, "content": instructions}, source)


def _emit_message(message: dict[str, Any], out: _Out) -> None:
    role = "assistant" if message.get("role") == "assistant" else "user"
    out.add(convert_content(message, role, out.ctx), message.get("id") or "?")
    status = message.get("status")
    if status == "incomplete":
        reason = (message.get("incomplete_details") or {}).get("reason") or "incomplete"
        out.ctx.notes.add("incomplete_message", f"{message.get('id')}: {reason}")
    elif status == "in_progress":
        out.ctx.notes.add("incomplete_message", f"{message.get('id')}: still in progress when archived")


def _emit_step(step: dict[str, Any], run: dict[str, Any] | None, out: _Out) -> None:
    """One tool_calls step: one assistant message with every call, then one tool message per call."""
    step_id = step.get("id") or "?"
    notes, mode = out.ctx.notes, out.ctx.options.hosted_tools
    calls: list[dict[str, Any]] = []
    answers: list[tuple[str, str]] = []
    inlined: list[tuple[str, str]] = []
    for index, call in enumerate((step.get("step_details") or {}).get("tool_calls") or ()):
        call_id = call.get("id") or f"call_{step_id}_{index}"
        if call_id in out.seen_calls:
            continue  # the same call recorded twice: one answer only
        out.seen_calls.add(call_id)
        kind = call.get("type")
        if kind == "function":
            function = call.get("function") or {}
            name = _str(function.get("name"))
            calls.append(_tool_call(call_id, out.plan.rename.get(name, name), function.get("arguments")))
            output = function.get("output")
            if output is None:
                output = _close_dangling(call_id, name, step_id, run, notes)
            answers.append((call_id, _str(output)))
        elif kind in HOSTED_TYPES:
            out.hosted_calls[kind] = out.hosted_calls.get(kind, 0) + 1
            if mode == "drop":
                continue
            result = _hosted_output(call, kind, step, run, out.ctx, call_id)
            if mode == "emulate":
                calls.append(_tool_call(call_id, kind, _hosted_arguments(call, kind)))
                answers.append((call_id, result))
            else:
                inlined.append((call_id, _hosted_text(call, kind, result)))
        else:
            notes.add("tool_unsupported", f"{step_id}: call {call_id} of type {kind!r}")
    for call_id, text in inlined:
        out.add({"role": "assistant", "content": text}, f"{step_id}:{call_id}")
    if calls:
        out.add({"role": "assistant", "content": None, "tool_calls": calls}, step_id)
        for call_id, content in answers:
            out.add({"role": "tool", "tool_call_id": call_id, "content": content}, f"{step_id}:{call_id}")


def _emit_open_calls(run: dict[str, Any], open_calls: tuple[dict[str, Any], ...], out: _Out) -> None:
    """Calls a run's required_action still lists but no step recorded: asked, never answered."""
    run_id = run.get("id") or "?"
    calls: list[dict[str, Any]] = []
    answers: list[tuple[str, str]] = []
    for index, call in enumerate(open_calls):
        call_id = call.get("id") or f"call_{run_id}_{index}"
        if call_id in out.seen_calls:
            continue
        out.seen_calls.add(call_id)
        function = call.get("function") or {}
        name = _str(function.get("name"))
        calls.append(_tool_call(call_id, out.plan.rename.get(name, name), function.get("arguments")))
        answers.append((call_id, _close_dangling(call_id, name, run_id, run, out.ctx.notes)))
    if calls:
        out.add({"role": "assistant", "content": None, "tool_calls": calls}, run_id)
        for call_id, content in answers:
            out.add({"role": "tool", "tool_call_id": call_id, "content": content}, f"{run_id}:{call_id}")


def _tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": _str(arguments)}}


def _str(value: Any) -> str:
    """Strings as they are; anything else a look-alike server sent, as JSON text."""
    if isinstance(value, str):
        return value
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _close_dangling(call_id: str, name: str, where: str, run: dict[str, Any] | None, notes: Notes) -> str:
    status = (run or {}).get("status") or "unknown"
    run_id = (run or {}).get("id") or "?"
    notes.add("dangling_tool_call_closed", f"{call_id} ({name}) in {where}: run {run_id} {status}")
    why = _WHY_NO_OUTPUT.get(status, f"ended with status {status}")
    return f"No output was ever submitted for this tool call: run {run_id} {why}."


def _hosted_arguments(call: dict[str, Any], kind: str) -> str:
    if kind == "code_interpreter":
        code = (call.get("code_interpreter") or {}).get("input") or ""
        return orjson.dumps({"code": code}).decode()
    return "{}"  # file_search: the Assistants API never recorded the query


def _hosted_output(
    call: dict[str, Any],
    kind: str,
    step: dict[str, Any],
    run: dict[str, Any] | None,
    ctx: ContentContext,
    call_id: str,
) -> str:
    """What a hosted call returned, as the text a function implementation would have returned."""
    finished = step.get("status") == "completed"
    if kind == "code_interpreter":
        lines = []
        for output in (call.get("code_interpreter") or {}).get("outputs") or ():
            if output.get("type") == "logs":
                lines.append(output.get("logs") or "")
            elif output.get("type") == "image":
                file_id = (output.get("image") or {}).get("file_id") or "?"
                ctx.file_refs.add(file_id)
                lines.append(f"[image output: {file_label(file_id, ctx)}]")
        if lines:
            # Logs usually end with a newline already; never add a blank line between outputs.
            return "".join(line if line.endswith("\n") else line + "\n" for line in lines[:-1]) + lines[-1]
        if finished:
            return "(the code printed nothing)"
    else:
        details = call.get("file_search") or {}
        results = details.get("results")
        if results is not None:
            return _search_results(results, ctx)
        if finished:
            return "(the source did not record the results of this search)"
    where = step.get("id") or "?"
    return _close_dangling(call_id, kind, where, run, ctx.notes)


def _search_results(results: list[dict[str, Any]], ctx: ContentContext) -> str:
    rows = []
    for result in results:
        file_id = result.get("file_id") or "?"
        ctx.file_refs.add(file_id)
        row: dict[str, Any] = {
            "file_id": file_id,
            "file_name": result.get("file_name"),
            "score": result.get("score"),
        }
        texts = [c.get("text") or "" for c in result.get("content") or () if c.get("type", "text") == "text"]
        if texts:
            row["content"] = "\n".join(texts)
        rows.append(row)
    return orjson.dumps({"results": rows}).decode()


def _hosted_text(call: dict[str, Any], kind: str, result: str) -> str:
    if kind == "code_interpreter":
        code = (call.get("code_interpreter") or {}).get("input") or ""
        return f"[code_interpreter ran]\n```python\n{code}\n```\nOutput:\n{result}"
    return f"[file_search results]\n{result}"


def _hosted_notes(plan: ToolPlan, counts: dict[str, int], options: ConversionOptions, notes: Notes) -> None:
    for kind in sorted(plan.hosted.keys() | counts.keys()):
        declared = ", ".join(plan.hosted.get(kind, ())) or "no run or assistant"
        n = counts.get(kind, 0)
        if options.hosted_tools == "emulate":
            argument = "code" if kind == "code_interpreter" else "query"
            detail = f"{kind}: function {kind}({argument}), declared by {declared}; {n} past call(s)"
            notes.add("hosted_tool_emulated", detail)
        elif options.hosted_tools == "drop":
            notes.add("hosted_tool_dropped", f"{kind}: declared by {declared}; {n} past call(s) dropped")
        else:
            notes.add(
                "hosted_tool_inlined", f"{kind}: declared by {declared}; {n} past call(s) inlined as text"
            )


def _run_notes(run: dict[str, Any], assistant: dict[str, Any] | None, notes: Notes) -> None:
    run_id = run.get("id") or "?"
    status = run.get("status")
    if status == "failed":
        error = run.get("last_error") or {}
        notes.add(
            "run_failed", f"{run_id}: {error.get('code') or 'error'}: {error.get('message') or ''}".rstrip()
        )
    elif status == "incomplete":
        notes.add(
            "run_incomplete",
            f"{run_id}: {(run.get('incomplete_details') or {}).get('reason') or 'incomplete'}",
        )
    elif status == "cancelled":
        notes.add("run_cancelled", run_id)
    elif status == "expired":
        notes.add("run_expired", run_id)
    elif status in _UNFINISHED:
        notes.add("run_unfinished", f"{run_id}: {status}")
    truncation = run.get("truncation_strategy") or {}
    if truncation.get("type") == "last_messages":
        notes.add("truncation_strategy", f"{run_id}: last_messages={truncation.get('last_messages')}")
    limits = [f"{key}={run[key]}" for key in ("max_prompt_tokens", "max_completion_tokens") if run.get(key)]
    if limits:
        notes.add("token_limits", f"{run_id}: {', '.join(limits)}")
    if assistant is not None:
        changed = [key for key in _OVERRIDABLE if _differs(run.get(key), assistant.get(key))]
        if _tool_set(run.get("tools")) != _tool_set(assistant.get("tools")):
            changed.append("tools")
        if changed:
            notes.add(
                "run_override", f"{run_id} overrode {assistant.get('id')}: {', '.join(sorted(changed))}"
            )


def _differs(run_value: Any, assistant_value: Any) -> bool:
    # The run records the effective value; a null on either side means "not set", not a change.
    if run_value in (None, "") or assistant_value in (None, ""):
        return False
    return canonical(run_value) != canonical(assistant_value)


def _tool_set(tools: Any) -> frozenset[bytes]:
    return frozenset(canonical(tool) for tool in tools or ())


def _params(
    settings: dict[str, Any] | None, model: str | None, has_tools: bool, is_run: bool, notes: Notes
) -> dict[str, Any]:
    """Only what chat completions accepts, from the newest run (else the assistant)."""
    if settings is None:
        return {}
    where = settings.get("id") or "?"
    params: dict[str, Any] = {}
    reasoning = is_reasoning_model(model)
    for key in ("temperature", "top_p"):
        value = settings.get(key)
        if value is None:
            continue
        if reasoning:
            if value != 1:
                notes.add("param_dropped", f"{where}: {key}={value} ({model} accepts only the default)")
            continue
        params[key] = value
    response_format = settings.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        params["response_format"] = response_format
    elif response_format not in (None, "auto") and not (
        isinstance(response_format, dict) and response_format.get("type") == "text"
    ):
        notes.add("param_dropped", f"{where}: response_format={_str(response_format)}")
    if is_run:
        if settings.get("parallel_tool_calls") is False and has_tools:
            params["parallel_tool_calls"] = False
        tool_choice = settings.get("tool_choice")
        if tool_choice not in (None, "auto"):
            notes.add(
                "param_dropped", f"{where}: tool_choice={_str(tool_choice)} (chosen per run, not carried)"
            )
    return params


def _files(ctx: ContentContext, thread: dict[str, Any], notes: Notes) -> list[dict[str, Any]]:
    refs = set(ctx.file_refs)
    refs.update(((thread.get("tool_resources") or {}).get("code_interpreter") or {}).get("file_ids") or ())
    entries = []
    for file_id in sorted(refs - {"", "?"}):
        info = ctx.files.get(file_id)
        if info is None:
            notes.add("file_missing", f"{file_id}: not in the archive")
            entries.append(
                {"file_id": file_id, "filename": None, "sha256": None, "bytes": None, "content": "missing"}
            )
            continue
        if info.content == "missing":
            notes.add("file_missing", f"{file_id}: the archive has no content for it")
        entries.append(info.as_record())
    return entries
