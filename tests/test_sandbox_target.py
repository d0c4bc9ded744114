"""The sandbox as a target: uploads and vector stores through the real SDK and raw HTTP, with their rules."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from test_sandbox_support import Raw, schema_errors, sdk, walk

from migrator.sandbox import SandboxConfig, SandboxServer

SEED = 11


@pytest.fixture
def srv() -> Iterator[SandboxServer]:
    """A fresh target per test: the counters and the created objects are what the tests look at."""
    with SandboxServer(SandboxConfig(threads=4, seed=SEED)) as server:
        yield server


@pytest.fixture
def client(srv: SandboxServer) -> Iterator[openai.OpenAI]:
    c = sdk(srv.base_url)
    yield c
    c.close()


def control(srv: SandboxServer, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body


def state(srv: SandboxServer) -> dict[str, Any]:
    return control(srv, "/_sandbox/state")[1]


def creates(srv: SandboxServer) -> dict[str, int]:
    return srv.stats()["creates"]


def received(srv: SandboxServer, file_id: str) -> tuple[str, bytes]:
    status, record = control(srv, f"/_sandbox/uploads/{file_id}")
    assert status == 200, record
    data = base64.b64decode(record["content_base64"])
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
    return record["filename"], data


def multipart(fields: list[tuple[str, str | None, bytes]], boundary: str = "sbX7") -> tuple[str, bytes]:
    """A hand-made multipart body: (name, filename or None, bytes) per part."""
    out = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", out + f"--{boundary}--\r\n".encode()


def post_raw(srv: SandboxServer, path: str, ctype: str, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("POST", path, body=body, headers={"content-type": ctype, "content-length": str(len(body))})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data


def _payloads() -> list[tuple[str, bytes]]:
    rng = random.Random(5)
    nasty = bytes(range(256)) + b"\r\n--sbX7\r\n--\r\n\r\n\r"  # every byte value, and boundary look-alikes
    return [
        ("manual.pdf", b"%PDF-1.4\n" + bytes(rng.randrange(256) for _ in range(70_000)) + b"\n%%EOF\n"),
        ("nasty.bin.txt", nasty * 3),
        ("empty.txt", b""),
        ("ends in crlf.md", b"# Title\r\n\r\n"),
        ("Überblick – 夜勤 🙂.md", "Grüße, 夜勤\n".encode()),
        ("../../etc/passwd.txt", b"root:x:0:0\n"),
        ("C:\\Users\\ops\\notes.txt", b"windows path\n"),
        ("/mnt/data/report_1.csv", b"region,orders\nnorth,3\n"),
    ]


def test_uploads_arrive_byte_for_byte_with_the_filename_as_sent(srv, client):
    sent = {}
    for filename, data in _payloads():
        f = client.files.create(file=(filename, data), purpose="assistants")
        assert (f.object, f.bytes, f.filename, f.purpose, f.status) == (
            "file",
            len(data),
            filename,
            "assistants",
            "processed",
        )
        assert client.files.retrieve(f.id).model_dump() == f.model_dump()
        sent[f.id] = (filename, data)
    for fid, (filename, data) in sent.items():
        # Kept as received, directories and all: a client that trusts source names as paths shows here.
        assert received(srv, fid) == (filename, data)
    listed = {u["id"]: u for u in state(srv)["files"]}
    assert set(listed) == set(sent)
    assert all(listed[fid]["sha256"] == hashlib.sha256(data).hexdigest() for fid, (_, data) in sent.items())
    assert creates(srv) == {"POST /v1/files": len(sent)}
    assert control(srv, "/_sandbox/uploads/file-nope")[0] == 404


def test_downloads_keep_the_assistants_rule(srv, client):
    mine = client.files.create(file=("notes.txt", b"user data \x00\xff"), purpose="user_data")
    assert client.files.content(mine.id).read() == b"user data \x00\xff"
    kb = client.files.create(file=("kb.md", b"# kb"), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as err:
        client.files.content(kb.id)
    assert err.value.body["message"] == "Not allowed to download files of purpose: assistants."
    gone = client.files.delete(mine.id)
    assert gone.deleted and gone.id == mine.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(mine.id)
    corpus_file = client.files.list(purpose="user_data").data[0]
    with pytest.raises(openai.BadRequestError, match="read-only"):
        client.files.delete(corpus_file.id)


def test_the_file_list_holds_corpus_and_uploads_and_pages(srv, client):
    corpus = [f.id for f in client.files.list(order="asc").data]
    mine = [client.files.create(file=(f"u{i}.txt", b"x" * i), purpose="user_data").id for i in range(5)]
    everything = [f.id for f in client.files.list(order="asc").data]
    assert everything == corpus + mine  # uploads come after the corpus, in upload order
    assert [f.id for f in client.files.list(order="desc").data] == everything[::-1]
    user_data = [f.id for f in client.files.list(purpose="user_data", order="asc").data]
    assert user_data[-5:] == mine and all(
        f.purpose == "user_data" for f in client.files.list(purpose="user_data")
    )
    raw = Raw(srv.port)
    paged, pages = walk(raw, "/v1/files", "ListFilesResponse", limit=2)
    assert [f["id"] for f in paged] == everything and pages == -(-len(everything) // 2)
    status, body = raw.get("/v1/files", limit=10_001)
    assert status == 400 and body["error"]["param"] == "limit"
    raw.close()


def _error(status: int, body: Any, want_status: int, param: str | None, text: str) -> None:
    assert status == want_status, body
    assert not schema_errors("ErrorResponse", body), body
    assert body["error"]["param"] == param, body
    assert text in body["error"]["message"], body


def test_bad_uploads_are_refused_and_leave_nothing(srv):
    ok = [("purpose", None, b"assistants"), ("file", "a.txt", b"hello")]
    ctype, whole = multipart(ok)
    cases = [
        (multipart([("file", "a.txt", b"hello")]), "purpose", "Missing required parameter: 'purpose'"),
        (multipart([("purpose", None, b"assistants")]), "file", "Missing required parameter: 'file'"),
        (multipart([("purpose", None, b"answers"), ok[1]]), "purpose", "Invalid value: 'answers'"),
        (multipart([ok[0], ("file", None, b"no name")]), "file", "no filename"),
        (multipart([*ok, ("filename", None, b"x.txt")]), "filename", "Unknown parameter: 'filename'"),
        (multipart([*ok, ("file", "b.txt", b"2")]), "file", "expected one file"),
        (multipart([*ok, ("expires_after[anchor]", None, b"now")]), "expires_after.anchor", "'now'"),
        (
            multipart(
                [*ok, ("expires_after[anchor]", None, b"created_at"), ("expires_after[seconds]", None, b"60")]
            ),
            "expires_after.seconds",
            "between 3600 and 2592000",
        ),
        ((ctype, whole[:-20]), None, "cut off or malformed"),  # the closing boundary never came
        (("application/json", b'{"purpose": "assistants"}'), None, "multipart/form-data"),
        (("multipart/form-data", whole), None, "cut off or malformed"),  # no boundary parameter
    ]
    for (ctype_, body), param, text in cases:
        status, answer = post_raw(srv, "/v1/files", ctype_, body)
        _error(status, answer, 400, param, text)
    assert state(srv)["files"] == [] and creates(srv) == {}
    status, answer = post_raw(srv, "/v1/files", ctype, whole)
    assert status == 200 and received(srv, answer["id"]) == ("a.txt", b"hello")


def test_a_store_is_created_attached_and_ingested_through_the_sdk(srv, client):
    f = client.files.create(file=("faq.md", b"# FAQ\n\nReturns take 30 days.\n"), purpose="assistants")
    vs = client.vector_stores.create(
        name="Help centre",
        description="migrated",
        metadata={"source_vector_store_id": "vs_src1"},
        expires_after={"anchor": "last_active_at", "days": 30},
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 600, "chunk_overlap_tokens": 300},
        },
    )
    assert (vs.name, vs.metadata, vs.status, vs.file_counts.total) == (
        "Help centre",
        {"source_vector_store_id": "vs_src1"},
        "completed",
        0,
    )
    assert vs.expires_after.days == 30 and vs.expires_at == vs.last_active_at + 30 * 86_400
    attached = client.vector_stores.files.create(
        vector_store_id=vs.id, file_id=f.id, attributes={"source": "zendesk", "version": 2, "public": True}
    )
    assert (attached.id, attached.status, attached.usage_bytes, attached.last_error) == (
        f.id,
        "in_progress",
        0,
        None,
    )
    assert attached.attributes == {"source": "zendesk", "version": 2, "public": True}
    assert attached.chunking_strategy.type == "static"  # auto is reported as the static 800/400
    assert attached.chunking_strategy.static.max_chunk_size_tokens == 800
    # Default ingest_polls=2: in_progress to the create and to two reads, then completed.
    store = client.vector_stores.retrieve(vs.id)
    assert (store.status, store.file_counts.in_progress, store.usage_bytes) == ("in_progress", 1, 0)
    assert client.vector_stores.files.retrieve(file_id=f.id, vector_store_id=vs.id).status == "in_progress"
    done = client.vector_stores.files.retrieve(file_id=f.id, vector_store_id=vs.id)
    assert (done.status, done.usage_bytes, done.last_error) == ("completed", f.bytes, None)
    store = client.vector_stores.retrieve(vs.id)
    assert (store.status, store.usage_bytes, store.file_counts.completed, store.file_counts.total) == (
        "completed",
        f.bytes,
        1,
        1,
    )
    # The SDK's own poll helper gets there too.
    g = client.files.create(file=("policy.txt", b"policy"), purpose="assistants")
    polled = client.vector_stores.files.create_and_poll(
        vector_store_id=vs.id, file_id=g.id, poll_interval_ms=1
    )
    assert polled.status == "completed" and polled.usage_bytes == 6
    listed = client.vector_stores.files.list(vector_store_id=vs.id, order="asc")
    assert [x.id for x in listed.data] == [f.id, g.id]
    assert [x.id for x in client.vector_stores.files.list(vector_store_id=vs.id, filter="failed").data] == []
    assert creates(srv) == {
        "POST /v1/files": 2,
        "POST /v1/vector_stores": 1,
        "POST /v1/vector_stores/{vector_store_id}/files": 2,
    }


def test_a_store_made_with_file_ids_ingests_them_all(srv, client):
    a = client.files.create(file=("a.md", b"a" * 10), purpose="assistants")
    b = client.files.create(file=("b.pdf", b"b" * 20), purpose="assistants")
    vs = client.vector_stores.create(name="KB", file_ids=[a.id, b.id, a.id])
    assert (vs.status, vs.file_counts.in_progress, vs.file_counts.total) == ("in_progress", 2, 2)
    for _ in range(3):
        page = client.vector_stores.files.list(vector_store_id=vs.id, filter="completed")
    assert {x.id for x in page.data} == {a.id, b.id}
    assert client.vector_stores.retrieve(vs.id).usage_bytes == 30
    # Attaching an attached file again answers the one there is (and is still a create request).
    again = client.vector_stores.files.create(vector_store_id=vs.id, file_id=a.id)
    assert again.status == "completed" and client.vector_stores.retrieve(vs.id).file_counts.total == 2


def test_ingest_knobs_and_unsupported_files(srv, client):
    png = client.files.create(file=("chart.png", b"\x89PNG\r\n\x1a\n"), purpose="assistants")
    txt = client.files.create(file=("notes.txt", b"notes"), purpose="assistants")
    srv.configure(ingest_polls=0)
    vs = client.vector_stores.create(name="k", file_ids=[png.id, txt.id])
    rows = {
        x.id: x for x in client.vector_stores.files.list(vector_store_id=vs.id).data
    }  # the first read ends it
    assert rows[png.id].status == "failed" and rows[png.id].last_error.code == "unsupported_file"
    assert rows[png.id].usage_bytes == 0 and rows[txt.id].status == "completed"
    counts = client.vector_stores.retrieve(vs.id).file_counts
    assert (counts.failed, counts.completed, counts.total) == (1, 1, 2)

    srv.configure(ingest_fail_rate=1.0)
    failing = client.vector_stores.create(name="f", file_ids=[txt.id])
    row = client.vector_stores.files.retrieve(file_id=txt.id, vector_store_id=failing.id)
    assert (row.status, row.last_error.code, row.usage_bytes) == ("failed", "server_error", 0)

    srv.configure(ingest_fail_rate=0.0, ingest_polls=1_000_000, ingest_seconds=0.2)
    slow = client.vector_stores.create(name="s", file_ids=[txt.id])
    assert (
        client.vector_stores.files.retrieve(file_id=txt.id, vector_store_id=slow.id).status == "in_progress"
    )
    time.sleep(0.25)
    assert client.vector_stores.files.retrieve(file_id=txt.id, vector_store_id=slow.id).status == "completed"

    with pytest.raises(ValueError, match="ingest-polls"):
        srv.configure(ingest_polls=-1)
    with pytest.raises(ValueError, match="ingest-fail-rate"):
        srv.configure(ingest_fail_rate=2)


def test_the_fail_rate_picks_a_seeded_share_of_files(srv, client):
    srv.configure(ingest_fail_rate=0.5, ingest_polls=0)
    ids = [client.files.create(file=(f"d{i}.md", b"d"), purpose="assistants").id for i in range(40)]
    vs = client.vector_stores.create(name="half", file_ids=ids)
    rows, _ = walk(Raw(srv.port), f"/v1/vector_stores/{vs.id}/files")
    failed = sum(r["status"] == "failed" for r in rows)
    assert (
        len(rows) == 40 and 5 < failed < 35 and failed + sum(r["status"] == "completed" for r in rows) == 40
    )


INVALID_STORES: list[tuple[dict[str, Any], str | None, str]] = [
    ({"name": "x", "files": []}, "files", "Unknown parameter: 'files'"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16 properties"),
    ({"metadata": {"k" * 65: "v"}}, "metadata", "maximum length 64"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k", "maximum length 512"),
    ({"metadata": {"k": 1}}, "metadata.k", "expected a string"),
    ({"name": 5}, "name", "expected a string"),
    ({"expires_after": {"anchor": "created_at", "days": 3}}, "expires_after.anchor", "'last_active_at'"),
    ({"expires_after": {"anchor": "last_active_at", "days": 366}}, "expires_after.days", "<= 365"),
    (
        {"expires_after": {"anchor": "last_active_at", "days": 3, "x": 1}},
        "expires_after.x",
        "Unknown parameter",
    ),
    ({"chunking_strategy": {"type": "semantic"}}, "chunking_strategy.type", "'auto' and 'static'"),
    ({"chunking_strategy": {"type": "auto", "size": 3}}, "chunking_strategy.size", "Unknown parameter"),
    ({"chunking_strategy": {"type": "static"}}, "chunking_strategy.static", "Missing required parameter"),
    (
        {
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0},
            }
        },
        "chunking_strategy.static.max_chunk_size_tokens",
        ">= 100",
    ),
    (
        {
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401},
            }
        },
        "chunking_strategy.static.chunk_overlap_tokens",
        "must not exceed half",
    ),
    ({"file_ids": "file-1"}, "file_ids", "array of strings"),
]


@pytest.mark.parametrize("body,param,text", INVALID_STORES, ids=[c[1] or "none" for c in INVALID_STORES])
def test_bad_stores_are_refused(srv, body, param, text):
    raw = Raw(srv.port)
    status, answer = raw.post("/v1/vector_stores", body)
    _error(status, answer, 400, param, text)
    raw.close()
    assert state(srv)["vector_stores"] == [] and creates(srv) == {}


def test_missing_files_and_bad_attachments_are_refused(srv, client):
    f = client.files.create(file=("a.md", b"a"), purpose="assistants")
    vs = client.vector_stores.create(name="k")
    before = creates(srv)
    raw = Raw(srv.port)
    status, answer = raw.post("/v1/vector_stores", {"file_ids": [f.id, "file-missing"]})
    _error(status, answer, 404, "file_ids", "No file found with id 'file-missing'")
    path = f"/v1/vector_stores/{vs.id}/files"
    cases = [
        ({"file_id": "file-missing"}, 404, "file_id", "No file found with id 'file-missing'"),
        ({}, 400, "file_id", "Missing required parameter: 'file_id'"),
        ({"file_id": f.id, "metadata": {}}, 400, "metadata", "Unknown parameter: 'metadata'"),
        ({"file_id": f.id, "attributes": {f"a{i}": 1 for i in range(17)}}, 400, "attributes", "at most 16"),
        ({"file_id": f.id, "attributes": {"a": "v" * 513}}, 400, "attributes.a", "maximum length 512"),
        ({"file_id": f.id, "attributes": {"a": [1]}}, 400, "attributes.a", "a string, a number or a boolean"),
        ({"file_id": f.id, "attributes": {"k" * 65: 1}}, 400, "attributes", "maximum length 64"),
    ]
    for body, want, param, text in cases:
        status, answer = raw.post(path, body)
        _error(status, answer, want, param, text)
    corpus_store = client.vector_stores.list(order="asc").data[0].id
    status, answer = raw.post(f"/v1/vector_stores/{corpus_store}/files", {"file_id": f.id})
    _error(status, answer, 400, "vector_store_id", "read-only")
    status, answer = raw.post("/v1/vector_stores/vs_nope/files", {"file_id": f.id})
    _error(status, answer, 404, None, "No vector store found with id 'vs_nope'")
    status, answer = raw.get(f"/v1/vector_stores/{vs.id}/files/file-missing")
    _error(status, answer, 404, None, "No file found with id 'file-missing'")
    raw.close()
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=vs.id, file_id="file-missing")
    assert creates(srv) == before
    assert state(srv)["vector_stores"][0]["files"] == []


def test_created_objects_live_beside_the_corpus(srv, client):
    corpus_stores = [s.id for s in client.vector_stores.list(order="asc", limit=100).data]
    assert len(corpus_stores) == 5
    mine = [client.vector_stores.create(name=f"s{i}").id for i in range(3)]
    raw = Raw(srv.port)
    stores, _ = walk(raw, "/v1/vector_stores", limit=2)
    assert [s["id"] for s in stores] == corpus_stores + mine
    # The corpus's stores answer as before, their files too.
    first = client.vector_stores.retrieve(corpus_stores[0])
    assert first.name == "Help centre" and first.file_counts.total == 6
    assert len(client.vector_stores.files.list(vector_store_id=corpus_stores[1], limit=100).data) == 100
    # A corpus document can be attached to a created store: it is a file on this server.
    doc = client.vector_stores.files.list(vector_store_id=corpus_stores[0]).data[0]
    added = client.vector_stores.files.create(vector_store_id=mine[0], file_id=doc.id)
    assert added.id == doc.id and added.vector_store_id == mine[0]
    raw.close()


def test_source_and_target_sandboxes_in_one_process(client, srv):
    """One sandbox read as the source, another written as the target: each keeps its own world."""
    with SandboxServer(SandboxConfig(threads=4, seed=SEED)) as source:
        src = sdk(source.base_url)
        raw = Raw(source.port)
        for store in src.vector_stores.list(order="asc").data:
            target_ids = []
            for f in src.vector_stores.files.list(vector_store_id=store.id, limit=100).data:
                meta = src.files.retrieve(f.id)
                status, page = raw.get(f"/v1/vector_stores/{store.id}/files/{f.id}/content")
                assert status == 200
                text = "\n\n".join(part["text"] for part in page["data"]).encode()
                up = client.files.create(file=(meta.filename + ".txt", text), purpose="assistants")
                assert received(srv, up.id) == (meta.filename + ".txt", text)
                target_ids.append(up.id)
            rebuilt = client.vector_stores.create(
                name=store.name, metadata={"source_vector_store_id": store.id}, file_ids=target_ids
            )
            assert rebuilt.id != store.id and rebuilt.file_counts.total == len(target_ids)
        raw.close()
        src.close()
        assert source.stats()["creates"] == {} and state(source)["files"] == []
    made = state(srv)["vector_stores"]
    assert [s["name"] for s in made] == ["Help centre", "Product manuals", "Policies", "Archive", "Legal"]
    assert creates(srv)["POST /v1/vector_stores"] == 5
    # The same seed gives the same corpus on both, so the target's own stores are the source's ids too;
    # a client must find its rebuilt stores by metadata, never by id.
    assert all(s["metadata"]["source_vector_store_id"] != s["id"] for s in made)


def test_concurrent_creates_keep_every_object(srv):
    errors: list[BaseException] = []
    vs = sdk(srv.base_url).vector_stores.create(name="shared")

    def work(n: int) -> None:
        c = sdk(srv.base_url)
        try:
            for i in range(10):
                f = c.files.create(file=(f"w{n}-{i}.txt", f"{n}/{i}".encode()), purpose="assistants")
                c.vector_stores.files.create(vector_store_id=vs.id, file_id=f.id)
        except BaseException as exc:  # noqa: BLE001  reported by the assertion below
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = state(srv)["files"]
    assert len(files) == len({f["id"] for f in files}) == 80
    assert {f["filename"] for f in files} == {f"w{n}-{i}.txt" for n in range(8) for i in range(10)}
    store = state(srv)["vector_stores"][0]
    assert store["file_counts"]["total"] == len(store["files"]) == 80
    assert creates(srv) == {
        "POST /v1/files": 80,
        "POST /v1/vector_stores": 1,
        "POST /v1/vector_stores/{vector_store_id}/files": 80,
    }


def test_reads_make_no_creates_and_reset_keeps_the_objects(srv, client):
    f = client.files.create(file=("a.md", b"a"), purpose="assistants")
    vs = client.vector_stores.create(name="k", file_ids=[f.id])
    srv.reset_stats()
    for _ in range(3):
        client.files.list()
        client.vector_stores.list()
        client.vector_stores.files.list(vector_store_id=vs.id)
        client.vector_stores.retrieve(vs.id)
    stats = srv.stats()
    assert stats["creates"] == {} and stats["creates_total"] == 0 and stats["total"] == 12
    assert [s["id"] for s in state(srv)["vector_stores"]] == [vs.id]
    # /_sandbox/state moves no ingestion on: a file never read stays in progress however often it is shown.
    srv.configure(ingest_polls=1)
    other = client.vector_stores.create(name="o", file_ids=[f.id])
    for _ in range(5):
        shown = [s for s in state(srv)["vector_stores"] if s["id"] == other.id][0]
    assert shown["status"] == "in_progress" and shown["files"][0]["status"] == "in_progress"


def test_auth_limits_and_faults_apply_to_the_target_routes():
    with SandboxServer(SandboxConfig(threads=0, seed=SEED, api_key="right")) as srv:
        with pytest.raises(openai.AuthenticationError):
            sdk(srv.base_url, key="wrong").files.create(file=("a.txt", b"a"), purpose="assistants")
        good = sdk(srv.base_url, key="right")
        assert good.files.create(file=("a.txt", b"a"), purpose="assistants").bytes == 1

        srv.configure(rps_limit=1)
        srv.reset_stats()
        with pytest.raises(openai.RateLimitError):
            for i in range(5):
                good.vector_stores.create(name=f"burst {i}")
        srv.configure(rps_limit=None)

        srv.configure(fault_rate=1.0)
        with pytest.raises(openai.InternalServerError):
            good.files.create(file=("b.txt", b"b"), purpose="assistants")
        srv.configure(fault_rate=0.0)
        assert [f["filename"] for f in state(srv)["files"]] == ["a.txt"]  # the fault came before the create

        # A truncated answer: the client never sees it, but the create happened, as on the real API.
        srv.configure(truncate_rate=1.0)
        with pytest.raises(openai.APIConnectionError):
            good.files.create(file=("lost answer.txt", b"c"), purpose="assistants")
        srv.configure(truncate_rate=0.0)
        assert [f["filename"] for f in state(srv)["files"]] == ["a.txt", "lost answer.txt"]
        assert srv.stats()["creates"]["POST /v1/files"] == 1

        srv.configure(latency_ms=120)
        start = time.monotonic()
        good.vector_stores.create(name="slow")
        assert time.monotonic() - start >= 0.12
        good.close()
