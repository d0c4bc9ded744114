"""The openai SDK's chat-completions param types, validated deeply with unknown keys refused.

The SDK's TypedDicts accept any extra key, and pydantic validates an `Iterable[...]` field lazily
(never, unless iterated). So each TypedDict reachable from a root type is cloned with
`extra="forbid", strict=True` and every Iterable/Sequence becomes a list; the SDK's own classes
are never touched. Built once per process.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from functools import cache
from typing import Any, Literal, Union

import typing_extensions
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

__all__ = ["message_adapter", "messages_adapter", "sdk_errors", "tool_adapter"]

_CONFIG = ConfigDict(extra="forbid", strict=True)
_FIELDS = object()  # memo key: clone -> {field: Literal tag values or None}
_SEQUENCES = {
    collections.abc.Iterable,
    collections.abc.Sequence,
    collections.abc.Collection,
    list,
    tuple,
}


def _strict(tp: Any, memo: dict[Any, Any]) -> Any:
    origin = typing_extensions.get_origin(tp)
    args = typing_extensions.get_args(tp)
    if typing_extensions.is_typeddict(tp):
        return _clone(tp, memo)
    if origin is typing_extensions.Annotated:
        return _strict(args[0], memo)  # SDK metadata (PropertyInfo aliases) means nothing here
    if origin in (Union, types.UnionType):
        members = tuple(_strict(arg, memo) for arg in args)
        union = Union[members]  # noqa: UP007 - built dynamically
        key = _discriminator(members, memo)
        # Tagged unions give one precise error ("content/0/text/extra") instead of one per member.
        return typing_extensions.Annotated[union, Field(discriminator=key)] if key else union
    if origin is Literal or tp in (str, int, float, bool, object, type(None)):
        return tp
    if origin in _SEQUENCES:
        return list[_strict(args[0], memo)] if args else list
    if origin in (dict, collections.abc.Mapping):
        return dict[args[0], _strict(args[1], memo)] if args else dict
    if getattr(tp, "__name__", "") == "SequenceNotStr":
        return list
    if origin is not None and getattr(origin, "__name__", "") == "SequenceNotStr":
        return list[_strict(args[0], memo)]
    return tp


def _discriminator(members: tuple[Any, ...], memo: dict[Any, Any]) -> str | None:
    fields = memo.get(_FIELDS, {})
    if len(members) < 2 or not all(member in fields for member in members):
        return None
    for key in ("role", "type"):
        tags = [fields[member].get(key) for member in members]
        if all(tag is not None for tag in tags) and len(set(tags)) == len(tags):
            return key
    return None


def _literal_tag(hint: Any) -> Any:
    """The tuple of values of a required Literal field, or None."""
    if typing_extensions.get_origin(hint) is not typing_extensions.Required:
        return None
    inner = typing_extensions.get_args(hint)[0]
    return typing_extensions.get_args(inner) if typing_extensions.get_origin(inner) is Literal else None


def _clone(td: Any, memo: dict[Any, Any]) -> Any:
    if td in memo:
        return memo[td]
    hints = typing_extensions.get_type_hints(td, include_extras=True)
    fields: dict[str, Any] = {}
    for key, hint in hints.items():
        origin = typing_extensions.get_origin(hint)
        if origin is typing_extensions.Required or origin is typing.Required:
            required, inner = True, typing_extensions.get_args(hint)[0]
        elif origin is typing_extensions.NotRequired or origin is typing.NotRequired:
            required, inner = False, typing_extensions.get_args(hint)[0]
        else:
            required, inner = bool(getattr(td, "__total__", True)), hint
        converted = _strict(inner, memo)
        fields[key] = (
            typing_extensions.Required[converted] if required else typing_extensions.NotRequired[converted]
        )
    clone = typing_extensions.TypedDict(td.__name__, fields)  # type: ignore[operator]
    clone.__pydantic_config__ = _CONFIG  # type: ignore[attr-defined]
    memo[td] = clone
    memo.setdefault(_FIELDS, {})[clone] = {key: _literal_tag(hint) for key, hint in fields.items()}
    return clone


@cache
def _roots() -> dict[str, Any]:
    from openai.types.chat import (
        ChatCompletionAssistantMessageParam,
        ChatCompletionDeveloperMessageParam,
        ChatCompletionMessageParam,
        ChatCompletionSystemMessageParam,
        ChatCompletionToolMessageParam,
        ChatCompletionToolParam,
        ChatCompletionUserMessageParam,
    )

    memo: dict[Any, Any] = {}
    return {
        "system": _strict(ChatCompletionSystemMessageParam, memo),
        "developer": _strict(ChatCompletionDeveloperMessageParam, memo),
        "user": _strict(ChatCompletionUserMessageParam, memo),
        "assistant": _strict(ChatCompletionAssistantMessageParam, memo),
        "tool": _strict(ChatCompletionToolMessageParam, memo),
        "*": _strict(ChatCompletionMessageParam, memo),
        "tool_param": _strict(ChatCompletionToolParam, memo),
    }


@cache
def message_adapter(role: str | None = None) -> TypeAdapter[Any]:
    """The strict adapter for one role's message type, or for the whole message union (None)."""
    roots = _roots()
    return TypeAdapter(roots[role] if role in roots else roots["*"])


@cache
def messages_adapter() -> TypeAdapter[Any]:
    item = _roots()["*"]
    return TypeAdapter(list[item])  # type: ignore[valid-type]


@cache
def tool_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(_roots()["tool_param"])


def sdk_errors(adapter: TypeAdapter[Any], value: Any) -> list[str]:
    """Validation errors as 'location: message' lines (empty when valid)."""
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        found = [(tuple(str(p) for p in e["loc"]), e["msg"]) for e in error.errors()]
    else:
        return []
    # `content: str | list[...]` fails both branches; the "not a string" one only hides the real fault.
    precise = [(loc, msg) for loc, msg in found if loc[-1:] not in (("str",), ("none",))] or found
    return [f"{'/'.join(p for p in loc if '[' not in p) or '<root>'}: {msg}" for loc, msg in precise]
