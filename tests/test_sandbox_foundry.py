"""The Foundry flavor over real HTTP (raw and through the openai SDK): where it serves, whom it lets in,
how its pages, files, errors and 429s look, the thread list, and Foundry's own tools in its corpus."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.pagination import SyncCursorPage
from openai.types.beta import Thread
from test_sandbox_support import Raw, quiet

from migrator.sandbox import SandboxConfig, SandboxServer, foundry, listing, thread_ids

THREADS, SEED, VERSION = 16, 9, "2025-05-01"
IDS = thread_ids(THREADS, SEED)
LONG = IDS[3]  # the showcase long thread: more than 300 messages, every Foundry tool
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
V = {"api-version": VERSION}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, flavor="foundry")) as srv:
        yield srv


@pytest.fixture
def srv(server: SandboxServer) -> Iterator[SandboxServer]:
    """The module's server with its runtime knobs back to their defaults after each test."""
    yield server
    server.configure(token=None, token_ttl_requests=None, missing_role=False, rps_limit=None)
    server.reset_stats()


@pytest.fixture
def raw(srv: SandboxServer) -> Iterator[Raw]:
    r = Raw(srv.port, key=srv.mint_token())
    yield r
    r.close()


P = "/api/projects/sandbox-project"


def sdk(srv: SandboxServer, token: str, version: str = VERSION) -> openai.OpenAI:
    """The SDK as FOUNDRY.md describes it: the project endpoint, the api-version on every call, a token."""
    return openai.OpenAI(
        base_url=srv.base_url,
        api_key=token,
        default_query={"api-version": version},
        max_retries=0,
        timeout=10,
    )


def walk(raw: Raw, path: str, **query: Any) -> tuple[list[dict[str, Any]], int]:
    items, after, pages = [], None, 0
    while True:
        params = {"limit": 100, "order": "asc", **V, **query, **({"after": after} if after else {})}
        status, page = raw.get(P + path, **params)
        assert status == 200, (path, page)
        assert "object" not in page and "first_id" not in page, page
        pages += 1
        items += page["data"]
        if not page["has_more"]:
            return items, pages
        after = page["last_id"]


# -- where it serves ---------------------------------------------------------------------------------
def test_it_serves_under_the_project_endpoint_without_v1(srv, raw):
    assert srv.base_url == f"http://127.0.0.1:{srv.port}{P}"
    assert raw.get(P + "/assistants", **V)[0] == 200
    for path in ("/v1/assistants", P + "/v1/assistants", "/api/projects/other-project/assistants"):
        status, body = raw.get(path, **V)
        assert status == 404 and body == {"error": {"code": "404", "message": "Resource not found"}}, path
    # A route of OpenAI's that Foundry does not have: the parsed text of a vector-store file.
    store = walk(raw, "/vector_stores")[0][0]["id"]
    fid = walk(raw, f"/vector_stores/{store}/files")[0][0]["id"]
    assert raw.get(P + f"/vector_stores/{store}/files/{fid}/content", **V)[0] == 404
    with SandboxServer(
        SandboxConfig(threads=2, seed=SEED, flavor="foundry", project="acme-support")
    ) as other:
        named = Raw(other.port, key=other.mint_token())
        assert other.base_url.endswith("/api/projects/acme-support")
        assert named.get("/api/projects/acme-support/threads", **V)[0] == 200
        assert named.get(P + "/threads", **V)[0] == 404


# -- api-version -------------------------------------------------------------------------------------
def test_every_call_needs_a_known_api_version(srv, raw):
    for query, code in (
        ({}, "MissingApiVersionParameter"),
        ({"api-version": ""}, "MissingApiVersionParameter"),
    ):
        status, body = raw.get(P + f"/threads/{IDS[0]}", **query)
        assert status == 400 and body["error"]["code"] == code, body
    status, body = raw.get(P + f"/threads/{IDS[0]}", **{"api-version": "2024-02-15-preview"})
    assert status == 400 and body["error"]["code"] == "UnsupportedApiVersion"
    assert "2024-02-15-preview" in body["error"]["message"] and "2025-05-01" in body["error"]["message"]
    for version in ("2025-05-01", "2025-05-15-preview", "v1"):
        assert raw.get(P + f"/threads/{IDS[0]}", **{"api-version": version})[0] == 200, version
    with quiet(), pytest.raises(openai.BadRequestError) as info:
        openai.OpenAI(base_url=srv.base_url, api_key=srv.mint_token(), max_retries=0).beta.threads.retrieve(
            IDS[0]
        )
    assert info.value.code == "MissingApiVersionParameter"
    with quiet():
        assert sdk(srv, srv.mint_token()).beta.threads.retrieve(IDS[0]).id == IDS[0]


# -- auth --------------------------------------------------------------------------------------------
def test_only_bearer_tokens_it_knows_get_in(srv):
    path = P + f"/threads/{IDS[0]}"
    token = srv.mint_token()
    other_server_token = None
    with SandboxServer(SandboxConfig(threads=1, seed=SEED, flavor="foundry")) as other:
        other_server_token = other.mint_token()
    refused = {
        "no header": {},
        "an api-key": {"api-key": "0123456789abcdef0123456789abcdef"},
        "an api-key beside a good token": {"api-key": "k", "authorization": f"Bearer {token}"},
        "a key as bearer": {"authorization": "Bearer 0123456789abcdef0123456789abcdef"},
        "a forged token": {"authorization": f"Bearer {token[:-1]}{'0' if token[-1] != '0' else '1'}"},
        "another sandbox's token": {"authorization": f"Bearer {other_server_token}"},
        "basic auth": {"authorization": "Basic dXNlcjpwYXNz"},
    }
    for name, headers in refused.items():
        r = Raw(srv.port)
        r.headers = headers
        status, _, body = r.request("GET", path, **V)
        error = json.loads(body)["error"]
        assert status == 401 and set(error) == {"code", "message"}, (name, body)
        expected = "AuthenticationTypeDisabled" if "api-key" in headers else "Unauthorized"
        assert error["code"] == expected, (name, error)
    assert Raw(srv.port, key=token).get(path, **V)[0] == 200
    srv.configure(token="static-ci-token")
    assert Raw(srv.port, key="static-ci-token").get(path, **V)[0] == 200
    assert Raw(srv.port, key=token).get(path, **V)[0] == 200  # minted ones still work beside it
    assert srv.config.knobs()["token"] == "set"  # the token itself is never shown
    with quiet(), pytest.raises(openai.AuthenticationError) as info:
        sdk(srv, "sk-proj-not-a-token").beta.threads.retrieve(IDS[0])
    assert info.value.code == "Unauthorized"


def test_a_caller_without_the_role_gets_403_permission_denied(srv):
    srv.configure(missing_role=True)
    with quiet(), pytest.raises(openai.PermissionDeniedError) as info:
        sdk(srv, srv.mint_token()).beta.threads.retrieve(IDS[0])
    assert info.value.code == "PermissionDenied"
    assert "agents/read" in info.value.message and P in info.value.message


def test_a_token_expires_after_n_requests_and_a_fresh_one_works(srv):
    srv.configure(token_ttl_requests=3, token="static-nightly-token")  # a token no other test has used
    path = P + f"/threads/{IDS[0]}"
    old = Raw(srv.port, key=srv.mint_token())
    assert [old.get(path, **V)[0] for _ in range(3)] == [200, 200, 200]
    for _ in range(2):  # and it stays expired
        status, body = old.get(path, **V)
        assert status == 401 and body["error"]["code"] == "Unauthorized"
        assert "expired" in body["error"]["message"]
    status, minted = Raw(srv.port).post("/_sandbox/token", {})
    assert status == 200 and minted["token_type"] == "Bearer" and minted["ttl_requests"] == 3
    assert minted["expires_in"] == 3600 and minted["expires_on"] > 1_700_000_000
    fresh = Raw(srv.port, key=minted["access_token"])
    assert [fresh.get(path, **V)[0] for _ in range(4)] == [200, 200, 200, 401]
    static = Raw(srv.port, key="static-nightly-token")
    assert [static.get(path, **V)[0] for _ in range(4)] == [200, 200, 200, 401]
    assert srv.stats()["by_status"] == {"200": 9, "401": 4}
    # Through the SDK, with a token provider as `api_key` (as FOUNDRY.md says): swapping the token it
    # returns after a 401 "expired" is all a refresh takes, and every call gets done.
    holder = {"token": srv.mint_token()}
    client = openai.OpenAI(
        base_url=srv.base_url, api_key=lambda: holder["token"], default_query=V, max_retries=0, timeout=10
    )
    done = refreshed = 0
    with quiet():
        for _ in range(7):
            try:
                client.beta.threads.retrieve(IDS[0])
            except openai.AuthenticationError as exc:
                assert "expired" in exc.message
                holder["token"], refreshed = srv.mint_token(), refreshed + 1
                client.beta.threads.retrieve(IDS[0])
            done += 1
    assert done == 7 and refreshed == 2  # 7 calls at 3 a token


# -- pages, the thread list, files, include[], 429 ---------------------------------------------------
def test_the_sdk_pages_through_envelopes_without_object_and_first_id(srv):
    truth = srv.truth(LONG)
    with quiet():
        client = sdk(srv, srv.mint_token())
        page = client.beta.threads.messages.list(LONG, limit=100, order="asc")
        raw_page = client.beta.threads.messages.with_raw_response.list(
            LONG, limit=100, order="asc"
        ).http_response
        ids = [m.id for m in client.beta.threads.messages.list(LONG, limit=100, order="asc")]
        threads = client.get_api_list(
            "/threads",
            model=Thread,
            page=SyncCursorPage[Thread],
            options={"params": {"limit": 5, "order": "asc"}},
        )
        listed = [t.id for t in threads]
    body = raw_page.json()
    assert set(body) == {"data", "last_id", "has_more"} and body["has_more"] is True
    assert page.has_more is True and len(page.data) == 100
    assert ids == [m["id"] for m in truth["messages"]] and len(ids) > 300
    assert listed == IDS


def test_the_thread_list_pages_through_every_thread(raw):
    asc, pages = walk(raw, "/threads")
    assert [t["id"] for t in asc] == IDS and pages == 1
    for t in asc:
        assert raw.get(P + f"/threads/{t['id']}", **V) == (200, t)
    seen, after = [], None
    while True:
        status, page = raw.get(P + "/threads", limit=5, **V, **({"after": after} if after else {}))
        assert status == 200 and set(page) == {"data", "last_id", "has_more"}
        seen += [t["id"] for t in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == IDS[::-1]  # default order: newest first
    assert raw.get(P + "/threads", limit=3, before=IDS[5], order="asc", **V)[1]["data"] == asc[2:5]
    empty = raw.get(P + "/threads", after=IDS[0], **V)[1]
    assert empty == {"data": [], "has_more": False}  # no last_id on an empty page
    for query in ({"limit": 0}, {"limit": 101}, {"after": "thread_unknown"}, {"order": "sideways"}):
        assert raw.get(P + "/threads", **V, **query)[0] == 400, query


def test_the_thread_pager_agrees_with_the_list_pager():
    """page_indexed finds cursors by index instead of building every thread; it must page identically."""
    items = [{"id": f"t{i}"} for i in range(7)]
    index = {it["id"]: i for i, it in enumerate(items)}
    cursors = [None, *index]
    for order, limit, after, before in itertools.product(("asc", "desc"), (1, 2, 3, 7, 9), cursors, cursors):
        params = listing.ListParams(limit, order, after, before)
        expected, more = listing.page(items, params)
        got, got_more = listing.page_indexed(len(items), params, index.get)
        assert ([items[i] for i in got], got_more) == (expected, more), params


def test_files_are_one_unpaged_list_and_every_purpose_downloads(raw):
    status, files = raw.get(P + "/files", limit=1, order="asc", **V)  # paging parameters mean nothing here
    assert status == 200 and set(files) == {"object", "data"} and files["object"] == "list"
    assert len(files["data"]) > 1
    purposes = Counter(f["purpose"] for f in files["data"])
    assert set(purposes) <= {"assistants", "assistants_output", "vision"} and purposes["assistants"]
    vision = raw.get(P + "/files", purpose="vision", **V)[1]["data"]
    assert vision and all(f["purpose"] == "vision" for f in vision) and len(vision) == purposes["vision"]
    for f in files["data"]:
        status, headers, body = raw.request("GET", P + f"/files/{f['id']}/content", **V)
        assert status == 200 and len(body) == f["bytes"], f  # no "not allowed" for purpose assistants


def test_include_is_one_comma_joined_value(raw):
    runs = walk(raw, f"/threads/{IDS[0]}/runs")[0]
    run = next(r for r in runs if any(t["type"] == "file_search" for t in r["tools"]))
    path = P + f"/threads/{IDS[0]}/runs/{run['id']}/steps"
    plain = raw.get(path, **V)[1]["data"]
    full = raw.get(path, **V, **{"include[]": INCLUDE})[1]["data"]
    twice = raw.get(path, **V, **{"include[]": f"{INCLUDE},{INCLUDE}"})[1]["data"]

    def results(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        calls = [
            c for s in steps for c in s["step_details"].get("tool_calls", []) if c["type"] == "file_search"
        ]
        return [r for c in calls for r in c["file_search"]["results"]]

    assert results(plain) and all("content" not in r for r in results(plain))
    assert all(r["content"] for r in results(full)) and twice == full
    status, body = raw.get(path, **V, **{"include[]": f"{INCLUDE},step_details.nope"})
    assert (
        status == 400
        and body["error"]["code"] == "invalid_value"
        and "step_details.nope" in body["error"]["message"]
    )


def test_429_carries_retry_after_and_x_ms_retry_after_ms(srv, raw):
    srv.configure(rps_limit=2)
    answers = [raw.request("GET", P + f"/threads/{IDS[0]}", **V) for _ in range(6)]
    limited = [(h, json.loads(b)) for s, h, b in answers if s == 429]
    assert limited, [s for s, _, _ in answers]
    for headers, body in limited:
        assert int(headers["retry-after"]) >= 1 and int(headers["x-ms-retry-after-ms"]) >= 1
        assert "retry-after-ms" not in headers and not any(k.startswith("x-ratelimit") for k in headers)
        assert body["error"]["code"] == "429" and "Try again in" in body["error"]["message"]
    ok_headers = next(h for s, h, _ in answers if s == 200)
    assert not any(k.startswith("x-ratelimit") for k in ok_headers)
    with quiet(), pytest.raises(openai.RateLimitError):
        client = sdk(srv, srv.mint_token())
        for _ in range(6):
            client.beta.threads.retrieve(IDS[0])


# -- Foundry's own tools ---------------------------------------------------------------------------
def _served_calls(
    raw: Raw,
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Every step tool call, by thread, as the API serves it; and every run and step."""
    calls, runs, steps = {}, [], []
    for tid in IDS:
        calls[tid] = []
        for run in walk(raw, f"/threads/{tid}/runs")[0]:
            runs.append(run)
            for step in walk(raw, f"/threads/{tid}/runs/{run['id']}/steps", **{"include[]": INCLUDE})[0]:
                steps.append(step)
                for c in step["step_details"].get("tool_calls", []):
                    calls[tid].append({"run_id": run["id"], "step_id": step["id"], "call": c})
    return calls, runs, steps


def test_every_foundry_tool_call_is_served_with_its_payload_and_in_the_truth(srv, raw):
    calls, runs, steps = _served_calls(raw)
    counts: Counter[str] = Counter()
    for tid in IDS:
        truth = srv.truth(tid)
        assert truth == Raw(srv.port).get(f"/_sandbox/truth/{tid}")[1]
        served = [
            {"run_id": c["run_id"], "step_id": c["step_id"], "id": c["call"]["id"], "type": c["call"]["type"],
             "payload": foundry.payload(c["call"])}
            for c in calls[tid]
        ]  # fmt: skip
        assert served == truth["tool_calls"], tid
        for c in calls[tid]:
            call = c["call"]
            if call["type"] in foundry.TOOL_TYPES:
                counts[call["type"]] += 1
                payload = foundry.payload(call)
                assert payload and all(v not in (None, "") for v in payload.values()), call
    assert set(counts) == set(foundry.TOOL_TYPES), counts  # every one of Foundry's tools, in 16 threads
    assert dict(sorted(counts.items())) == srv.corpus_summary()["foundry_tool_calls"]
    mcp = [c["call"] for tid in IDS for c in calls[tid] if c["call"]["type"] == "mcp"]
    assert all("mcp" not in c and {"name", "arguments", "output", "server_label"} <= set(c) for c in mcp)
    # The MCP server's tool list comes first, as an `activities` step, and some run waits on an approval.
    activities = [s for s in steps if s["type"] == "activities"]
    assert activities and all(
        s["step_details"]["activities"][0]["type"] == "mcp_list_tools" for s in activities
    )
    assert len(activities) == srv.corpus_summary()["activities_steps"]
    approvals = [r for r in runs if (r["required_action"] or {}).get("type") == "submit_tool_approval"]
    assert approvals and len(approvals) == srv.corpus_summary()["tool_approvals"]
    for run in approvals:
        assert run["status"] == "expired"
        (pending,) = run["required_action"]["submit_tool_approval"]["tool_calls"]
        assert (
            pending["type"] == "mcp"
            and pending["name"] == foundry.MCP_NEEDS_APPROVAL
            and pending["arguments"]
        )


def test_agents_and_runs_declare_foundry_tools_and_answers_cite_the_web(raw):
    agents = walk(raw, "/assistants")[0]
    declared = Counter(t["type"] for a in agents for t in a["tools"])
    assert set(foundry.TOOL_TYPES) <= set(declared)
    mcp = next(t for a in agents for t in a["tools"] if t["type"] == "mcp")
    assert mcp["server_label"] == foundry.MCP_LABEL and mcp["server_url"].startswith("https://")
    runs = walk(raw, f"/threads/{LONG}/runs")[0]
    assert any(t["type"] == "bing_grounding" for r in runs for t in r["tools"])
    assert all("tool_resources" in r for r in runs)
    messages = walk(raw, f"/threads/{LONG}/messages")[0]
    cited = [
        a for m in messages for p in m["content"] if p["type"] == "text" for a in p["text"]["annotations"]
        if a["type"] == "url_citation"
    ]  # fmt: skip
    assert cited and all(a["url_citation"]["url"].startswith("https://") for a in cited)
    kinds = {p["type"] for tid in IDS for m in walk(raw, f"/threads/{tid}/messages")[0] for p in m["content"]}
    assert kinds == {"text", "image_file"}  # Foundry's MessageContent knows no image_url and no refusal


# -- counters, the corpus and ids ---------------------------------------------------------------------
def test_counts_and_the_request_bill_match_an_ideal_walk(srv, raw):
    srv.reset_stats()
    summary = srv.corpus_summary()
    seen: Counter[str] = Counter()
    assistants, _ = walk(raw, "/assistants")
    seen["assistants"] = len(assistants)
    stores, _ = walk(raw, "/vector_stores")
    seen["vector_stores"] = len(stores)
    referenced: set[str] = set()
    for vs in stores:
        files, _ = walk(raw, f"/vector_stores/{vs['id']}/files")
        seen["vector_store_files"] += len(files)
        referenced |= {f["id"] for f in files}
    for tid in IDS:
        assert raw.get(P + f"/threads/{tid}", **V)[0] == 200
        messages, _ = walk(raw, f"/threads/{tid}/messages")
        seen["messages"] += len(messages)
        for m in messages:
            referenced |= {a["file_id"] for a in m["attachments"] or []}
            for part in m["content"]:
                if part["type"] == "image_file":
                    referenced.add(part["image_file"]["file_id"])
                for ann in part.get("text", {}).get("annotations", []):
                    if ann["type"] in ("file_citation", "file_path"):
                        referenced.add(ann[ann["type"]]["file_id"])
        runs, _ = walk(raw, f"/threads/{tid}/runs")
        seen["runs"] += len(runs)
        for run in runs:
            if run["tools"]:
                steps, _ = walk(raw, f"/threads/{tid}/runs/{run['id']}/steps")
                seen["run_steps"] += len(steps)
                for s in steps:
                    for c in s["step_details"].get("tool_calls", []):
                        for out in c.get("code_interpreter", {}).get("outputs", []):
                            if out["type"] == "image":
                                referenced.add(out["image"]["file_id"])
    for fid in sorted(referenced):
        assert raw.get(P + f"/files/{fid}", **V)[0] == 200
        assert raw.request("GET", P + f"/files/{fid}/content", **V)[0] == 200
    seen["files"] = len(referenced)
    assert summary["counts"] == {**seen, "threads": THREADS}
    stats = srv.stats()
    assert stats["by_route"] == summary["minimum_requests"]["by_route"]
    assert all(route.split()[1].startswith(P) for route in stats["by_route"])
    assert stats["total"] == summary["minimum_requests"]["total"]
    srv.reset_stats()
    walk(raw, "/threads", limit=5)  # the thread list, in pages of 5 here
    assert srv.stats()["by_route"] == {f"GET {P}/threads": 4}  # 16 threads
    assert summary["thread_list_pages"] == 1 and summary["flavor"] == "foundry"


def test_ids_are_the_corpus_s_whatever_the_flavor():
    for flavor in ("openai", "foundry", "lookalike", "sunset"):
        with SandboxServer(SandboxConfig(threads=5, seed=SEED, flavor=flavor)) as srv:
            assert srv.thread_ids() == IDS[:5], flavor
            assert Raw(srv.port).get("/_sandbox/thread_ids")[1] == {"thread_ids": IDS[:5]}
            assert srv.corpus_summary()["flavor"] == flavor


def test_the_flavor_and_project_are_fixed_while_the_token_knobs_change_at_runtime(srv):
    for knobs in ({"flavor": "openai"}, {"project": "other"}):
        with pytest.raises(ValueError, match="cannot change while the server runs"):
            srv.configure(**knobs)
    status, body = Raw(srv.port).post("/_sandbox/config", {"token_ttl_requests": 0})
    assert status == 400 and "token-ttl-requests" in body["error"]["message"]
    assert srv.configure(token_ttl_requests=5, missing_role=True)["token_ttl_requests"] == 5
    with pytest.raises(ValueError, match="flavor must be one of"):
        SandboxConfig(flavor="azure-openai")


@pytest.mark.parametrize("flavor", ["foundry", "lookalike"])
def test_same_seed_same_corpus_other_seed_other_one(flavor):
    def served(seed: int) -> list[Any]:
        with SandboxServer(SandboxConfig(threads=6, seed=seed, flavor=flavor)) as srv:
            raw = Raw(srv.port, key=srv.mint_token())
            base = srv.base_url.removeprefix(srv.root_url)
            query = V if flavor == "foundry" else {}
            tids = thread_ids(6, seed)
            out: list[Any] = [srv.truth(t) for t in tids]
            out += [raw.get(f"{base}/threads/{t}/runs", limit=100, **query)[1] for t in tids]
            out.append(raw.get(f"{base}/assistants", limit=100, **query)[1])
            return out

    first = served(SEED)
    assert served(SEED) == first
    assert served(SEED + 1) != first
