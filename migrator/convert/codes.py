"""Stable warning codes of the session record, and the collector a conversion fills.

The codes are a contract: `stats` counts them, the README lists them, CI jobs grep for them.
Add codes; never rename or reuse one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WARNING_CODES", "Notes"]

WARNING_CODES: dict[str, str] = {
    "assistant_image_as_text": "An image in an assistant message became a text placeholder naming the file "
    "(chat completions takes images only from users).",
    "dangling_tool_call_closed": "A tool call never got an output (expired, cancelled, failed or abandoned "
    "run); a tool message saying no output was ever submitted closes it.",
    "file_missing": "A referenced file is not in the archive, or its bytes are not; it is listed with what "
    "the archive has.",
    "hosted_tool_dropped": "A hosted tool (file_search, code_interpreter) was removed with its past calls "
    "(--hosted-tools drop).",
    "hosted_tool_emulated": "A hosted tool (file_search, code_interpreter) became a documented function; its "
    "past calls and outputs are function calls and tool messages (--hosted-tools emulate). A tool of the "
    "source's own (Azure AI Foundry's bing_grounding, openapi, mcp..., or any other type) is emulated the "
    "same way, its call's request as arguments and its output as the tool message, unless --hosted-tools text.",
    "hosted_tool_inlined": "A hosted tool was removed and its past calls and outputs became assistant text "
    "(--hosted-tools text).",
    "image_not_inlined": "An image file's bytes are not in the archive (or are not an image); a text "
    "placeholder naming the file stands in for it.",
    "incomplete_message": "A message was archived incomplete or still in progress; its partial content is "
    "kept as it is.",
    "instructions_changed": "Runs used different instructions; the newest run's are the system message, the "
    "older ones stay in the archive.",
    "invalid_unicode": "A text held a lone surrogate (half an emoji, `\\ud83d`) or bytes that are not UTF-8; "
    "the session has U+FFFD there (the raw object in the archive keeps what the source sent).",
    "malformed_input": "A raw object or field did not have the shape the spec gives it; it was read as empty "
    "(the raw object stays in the archive).",
    "model_unknown": "Neither a run nor a known assistant names a model; the session's model is null.",
    "multiple_assistants": "More than one assistant ran on the thread; the newest run's assistant heads the "
    "session.",
    "param_dropped": "A run or assistant setting was not carried into params: chat completions (or the "
    "session's model) does not accept it.",
    "run_cancelled": "A run was cancelled.",
    "run_expired": "A run expired (typically waiting for tool outputs).",
    "run_failed": "A run failed; the detail carries its last_error.",
    "run_incomplete": "A run ended incomplete (a token limit was reached).",
    "run_override": "A run overrode its assistant's instructions, model, tools or sampling settings.",
    "run_unfinished": "A run was still queued, in progress, cancelling or waiting for tool outputs when "
    "archived.",
    "step_message_missing": "A message_creation step names a message the archive does not have.",
    "steps_missing": "A run that declared tools completed, but the archive holds none of its steps (aged out, "
    "never saved): its tool calls are only what its saved versions show.",
    "thread_synthesized": "The source held this thread's messages but not its thread object; the thread was "
    "made from them (no metadata, created when its oldest message was).",
    "tool_output_not_recorded": "A function call was recovered from a saved requires_action version of a run "
    "without steps; its output was never saved, and a tool message says so.",
    "step_activities": "A run step of type activities (Foundry's mcp_list_tools and the like) is kept in the "
    "archive; chat completions has nothing to carry it.",
    "token_limits": "A run set max_prompt_tokens or max_completion_tokens; run-wide budgets have no "
    "chat-completions equivalent and are not carried.",
    "tool_call_undeclared": "A past call names a function that no run or assistant declared.",
    "tool_name_invalid": "A function name broke ^[a-zA-Z0-9_-]{1,64}$; it is renamed in the definition and "
    "in every call.",
    "tool_approval_required": "A run stopped for a tool approval (Foundry's submit_tool_approval); the calls "
    "awaiting approval are kept in the archive, never run.",
    "tool_schema_conflict": "Two sources declared different definitions for one function name; the newest "
    "is kept, both are named.",
    "tool_schema_invalid": "A function's parameters are not a valid JSON Schema object; a target will likely "
    "refuse the tools until it is fixed.",
    "tool_strict_invalid": "A strict function breaks the strict-mode rules (additionalProperties: false, "
    "every property required, supported keywords only).",
    "tool_unsupported": "A tool of a type chat completions cannot express was left out.",
    "truncation_strategy": "A run saw only its last N messages (truncation_strategy last_messages); the "
    "session holds the whole thread.",
    "unknown_content": "A content part of an unknown type became a text placeholder.",
    "v1_object": "An Assistants v1 object (file_ids, the retrieval tool or call) was read as v2: retrieval as "
    "file_search, a message's file_ids as attachments (the raw object is kept as it was).",
}


class Notes:
    """The warnings of one conversion: de-duplicated, then sorted by (code, detail) for determinism."""

    __slots__ = ("_deferred", "_seen")

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._deferred: dict[str, Notes] = {}

    def defer(self, key: str, notes: Notes) -> None:
        """Hold warnings that count only if `undefer(key)` is called (an assistant the thread used)."""
        self._deferred[key] = notes

    def undefer(self, key: str) -> None:
        if (held := self._deferred.pop(key, None)) is not None:
            self._seen |= held._seen

    def add(self, code: str, detail: str) -> None:
        # A typo here would mint an undocumented code; fail in tests rather than in the README.
        assert code in WARNING_CODES, code
        self._seen.add((code, detail))

    def as_list(self) -> list[dict[str, Any]]:
        return [{"code": code, "detail": detail} for code, detail in sorted(self._seen)]
