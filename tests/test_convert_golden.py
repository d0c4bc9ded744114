"""Golden tests: hand-made tricky threads (fixtures/convert/*/input.json) -> reviewed session records.

UPDATE_GOLDEN=1 rewrites expected.json; read every changed file before committing it.
"""

from __future__ import annotations

import functools
import json
import os
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
import spec
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_convert_properties import raw

from migrator.convert import (
    WARNING_CODES,
    ConversionOptions,
    ThreadBundle,
    bundle_from_json,
    bundle_to_json,
    convert_thread,
    count_tokens,
    session_tool_definitions,
    validate_session,
)
from migrator.convert.sdkstrict import message_adapter, messages_adapter, sdk_errors, tool_adapter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "convert"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "input.json").exists())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
# Fixtures whose point is a session verify must flag: the codes of their error findings.
EXPECTED_ERRORS: dict[str, set[str]] = {
    "strict_and_invalid_schemas": {"tool_schema_invalid", "tool_strict_invalid"}
}
RAW_COMPONENTS = {
    "messages": "MessageObject",
    "runs": "RunObject",
    "steps": "RunStepObject",
}


@functools.cache
def _nullable_aware_validators() -> dict[str, Draft202012Validator]:
    """The spec's raw-object schemas with OpenAPI 3.0 `nullable: true` read as JSON Schema (null allowed).

    tests/spec.py validates with plain JSON Schema, which ignores `nullable`, so every null a real
    source sends for a nullable field (failed_at, last_error...) would be an error there.
    """

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: fix(value) for key, value in node.items()}
        all_of = node.get("allOf") or []
        if any(member == {"nullable": True} for member in all_of):
            rest = {**node, "allOf": [m for m in all_of if m != {"nullable": True}]}
            return {"anyOf": [rest, {"type": "null"}]}
        if node.pop("nullable", False):
            return {"anyOf": [node, {"type": "null"}]}
        return node

    fixed = fix(spec.spec())
    registry = Registry().with_resource(
        "urn:fixed", Resource.from_contents(fixed, default_specification=DRAFT202012)
    )
    return {
        name: Draft202012Validator({"$ref": f"urn:fixed#/components/schemas/{name}"}, registry=registry)
        for name in ("ThreadObject", "AssistantObject", *RAW_COMPONENTS.values())
    }


def raw_errors(component: str, instance: Any) -> list[str]:
    validator = _nullable_aware_validators()[component]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(instance)
    ]


def load(name: str) -> tuple[ThreadBundle, ConversionOptions, dict[str, Any]]:
    raw = json.loads((FIXTURES / name / "input.json").read_text(encoding="utf-8"))
    return bundle_from_json(raw["bundle"]), ConversionOptions.from_dict(raw["options"]), raw


def dump(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def request_of(record: dict[str, Any]) -> dict[str, Any]:
    request = {"model": record["model"], "messages": record["messages"], **record["params"]}
    if record["tools"]:
        request["tools"] = record["tools"]
    return request


def test_there_are_enough_golden_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    bundle, options, _ = load(name)
    actual = dump(convert_thread(bundle, options))
    expected_path = FIXTURES / name / "expected.json"
    if UPDATE:
        expected_path.write_bytes(actual)
    elif not expected_path.exists():
        pytest.fail(f"{name} has no expected.json: run with UPDATE_GOLDEN=1, then read the file")
    assert actual.decode() == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_golden_inputs_are_spec_objects(name: str) -> None:
    """The fixtures are what a real source sends: every raw object validates against the spec."""
    _, _, raw = load(name)
    problems = raw_errors("ThreadObject", raw["bundle"]["thread"])
    for key, component in RAW_COMPONENTS.items():
        for obj in raw["bundle"][key]:
            problems += [f"{obj['id']}: {e}" for e in raw_errors(component, obj)]
    for assistant in raw["bundle"]["assistants"].values():
        problems += [f"{assistant['id']}: {e}" for e in raw_errors("AssistantObject", assistant)]
    assert problems == []


@pytest.mark.parametrize("name", CASES)
def test_golden_session_is_a_valid_request(name: str) -> None:
    bundle, options, _ = load(name)
    record = convert_thread(bundle, options)
    assert spec.errors("CreateChatCompletionRequest", request_of(record)) == []
    for index, message in enumerate(record["messages"]):
        assert sdk_errors(message_adapter(message["role"]), message) == [], index
    assert sdk_errors(messages_adapter(), record["messages"]) == []
    for tool in record["tools"]:
        assert sdk_errors(tool_adapter(), tool) == []
    errors = {f.code for f in validate_session(record) if f.severity == "error"}
    assert errors == EXPECTED_ERRORS.get(name, set())
    assert len(record["sources"]) == len(record["messages"])
    assert {w["code"] for w in record["warnings"]} <= WARNING_CODES.keys()
    assert record["warnings"] == sorted(record["warnings"], key=lambda w: (w["code"], w["detail"]))
    assert session_tool_definitions(record) == record["tools"]
    assert count_tokens(record) > 0


@pytest.mark.parametrize("name", CASES)
def test_golden_is_deterministic_whatever_the_order_across_seconds(name: str) -> None:
    """Only the list order of objects sharing a second may matter (it is the source's truth)."""
    bundle, options, _ = load(name)
    first = orjson.dumps(convert_thread(bundle, options), option=orjson.OPT_SORT_KEYS)
    assert orjson.dumps(convert_thread(bundle, options), option=orjson.OPT_SORT_KEYS) == first
    rng = random.Random(name)
    for _ in range(3):
        lists = {key: raw.shuffle_keeping_ties(getattr(bundle, key), rng) for key in RAW_COMPONENTS}
        shuffled = ThreadBundle(
            thread=bundle.thread,
            assistants=dict(reversed(list(bundle.assistants.items()))),
            files=dict(reversed(list(bundle.files.items()))),
            extra_metadata=bundle.extra_metadata,
            **lists,
        )
        assert orjson.dumps(convert_thread(shuffled, options), option=orjson.OPT_SORT_KEYS) == first


def test_bundle_json_round_trip() -> None:
    for name in CASES:
        bundle, _, raw = load(name)
        assert bundle_to_json(bundle) == raw["bundle"]
        assert bundle_from_json(bundle_to_json(bundle)) == bundle
