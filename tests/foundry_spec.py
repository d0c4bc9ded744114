"""The Azure AI Foundry agents specs (Swagger 2.0) as JSON Schema validators of whole responses, for tests.

The truth is ../shared/openapi/azure-ai-agents.{2025-05-01,2025-05-15-preview}.json; gzip copies (MIT, see
LICENSE.azure-rest-api-specs) ride along in tests/data so a clone without shared/ still tests.

Swagger 2.0 is not JSON Schema, so each definition is translated: `x-nullable: true` admits null, and a
`discriminator` becomes a dispatch on its value to the subtype that names it (`x-ms-discriminator-value`).
The dispatch is strict: a value no subtype names is an error (the spec's own SDKs would fall back to the
base type; a test must see it). Nothing else is relaxed; extra properties are allowed, as Swagger does.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "openapi"
GA, PREVIEW = "2025-05-01", "2025-05-15-preview"
DROPPED = {"description", "title", "example", "readOnly", "externalDocs", "format", "discriminator"}


@cache
def spec(version: str) -> dict[str, Any]:
    name = f"azure-ai-agents.{version}.json"
    shared = SHARED / name
    if shared.exists():
        return json.loads(shared.read_text())
    with gzip.open(HERE / "data" / f"{name}.gz") as fh:
        return json.load(fh)


def _uri(version: str) -> str:
    return f"urn:azure-ai-agents:{version}"


def _convert(node: Any, uri: str) -> Any:
    if isinstance(node, list):
        return [_convert(x, uri) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out["$ref"] = value.replace("#/definitions/", f"{uri}#/$defs/")
        elif key in DROPPED or key.startswith("x-"):
            continue
        elif key == "properties":
            out[key] = {name: _convert(schema, uri) for name, schema in value.items()}
        else:
            out[key] = _convert(value, uri)
    return {"anyOf": [out, {"type": "null"}]} if node.get("x-nullable") is True else out


def _subtypes(definitions: dict[str, Any], base: str) -> dict[str, str]:
    ref = f"#/definitions/{base}"
    found = {}
    for name, d in definitions.items():
        if any(part.get("$ref") == ref for part in d.get("allOf", [])):
            found[d.get("x-ms-discriminator-value", name)] = name
    return found


@cache
def _registry(version: str) -> Registry:
    uri = _uri(version)
    definitions = spec(version)["definitions"]
    defs: dict[str, Any] = {}
    for name, d in definitions.items():
        defs[name] = _convert(d, uri)
        key = d.get("discriminator")
        if not key:
            continue
        subtypes = _subtypes(definitions, name)
        dispatch: list[dict[str, Any]] = [{"properties": {key: {"enum": sorted(subtypes)}}}]
        for value, sub in sorted(subtypes.items()):
            own = dict(definitions[sub])
            own["allOf"] = [p for p in own.get("allOf", []) if p.get("$ref") != f"#/definitions/{name}"]
            defs[f"{sub}~own"] = _convert(own, uri)
            then = {"$ref": f"{uri}#/$defs/{sub}~own"}
            dispatch.append({"if": {"properties": {key: {"const": value}}, "required": [key]}, "then": then})
        defs[name] = {"allOf": [defs[name], *dispatch]}
    root = {"$defs": defs}
    return Registry().with_resource(uri, Resource.from_contents(root, default_specification=DRAFT202012))


def operation(version: str, method: str, path: str) -> str:
    """The spec's path template for a concrete request path relative to the project endpoint."""
    for template, ops in spec(version)["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if method.lower() in ops and re.match(pattern, path):
            return template
    raise KeyError(f"{method} {path} is not an operation of the {version} spec")


@cache
def _response_validator(version: str, template: str, method: str, status: str) -> Draft202012Validator:
    responses = spec(version)["paths"][template][method.lower()]["responses"]
    schema = (responses[status] if status in responses else responses["default"])["schema"]
    return Draft202012Validator(_convert(schema, _uri(version)), registry=_registry(version))


def errors(version: str, method: str, path: str, status: int, body: Any) -> list[Any]:
    """Every validation error of `body` as the response (`status`) of that request; [] when it is valid."""
    template = operation(version, method, path)
    key = "200" if 200 <= status < 300 else "default"
    return list(_response_validator(version, template, method, key).iter_errors(body))


def discriminator_values(version: str, base: str) -> set[str]:
    return set(_subtypes(spec(version)["definitions"], base))
