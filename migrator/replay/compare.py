"""How a replayed answer is compared with the original assistant turn. Pure, standard library only.

Tool-call turns (the original called tools): **parity** holds when the reply calls the same
functions with the same arguments: the multiset of (name, arguments) pairs is equal, arguments
compared as parsed JSON (key order and whitespace do not matter; arguments that are not JSON are
compared as stripped text). Order does not matter: parallel calls come back in any order.

Text turns: **similarity** in [0, 1] is `difflib.SequenceMatcher.ratio()` over the two texts'
normalized word sequences: NFKC, case-folded, split into `\\w+` words (punctuation and whitespace
dropped), at most 2,000 words each (the ratio is quadratic). 1.0 means the same words in the same
order; 0.0 nothing in common. Two empty texts are 1.0. It is deterministic and needs no model,
which is the point: it flags answers that drifted, it does not grade them.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = ["Answer", "Comparison", "answer_of", "compare", "reply_message", "text_similarity"]

MAX_WORDS = 2000
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Answer:
    text: str
    calls: tuple[tuple[str, str], ...]  # (function name, canonical arguments), sorted

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, _ in self.calls))


@dataclass(frozen=True)
class Comparison:
    kind: Literal["tool_calls", "text"]  # what the original turn was
    parity: bool | None  # tool-call turns: same names and same arguments
    names_equal: bool | None  # tool-call turns: same function names, whatever the arguments
    similarity: float | None  # text turns
    kind_mismatch: bool  # text answered with tool calls, or tool calls answered with text


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text") or part.get("refusal") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "refusal")
        )
    return ""


def _arguments(raw: Any) -> str:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw.strip()
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()


def answer_of(message: Any) -> Answer:
    """The text and tool calls of an assistant message (original or replayed)."""
    if not isinstance(message, dict):
        return Answer("", ())
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            calls.append((str(function.get("name") or ""), _arguments(function.get("arguments"))))
    text = _text(message.get("content")) or (message.get("refusal") or "")
    return Answer(text, tuple(sorted(calls)))


def reply_message(body: Any) -> dict[str, Any]:
    """The assistant message of a chat.completion body (the first choice), or {}.

    A Responses API body (`object: "response"`) becomes the same shape: its `message` items' text
    and its `function_call` items as tool calls, in output order. Native hosted calls
    (`file_search_call`, `code_interpreter_call`) are not function calls and count as neither.
    """
    if isinstance(body, dict) and body.get("object") == "response":
        return _response_message(body)
    choices = body.get("choices") if isinstance(body, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        return message if isinstance(message, dict) else {}
    return {}


def _response_message(body: dict[str, Any]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in body.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                    texts.append(str(part.get("text") or part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            calls.append(
                {"id": item.get("call_id"), "type": "function",
                 "function": {"name": item.get("name"), "arguments": item.get("arguments")}}
            )  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())[:MAX_WORDS]


def text_similarity(a: str, b: str) -> float:
    """difflib ratio over normalized word sequences (see the module docstring)."""
    wa, wb = _words(a), _words(b)
    if not wa and not wb:
        return 1.0
    return difflib.SequenceMatcher(None, wa, wb, autojunk=False).ratio()


def compare(expected: dict[str, Any], reply: dict[str, Any]) -> Comparison:
    """The original assistant message against the replayed one."""
    want, got = answer_of(expected), answer_of(reply)
    if want.calls:
        return Comparison(
            kind="tool_calls",
            parity=Counter(want.calls) == Counter(got.calls),
            names_equal=want.names == got.names,
            similarity=None,
            kind_mismatch=not got.calls,
        )
    return Comparison(
        kind="text",
        parity=None,
        names_equal=None,
        similarity=round(text_similarity(want.text, got.text), 6),
        kind_mismatch=bool(got.calls),
    )
