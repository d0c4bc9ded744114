"""The OpenAI OpenAPI spec as JSON Schema validators, for tests.

The truth is ../shared/openapi/openai-openapi.json; a gzip copy (MIT, see LICENSE.openai-openapi)
rides along in tests/data so a clone without shared/ beside it still tests against the same spec.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "openapi"
SPEC_URI = "urn:openai-openapi"


@cache
def spec() -> dict[str, Any]:
    shared = SHARED / "openai-openapi.json"
    if shared.exists():
        return json.loads(shared.read_text())
    with gzip.open(HERE / "data" / "openai-openapi.json.gz") as fh:
        return json.load(fh)


@cache
def batch_lines() -> dict[str, Any]:
    shared = SHARED / "batch-lines.json"
    path = shared if shared.exists() else HERE / "data" / "batch-lines.json"
    return json.loads(path.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012)
    )


@cache
def validator(component: str) -> Draft202012Validator:
    """A validator for components/schemas/<component>, resolving $refs inside the spec."""
    if component not in spec()["components"]["schemas"]:
        raise KeyError(f"no component schema {component!r} in the spec")
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/components/schemas/{component}"}, registry=_registry())


def errors(component: str, instance: Any) -> list[str]:
    """Every validation error, as 'path: message' lines (empty when the instance is valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator(component).iter_errors(instance)
    ]
