"""The look-alike and sunset flavors over real HTTP, and the flavor options of `sandbox serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from test_sandbox_support import Raw, quiet, sdk, walk

from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids

THREADS, SEED = 10, 4
IDS = thread_ids(THREADS, SEED)
LONG = IDS[3]


@pytest.fixture(scope="module")
def look() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, flavor="lookalike")) as srv:
        yield srv


@pytest.fixture(scope="module")
def plain() -> Iterator[SandboxServer]:
    """The same corpus as OpenAI serves it, to compare the look-alike with."""
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as srv:
        yield srv


@pytest.fixture(scope="module")
def sunset() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, flavor="sunset")) as srv:
        yield srv


# -- look-alike ----------------------------------------------------------------------------------
def test_missing_routes_answer_404_405_501_like_a_fastapi_app(look, plain):
    raw = Raw(look.port)
    store = Raw(plain.port).get("/v1/vector_stores")[1]["data"][0]["id"]
    file_id = Raw(plain.port).get("/v1/files")[1]["data"][0]["id"]
    expected = {
        "/v1/vector_stores": (404, "Not Found"),
        f"/v1/vector_stores/{store}": (404, "Not Found"),
        f"/v1/vector_stores/{store}/files": (404, "Not Found"),
        "/v1/files": (405, "Method Not Allowed"),
        f"/v1/files/{file_id}": (501, "Not Implemented"),
        f"/v1/files/{file_id}/content": (404, "Not Found"),
        "/v1/threads": (405, "Method Not Allowed"),  # POST /threads exists, listing does not
        "/v1/threads/thread_unknown": (404, "No thread found with id 'thread_unknown'."),
        "/v1/nowhere": (404, "Not Found"),
    }
    for path, (status, detail) in expected.items():
        got, headers, body = raw.request("GET", path)
        assert (got, json.loads(body)) == (status, {"detail": detail}), path
        if status == 405:
            assert headers["allow"] == "POST"
    assert raw.get("/v1/assistants")[0] == 200
    upload = raw.request("POST", "/v1/files")  # the upload route exists (405 says so): no 405 there
    assert upload[0] not in (404, 405) and "allow" not in upload[1], upload
    counts = look.corpus_summary()["counts"]
    assert counts["vector_stores"] == counts["files"] == counts["run_steps"] == 0 and counts["messages"] > 0


def test_message_text_comes_as_a_list_a_string_or_a_value_and_timestamps_in_ms(look, plain):
    shapes: Counter[str] = Counter()
    for tid in IDS:
        odd, _ = walk(Raw(look.port), f"/v1/threads/{tid}/messages")
        normal, _ = walk(Raw(plain.port), f"/v1/threads/{tid}/messages")
        assert [m["id"] for m in odd] == [m["id"] for m in normal]
        truth = look.truth(tid)
        assert [m["id"] for m in truth["messages"]] == [m["id"] for m in odd]
        for o, n, t in zip(odd, normal, truth["messages"], strict=True):
            kinds, texts = set(), []
            for part in o["content"]:
                if part["type"] != "text":
                    continue
                text = part["text"]
                if isinstance(text, str):
                    kinds.add("string")
                    texts.append(text)
                elif isinstance(text, list):
                    kinds.add("list of {value}")
                    assert all(set(item) == {"value"} for item in text)
                    texts.append("".join(item["value"] for item in text))
                else:
                    kinds.add("{value}")
                    assert set(text) == {"value"}
                    texts.append(text["value"])
            assert len(kinds) <= 1, o  # one shape per message
            shapes.update(kinds)
            expected = [p["text"]["value"] for p in n["content"] if p["type"] == "text"]
            assert texts == expected and [x for x in t["texts"] if x in expected] == expected
            for key, value in n.items():
                if key.endswith("_at") and value is not None:
                    assert o[key] == value * 1000, key  # milliseconds, ties and all
    assert set(shapes) == {"string", "list of {value}", "{value}"} and min(shapes.values()) > 10, shapes
    thread = Raw(look.port).get(f"/v1/threads/{IDS[0]}")[1]
    assert thread["created_at"] == Raw(plain.port).get(f"/v1/threads/{IDS[0]}")[1]["created_at"] * 1000
    runs, _ = walk(Raw(look.port), f"/v1/threads/{IDS[0]}/runs")
    assert all(r["created_at"] > 10**12 for r in runs)


def test_step_lists_are_empty_even_for_runs_that_declared_tools_and_lists_still_page(look):
    raw = Raw(look.port)
    runs, _ = walk(raw, f"/v1/threads/{LONG}/runs")
    with_tools = [r for r in runs if r["tools"]]
    assert with_tools
    for run in with_tools:
        status, page = raw.get(f"/v1/threads/{LONG}/runs/{run['id']}/steps")
        assert status == 200 and page["data"] == [] and page["has_more"] is False
    truth = look.truth(LONG)
    assert truth["tool_calls"] == [] and any(r["declares_tools"] for r in truth["runs"])
    messages, pages = walk(raw, f"/v1/threads/{LONG}/messages")
    assert pages > 3 and len(messages) == len(truth["messages"])
    first = raw.get(f"/v1/threads/{LONG}/messages", limit=5)[1]
    assert first["object"] == "list" and first["has_more"] is True and len(first["data"]) == 5


def test_look_alike_counters_match_the_bill_of_an_ideal_walk(look):
    look.reset_stats()
    raw = Raw(look.port)
    walk(raw, "/v1/assistants")
    for tid in IDS:
        raw.get(f"/v1/threads/{tid}")
        walk(raw, f"/v1/threads/{tid}/messages")
        for run in walk(raw, f"/v1/threads/{tid}/runs")[0]:
            if run["tools"]:
                walk(raw, f"/v1/threads/{tid}/runs/{run['id']}/steps")
    bill = look.corpus_summary()["minimum_requests"]
    assert look.stats()["by_route"] == bill["by_route"] and look.stats()["total"] == bill["total"]


# -- sunset --------------------------------------------------------------------------------------
def test_every_assistants_path_is_a_404_invalid_url(sunset):
    raw = Raw(sunset.port)
    tid = IDS[0]
    gone = [
        "/v1/assistants",
        "/v1/assistants/asst_x",
        "/v1/threads",
        f"/v1/threads/{tid}",
        f"/v1/threads/{tid}/messages",
        f"/v1/threads/{tid}/messages/msg_x",
        f"/v1/threads/{tid}/runs",
        f"/v1/threads/{tid}/runs/run_x/steps",
    ]
    # A base URL without /v1 gets the same, for every path (OpenAI serves nothing outside /v1).
    gone += [p.removeprefix("/v1") for p in gone] + ["/vector_stores", "/files", "/chat/completions"]
    for method in ("GET", "POST", "DELETE"):
        for path in gone:
            status, _, body = raw.request(method, path, **({"limit": 100} if method == "GET" else {}))
            assert status == 404, (method, path)
            assert json.loads(body) == {
                "error": {
                    "message": f"Invalid URL ({method} {path})",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
    with quiet(), pytest.raises(openai.NotFoundError) as info:
        sdk(sunset.base_url).beta.assistants.list()
    assert info.value.message.endswith("Invalid URL (GET /v1/assistants)")
    # What the Responses API still uses outlives the Assistants API, as on OpenAI.
    assert raw.get("/v1/vector_stores")[0] == 200 and raw.get("/v1/files")[0] == 200
    chat = sdk(sunset.base_url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content
    stats = sunset.stats()
    assert stats["by_status"]["404"] == len(gone) * 3 + 1 and stats["by_route"]["GET /v1/assistants"] == 2
    assert sunset.corpus_summary()["counts"]["threads"] == 0 and sunset.truth(tid)["served"] is False


def test_sunset_wins_over_gone_and_gone_still_works_elsewhere():
    with SandboxServer(SandboxConfig(threads=1, seed=SEED, flavor="sunset", gone=True)) as srv:
        assert Raw(srv.port).get("/v1/assistants")[0] == 404
    with SandboxServer(SandboxConfig(threads=1, seed=SEED, gone=True)) as srv:
        assert Raw(srv.port).get("/v1/assistants")[0] == 410


# -- the CLI -------------------------------------------------------------------------------------
def test_bad_flavor_options_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]):
    bad = (
        ["--flavor", "azure"],
        ["--flavor", "foundry", "--project", "a/b"],
        ["--flavor", "foundry", "--token-ttl-requests", "0"],
        ["--flavor", "foundry", "--token", " "],
    )
    for args in bad:
        assert main(["sandbox", "serve", "--port", "0", *args]) == 2, args
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


def test_cli_serves_a_foundry_project_with_a_static_token(tmp_path: Path):
    ids = tmp_path / "ids.txt"
    code = "import sys; from migrator.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["sandbox", "serve", "--port", "0", "--threads", "3", "--seed", "4", "--flavor", "foundry"]
    args += [
        "--project",
        "acme",
        "--token",
        "ci-static-token",
        "--token-ttl-requests",
        "2",
        "--ids-out",
        str(ids),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        base_url = line.split()[2]
        assert base_url.endswith("/api/projects/acme") and "flavor foundry" in line, line
        assert "ci-static-token" not in line
        port = int(base_url.split(":")[2].split("/")[0])
        raw = Raw(port, key="ci-static-token")
        statuses = [
            raw.get(f"/api/projects/acme/threads/{IDS[0]}", **{"api-version": "v1"})[0] for _ in range(3)
        ]
        assert statuses == [200, 200, 401]
        assert ids.read_text().split() == thread_ids(3, 4)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_the_targets_keep_their_own_shapes_beside_a_look_alike(look, plain):
    """Only the Assistants source is odd: conversations and chat completions answer as OpenAI does."""
    body = {"items": [{"role": "user", "content": "hi"}], "metadata": {"a": "b"}}
    odd, normal = (
        Raw(look.port).post("/v1/conversations", body)[1],
        Raw(plain.port).post("/v1/conversations", body)[1],
    )
    assert odd["created_at"] < 10**11 and abs(odd["created_at"] - normal["created_at"]) < 60
