"""Offline token counts of a session, the way OpenAI's cookbook counts chat requests.

Messages: 3 tokens each, plus the tokens of every string value, plus 1 for a `name`, plus 3 to
prime the reply ("How to count tokens with tiktoken"). Tools: the cookbook's function-definition
formula (7 per function, 3 per property, 12 once at the end ...). Extensions the cookbook leaves out are
estimates: an image part costs 85 tokens at detail low, else 765 (a 1024x1024 image at high detail);
a tool call costs its name and arguments plus 3. Counts are for sizing and context-window checks,
not billing.
"""

from __future__ import annotations

from typing import Any

from migrator.convert.encodings import encoder as _encoder
from migrator.convert.models import encoding_name

__all__ = ["count_tokens", "load_encoding"]

_PER_MESSAGE, _PER_NAME, _REPLY_PRIMING = 3, 1, 3
_IMAGE_LOW, _IMAGE_HIGH = 85, 765
_FUNC_INIT, _PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = 7, 3, 3, -3, 3, 12
_FUNC_INIT_CL100K = 10


def load_encoding(model: str | None = None) -> None:
    """Load the model's encoding now (o200k_base when unknown). Building it briefly takes twice the
    memory it keeps; a build loads it before it holds a batch of threads, so the two never add up."""
    _encoder(encoding_name(model))


def count_tokens(record: dict[str, Any]) -> int:
    """Prompt tokens of sending this session as-is: its messages and its tools."""
    encoding = encoding_name(record.get("model"))
    encode = _lengths(_encoder(encoding))
    total = _REPLY_PRIMING
    for message in record.get("messages") or ():
        total += _PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += len(encode(value))
                if key == "name":
                    total += _PER_NAME
            elif key == "content" and isinstance(value, list):
                total += _parts(value, encode)
            elif key == "tool_calls" and isinstance(value, list):
                for call in value:
                    function = call.get("function") or {}
                    total += (
                        3
                        + len(encode(function.get("name") or ""))
                        + len(encode(function.get("arguments") or ""))
                    )
    tools = record.get("tools") or ()
    if tools:
        total += _tools(tools, encode, _FUNC_INIT_CL100K if encoding == "cl100k_base" else _FUNC_INIT)
    return total


def _lengths(encoding: Any) -> Any:
    """Token ids of a text, the way `Encoding.encode` gives them, without its per-call special-token
    set arithmetic and regex scan (a third of the counting on short messages): every special token
    starts with "<|", so a text without it encodes as ordinary text, and one with it goes through
    `encode`, which refuses it as before."""
    encode, ordinary = encoding.encode, encoding.encode_ordinary

    def ids(text: str) -> list[int]:
        return encode(text) if "<|" in text else ordinary(text)

    return ids


def _parts(parts: list[Any], encode: Any) -> int:
    total = 0
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            total += len(encode(part.get("text") or ""))
        elif kind == "refusal":
            total += len(encode(part.get("refusal") or ""))
        elif kind == "image_url":
            detail = (part.get("image_url") or {}).get("detail")
            total += _IMAGE_LOW if detail == "low" else _IMAGE_HIGH
    return total


def _tools(tools: Any, encode: Any, func_init: int) -> int:
    total = 0
    for tool in tools:
        function = tool.get("function") or {}
        description = (function.get("description") or "").removesuffix(".")
        total += func_init + len(encode(f"{function.get('name', '')}:{description}"))
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, dict) else None
        if isinstance(properties, dict) and properties:
            total += _PROP_INIT
            for key, prop in properties.items():
                prop = prop if isinstance(prop, dict) else {}
                total += _PROP_KEY
                enum = prop.get("enum")
                if isinstance(enum, list):
                    total += _ENUM_INIT
                    for item in enum:
                        total += _ENUM_ITEM + len(encode(str(item)))
                prop_type = prop.get("type", "")
                prop_type = ",".join(map(str, prop_type)) if isinstance(prop_type, list) else str(prop_type)
                prop_description = str(prop.get("description") or "").removesuffix(".")
                total += len(encode(f"{key}:{prop_type}:{prop_description}"))
    return total + _FUNC_END  # once for the whole tools block, as in the cookbook
