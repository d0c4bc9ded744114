"""Kill the export at random moments and resume: the archive ends equal to an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from migrator.archive import Archive
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

MIGRATE = [sys.executable, "-c", "from migrator.cli import run; run()"]


def count_in(archive: Path, sql: str) -> int:
    """`sql`'s count in the archive as another process sees it (0 while it cannot be read yet)."""
    try:
        conn = sqlite3.connect(f"{archive.resolve().as_uri()}?mode=ro", uri=True, timeout=0.1)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return 0


def kill_when(proc: subprocess.Popen[bytes], archive: Path, sql: str, at: int) -> bool:
    """SIGKILL the command once `sql` counts `at` in the archive; False when it finished first."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if count_in(archive, sql) >= at:
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            return True
        time.sleep(0.005)
    proc.wait(60)
    return False


def start_export(archive: Path, ids: Path, server: SandboxServer) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENAI_API_KEY": "sandbox-key", "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen(
        [
            *MIGRATE,
            "export",
            str(archive),
            "--threads",
            str(ids),
            "--base-url",
            server.base_url,
            "--concurrency",
            "4",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def settled_threads(archive: Path) -> int:
    if not archive.exists():
        return 0
    try:
        conn = sqlite3.connect(archive)
        try:
            return conn.execute("select count(*) from work where status != 'pending'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return 0


def wait_until_exporting(archive: Path, proc: subprocess.Popen[bytes]) -> None:
    """Interpreter start-up takes a while on a loaded machine: wait for this run's first commit,
    so every kill lands while the export is really fetching and committing threads."""
    before = settled_threads(archive)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if settled_threads(archive) > before:
            return
        time.sleep(0.02)


def assert_consistent(path: Path) -> None:
    """What a kill may leave: whole threads or nothing of them, never half."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        pending_with_rows = conn.execute(
            "select count(*) from work w where w.status = 'pending' and "
            "(exists (select 1 from messages m where m.thread_id = w.thread_id) "
            " or exists (select 1 from threads t where t.id = w.thread_id))"
        ).fetchone()[0]
        assert pending_with_rows == 0
        half_done = conn.execute(
            "select count(*) from work w where w.status = 'done' and w.messages_seen != "
            "(select count(*) from messages m where m.thread_id = w.thread_id)"
        ).fetchone()[0]
        assert half_done == 0
    finally:
        conn.close()


def test_twenty_kills_then_resume_equal_an_uninterrupted_export(tmp_path, capsys):
    rng = random.Random(20261121)
    with SandboxServer(SandboxConfig(threads=200, seed=13, latency_ms=30)) as server:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(server.thread_ids()) + "\n")
        reference = tmp_path / "reference.db"
        assert main(["export", str(reference), "--threads", str(ids), "--base-url", server.base_url]) == 0

        archive = tmp_path / "killed.db"
        kills = starts = 0
        while kills < 20 and starts < 40:
            starts += 1
            proc = start_export(archive, ids, server)
            wait_until_exporting(archive, proc)
            time.sleep(rng.uniform(0.0, 0.8))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=60)
            assert_consistent(archive)
        assert kills == 20, (
            f"only {kills} of {starts} runs were still exporting when killed; raise the latency"
        )

        proc = start_export(archive, ids, server)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err

        server.reset_stats()
        again = start_export(archive, ids, server)
        again.communicate(timeout=120)
        assert again.returncode == 0
        assert not [route for route in server.stats()["by_route"] if "/v1/threads" in route]

    with Archive.open(reference) as ref, Archive.open(archive) as got:
        assert got.content_hash() == ref.content_hash()
        assert got.work.counts() == ref.work.counts()
        assert list(got.sessions.records()) == list(ref.sessions.records())
        for table in ("messages", "runs", "run_steps", "files", "blobs"):
            key = "sha256" if table == "blobs" else "id"
            dupes = got.db.execute(f"select count(*) - count(distinct {key}) from {table}").fetchone()[0]
            assert dupes == 0, table
        assert got.db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert not Path(f"{archive}-wal").exists()


def test_sigint_stops_cleanly_and_prints_the_resume_command(tmp_path):
    with SandboxServer(SandboxConfig(threads=40, seed=13, latency_ms=25)) as server:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(server.thread_ids()) + "\n")
        archive = tmp_path / "a.db"
        proc = start_export(archive, ids, server)
        wait_until_exporting(archive, proc)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        text = err.decode()
        assert proc.returncode == 130, text
        assert f"resume with: migrate export {archive} --threads {ids}" in text
        assert "Traceback" not in text
        stops = [line for line in text.splitlines() if line.startswith("stopped:")]
        assert len(stops) == 1 and stops[0].count("stopped") == 1, stops  # said once, not "stopped: stopped"
        assert_consistent(archive)
        with Archive.open(archive) as store:
            assert store.work.counts()["pending"] > 0  # it really stopped mid-way
        proc = start_export(archive, ids, server)
        proc.communicate(timeout=300)
        assert proc.returncode == 0


def _message_lists(root: Path, threads: int) -> None:
    """Saved message lists, one file a thread: enough that reading them takes a few seconds."""
    import orjson

    root.mkdir()
    for t in range(threads):
        tid = f"thread_{t:06d}"
        messages = [
            {"id": f"msg_{t:06d}_{i:02d}", "object": "thread.message", "created_at": 1_700_000_000 + t * 10 + i,
             "thread_id": tid, "role": "user" if i % 2 == 0 else "assistant", "assistant_id": None,
             "run_id": None, "attachments": [], "metadata": {},
             "content": [{"type": "text", "text": {"value": f"message {i} of {t}", "annotations": []}}]}
            for i in range(10)
        ]  # fmt: skip
        page = {"object": "list", "data": messages, "first_id": messages[0]["id"],
                "last_id": messages[-1]["id"], "has_more": False}  # fmt: skip
        (root / f"{tid}.json").write_bytes(orjson.dumps(page))


def test_sigint_during_from_dump_prints_the_resume_command_and_the_rerun_finishes(tmp_path):
    dump, archive = tmp_path / "dump", tmp_path / "a.db"
    _message_lists(dump, 2000)
    args = [*MIGRATE, "export", str(archive), "--from-dump", str(dump)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The ingest is fast now (a batch of objects a transaction): signal as soon as its first rows are
    # committed, not half a second after the file appears, or it has finished by then.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = sqlite3.connect(f"{archive.resolve().as_uri()}?mode=ro", uri=True, timeout=0.1)
            try:
                if conn.execute("select count(*) from messages").fetchone()[0] > 0:
                    break
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # typer's own Ctrl-C handling used to end it here, silently
    assert f"resume with: migrate export {archive} --from-dump {dump}" in err, err
    assert "Traceback" not in err
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with Archive.open(archive) as store:
        assert store.work.counts()["done"] == 2000 and store.raw.count("messages") == 20_000
        assert store.sessions.counts()["sessions"] == 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "dump"]
