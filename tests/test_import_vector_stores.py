"""`migrate import --to vector-stores`: the knowledge base rebuilt on the sandbox as a target, over real HTTP.

Exactly-once is read off the sandbox's own create counters (`/_sandbox/stats` `creates`, counted by the
server as each create succeeds) and its state (`/_sandbox/state`), never off our own map.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_import_support import ROOT, copy_archive, run_cli, sandbox_archive  # noqa: F401  (a fixture)
from test_sandbox_target import creates, received, state

from migrator.archive import Archive, FileContent
from migrator.importers.vector_plan import safe_filename, upload_for
from migrator.sandbox import SandboxConfig, SandboxServer

FILES, STORES, ATTACH = (
    "POST /v1/files",
    "POST /v1/vector_stores",
    "POST /v1/vector_stores/{vector_store_id}/files",
)


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    """A fresh sandbox per test: its uploads, stores and counters are this test's alone."""
    monkeypatch.setenv("TARGET_API_KEY", "target-key")
    with SandboxServer(SandboxConfig(threads=0, seed=3, ingest_polls=1), port=0) as server:
        yield server


def _import(db: Path, target: SandboxServer, *extra: str) -> tuple[int, bytes, str]:
    return run_cli("import", str(db), "--to", "vector-stores", "--target-base-url", target.base_url, *extra)


def _source(db: Path) -> dict[str, Any]:
    """What the archive holds: stores (raw), their file rows, and each file's name, content kind and bytes."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        stores = {i: orjson.loads(r) for i, r in conn.execute("select id, raw from vector_stores")}
        attached: dict[str, list[dict[str, Any]]] = {}
        for vs_id, raw in conn.execute(
            "select vector_store_id, raw from vector_store_files order by position"
        ):
            attached.setdefault(vs_id, []).append(orjson.loads(raw))
        files = {}
        sql = (
            "select f.id, f.raw, f.content, b.data from files f left join blobs b on b.sha256 = f.blob_sha256"
        )
        for fid, raw, content, data in conn.execute(sql):
            files[fid] = (orjson.loads(raw).get("filename"), content, data)
    finally:
        conn.close()
    return {"stores": stores, "attached": attached, "files": files}


def _vector_map(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in conn.execute("select * from vector_map order by kind, source_store_id, source_file_id")
        ]
    except sqlite3.OperationalError:  # read before the migration ran
        return []
    finally:
        conn.close()


def _expected(source: dict[str, Any]) -> tuple[set[str], int]:
    """(file ids that have something to send, attachments of those files)."""
    sendable = {
        fid
        for fid, (_, kind, data) in source["files"].items()
        if kind in ("downloaded", "parsed_text") and data
    }
    pairs = sum(1 for rows in source["attached"].values() for row in rows if row["id"] in sendable)
    return {row["id"] for rows in source["attached"].values() for row in rows if row["id"] in sendable}, pairs


def _assert_rebuilt_exactly_once(db: Path, target: SandboxServer) -> dict[str, Any]:
    """Every store once with its name and files, every file once and byte for byte; the counters agree."""
    source = _source(db)
    to_send, pairs = _expected(source)
    now = state(target)
    links = {(r["kind"], r["source_store_id"], r["source_file_id"]): r for r in _vector_map(db)}

    # Stores: one per source store, named like it, carrying its id; no twin.
    by_source = Counter(s["metadata"].get("source_vector_store_id") for s in now["vector_stores"])
    assert by_source == Counter(list(source["stores"])), by_source
    for store in now["vector_stores"]:
        original = source["stores"][store["metadata"]["source_vector_store_id"]]
        assert store["name"] == original["name"]
        assert links[("store", original["id"], "")]["target_id"] == store["id"]
        for key, value in (original.get("metadata") or {}).items():
            assert store["metadata"][key] == value
        if original.get("expires_after"):
            assert store["expires_after"] == original["expires_after"]
        wanted = [row for row in source["attached"].get(original["id"], []) if row["id"] in to_send]
        held = {f["id"]: f for f in store["files"]}
        assert len(held) == len(store["files"]) == len(wanted), original["id"]
        for row in wanted:
            target_file = links[("file", "", row["id"])]["target_id"]
            assert held[target_file]["attributes"] == row.get("attributes", {}), row["id"]
            assert held[target_file]["chunking_strategy"] == row["chunking_strategy"], row["id"]

    # Files: each sendable source file uploaded once, its bytes (or parsed text) arriving byte for byte.
    uploads = now["files"]
    assert len(uploads) == len(to_send) == len({u["id"] for u in uploads})
    for fid in to_send:
        name, kind, data = source["files"][fid]
        target_id = links[("file", "", fid)]["target_id"]
        filename, got = received(target, target_id)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), fid
        assert "/" not in filename and "\\" not in filename and not any(ord(c) < 32 for c in filename), (
            filename
        )
        if kind == "parsed_text":
            assert filename.endswith(".txt") and filename.startswith(safe_filename(name, fid)), filename
    assert creates(target) == {FILES: len(to_send), STORES: len(source["stores"]), ATTACH: pairs}
    digests = sorted(hashlib.sha256(source["files"][fid][2]).hexdigest() for fid in to_send)
    print(f"{len(to_send)} files byte for byte, sha256 of their sorted sha256s "
          f"{hashlib.sha256(''.join(digests).encode()).hexdigest()}; creates {creates(target)}")  # fmt: skip
    return source


def test_every_store_and_file_is_rebuilt_once_and_a_rerun_creates_nothing(sandbox_archive, target, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    mapping = tmp_path / "vectors.csv"
    code, out, err = _import(db, target, "--mapping-out", str(mapping), "--json")
    assert code == 0, err
    summary = orjson.loads(out)
    assert b"target-key" not in out and "target-key" not in err
    source = _assert_rebuilt_exactly_once(db, target)
    assert summary["stores"] == len(source["stores"]) == 5
    assert summary["content"] == {"parsed_text": 148}  # the source refused every download: the text went
    assert summary["ingestion"] == {
        "completed": 150
    }  # polled to the end (the sandbox answers in_progress first)
    # The one file its source never indexed (no text to send) is said, not hidden.
    assert [s["file_id"] for s in summary["skipped"]] == ["file-QGIsNd0pMoH6lJWl0K7SAp"]

    assert stat.S_IMODE(mapping.stat().st_mode) == 0o600
    rows = list(csv.DictReader(mapping.open()))
    # The skipped file has its row (and no attachment: there is nothing to attach).
    assert Counter(r["kind"] for r in rows) == {"store": 5, "file": 149, "attachment": 150}
    assert {r["source_file_id"]: r["status"] for r in rows if r["kind"] == "file"}[
        "file-QGIsNd0pMoH6lJWl0K7SAp"
    ] == "skipped"
    by_kind = {(r["kind"], r["source_vector_store_id"], r["source_file_id"]): r for r in rows}
    for store_id in source["stores"]:
        assert by_kind[("store", store_id, "")]["target_id"].startswith("vs_")
    assert not list(tmp_path.glob("*.part"))

    before = creates(target)
    code, out, err = _import(db, target, "--json")
    assert code == 0, err
    again = orjson.loads(out)
    assert creates(target) == before and again["creates_sent"] == 0  # a rerun makes 0 creates
    assert again["already"] == {"attachment": 150, "file": 148, "store": 5}


def _nasty_archive(path: Path) -> tuple[Path, dict[str, bytes]]:
    """Two stores holding downloaded files whose names try to be paths, and one parsed text."""
    data = {
        "file-etc": b"root:x:0:0\n",
        "file-win": b"# Windows notes\n",
        "file-bidi": b'{"a": 1}\n',
        "file-dots": b"dots\n",
        "file-pdf": b"the parsed text of a manual\n",
        "file-png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    }
    names = {
        "file-etc": "../../etc/passwd.md",
        "file-win": "C:\\Users\\ann\\notes\r\n.md",
        "file-bidi": "report\u202egpj.json",
        "file-dots": "..",
        "file-pdf": "/mnt/data/manual.pdf",
        "file-png": "diagram.png",
    }
    with Archive.create(path) as archive:
        rows = [
            {"id": fid, "object": "vector_store.file", "created_at": 1, "vector_store_id": "vs_a", "status": "completed",
             "attributes": {"lang": "en"} if fid == "file-etc" else {},
             "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 20}}}
            for fid in data
        ]  # fmt: skip
        store = {"id": "vs_a", "object": "vector_store", "created_at": 1, "name": "Nasty", "metadata": {"team": "x"},
                 "expires_after": {"anchor": "last_active_at", "days": 30}}  # fmt: skip
        archive.raw.store_vector_store(store, rows)
        archive.raw.store_vector_store({"id": "vs_b", "object": "vector_store", "created_at": 2, "name": None},
                                       [{**rows[0], "vector_store_id": "vs_b"}])  # fmt: skip
        for fid, blob in data.items():
            kind = "parsed_text" if fid == "file-pdf" else "downloaded"
            meta = {
                "id": fid,
                "object": "file",
                "bytes": len(blob),
                "filename": names[fid],
                "purpose": "assistants",
            }
            archive.files.store(meta, FileContent(kind, blob, "vs_a" if kind == "parsed_text" else None))
    return path, data


def test_filenames_are_never_paths_and_downloaded_bytes_arrive_byte_for_byte(target, tmp_path):
    db, data = _nasty_archive(tmp_path / "nasty.db")
    code, out, err = _import(db, target, "--json")
    assert code == 1, err  # diagram.png cannot be indexed: see below
    _assert_rebuilt_exactly_once(db, target)
    links = {r["source_file_id"]: r for r in _vector_map(db) if r["kind"] == "file"}
    names = {fid: received(target, link["target_id"])[0] for fid, link in links.items()}
    assert names == {
        "file-etc": "passwd.md",
        "file-win": "notes.md",
        "file-bidi": "reportgpj.json",  # the override that showed it as `report.jpg...` is gone
        "file-dots": "file-dots.txt",  # `..` is no name: the file id stands in, typed by its content
        "file-pdf": "manual.pdf.txt",  # parsed text under a text name derived from the original
        "file-png": "diagram.png",
    }
    assert links["file-pdf"]["content"] == "parsed_text" and links["file-etc"]["content"] == "downloaded"
    summary = orjson.loads(out)
    assert summary["content"] == {"downloaded": 5, "parsed_text": 1}
    # The target cannot index a PNG: a failed ingestion is a row (with the target's reason) and a line.
    attachments = {r["source_file_id"]: r for r in _vector_map(db) if r["kind"] == "attachment"}
    assert (
        attachments["file-png"]["status"] == "failed"
        and "unsupported_file" in attachments["file-png"]["error"]
    )
    assert {f["id"] for f in summary["failed"]} == {"vs_a/file-png"}
    assert all(r["status"] == "completed" for fid, r in attachments.items() if fid != "file-png")


def test_safe_filename_units():
    assert safe_filename("a/b/c.txt", "f") == "c.txt"
    assert safe_filename("\x00\x1f.txt", "f") == ".txt"
    assert safe_filename("", "file-1") == "file-1"
    assert safe_filename(None, "file-1") == "file-1"
    assert safe_filename("x" * 300 + ".pdf", "f").endswith(".pdf")
    assert len(safe_filename("é" * 300, "f").encode()) <= 255
    assert upload_for("file-1", "a.txt", "parsed_text", b"", None) is None  # never indexed: nothing to send
    assert upload_for("file-1", "a.txt", "missing", None, None) is None
    assert upload_for("file-1", "scan.pdf", "parsed_text", b"t", None).name == "scan.pdf.txt"


def test_ingestion_failures_are_rows_and_lines_and_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("TARGET_API_KEY", "k")
    db, _ = _nasty_archive(tmp_path / "nasty.db")
    with SandboxServer(
        SandboxConfig(threads=0, seed=3, ingest_polls=3, ingest_fail_rate=0.5), port=0
    ) as server:
        code, _, err = _import(db, server)
    assert code == 1, err
    failed = [r for r in _vector_map(db) if r["kind"] == "attachment" and r["status"] == "failed"]
    assert failed and all(r["error"] for r in failed)
    for row in failed:
        assert f"failed attachment {row['source_store_id']}/{row['source_file_id']}: ingestion failed" in err


def test_faults_and_unreadable_answers_never_duplicate_a_create(sandbox_archive, tmp_path, monkeypatch):  # noqa: F811
    """500s and dropped connections (nothing made) and garbled 200s (made, answer lost): each create whose
    outcome was unknown is looked up before it is sent again."""
    monkeypatch.setenv("TARGET_API_KEY", "k")
    db = copy_archive(sandbox_archive, tmp_path)
    cfg = SandboxConfig(
        threads=0, seed=5, ingest_polls=1, fault_rate=0.1, drop_rate=0.05, invalid_json_rate=0.1
    )
    with SandboxServer(cfg, port=0) as server:
        for _ in range(4):  # a create that got no clear answer in 6 tries is left for the next run
            code, out, err = _import(db, server, "--json")
            if code == 0:
                break
        assert code == 0, err
        server.configure(fault_rate=0.0, drop_rate=0.0, invalid_json_rate=0.0)
        _assert_rebuilt_exactly_once(db, server)
    rows = _vector_map(db)
    assert sum(r["unconfirmed_creates"] for r in rows) > 0  # the lost answers were there, and looked up


def test_kill_9_at_10_random_moments_then_resume_leaves_no_duplicate(sandbox_archive, target, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    command = [sys.executable, "-c", "from migrator.cli import run; run()", "import", str(db), "--to", "vector-stores",
               "--target-base-url", target.base_url, "--concurrency", "4"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    target.configure(latency_ms=25)  # each create sits on the server a moment: kills land inside them
    rng = random.Random(16)
    killed = in_flight = 0
    for _ in range(10):
        settled = sum(1 for r in _vector_map(db) if r["target_id"])
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                if sum(1 for r in _vector_map(db) if r["target_id"]) > settled:
                    break  # this run has made progress: kill it a random moment later
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        killed += proc.returncode == -signal.SIGKILL
        in_flight += sum(1 for r in _vector_map(db) if r["status"] in ("creating", "attaching"))
        time.sleep(0.1)  # a create already on the wire lands after the kill
    assert killed >= 8, killed  # the kills landed mid-run
    assert in_flight > 0  # and some left a create in flight, whose outcome the resume had to find out
    target.configure(latency_ms=0)
    code, out, err = run_cli(*command[3:], "--json")  # the same command again, resuming
    assert code == 0, err
    _assert_rebuilt_exactly_once(db, target)
    rows = _vector_map(db)
    # Every create a kill left in flight was looked up before anything was sent again.
    assert not [r for r in rows if r["status"] in ("creating", "attaching")]
    unconfirmed = sum(r["unconfirmed_creates"] for r in rows)
    assert unconfirmed > 0
    print(f"kills: {killed}, in-flight rows seen after them: {in_flight}, creates looked up: {unconfirmed}")


def test_usage_errors_and_a_refused_key(tmp_path, monkeypatch):
    db, _ = _nasty_archive(tmp_path / "nasty.db")
    code, _, err = run_cli(
        "import", str(db), "--to", "vector-stores", "--target-base-url", "http://127.0.0.1:9/v1"
    )
    assert code == 2 and "TARGET_API_KEY" in err
    monkeypatch.setenv("TARGET_API_KEY", "wrong-key-123")
    code, _, err = run_cli("import", str(db), "--to", "vector-stores", "--thread", "thread_x",
                           "--target-base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert code == 2 and "--thread" in err
    with SandboxServer(SandboxConfig(threads=0, seed=3, api_key="right"), port=0) as server:
        code, _, err = _import(db, server)
        assert code == 3 and "TARGET_API_KEY" in err and "wrong-key-123" not in err, err
        assert creates(server) == {}
    # Nothing was created, so nothing is in flight: the next run with the right key sends each create once.
    monkeypatch.setenv("TARGET_API_KEY", "right")
    with SandboxServer(SandboxConfig(threads=0, seed=3, api_key="right", ingest_polls=1), port=0) as server:
        code, _, err = _import(db, server)
        assert code == 1 and "failed attachment vs_a/file-png" in err, err  # the PNG, as above
        _assert_rebuilt_exactly_once(db, server)


def test_ctrl_c_stops_with_130_naming_the_resume_and_the_resume_finishes(sandbox_archive, target, tmp_path):  # noqa: F811
    db = copy_archive(sandbox_archive, tmp_path)
    command = [sys.executable, "-c", "from migrator.cli import run; run()", "import", str(db), "--to", "vector-stores",
               "--target-base-url", target.base_url]  # fmt: skip
    target.configure(latency_ms=30)
    proc = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(1 for r in _vector_map(db) if r["target_id"]) < 10:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()
    assert "resume with: migrate import" in stderr.decode() and "Traceback" not in stderr.decode()
    target.configure(latency_ms=0)
    code, _, err = run_cli(*command[3:])
    assert code == 0, err
    _assert_rebuilt_exactly_once(db, target)
