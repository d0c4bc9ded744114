"""One thread's raw objects -> one `migrator.session/v1` record. Pure: no I/O, no clock.

`sources` says where each message came from, aligned 1:1 with `messages`:
    instructions:<run_id>      the system/developer message: the instructions that run used
    instructions:<asst_id>     ... or, for a thread with no runs, the assistant's instructions
    <msg_id>                   an Assistants message
    <step_id>                  the assistant tool_calls message of a tool_calls step
    <step_id>:<call_id>        the tool message answering that call (or, with --hosted-tools text,
                               the assistant text that inlines a hosted call)
    <run_id>                   tool_calls a run's open required_action lists but no step recorded,
                               or that an earlier saved version of a run without steps asked for
    <run_id>:<call_id>         the tool message closing such a call
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from migrator.convert.bundle import ThreadBundle
from migrator.convert.codes import Notes
from migrator.convert.content import ContentContext, convert_content, file_label
from migrator.convert.interleave import order_thread, recovered_calls
from migrator.convert.models import is_reasoning_model
from migrator.convert.options import ConversionOptions
from migrator.convert.raw import SYNTHESIZED, as_dict, as_list, as_str, dicts, epoch_seconds, oid
from migrator.convert.tools import HOSTED_TYPES, OUTPUT_KEYS, ToolPlan, is_foreign, plan_tools, tool_payload
from migrator.convert.v1 import v2_assistant, v2_message, v2_run, v2_step

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


def _created(obj: Mapping[str, Any]) -> int:
    """The sort key of every list here: sorted() is stable, so a tie keeps the source's list order.
    Seconds or milliseconds alike (a look-alike's), so objects of either order together."""
    return epoch_seconds(obj.get("created_at")) or 0


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
    """The session record of one thread. Same input, byte-identical output.

    Each list is read in the source's order (the archive's `position`), which breaks every tie of
    `created_at`; apart from those ties, the order of the input lists does not matter.
    """
    notes = Notes()
    thread = as_dict(bundle.thread)
    if SYNTHESIZED in thread:
        notes.add("thread_synthesized", f"{oid(thread) or '?'}: made from its messages")
    messages = [v2_message(m, notes) for m in _objects("messages", bundle.messages, notes)]
    steps = [v2_step(st, notes) for st in _objects("steps", bundle.steps, notes)]
    runs = sorted([v2_run(r, notes) for r in _objects("runs", bundle.runs, notes)], key=_created)
    assistant_ids = _assistant_ids(runs, messages)
    # The bundle holds every assistant of the archive; only those this thread names are read (mapping
    # all of them for each of 340,000 threads was most of a rebuild).
    used = {*assistant_ids, *(as_str(run.get("assistant_id")) for run in runs)}
    assistants = {
        aid: _v2_assistant(aid, a, notes)
        for aid in sorted(used)
        if isinstance(a := bundle.assistants.get(aid), dict)
    }
    newest = runs[-1] if runs else None
    ctx = ContentContext(options=options, files=bundle.files, notes=notes)
    versions = _recoverable(runs, steps, bundle.run_versions, notes)
    call_names, hosted_called = _survey_calls(steps, runs, ctx, versions)

    assistant_id = assistant_ids[0] if assistant_ids else None
    assistant = assistants.get(assistant_id) if assistant_id else None
    declarations: list[tuple[str, Any]] = [(oid(run) or "?", run.get("tools")) for run in reversed(runs)]
    declarations += [(aid, assistants[aid].get("tools")) for aid in assistant_ids if aid in assistants]
    emulate = options.hosted_tools == "emulate"
    foreign = options.hosted_tools != "text"  # a source's own tools are never dropped
    plan = plan_tools(declarations, call_names, hosted_called, emulate, notes, emulate_foreign=foreign)

    out = _Out(ctx=ctx, plan=plan)
    _system_message(runs, assistant_id, assistant, options, out, notes)
    timeline, missing = order_thread(messages, runs, steps, versions)
    for message_id in missing:
        notes.add("step_message_missing", message_id)
    for entry in timeline:
        if entry.kind == "message":
            _emit_message(entry.obj, out)
        elif entry.kind == "tool_calls":
            _emit_step(entry.obj, entry.run, out)
        else:
            _emit_open_calls(entry.obj, entry.calls, out, recovered=entry.kind == "recovered")

    _hosted_notes(plan, out.hosted_calls, options, notes)
    for aid in assistant_ids:
        notes.undefer(aid)
    for run in runs:
        _run_notes(run, assistants.get(as_str(run.get("assistant_id"))), notes)
    if len({as_str(run.get("assistant_id")) for run in runs}) > 1:
        notes.add(
            "multiple_assistants", f"{', '.join(sorted(assistant_ids))}; the session follows {assistant_id}"
        )

    model = as_str(as_dict(newest).get("model")) or as_str(as_dict(assistant).get("model"))
    if not model:
        notes.add("model_unknown", oid(thread) or "?")
    settings = newest if newest is not None else assistant
    created_at = thread.get("created_at")
    record = {
        "format": FORMAT,
        "thread_id": oid(thread),
        "created_at": epoch_seconds(created_at),
        "metadata": {**as_dict(thread.get("metadata")), **bundle.extra_metadata},
        "assistant_id": assistant_id,
        "model": model or None,
        "params": _params(settings, model, bool(plan.tools), newest is not None, notes),
        "messages": out.messages,
        "tools": plan.tools,
        "sources": out.sources,
        "files": _files(ctx, thread, notes),
        "warnings": notes.as_list(),
    }
    try:
        orjson.dumps(record)  # one fast pass; the rare record that fails is mended below
    except TypeError as exc:
        if "surrogates" not in str(exc):
            raise
        record = _valid_unicode(record, notes)
    return record


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_unicode(record: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """The record with U+FFFD for every lone surrogate (an `invalid_unicode` warning per place).

    A source may send half an emoji (`"\\ud83d"`) or bytes that are not UTF-8; the archive keeps
    them as sent, but no chat-completions endpoint takes them, so the session holds U+FFFD there.
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "messages":
            out[key] = []
            for message, source in zip(value, record["sources"], strict=False):
                clean = _clean(message)
                if clean is not message:
                    notes.add("invalid_unicode", f"message {source}")
                out[key].append(clean)
        elif key != "warnings":
            out[key] = clean = _clean(value)
            if clean is not value:
                notes.add("invalid_unicode", key)
    out["warnings"] = _clean(notes.as_list())  # a detail may quote the text itself
    return out


def _clean(value: Any) -> Any:
    """`value` with lone surrogates replaced; the very same object when it holds none."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        items = [(_clean(k), _clean(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list):
        cleaned = [_clean(v) for v in value]
        return value if all(a is b for a, b in zip(cleaned, value, strict=True)) else cleaned
    return value


def session_tool_definitions(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chat-completions tools of a session, one per function name (rows of tool_definitions)."""
    return list(record.get("tools") or ())


def _objects(kind: str, items: Iterable[Any], notes: Notes) -> list[dict[str, Any]]:
    """The objects of a bundle list; anything else is reported and skipped (it stays archived raw)."""
    if not items:
        return []
    kept = [item for item in items if isinstance(item, dict)]
    dropped = len(items) - len(kept) if isinstance(items, (list, tuple)) else 0
    if dropped:
        notes.add("malformed_input", f"{dropped} {kind} entries are not objects")
    return kept


def _v2_assistant(assistant_id: str, assistant: dict[str, Any], notes: Notes) -> dict[str, Any]:
    # Only the assistants the thread used may warn: the bundle holds every assistant of the archive.
    scratch = Notes()
    mapped = v2_assistant(assistant, scratch)
    if scratch.as_list():
        notes.defer(assistant_id, scratch)
    return mapped


def _recoverable(
    runs: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    run_versions: Mapping[str, Any],
    notes: Notes,
) -> dict[str, list[dict[str, Any]]]:
    """The saved versions of each run the archive holds no step of; `steps_missing` where tools ran."""
    with_steps = {as_str(step.get("run_id")) for step in steps}
    out: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        run_id = oid(run)
        if run_id in with_steps:
            continue
        out[run_id] = [v for v in as_list(run_versions.get(run_id)) if isinstance(v, dict)]
        found = len(recovered_calls(run, out[run_id]))
        if run.get("status") != "requires_action":  # one still waiting may not have saved its step yet
            found += len(list(_required_calls(run)))
        # A completed run with tools always has steps; any run whose versions asked for outputs had some.
        if (as_list(run.get("tools")) and run.get("status") == "completed") or found:
            notes.add(
                "steps_missing",
                f"{run_id}: {as_str(run.get('status')) or '?'} with tools, no steps in the archive; "
                + (f"{found} call(s) recovered from its saved versions" if found else "no call recovered"),
            )
    return out


def _survey_calls(
    steps: Iterable[dict[str, Any]],
    runs: list[dict[str, Any]],
    ctx: ContentContext,
    versions: Mapping[str, list[dict[str, Any]]],
) -> tuple[set[str], set[str]]:
    """Names the function calls use, hosted tools called, file names seen in search results."""
    names: set[str] = set()
    hosted: set[str] = set()
    for step in sorted(steps, key=_created):
        details = as_dict(step.get("step_details"))
        if details.get("type") == "activities":
            kinds = sorted({_str(a.get("type")) for a in dicts(details.get("activities"))})
            ctx.notes.add("step_activities", f"{oid(step) or '?'}: {', '.join(kinds) or 'no activities'}")
        for call in dicts(details.get("tool_calls")):
            kind = call.get("type")
            if kind == "function":
                names.add(_str(as_dict(call.get("function")).get("name")))
            elif is_foreign(kind):
                hosted.add(kind)
            elif kind in HOSTED_TYPES:
                hosted.add(kind)
                for result in dicts(as_dict(call.get("file_search")).get("results")):
                    file_id, file_name = as_str(result.get("file_id")), as_str(result.get("file_name"))
                    if file_id and file_name:
                        ctx.result_names.setdefault(file_id, file_name)
    for run in runs:
        action = as_dict(run.get("required_action"))
        if action.get("type") == "submit_tool_approval":
            pending = dicts(as_dict(action.get("submit_tool_approval")).get("tool_calls"))
            ctx.notes.add(
                "tool_approval_required", f"{oid(run) or '?'}: {len(list(pending))} call(s) awaiting approval"
            )
        for call in (*_required_calls(run), *recovered_calls(run, versions.get(oid(run), ()))):
            names.add(_str(as_dict(call.get("function")).get("name")))
    return names, hosted


def _required_calls(run: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    return dicts(as_dict(as_dict(run.get("required_action")).get("submit_tool_outputs")).get("tool_calls"))


def _assistant_ids(runs: list[dict[str, Any]], messages: Iterable[dict[str, Any]]) -> list[str]:
    """Assistants of the thread, most recently used first (runs, then messages for run-less threads)."""
    ordered: list[str] = []
    for run in reversed(runs):
        aid = as_str(run.get("assistant_id"))
        if aid and aid not in ordered:
            ordered.append(aid)
    # Only the messages that name one are sorted (a stable sort keeps their order either way): most
    # user messages, and every message of a thread that never ran, name none.
    naming = [message for message in messages if as_str(message.get("assistant_id"))]
    for message in reversed(sorted(naming, key=_created)):
        aid = as_str(message.get("assistant_id"))
        if aid not in ordered:
            ordered.append(aid)
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
        instructions, source = as_str(newest.get("instructions")), f"instructions:{oid(newest)}"
        changed = [oid(run) or "?" for run in runs[:-1] if as_str(run.get("instructions")) != instructions]
        if changed:
            notes.add(
                "instructions_changed",
                f"system message from {oid(newest)}; other instructions in {', '.join(changed)}",
            )
    elif assistant is not None:
        instructions, source = as_str(assistant.get("instructions")), f"instructions:{assistant_id}"
    else:
        return
    if instructions:
        out.add({"role": options.system_role, "content": instructions}, source)


def _emit_message(message: dict[str, Any], out: _Out) -> None:
    role = "assistant" if message.get("role") == "assistant" else "user"
    message_id = oid(message) or "?"
    out.add(convert_content(message, role, out.ctx), message_id)
    status = message.get("status")
    if status == "incomplete":
        reason = as_str(as_dict(message.get("incomplete_details")).get("reason")) or "incomplete"
        out.ctx.notes.add("incomplete_message", f"{message_id}: {reason}")
    elif status == "in_progress":
        out.ctx.notes.add("incomplete_message", f"{message_id}: still in progress when archived")


def _emit_step(step: dict[str, Any], run: dict[str, Any] | None, out: _Out) -> None:
    """One tool_calls step: one assistant message with every call, then one tool message per call."""
    step_id = oid(step) or "?"
    notes, mode = out.ctx.notes, out.ctx.options.hosted_tools
    calls: list[dict[str, Any]] = []
    answers: list[tuple[str, str]] = []
    inlined: list[tuple[str, str]] = []
    for index, call in enumerate(dicts(as_dict(step.get("step_details")).get("tool_calls"))):
        call_id = oid(call) or f"call_{step_id}_{index}"
        if call_id in out.seen_calls:
            continue  # the same call recorded twice: one answer only
        out.seen_calls.add(call_id)
        kind = call.get("type")
        if kind == "function":
            function = as_dict(call.get("function"))
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
        elif is_foreign(kind):
            out.hosted_calls[kind] = out.hosted_calls.get(kind, 0) + 1
            request, result = _foreign_call(call)
            if mode == "text":
                inlined.append((call_id, f"[{kind} called]\n{request}\nOutput:\n{result}"))
            else:
                calls.append(_tool_call(call_id, kind, request))
                answers.append((call_id, result))
        else:
            notes.add("tool_unsupported", f"{step_id}: call {call_id} of type {_str(kind)!r}")
    for call_id, text in inlined:
        out.add({"role": "assistant", "content": text}, f"{step_id}:{call_id}")
    if calls:
        out.add({"role": "assistant", "content": None, "tool_calls": calls}, step_id)
        for call_id, content in answers:
            out.add({"role": "tool", "tool_call_id": call_id, "content": content}, f"{step_id}:{call_id}")


def _emit_open_calls(
    run: dict[str, Any], open_calls: tuple[dict[str, Any], ...], out: _Out, *, recovered: bool = False
) -> None:
    """Calls a run's required_action still lists but no step recorded: asked, never answered. Or
    (`recovered`) calls an earlier saved version of a run without steps asked for: answered once,
    but the answer was never saved."""
    run_id = oid(run) or "?"
    calls: list[dict[str, Any]] = []
    answers: list[tuple[str, str]] = []
    for index, call in enumerate(open_calls):
        call_id = oid(call) or f"call_{run_id}_{index}"
        if call_id in out.seen_calls:
            continue
        out.seen_calls.add(call_id)
        function = as_dict(call.get("function"))
        name = _str(function.get("name"))
        calls.append(_tool_call(call_id, out.plan.rename.get(name, name), function.get("arguments")))
        if recovered and run.get("status") == "completed":  # it completed: an output was submitted
            answers.append((call_id, _not_recorded(call_id, name, run, out.ctx.notes)))
        else:
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
    if value is None:
        return ""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # not JSON at all (a look-alike's oddity): its repr still says what it was
        return repr(value)


def _close_dangling(call_id: str, name: str, where: str, run: Mapping[str, Any] | None, notes: Notes) -> str:
    status = as_str(as_dict(run).get("status")) or "unknown"
    run_id = oid(as_dict(run)) or "?"
    notes.add("dangling_tool_call_closed", f"{call_id} ({name}) in {where}: run {run_id} {status}")
    why = _WHY_NO_OUTPUT.get(status, f"ended with status {status}")
    return f"No output was ever submitted for this tool call: run {run_id} {why}."


def _not_recorded(call_id: str, name: str, run: Mapping[str, Any], notes: Notes) -> str:
    run_id = oid(run) or "?"
    status = as_str(run.get("status")) or "unknown"
    notes.add("tool_output_not_recorded", f"{call_id} ({name}) in {run_id}: from a requires_action version")
    return (
        f"The output of this tool call was never recorded: the archive holds run {run_id} ({status}) and "
        "the saved requires_action version that asked for it, but no run step with the submitted output."
    )


def _hosted_arguments(call: dict[str, Any], kind: str) -> str:
    if kind == "code_interpreter":
        code = as_str(as_dict(call.get("code_interpreter")).get("input"))
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
        for output in dicts(as_dict(call.get("code_interpreter")).get("outputs")):
            if output.get("type") == "logs":
                lines.append(as_str(output.get("logs")))
            elif output.get("type") == "image":
                file_id = as_str(as_dict(output.get("image")).get("file_id")) or "?"
                ctx.file_refs.add(file_id)
                lines.append(f"[image output: {file_label(file_id, ctx)}]")
        if lines:
            # Logs usually end with a newline already; never add a blank line between outputs.
            return "".join(line if line.endswith("\n") else line + "\n" for line in lines[:-1]) + lines[-1]
        if finished:
            return "(the code printed nothing)"
    else:
        results = as_dict(call.get("file_search")).get("results")
        if isinstance(results, list):
            return _search_results(results, ctx)
        if finished:
            return "(the source did not record the results of this search)"
    return _close_dangling(call_id, kind, oid(step) or "?", run, ctx.notes)


def _search_results(results: list[Any], ctx: ContentContext) -> str:
    rows = []
    for result in dicts(results):
        file_id = as_str(result.get("file_id")) or "?"
        ctx.file_refs.add(file_id)
        row: dict[str, Any] = {
            "file_id": file_id,
            "file_name": result.get("file_name"),
            "score": result.get("score"),
        }
        texts = [
            as_str(c.get("text")) for c in dicts(result.get("content")) if c.get("type", "text") == "text"
        ]
        if texts:
            row["content"] = "\n".join(texts)
        rows.append(row)
    return orjson.dumps({"results": rows}).decode()


def _hosted_text(call: dict[str, Any], kind: str, result: str) -> str:
    if kind == "code_interpreter":
        code = as_str(as_dict(call.get("code_interpreter")).get("input"))
        return f"[code_interpreter ran]\n```python\n{code}\n```\nOutput:\n{result}"
    return f"[file_search results]\n{result}"


def _foreign_call(call: dict[str, Any]) -> tuple[str, str]:
    """(arguments, output) of a foreign tool call: its whole payload but the result keys, as JSON (so
    nothing of the request is lost), and its output, else the result keys, else a line saying none."""
    payload = tool_payload(call)
    request = {k: v for k, v in payload.items() if k not in OUTPUT_KEYS}
    results = {k: payload[k] for k in OUTPUT_KEYS if k in payload}
    if set(results) == {"output"}:
        output = _str(results["output"])
    elif results:
        output = _str(results)
    else:
        output = f"No output was recorded for this {_str(call.get('type'))} call."
    return _str(request), output


def _hosted_notes(plan: ToolPlan, counts: dict[str, int], options: ConversionOptions, notes: Notes) -> None:
    if not plan.hosted and not counts:
        return
    for kind in sorted(plan.hosted.keys() | counts.keys()):
        declared = ", ".join(plan.hosted.get(kind, ())) or "no run or assistant"
        n = counts.get(kind, 0)
        if kind not in HOSTED_TYPES:
            if options.hosted_tools == "text":
                notes.add(
                    "hosted_tool_inlined", f"{kind}: declared by {declared}; {n} past call(s) inlined as text"
                )
            else:
                detail = (
                    f"{kind}: function {kind}(the call's request), declared by {declared}; {n} past call(s)"
                )
                notes.add("hosted_tool_emulated", detail)
            continue
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
    run_id = oid(run) or "?"
    status = run.get("status")
    if status == "failed":
        error = as_dict(run.get("last_error"))
        code, message = _str(error.get("code")) or "error", _str(error.get("message"))
        notes.add("run_failed", f"{run_id}: {code}: {message}".rstrip())
    elif status == "incomplete":
        reason = _str(as_dict(run.get("incomplete_details")).get("reason")) or "incomplete"
        notes.add("run_incomplete", f"{run_id}: {reason}")
    elif status == "cancelled":
        notes.add("run_cancelled", run_id)
    elif status == "expired":
        notes.add("run_expired", run_id)
    elif status in _UNFINISHED:
        notes.add("run_unfinished", f"{run_id}: {status}")
    truncation = as_dict(run.get("truncation_strategy"))
    if truncation.get("type") == "last_messages":
        notes.add("truncation_strategy", f"{run_id}: last_messages={_str(truncation.get('last_messages'))}")
    limits = [
        f"{key}={_str(run[key])}" for key in ("max_prompt_tokens", "max_completion_tokens") if run.get(key)
    ]
    if limits:
        notes.add("token_limits", f"{run_id}: {', '.join(limits)}")
    if assistant is not None:
        changed = [key for key in _OVERRIDABLE if _differs(run.get(key), assistant.get(key))]
        if _tool_set(run.get("tools")) != _tool_set(assistant.get("tools")):
            changed.append("tools")
        if changed:
            notes.add("run_override", f"{run_id} overrode {oid(assistant)}: {', '.join(sorted(changed))}")


def _differs(run_value: Any, assistant_value: Any) -> bool:
    # The run records the effective value; a null on either side means "not set", not a change.
    if run_value in (None, "") or assistant_value in (None, ""):
        return False
    return _str(run_value) != _str(assistant_value)


def _tool_set(tools: Any) -> frozenset[str]:
    return frozenset(_str(tool) for tool in as_list(tools))


def _params(
    settings: dict[str, Any] | None, model: str | None, has_tools: bool, is_run: bool, notes: Notes
) -> dict[str, Any]:
    """Only what chat completions accepts, from the newest run (else the assistant)."""
    if settings is None:
        return {}
    where = oid(settings) or "?"
    params: dict[str, Any] = {}
    reasoning = is_reasoning_model(model)
    for key, upper in (("temperature", 2), ("top_p", 1)):
        value = settings.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= upper:
            notes.add("param_dropped", f"{where}: {key}={_str(value)} (out of range)")
        elif reasoning:
            if value != 1:
                notes.add("param_dropped", f"{where}: {key}={value} ({model} accepts only the default)")
        else:
            params[key] = value
    response_format = settings.get("response_format")
    kind = as_dict(response_format).get("type")
    if kind == "json_object" or (
        kind == "json_schema" and as_str(as_dict(response_format.get("json_schema")).get("name"))
    ):
        params["response_format"] = response_format
    elif response_format not in (None, "auto") and kind != "text":
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


def _files(ctx: ContentContext, thread: Mapping[str, Any], notes: Notes) -> list[dict[str, Any]]:
    refs = set(ctx.file_refs)
    resources = as_dict(as_dict(thread.get("tool_resources")).get("code_interpreter"))
    refs.update(file_id for file_id in as_list(resources.get("file_ids")) if isinstance(file_id, str))
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
