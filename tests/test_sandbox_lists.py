"""Determinism, list semantics exactly as the spec describes them, and an honest rate limiter."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from test_sandbox_support import Raw, schema_errors, walk

from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids

THREADS, SEED = 8, 11
IDS = thread_ids(THREADS, SEED)
LONG, SINGLE = IDS[3], IDS[5]  # showcase threads: 300+ messages, and one message without a run


@pytest.fixture(scope="module")
def srv() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as server:
        yield server


@pytest.fixture
def raw(srv: SandboxServer) -> Iterator[Raw]:
    r = Raw(srv.port)
    yield r
    r.close()


def _bytes(port: int) -> list[bytes]:
    raw = Raw(port)
    paths = ["/v1/assistants?limit=100", "/v1/vector_stores", "/v1/files?order=asc"]
    for tid in IDS:
        paths += [
            f"/v1/threads/{tid}",
            f"/v1/threads/{tid}/messages?limit=100",
            f"/v1/threads/{tid}/runs?limit=100",
        ]
    out = [raw.request("GET", p)[2] for p in paths]
    _, runs = raw.get(f"/v1/threads/{IDS[0]}/runs", limit=100)
    out += [raw.request("GET", f"/v1/threads/{IDS[0]}/runs/{r['id']}/steps")[2] for r in runs["data"]]
    files = raw.get("/v1/files", purpose="vision")[1]["data"]
    out += [raw.request("GET", f"/v1/files/{f['id']}/content")[2] for f in files]
    chat = {"model": "m", "messages": [{"role": "user", "content": "same question"}]}
    out.append(raw.request("POST", "/v1/chat/completions", chat)[2])
    raw.close()
    return out


def test_same_seed_same_bytes_other_seed_other_ids(srv):
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED)) as twin:
        assert _bytes(twin.port) == _bytes(srv.port)
    assert thread_ids(THREADS, SEED) == IDS and thread_ids(3, SEED) == IDS[:3]
    assert all(re.fullmatch(r"thread_[A-Za-z0-9]{24}", t) for t in IDS) and len(set(IDS)) == THREADS
    assert not set(thread_ids(THREADS, SEED + 1)) & set(IDS)


def test_limit_and_order_are_validated(raw):
    for query, param in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"order": "up"}, "order"),
    ):
        status, body = raw.get(f"/v1/threads/{LONG}/messages", **query)
        assert status == 400 and body["error"]["param"] == param and not schema_errors("ErrorResponse", body)
    status, body = raw.get("/v1/assistants", limit=101)
    assert "Expected a value <= 100, but got 101 instead." in body["error"]["message"]
    assert raw.get("/v1/files", limit=10_000)[0] == 200
    assert raw.get("/v1/files", limit=10_001)[0] == 400
    status, body = raw.get("/v1/assistants", after="asst_unknown")
    assert status == 400 and body["error"]["param"] == "after"


def test_defaults_are_twenty_items_newest_first(raw):
    asc, pages = walk(raw, "/v1/assistants")
    assert pages == 2 and len(asc) == 107
    _, page = raw.get("/v1/assistants")
    assert [a["id"] for a in page["data"]] == [a["id"] for a in asc[::-1][:20]] and page["has_more"] is True
    assert page["first_id"] == asc[-1]["id"] and page["last_id"] == asc[-20]["id"]


def test_after_before_and_has_more(raw):
    asc, _ = walk(raw, "/v1/assistants")
    ids = [a["id"] for a in asc]
    paged, after = [], None
    while True:
        _, page = raw.get("/v1/assistants", limit=7, order="asc", **({"after": after} if after else {}))
        paged += [a["id"] for a in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert paged == ids
    _, page = raw.get("/v1/assistants", limit=100, order="asc", after=ids[6])  # exactly 100 left
    assert len(page["data"]) == 100 and page["has_more"] is False
    _, page = raw.get("/v1/assistants", limit=5, order="asc", before=ids[50])
    assert [a["id"] for a in page["data"]] == ids[45:50] and page["has_more"] is True
    _, page = raw.get("/v1/assistants", limit=5, order="asc", before=ids[3])
    assert [a["id"] for a in page["data"]] == ids[:3] and page["has_more"] is False
    _, page = raw.get("/v1/assistants", limit=5, order="desc", after=ids[10])
    assert [a["id"] for a in page["data"]] == ids[9:4:-1]
    _, page = raw.get("/v1/assistants", limit=100, order="asc", after=ids[2], before=ids[6])
    assert [a["id"] for a in page["data"]] == ids[3:6] and page["has_more"] is False


def test_lists_keep_creation_order_not_id_order_both_ways(raw):
    """Ties of created_at are common and ids are random: asc, desc and cursors follow creation order."""
    for tid in IDS:
        asc, _ = walk(raw, f"/v1/threads/{tid}/messages")
        truth = [m["id"] for m in asc]
        times = [m["created_at"] for m in asc]
        assert times == sorted(times)
        paged, after = [], None  # newest first, two a page, by cursor
        while True:
            _, page = raw.get(
                f"/v1/threads/{tid}/messages", limit=2, order="desc", **({"after": after} if after else {})
            )
            paged += [m["id"] for m in page["data"]]
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert paged == truth[::-1]
        if len(truth) > 2:
            _, page = raw.get(f"/v1/threads/{tid}/messages", limit=1, order="asc", after=truth[0])
            assert [m["id"] for m in page["data"]] == [truth[1]]
            _, page = raw.get(f"/v1/threads/{tid}/messages", limit=1, order="desc", before=truth[0])
            assert [m["id"] for m in page["data"]] == [truth[1]]
    long, _ = walk(raw, f"/v1/threads/{LONG}/messages")
    ids = [m["id"] for m in long]
    assert ids != sorted(ids) and len({m["created_at"] for m in long}) < len(long)


def test_pagination_over_more_than_a_hundred(raw, srv):
    messages, pages = walk(raw, f"/v1/threads/{LONG}/messages", "ListMessagesResponse")
    assert len(messages) > 300 and pages == -(-len(messages) // 100)
    assert len({m["id"] for m in messages}) == len(messages)
    desc, _ = walk(raw, f"/v1/threads/{LONG}/messages", order="desc")
    assert desc == messages[::-1]
    runs, pages = walk(raw, f"/v1/threads/{LONG}/runs")
    assert len(runs) > 100 and pages == 2
    stores, _ = walk(raw, "/v1/vector_stores")
    sizes = {vs["id"]: walk(raw, f"/v1/vector_stores/{vs['id']}/files")[0] for vs in stores}
    assert sorted(len(v) for v in sizes.values()) == [0, 3, 6, 12, 130]
    run = runs[2]
    in_run, _ = walk(raw, f"/v1/threads/{LONG}/messages", run_id=run["id"])
    assert in_run and all(m["run_id"] == run["id"] for m in in_run)


def test_empty_lists(raw, srv):
    status, page = raw.get(f"/v1/threads/{SINGLE}/runs")
    assert status == 200 and page == {
        "object": "list",
        "data": [],
        "first_id": "",
        "last_id": "",
        "has_more": False,
    }
    assert not schema_errors("ListRunsResponse", page)
    srv.configure(null_list_ids=True)  # the live API's habit, for clients that must cope with it
    try:
        _, page = raw.get(f"/v1/threads/{SINGLE}/runs")
        assert page["first_id"] is None and page["last_id"] is None
    finally:
        srv.configure(null_list_ids=False)


def test_files_list_filters_and_pages(raw):
    everything, _ = walk(raw, "/v1/files", "ListFilesResponse")
    purposes = {f["purpose"] for f in everything}
    assert {"assistants", "assistants_output", "vision"} <= purposes
    vision, _ = walk(raw, "/v1/files", purpose="vision")
    assert vision == [f for f in everything if f["purpose"] == "vision"]
    _, page = raw.get("/v1/files", limit=3, order="asc", after=everything[1]["id"])
    assert page["data"] == everything[2:5] and page["has_more"] is True


def test_vector_store_file_content_pages(raw):
    stores, _ = walk(raw, "/v1/vector_stores")
    store = stores[1]
    files, _ = walk(raw, f"/v1/vector_stores/{store['id']}/files")
    multi = 0
    for f in files:
        path = f"/v1/vector_stores/{store['id']}/files/{f['id']}/content"
        texts, token = [], None
        while True:
            status, page = raw.get(path, **({"page": token} if token else {}))
            assert status == 200
            texts += [d["text"] for d in page["data"]]
            if not page["has_more"]:
                assert page["next_page"] is None
                break
            token = page["next_page"]
            multi += 1
        assert texts[0].startswith("# ")
    assert multi
    status, body = raw.get(f"/v1/vector_stores/{store['id']}/files/{files[0]['id']}/content", page="pg9_nope")
    assert status == 400 and body["error"]["param"] == "page"


def test_unknown_ids_and_routes(raw):
    cases = {
        "/v1/assistants/asst_x": "No assistant found with id 'asst_x'.",
        "/v1/threads/thread_x": "No thread found with id 'thread_x'.",
        f"/v1/threads/{LONG}/messages/msg_x": "No message found with id 'msg_x'.",
        f"/v1/threads/{LONG}/runs/run_x": "No run found with id 'run_x'.",
        "/v1/vector_stores/vs_x": "No vector store found with id 'vs_x'.",
        "/v1/files/file-x": "No such File object: file-x",
        "/v1/nothing/here": "Invalid URL (GET /v1/nothing/here)",
    }
    for path, message in cases.items():
        status, body = raw.get(path)
        assert (status, body["error"]["message"]) == (404, message)
        assert not schema_errors("ErrorResponse", body)
    status, _, body = raw.request("POST", f"/v1/threads/{LONG}/messages", {"role": "user", "content": "x"})
    assert status == 405


def test_rate_limiter_is_honest(srv):
    rate = 40.0
    srv.configure(rps_limit=rate)
    raw = Raw(srv.port)
    try:
        time.sleep(0.2)  # a full bucket
        start = time.monotonic()
        burst = [raw.request("GET", "/v1/vector_stores") for _ in range(40)]
        elapsed = time.monotonic() - start
        statuses = [s for s, _, _ in burst]
        assert statuses[:4] == [200] * 4  # the burst is a tenth of a second of the rate
        assert statuses.count(200) <= rate / 10 + rate * elapsed + 1 and 429 in statuses
        assert all("x-ratelimit-remaining-requests" in h for _, h, _ in burst)
        assert all(int(h["retry-after-ms"]) <= 1000 / rate + 1 for s, h, _ in burst if s == 429)
        # A client that honours retry-after-ms gets the rate, and never more than rate * t + burst.
        time.sleep(0.2)
        start, ok, limited = time.monotonic(), 0, 0
        while time.monotonic() - start < 1.0:
            status, headers, _ = raw.request("GET", "/v1/vector_stores")
            if status == 429:
                limited += 1
                time.sleep(int(headers["retry-after-ms"]) / 1000)
            else:
                ok += 1
        elapsed = time.monotonic() - start
        assert ok <= rate * elapsed + rate / 10 + 1
        assert ok >= rate * 0.5
        # Paced under the rate, nothing is refused.
        time.sleep(0.2)
        paced = []
        for _ in range(15):
            paced.append(raw.request("GET", "/v1/vector_stores")[0])
            time.sleep(1.25 / rate)
        assert paced == [200] * 15
    finally:
        srv.configure(rps_limit=None)
        raw.close()
