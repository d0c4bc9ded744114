"""A thread as lines a person can read. Pure: takes records, returns text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["conversation_lines"]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") == "text":
            parts.append(part.get("text", ""))
        elif part.get("type") == "image_url":
            url = part.get("image_url", {}).get("url", "")
            parts.append(f"[image {url[:40]}{'…' if len(url) > 40 else ''}]")
        else:
            parts.append(f"[{part.get('type')}]")
    return "\n".join(parts)


def conversation_lines(session: dict[str, Any] | None, raw: dict[str, Any] | None) -> Iterator[str]:
    if session is not None:
        yield f"thread {session['thread_id']}  model {session.get('model')}  assistant {session.get('assistant_id')}"
        for message in session["messages"]:
            role = message["role"]
            text = _content_text(message.get("content"))
            if role == "tool":
                yield f"  tool[{message.get('tool_call_id')}]: {text}"
                continue
            if text:
                yield f"{role}: {text}"
            for call in message.get("tool_calls") or ():
                fn = call.get("function", {})
                yield f"{role} → {fn.get('name')}({fn.get('arguments')})  [{call.get('id')}]"
        for warning in session.get("warnings", ()):
            yield f"! {warning['code']}: {warning.get('detail')}"
        return
    assert raw is not None
    yield f"thread {raw['thread']['id']} (no session built yet: raw messages)"
    for message in raw["messages"]:
        texts = [
            part.get("text", {}).get("value", "")
            for part in message.get("content") or ()
            if part.get("type") == "text"
        ]
        yield f"{message.get('role')}: {' '.join(texts)}"
