"""Every response kind of the Foundry flavor, for a whole small corpus, against the Foundry specs.

Each answer is validated as the response of its operation in azure-ai-agents.2025-05-15-preview.json (the
preview spec, which knows Foundry's preview tools) and in the GA azure-ai-agents.2025-05-01.json. The only
errors accepted are named here: against GA, a discriminator or enum value that only the preview spec
defines; against both, `computer_use_preview`, which neither spec has (its shape is checked by hand below,
after the SDKs' RunStepComputerUseToolCall).
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from typing import Any

import foundry_spec
import pytest
from test_sandbox_support import Raw

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids
from migrator.sandbox.flavors import FOUNDRY_PATHS, normalized

THREADS, SEED, VERSION = 12, 5, "2025-05-01"
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
IN_NEITHER = {"computer_use_preview"}
BASES = ("RunStepToolCall", "ToolDefinition", "RunStepDetails", "RequiredAction", "RequiredToolCall")
PREVIEW_ONLY = {
    value
    for base in BASES
    for value in foundry_spec.discriminator_values(foundry_spec.PREVIEW, base)
    - foundry_spec.discriminator_values(foundry_spec.GA, base)
}


class Walker:
    """A keep-alive client of the project endpoint that records every answer for validation."""

    def __init__(self, srv: SandboxServer) -> None:
        self.raw = Raw(srv.port, key=srv.mint_token())
        self.prefix = f"/api/projects/{srv.config.project}"
        self.seen: list[tuple[str, str, int, Any]] = []

    def get(self, path: str, **query: Any) -> tuple[int, Any]:
        status, body = self.raw.get(self.prefix + path, **{"api-version": VERSION, **query})
        self.seen.append(("GET", path, status, body))
        return status, body

    def ok(self, path: str, **query: Any) -> Any:
        status, body = self.get(path, **query)
        assert status == 200, (path, body)
        return body

    def walk(self, path: str, **query: Any) -> list[dict[str, Any]]:
        items, after = [], None
        while True:
            page = self.ok(path, limit=100, order="asc", **query, **({"after": after} if after else {}))
            assert "object" not in page and "first_id" not in page, page.keys()
            items += page["data"]
            if not page["has_more"]:
                return items
            after = page["last_id"]


@pytest.fixture(scope="module")
def srv():
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, flavor="foundry")) as server:
        yield server


@pytest.fixture(scope="module")
def walked(srv) -> dict[str, Any]:
    w = Walker(srv)
    out: dict[str, Any] = {"threads": [], "steps": [], "runs": [], "agents": []}
    out["agents"] = w.walk("/assistants")
    for a in out["agents"]:
        assert w.ok(f"/assistants/{a['id']}") == a
    threads = w.walk("/threads")
    assert [t["id"] for t in threads] == thread_ids(THREADS, SEED)
    for t in threads:
        assert w.ok(f"/threads/{t['id']}") == t
        for m in w.walk(f"/threads/{t['id']}/messages"):
            assert w.ok(f"/threads/{t['id']}/messages/{m['id']}") == m
        for r in w.walk(f"/threads/{t['id']}/runs"):
            out["runs"].append(r)
            assert w.ok(f"/threads/{t['id']}/runs/{r['id']}") == r
            steps = w.walk(f"/threads/{t['id']}/runs/{r['id']}/steps", **{"include[]": INCLUDE})
            for s in w.walk(f"/threads/{t['id']}/runs/{r['id']}/steps"):
                w.ok(f"/threads/{t['id']}/runs/{r['id']}/steps/{s['id']}")
            out["steps"] += steps
    for vs in w.walk("/vector_stores"):
        assert w.ok(f"/vector_stores/{vs['id']}") == vs
        for f in w.walk(f"/vector_stores/{vs['id']}/files"):
            assert w.ok(f"/vector_stores/{vs['id']}/files/{f['id']}") == f
    files = w.ok("/files")
    assert set(files) == {"object", "data"} and files["data"]
    for f in files["data"]:
        assert w.ok(f"/files/{f['id']}") == f
    out["files"] = files["data"]
    out["seen"] = w.seen
    w.raw.close()
    return out


def _leaves(error: Any) -> list[Any]:
    """The innermost errors: an `anyOf` of a nullable schema fails by its non-null branch."""
    if not error.context:
        return [error]
    branches = [c for c in error.context if not (c.validator == "type" and c.validator_value == "null")]
    return [leaf for c in branches for leaf in _leaves(c)]


def problems(version: str, method: str, path: str, status: int, body: Any, allowed: set[str]) -> list[str]:
    leaves = [leaf for e in foundry_spec.errors(version, method, path, status, body) for leaf in _leaves(e)]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in leaves
        if not (e.validator == "enum" and e.instance in allowed)
    ]


def test_the_sandbox_serves_exactly_the_spec_s_paths():
    spec_paths = {normalized(p) for p in foundry_spec.spec(foundry_spec.GA)["paths"]}
    assert spec_paths == FOUNDRY_PATHS


def test_every_answer_of_the_whole_corpus_matches_both_foundry_specs(walked):
    seen = walked["seen"]
    assert len(seen) > 1000
    bad = []
    for method, path, status, body in seen:
        for version, allowed in (
            (foundry_spec.PREVIEW, IN_NEITHER),
            (foundry_spec.GA, IN_NEITHER | PREVIEW_ONLY),
        ):
            if found := problems(version, method, path, status, body, allowed):
                bad.append((version, path, found[:3]))
    assert not bad, bad[:5]


def test_the_validation_is_strict(walked):
    """The same validators refuse what the spec refuses: a page with an object, a tool call of no type."""
    method, path, status, body = next(s for s in walked["seen"] if s[1].endswith("/steps") and s[3]["data"])
    assert not problems(foundry_spec.PREVIEW, method, path, status, body, IN_NEITHER)
    broken = {
        **body,
        "data": [
            {
                **body["data"][0],
                "step_details": {"type": "tool_calls", "tool_calls": [{"id": "x", "type": "nope"}]},
            }
        ],
    }
    assert problems(foundry_spec.PREVIEW, method, path, status, broken, IN_NEITHER)
    no_payload = {"id": "x", "type": "bing_grounding"}
    broken = {
        **body,
        "data": [{**body["data"][0], "step_details": {"type": "tool_calls", "tool_calls": [no_payload]}}],
    }
    assert problems(foundry_spec.PREVIEW, method, path, status, broken, IN_NEITHER)
    thread = next(s for s in walked["seen"] if re.fullmatch(r"/threads/[^/]+", s[1]))
    assert problems(foundry_spec.GA, "GET", thread[1], 200, {**thread[3], "metadata": {"n": 1}}, set())
    assert problems(foundry_spec.GA, "GET", "/files", 200, {"data": []}, set())  # object is required there
    run = next(
        r for r in walked["runs"] if (r["required_action"] or {}).get("type") == "submit_tool_approval"
    )
    path = f"/threads/{run['thread_id']}/runs/{run['id']}"
    assert not problems(foundry_spec.PREVIEW, "GET", path, 200, run, IN_NEITHER)
    empty = {**run, "required_action": {"type": "submit_tool_approval", "submit_tool_approval": {}}}
    assert problems(foundry_spec.PREVIEW, "GET", path, 200, empty, IN_NEITHER)  # tool_calls is required


def test_preview_only_shapes_are_really_served(walked):
    """The exceptions above are used: preview tools, activities, approvals and computer use are present."""
    calls = Counter(c["type"] for s in walked["steps"] for c in s["step_details"].get("tool_calls", []))
    assert PREVIEW_ONLY - {"submit_tool_approval", "activities"} <= set(calls), calls
    assert {"bing_grounding", "azure_ai_search", "openapi", "computer_use_preview"} <= set(calls)
    assert any(s["type"] == "activities" for s in walked["steps"])
    assert any((r["required_action"] or {}).get("type") == "submit_tool_approval" for r in walked["runs"])


def test_computer_use_calls_have_the_sdk_s_shape(walked):
    """In neither spec: the shape of the SDKs' RunStepComputerUseToolCall and ComputerUseToolDefinition."""
    calls = [
        c for s in walked["steps"] for c in s["step_details"].get("tool_calls", []) if c["type"] in IN_NEITHER
    ]
    assert calls
    for c in calls:
        assert set(c) == {"id", "type", "computer_use_preview"}
        details = c["computer_use_preview"]
        assert details["action"]["type"] == "type" and isinstance(details["action"]["text"], str)
        assert details["pending_safety_checks"] == []
        assert details["output"]["type"] == "computer_screenshot"
        assert details["output"]["image_url"].startswith("data:image/png;base64,")
    tools = [t for a in walked["agents"] for t in a["tools"] if t["type"] in IN_NEITHER]
    assert tools and all(
        set(t["computer_use_preview"]) == {"display_width", "display_height", "environment"} for t in tools
    )


def test_error_answers_match_the_error_schema(srv):
    prefix = f"/api/projects/{srv.config.project}"
    token = srv.mint_token()
    answers = {
        "no version": Raw(srv.port, key=token).get(prefix + "/threads"),
        "bad version": Raw(srv.port, key=token).get(prefix + "/threads", **{"api-version": "2023-01-01"}),
        "no token": Raw(srv.port).get(prefix + "/threads", **{"api-version": VERSION}),
        "unknown thread": Raw(srv.port, key=token).get(
            prefix + "/threads/thread_nope", **{"api-version": VERSION}
        ),
        "bad limit": Raw(srv.port, key=token).get(prefix + "/threads", limit=0, **{"api-version": VERSION}),
    }
    srv.configure(missing_role=True)
    answers["no role"] = Raw(srv.port, key=token).get(prefix + "/threads", **{"api-version": VERSION})
    srv.configure(missing_role=False, rps_limit=1)
    limited = Raw(srv.port, key=token)
    limited.get(prefix + "/assistants", **{"api-version": VERSION})
    answers["throttled"] = limited.get(prefix + "/assistants", **{"api-version": VERSION})
    srv.configure(rps_limit=None, fault_rate=1.0)
    answers["server error"] = Raw(srv.port, key=token).get(prefix + "/assistants", **{"api-version": VERSION})
    srv.configure(fault_rate=0.0)
    statuses = {k: status for k, (status, _) in answers.items()}
    assert statuses == {
        "no version": 400, "bad version": 400, "no token": 401, "unknown thread": 404, "bad limit": 400,
        "no role": 403, "throttled": 429, "server error": statuses["server error"],
    }  # fmt: skip
    assert statuses["server error"] in (500, 502, 503)
    for name, (status, body) in answers.items():
        path = "/threads/thread_nope" if name == "unknown thread" else "/threads"
        for version in (foundry_spec.GA, foundry_spec.PREVIEW):
            assert not problems(version, "GET", path, status, body, set()), (name, body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, (name, body)
        assert body["error"]["code"] and body["error"]["message"], (name, body)


@pytest.mark.parametrize("version", [foundry_spec.GA, foundry_spec.PREVIEW])
def test_the_shipped_copies_are_the_shared_specs(version):
    """A clone without ../shared validates against tests/data; those copies must be the same specs."""
    name = f"azure-ai-agents.{version}.json"
    with gzip.open(foundry_spec.HERE / "data" / f"{name}.gz") as fh:
        shipped = json.load(fh)
    assert (foundry_spec.HERE / "data" / "LICENSE.azure-rest-api-specs").read_text().count("MIT License")
    shared = foundry_spec.SHARED / name
    if shared.exists():  # in a clone without shared/ beside it there is nothing to compare with
        assert shipped == json.loads(shared.read_text())
    assert shipped["info"]["version"] == version
