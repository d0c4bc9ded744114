"""Helpers for the sandbox tests: spec validation, a raw keep-alive HTTP client, SDK clients.

No tests here.

`schema_errors` validates through `spec.errors` and, only when that reports something, again
with OpenAPI 3.0's `nullable: true` honoured: the spec is a 3.1 document that still marks many
fields (`RunObject.required_action`, `expires_at`, `last_error`, ...) with the 3.0 keyword, which
a JSON Schema 2020-12 validator ignores, so a `null` the spec explicitly allows would otherwise
fail. Nothing else is relaxed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import warnings
from collections.abc import Iterator
from functools import cache
from typing import Any
from urllib.parse import urlencode

import openai
import spec
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["schema_errors", "Raw", "sdk", "quiet", "walk"]


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    nullable = node.pop("nullable", False) is True
    if "allOf" in node:  # allOf: [{$ref}, {nullable: true}]
        keep = [
            m
            for m in node["allOf"]
            if not (
                isinstance(m, dict) and m.get("nullable") is True and set(m) <= {"nullable", "description"}
            )
        ]
        if len(keep) != len(node["allOf"]):
            nullable, node["allOf"] = True, keep
    node = {k: _nullable(v) for k, v in node.items()}
    return {"anyOf": [node, {"type": "null"}]} if nullable else node


@cache
def _validator(component: str) -> Draft202012Validator:
    uri = "urn:openai-openapi-nullable"
    resource = Resource.from_contents(_nullable(spec.spec()), default_specification=DRAFT202012)
    return Draft202012Validator(
        {"$ref": f"{uri}#/components/schemas/{component}"}, registry=Registry().with_resource(uri, resource)
    )


def schema_errors(component: str, instance: Any) -> list[str]:
    if not spec.errors(component, instance):
        return []
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in _validator(component).iter_errors(instance)
    ]


class Raw:
    """One keep-alive HTTP/1.1 connection to the sandbox, JSON in and out."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"authorization": f"Bearer {key}"} if key else {}

    def request(
        self, method: str, path: str, body: Any = None, **query: Any
    ) -> tuple[int, dict[str, str], bytes]:
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, **({"content-type": "application/json"} if data else {})}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()

    def get(self, path: str, **query: Any) -> tuple[int, Any]:
        status, _, body = self.request("GET", path, **query)
        return status, json.loads(body)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        status, _, data = self.request("POST", path, body)
        return status, json.loads(data)

    def close(self) -> None:
        self.conn.close()


def walk(raw: Raw, path: str, component: str | None = None, **query: Any) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list (limit=100, order=asc, paged by `after`), and the number of pages."""
    items: list[dict[str, Any]] = []
    pages = 0
    after = None
    while True:
        params = {"limit": 100, "order": "asc", **query, **({"after": after} if after else {})}
        status, page = raw.get(path, **params)
        pages += 1
        assert status == 200, (path, page)
        if component:
            assert not schema_errors(component, page), (path, schema_errors(component, page)[:5])
        items += page["data"]
        if not page["has_more"]:
            return items, pages
        after = page["last_id"]


def sdk(base_url: str, *, key: str = "k", timeout: float = 5.0) -> openai.OpenAI:
    """The real SDK client, with its own retries off so every fault reaches the test."""
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The SDK's Assistants methods are deprecated; silence that here, never globally."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
