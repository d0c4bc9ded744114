"""Nothing corrupt, nothing leaked (issue 19): middleboxes, echoed secrets, bodies over the limit."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from hosts import Middlebox, start

from migrator.archive import Archive
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

GATEWAY_PAGE = b"<html><body><h1>502 Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>"
FILE_CONTENT = re.compile(r"^/v1/files/(file[-_][A-Za-z0-9]+)/content$")


def _ids(tmp_path: Path, server: SandboxServer) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(server.thread_ids()) + "\n")
    return path


def _true_bytes(server: SandboxServer, file_id: str) -> bytes | None:
    request = urllib.request.Request(
        f"{server.base_url}/files/{file_id}/content", headers={"Authorization": "Bearer sandbox-key"}
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.read()
    except urllib.error.HTTPError:
        return None  # purpose `assistants`: not downloadable


def test_a_gateway_page_answered_for_a_file_is_never_stored_as_its_bytes(tmp_path, capsys):
    first_seen: set[str] = set()

    def error_page_first(method: str, path: str, headers: dict[str, str]):
        match = FILE_CONTENT.match(path)
        if match and match.group(1) not in first_seen:
            first_seen.add(match.group(1))
            return 200, "text/html", GATEWAY_PAGE
        return None

    with (
        SandboxServer(SandboxConfig(threads=30, seed=5)) as server,
        Middlebox(server.base_url, error_page_first) as box,
    ):
        args = [
            "export",
            str(tmp_path / "a.db"),
            "--threads",
            str(_ids(tmp_path, server)),
            "--base-url",
            box.base_url,
        ]
        main(args)
        main(args)
        capsys.readouterr()
        assert box.intercepted, "the middlebox answered no download"
        with Archive.open(tmp_path / "a.db") as archive:
            rows = archive.db.execute(
                "select f.id, b.data from files f left join blobs b on b.sha256 = f.blob_sha256 "
                "where f.content = 'downloaded'"
            ).fetchall()
            every = [file_id for (file_id,) in archive.db.execute("select id from files")]
        stored = dict(rows)
        true = {file_id: _true_bytes(server, file_id) for file_id in every}
        assert stored == {file_id: data for file_id, data in true.items() if data is not None}
        assert main(["verify", str(tmp_path / "a.db")]) == 0, capsys.readouterr().out


def test_verify_flags_a_blob_whose_size_is_not_its_file_objects(tmp_path, capsys, sandbox):
    ids = _ids(tmp_path, sandbox)
    path = tmp_path / "a.db"
    assert main(["export", str(path), "--threads", str(ids), "--base-url", sandbox.base_url]) == 0
    with sqlite3.connect(path) as db:
        file_id, sha = db.execute(
            "select id, blob_sha256 from files where content = 'downloaded' order by id limit 1"
        ).fetchone()
        # An error page stored as the file: its own hash is consistent, only its length tells.
        page_sha = hashlib.sha256(GATEWAY_PAGE).hexdigest()
        db.execute(
            "insert into blobs (sha256, bytes, mime, data) values (?, ?, 'text/html', ?)",
            [page_sha, len(GATEWAY_PAGE), GATEWAY_PAGE],
        )
        db.execute("update files set blob_sha256 = ? where id = ?", [page_sha, file_id])
    capsys.readouterr()
    assert main(["verify", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = {c["code"]: c for c in report["checks"] if c["status"] == "failed"}
    # The session built from the good bytes no longer matches them either (its file's sha256).
    assert set(failed) == {"file_size_mismatch", "session_mismatch"}, failed
    assert file_id in json.dumps(failed["file_size_mismatch"]["findings"])


SOURCE_CANARY = "canary-source-5d1f0e9a7c3b"
TARGET_CANARY = "canary-target-8b2e4d6f1a09"


def _echo(paths: re.Pattern[str], every: int):
    """A server that answers every `every`-th matching request with an error quoting its headers."""
    seen: Counter[str] = Counter()

    def intercept(method: str, path: str, headers: dict[str, str]):
        if not paths.match(path):
            return None
        seen[path] += 1
        if (sum(seen.values()) - 1) % every:
            return None
        said = f"Authorization: {headers.get('authorization')}; api-key: {headers.get('api-key')}"
        body = {"error": {"message": f"bad request, you sent {said}", "type": "invalid_request_error"}}
        return 400, "application/json", json.dumps(body).encode()

    return intercept


def _leaks(tmp_path: Path, texts: list[str]) -> list[str]:
    found = []
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.name}: {c}" for c in (SOURCE_CANARY, TARGET_CANARY) if c.encode() in data]
    found += [
        f"output {i}: {c}" for i, t in enumerate(texts) for c in (SOURCE_CANARY, TARGET_CANARY) if c in t
    ]
    return found


def test_a_key_a_server_echoes_reaches_no_file_and_no_output(tmp_path):
    texts: list[str] = []
    env = {"OPENAI_API_KEY": SOURCE_CANARY, "TARGET_API_KEY": TARGET_CANARY}

    def run(*args: str) -> int:
        proc = start(*args, env=env)
        out, err = proc.communicate(timeout=300)
        texts.extend([out.decode(), err.decode()])
        return proc.returncode

    source = re.compile(r"^/v1/(threads/[^/]+/messages|files/[^/]+/content)$")
    target = re.compile(r"^/v1/(chat/completions|conversations)$")
    with (
        SandboxServer(SandboxConfig(threads=12, seed=3, api_key=SOURCE_CANARY)) as server,
        Middlebox(server.base_url, _echo(source, 3)) as source_box,
        SandboxServer(SandboxConfig(threads=2, seed=1)) as target_server,
        Middlebox(target_server.base_url, _echo(target, 2)) as target_box,
    ):
        db = str(tmp_path / "a.db")
        ids = str(_ids(tmp_path, server))
        assert run("export", db, "--threads", ids, "--base-url", source_box.base_url, "--json") == 1
        assert run("verify", db, "--json", "--junit", str(tmp_path / "junit.xml")) == 1
        replay = ["replay", db, "--target-base-url", target_box.base_url, "--model", "gpt-4.1", "--json"]
        assert run(*replay) == 1
        mapping = str(tmp_path / "map.csv")
        imp = ["import", db, "--to", "conversations", "--target-base-url", target_box.base_url]
        assert run(*imp, "--mapping-out", mapping, "--json") == 1
        # While an archive is open for writing its WAL holds what was just written: look at it too.
        proc = start("export", db, "--threads", ids, "--base-url", source_box.base_url, "--refresh")
        while not (tmp_path / "a.db-wal").exists() and proc.poll() is None:
            time.sleep(0.01)
        wal_leaks = _leaks(tmp_path, [])
        out, err = proc.communicate(timeout=300)
        texts.extend([out.decode(), err.decode()])
        assert source_box.intercepted and target_box.intercepted
    assert wal_leaks == [] and _leaks(tmp_path, texts) == []
    assert "redacted" in "".join(texts)  # the servers did echo, and what they said was shown cleaned


def test_a_replay_against_another_target_is_another_replay(tmp_path, capsys, sandbox, monkeypatch):
    monkeypatch.setenv("TARGET_API_KEY", "target-key")
    db = str(tmp_path / "a.db")
    assert (
        main(["export", db, "--threads", str(_ids(tmp_path, sandbox)), "--base-url", sandbox.base_url]) == 0
    )

    def refuse(method: str, path: str, headers: dict[str, str]):
        body = {"error": {"message": "this deployment accepts nothing", "type": "invalid_request_error"}}
        return 400, "application/json", json.dumps(body).encode()

    with (
        SandboxServer(SandboxConfig(threads=2, seed=1)) as healthy,
        Middlebox(healthy.base_url, refuse) as bad,
    ):
        replay = ["replay", db, "--model", "gpt-4.1", "--json", "--target-base-url"]
        capsys.readouterr()
        assert main([*replay, bad.base_url]) == 1
        refused = json.loads(capsys.readouterr().out)
        assert main([*replay, healthy.base_url]) == 0, capsys.readouterr().err
        accepted = json.loads(capsys.readouterr().out)
        sent = healthy.stats()["total"]
    assert refused["acceptance"] == 0.0 and bad.intercepted
    assert accepted["acceptance"] == 1.0 and sent > 0, accepted
    assert accepted["requests"]["accepted"] == accepted["requests"]["selected"] > 0


def test_a_dump_cut_short_never_reads_as_complete(tmp_path, capsys, sandbox, monkeypatch):
    db = str(tmp_path / "a.db")
    assert (
        main(["export", db, "--threads", str(_ids(tmp_path, sandbox)), "--base-url", sandbox.base_url]) == 0
    )

    def interrupted(self) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the last files are written, before the manifest

    with monkeypatch.context() as patch:
        patch.setattr("migrator.dumps.writer._Writer.files", interrupted)
        assert main(["dump", db, str(tmp_path / "cut")]) == 130
    assert not (tmp_path / "cut" / "migrate-dump.json").exists()
    capsys.readouterr()
    code = main(["export", str(tmp_path / "b.db"), "--from-dump", str(tmp_path / "cut")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"error: {tmp_path / 'cut'}: incomplete: no manifest" in err and "Traceback" not in err
    assert not (tmp_path / "b.db").exists()  # nothing was read, nothing created
    # A dump cut short by an older migrate (no marker) is told by its pages alone.
    (tmp_path / "cut" / ".migrate-dump.partial").unlink(missing_ok=True)
    assert main(["export", str(tmp_path / "b.db"), "--from-dump", str(tmp_path / "cut")]) == 1
    # A whole dump reads as ever, and leaves no marker or temporary file.
    assert main(["dump", db, str(tmp_path / "whole")]) == 0
    assert sorted(p.name for p in (tmp_path / "whole").iterdir() if p.name.startswith(".")) == []
    assert main(["export", str(tmp_path / "c.db"), "--from-dump", str(tmp_path / "whole")]) == 0


def test_an_answer_over_max_body_mb_is_a_failure_row_naming_its_object(tmp_path, capsys, sandbox):
    victim = sandbox.thread_ids()[3]
    huge = {"object": "list", "data": [{"id": "msg_x", "pad": "x" * 300_000}], "has_more": False}

    def bloat(method: str, path: str, headers: dict[str, str]):
        if path == f"/v1/threads/{victim}/messages":
            return 200, "application/json", json.dumps(huge).encode()
        return None

    with Middlebox(sandbox.base_url, bloat) as box:
        db = tmp_path / "a.db"
        args = ["export", str(db), "--threads", str(_ids(tmp_path, sandbox)), "--base-url", box.base_url]
        code = main([*args, "--max-body-mb", "0.25"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and "unexpected" not in err
    with Archive.open(db) as archive:
        failures = archive.findings.failures()
        counts = archive.work.counts()
    assert [(f.entity_id, f.error_class) for f in failures] == [(victim, "TooLarge")], failures
    assert "--max-body-mb" in failures[0].message and "over the limit" in failures[0].message
    assert counts["done"] == len(sandbox.thread_ids()) - 1


COUNTS = (
    "assistants",
    "threads",
    "messages",
    "runs",
    "run_steps",
    "vector_stores",
    "vector_store_files",
    "files",
)


def test_reruns_converge_against_pages_that_never_end_and_verify_is_clean(tmp_path, capsys):
    rude = SandboxConfig(
        threads=40, seed=9, fault_rate=0.1, truncate_rate=0.1, empty_page_rate=0.2, repeat_cursor_rate=0.2
    )
    with SandboxServer(rude) as server:
        db = tmp_path / "a.db"
        args = ["export", str(db), "--threads", str(_ids(tmp_path, server)), "--base-url", server.base_url]
        for _ in range(3):
            main(args)
        truth = {tid: len(server.truth(tid)["messages"]) for tid in server.thread_ids()}
    capsys.readouterr()
    with sqlite3.connect(db) as conn:
        status = dict(conn.execute("select thread_id, status from work"))
        stored = dict(conn.execute("select thread_id, count(*) from messages group by thread_id"))
        anomalies = conn.execute("select entity_id, kind from anomalies").fetchall()
    done = {tid for tid, st in status.items() if st == "done"}
    # Every thread is read whole, from both ends when its pages will not end; only a list that
    # repeats its first page for ever and holds more than the two ends' 100 + 100 cannot be, and
    # it stays failed with nothing half stored.
    unreadable = set(status) - done
    assert all(truth[tid] > 200 for tid in unreadable) and len(done) >= 38, (status, truth)
    assert all(stored.get(tid, 0) == truth[tid] for tid in done)
    assert all(stored.get(tid, 0) == 0 for tid in unreadable)
    assert sorted(anomalies) == sorted((tid, "repeated_cursor") for tid in unreadable)
    code = main(["verify", str(db), "--json"])
    report = json.loads(capsys.readouterr().out)
    failed = {c["code"] for c in report["checks"] if c["status"] == "failed"}
    assert code == (1 if unreadable else 0) and failed <= {"page_anomaly", "thread_failed"}, failed


def test_a_thread_read_whole_again_forgets_the_anomalies_of_its_broken_pages(tmp_path, capsys, sandbox):
    db = tmp_path / "a.db"
    args = ["export", str(db), "--threads", str(_ids(tmp_path, sandbox)), "--base-url", sandbox.base_url]
    assert main(args) == 0
    victim = sandbox.thread_ids()[0]
    with sqlite3.connect(db) as conn:  # what a run whose pages broke left: a failed thread and its anomaly
        conn.execute("update work set status = 'failed' where thread_id = ?", [victim])
        conn.execute(
            "insert into anomalies(entity, entity_id, kind, detail) values ('thread', ?, 'repeated_cursor', 'x')",
            [victim],
        )
    assert main(args) == 0, capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from anomalies").fetchone()[0] == 0
    assert main(["verify", str(db)]) == 0, capsys.readouterr().out


def _hold_lock_once_writing(db: Path, seconds: float) -> threading.Thread:
    """Another process's tool (a sqlite3 shell in a transaction) holding the archive's write lock."""

    def hold() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    if conn.execute("select count(*) from work where status = 'done'").fetchone()[0] >= 3:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.02)
        conn = sqlite3.connect(db, isolation_level=None, timeout=60)
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    return holder


@pytest.mark.parametrize("held, code", [(8.0, 0), (30.0, 1)])
def test_a_lock_held_by_another_process_is_waited_for_with_progress_then_a_clean_stop(
    tmp_path, capsys, monkeypatch, held, code
):
    monkeypatch.setattr("migrator.archive.database.LOCK_WAIT_SECONDS", 12.0, raising=False)
    monkeypatch.setattr("migrator.archive.database.LOCK_POLL_SECONDS", 2.0, raising=False)
    with SandboxServer(SandboxConfig(threads=40, seed=4, latency_ms=40)) as server:
        db = tmp_path / "a.db"
        args = ["export", str(db), "--threads", str(_ids(tmp_path, server)), "--base-url", server.base_url]
        holder = _hold_lock_once_writing(db, held)
        got = main(args)
        holder.join()
        err = capsys.readouterr().err
        assert got == code, err
        assert "waiting for the archive: locked by another process (2 s)" in err
        assert "Traceback" not in err and "unexpected" not in err and "database is locked" not in err
        if code:
            assert (
                f"error: {db}: locked by another process for 12 s; nothing was lost (resume with: migrate export"
                in err
            )
            assert main(args) == 0, capsys.readouterr().err  # the same command resumes
    with Archive.open(db) as archive:
        assert archive.work.counts()["done"] == 40


def test_a_full_disk_stops_cleanly_in_one_line_and_the_moved_pair_resumes(tmp_path, capsys, monkeypatch):
    # SQLite's own "database or disk is full" (SQLITE_FULL), as on a full filesystem: the archive
    # may not grow past 1.2 MB. (A 3 MB tmpfs gives the same; see the report.)
    from migrator.archive import database

    opened = database.Archive._connect.__func__

    def small_disk(cls, path, lock, **kwargs):
        archive = opened(cls, path, lock, **kwargs)
        page_size = archive.db.execute("PRAGMA page_size").fetchone()[0]
        archive.db.execute(f"PRAGMA max_page_count = {1_228_800 // page_size}")  # 1.2 MB at any page size
        return archive

    with SandboxServer(SandboxConfig(threads=60, seed=6)) as server:
        db = tmp_path / "full" / "support.db"
        db.parent.mkdir()
        ids = str(_ids(tmp_path, server))
        with monkeypatch.context() as patch:
            patch.setattr(database.Archive, "_connect", classmethod(small_disk))
            code = main(["export", str(db), "--threads", ids, "--base-url", server.base_url])
        err = capsys.readouterr().err
        assert code == 1, err
        lines = [line for line in err.splitlines() if line.startswith("error")]
        assert lines == [
            "error: disk full writing support.db: free space, or move support.db and support.db-wal together, "
            f"then run the same command (resume with: migrate export {db} --threads {ids} --base-url {server.base_url})"
        ], err
        assert "Traceback" not in err and "Task exception" not in err and "unexpected" not in err
        assert sorted(p.name for p in db.parent.iterdir()) <= [
            "support.db",
            "support.db-shm",
            "support.db-wal",
        ]
        # Moved, both together, to a disk with room: the same command carries on to the whole corpus.
        room = tmp_path / "room"
        room.mkdir()
        for name in ("support.db", "support.db-wal"):
            if (db.parent / name).exists():
                (db.parent / name).rename(room / name)
        assert (
            main(["export", str(room / "support.db"), "--threads", ids, "--base-url", server.base_url]) == 0
        )
        corpus = server.corpus_summary()["counts"]
    with Archive.open(room / "support.db") as archive:
        counts = archive.counts()
        assert archive.db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert {k: counts[k] for k in COUNTS} == {k: corpus[k] for k in COUNTS}
