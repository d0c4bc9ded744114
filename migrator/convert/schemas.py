"""Checks on function parameter schemas: JSON Schema validity and OpenAI's strict-mode subset.

Both are memoized on the schema's canonical bytes: thousands of threads share a handful of tool
schemas, so verify and rebuild pay for each distinct schema once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["NAME_RE", "canonical", "schema_problems", "strict_problems"]

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# Keywords the strict-mode subset rejects (OpenAI "Structured Outputs: supported schemas").
_STRICT_UNSUPPORTED = frozenset(
    {
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
    }
)
_STRICT_MAX_DEPTH = 10
_STRICT_MAX_PROPERTIES = 5000
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
_MAX_REPORTED = 5


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@cache
def _meta_validator(cls: type[Validator]) -> Validator:
    return cls(cls.META_SCHEMA)


def schema_problems(parameters: Any) -> tuple[str, ...]:
    """Why `parameters` is not a usable function-parameters schema (empty when it is)."""
    if not isinstance(parameters, dict):
        return (f"parameters must be a JSON object, not {type(parameters).__name__}",)
    return _schema_problems(canonical(parameters))


@lru_cache(maxsize=4096)
def _schema_problems(key: bytes) -> tuple[str, ...]:
    # jsonschema (a tenth of a second) at the first tool schema, not in every command that converts.
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    schema = orjson.loads(key)
    problems: list[str] = []
    # Chat completions refuses a non-object root ("schema must be a JSON Schema of 'type: object'").
    if schema and schema.get("type") != "object":
        problems.append(f"root type must be 'object', not {schema.get('type')!r}")
    cls = validator_for(schema, default=Draft202012Validator)
    for error in _meta_validator(cls).iter_errors(schema):
        where = "/".join(map(str, error.absolute_path)) or "<root>"
        problems.append(f"{where}: {error.message[:200]}")
        if len(problems) >= _MAX_REPORTED:
            break
    return tuple(problems)


def strict_problems(parameters: Any) -> tuple[str, ...]:
    """Why `parameters` breaks the strict-mode rules (empty when it follows them)."""
    if not isinstance(parameters, dict):
        return ("strict mode needs an object schema",)
    return _strict_problems(canonical(parameters))


@lru_cache(maxsize=4096)
def _strict_problems(key: bytes) -> tuple[str, ...]:
    schema = orjson.loads(key)
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("<root>: the root must be type 'object'")
    if "anyOf" in schema:
        problems.append("<root>: anyOf is not allowed at the root")
    total_properties = 0
    for path, node, depth in _walk(schema, "", 0):
        for keyword in sorted(_STRICT_UNSUPPORTED & node.keys()):
            problems.append(f"{path or '<root>'}: '{keyword}' is not supported in strict mode")
        if depth > _STRICT_MAX_DEPTH:
            problems.append(f"{path}: nested deeper than {_STRICT_MAX_DEPTH} levels")
        if not _is_object(node):
            continue
        props = node.get("properties") or {}
        total_properties += len(props) if isinstance(props, dict) else 0
        if node.get("additionalProperties") is not False:
            problems.append(f"{path or '<root>'}: additionalProperties must be false")
        required = node.get("required") if isinstance(node.get("required"), list) else []
        missing = [name for name in props if name not in required] if isinstance(props, dict) else []
        if missing:
            problems.append(f"{path or '<root>'}: every property must be required; missing {missing}")
    if total_properties > _STRICT_MAX_PROPERTIES:
        problems.append(f"<root>: more than {_STRICT_MAX_PROPERTIES} properties in total")
    return tuple(problems[:_MAX_REPORTED])


def _is_object(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def _walk(node: Any, path: str, depth: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Every subschema with its JSON-pointer-ish path and object nesting depth."""
    if not isinstance(node, dict):
        return
    yield path, node, depth
    nested = depth + 1 if _is_object(node) else depth
    for key in _SUBSCHEMA_MAPS:
        children = node.get(key)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from _walk(child, f"{path}/{key}/{name}", nested if key == "properties" else depth)
    for key in _SUBSCHEMA_LISTS:
        children = node.get(key)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield from _walk(child, f"{path}/{key}/{index}", depth)
    for key in ("items", "additionalProperties"):
        child = node.get(key)
        if isinstance(child, dict):
            yield from _walk(child, f"{path}/{key}", depth)
