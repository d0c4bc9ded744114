"""One writer per archive: two writers, stale locks, readers beside a writer, IMMEDIATE transactions.

The commands run as real processes through the console script (`.venv/bin/migrate`) against an
in-process sandbox that answers slowly, so the first writer is still running when the second starts.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from test_import_support import sandbox_conversations

from migrator.archive import Archive, SessionRow
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

MIGRATE = Path(sys.executable).with_name("migrate")  # the console script of this venv
HOST = socket.gethostname()


def migrate(*args: str, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "OPENAI_API_KEY": "sandbox-key", **env}
    return subprocess.Popen(
        [str(MIGRATE), *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, **env: str) -> tuple[int, str, str]:
    proc = migrate(*args, **env)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def lock_path(archive: Path) -> Path:
    """Where the README says the lock lives: `ARCHIVE.lock` beside the archive."""
    return archive.with_name(archive.name + ".lock")


def committed(archive: Path, sql: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


SETTLED = "select count(*) from work where status != 'pending'"
MAPPED = "select count(*) from conversation_map"


def wait_until_writing(archive: Path, proc: subprocess.Popen[str], sql: str = SETTLED) -> None:
    """Until the first writer has committed some of its work: it is well under way."""
    deadline = time.monotonic() + 60
    while committed(archive, sql) == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first writer never got going"
        time.sleep(0.02)


def busy_line(archive: Path, command: str, pid: int) -> re.Pattern[str]:
    return re.compile(
        rf"^error: {re.escape(str(archive))} is in use by migrate {re.escape(command)} "
        rf"\(pid {pid} on {re.escape(HOST)} since \d\d:\d\d\); wait for it or stop it$",
        re.MULTILINE,
    )


@pytest.fixture
def slow_source() -> Iterator[SandboxServer]:
    """60 threads answered 40 ms late: an export at --concurrency 4 takes several seconds."""
    with SandboxServer(SandboxConfig(threads=60, seed=21, latency_ms=40), port=0) as server:
        yield server


@pytest.fixture
def very_slow_source() -> Iterator[SandboxServer]:
    """30 threads answered 120 ms late: the export outlives four reader processes on a loaded machine."""
    with SandboxServer(SandboxConfig(threads=30, seed=21, latency_ms=120), port=0) as server:
        yield server


def export_args(archive: Path, ids: Path, server: SandboxServer) -> list[str]:
    return [
        "export",
        str(archive),
        "--threads",
        str(ids),
        "--base-url",
        server.base_url,
        "--concurrency",
        "4",
    ]


def ids_file(tmp_path: Path, server: SandboxServer) -> Path:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(server.thread_ids()) + "\n")
    return ids


def test_a_second_export_exits_2_naming_the_first_and_the_source_sees_one_export(slow_source, tmp_path):
    archive, ids = tmp_path / "support.db", ids_file(tmp_path, slow_source)
    first = migrate(*export_args(archive, ids, slow_source))
    try:
        wait_until_writing(archive, first)
        time.sleep(1.0)  # "a second apart", and the first is still fetching
        started = time.monotonic()
        code, _, err = run(*export_args(archive, ids, slow_source))
        refused_in = time.monotonic() - started
        assert code == 2, err
        assert busy_line(archive, "export", first.pid).search(err), err
        assert first.poll() is None, "the first export ended before the second was refused: nothing proved"
        assert "Traceback" not in err
        out, first_err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_err
    made, minimum = slow_source.stats()["total"], slow_source.corpus_summary()["minimum_requests"]["total"]
    assert minimum <= made <= 1.02 * minimum, (made, minimum)
    code, out, err = run("verify", str(archive))
    assert code == 0, out + err
    assert not lock_path(archive).exists()  # a clean exit leaves no lock file
    print(f"second export refused in {refused_in:.2f}s; requests {made} / minimum {minimum}")


def test_a_second_conversations_import_exits_2_and_each_thread_has_one_conversation(tmp_path, monkeypatch):
    from test_import_support import long_record

    monkeypatch.setenv("TARGET_API_KEY", "target-key")
    records = [long_record(f"thread_lock_{i:02d}", 3) for i in range(30)]
    archive = tmp_path / "support.db"
    with Archive.create(archive) as store:
        store.sessions.store([SessionRow(r["thread_id"], r, 0, r["tools"], {}) for r in records])
    with SandboxServer(SandboxConfig(threads=0, seed=3, latency_ms=200), port=0) as target:
        args = ["import", str(archive), "--to", "conversations", "--target-base-url", target.base_url,
                "--concurrency", "1"]  # fmt: skip
        first = migrate(*args, TARGET_API_KEY="target-key")
        try:
            wait_until_writing(archive, first, MAPPED)
            time.sleep(1.0)
            code, _, err = run(*args, TARGET_API_KEY="target-key")
            assert code == 2, err
            assert busy_line(archive, "import --to conversations", first.pid).search(err), err
            assert first.poll() is None, "the first import ended before the second was refused"
            _, first_err = first.communicate(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == 0, first_err
        by_thread: dict[str, int] = {}
        for conversation in sandbox_conversations(target):
            tid = conversation["metadata"]["source_thread_id"]
            by_thread[tid] = by_thread.get(tid, 0) + 1
    assert by_thread == {r["thread_id"]: 1 for r in records}


def test_a_lock_file_of_a_dead_process_is_taken_over_with_a_line(tmp_path, capsys):
    archive = tmp_path / "support.db"
    Archive.create(archive).close()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    started = datetime(2026, 11, 30, 3, 12).astimezone().isoformat()  # local time, as a holder writes it
    stale = {"command": "export", "pid": pid, "host": "host-a", "started": started}
    lock_path(archive).write_bytes(orjson.dumps(stale))
    assert main(["rebuild", str(archive)]) == 0
    err = capsys.readouterr().err
    assert (
        f"took over the writer lock left by migrate export (pid {pid} on host-a since 2026-11-30 03:12)"
        in err
    )
    assert "no longer running" in err
    assert not lock_path(archive).exists()


def test_a_writer_killed_with_9_leaves_a_lock_the_next_writer_takes_over(slow_source, tmp_path):
    archive, ids = tmp_path / "support.db", ids_file(tmp_path, slow_source)
    first = migrate(*export_args(archive, ids, slow_source))
    wait_until_writing(archive, first)
    time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert lock_path(archive).exists()  # the file stays; the OS lock went with the process
    code, out, err = run(*export_args(archive, ids, slow_source))
    assert code == 0, err
    assert f"took over the writer lock left by migrate export (pid {first.pid} on {HOST}" in err
    code, out, err = run("verify", str(archive))
    assert code == 0, out + err
    assert not lock_path(archive).exists()


def test_readers_work_while_an_export_holds_the_lock_and_see_committed_data(very_slow_source, tmp_path):
    archive, ids = tmp_path / "support.db", ids_file(tmp_path, very_slow_source)
    first = migrate(*export_args(archive, ids, very_slow_source))
    try:
        wait_until_writing(archive, first)
        deadline = time.monotonic() + 60
        while True:  # until some threads are committed
            code, out, err = run("stats", str(archive), "--json")
            assert code == 0, err
            if json.loads(out)["threads_done"] >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        done = json.loads(out)["threads_done"]
        assert first.poll() is None and done >= 5, "the export ended before the readers ran"
        code, out, err = run("verify", str(archive), "--json")
        assert code in (0, 1) and "in use" not in err and "Traceback" not in err, err
        assert json.loads(out)  # a whole report of what was committed (pending threads are findings)
        # The sessions of done threads are built only at the end of an export: a reader derives them.
        code, lines, err = run("import", str(archive), "--to", "jsonl", "--out", "-")
        assert code == 0 and "Traceback" not in err, err
        sessions = [orjson.loads(line) for line in lines.splitlines()]
        assert len(sessions) >= done and all(s["format"] == "migrator.session/v1" for s in sessions)
        code, out, err = run("inspect", str(archive), sessions[0]["thread_id"])
        assert code == 0, err
        assert json.loads(lock_path(archive).read_text())["pid"] == first.pid  # the readers took nothing
        assert first.poll() is None, "the export ended while the readers ran: nothing was shown"
        _, first_err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_err
    assert run("verify", str(archive))[0] == 0


def test_every_writer_command_takes_the_lock(tmp_path, capsys):
    archive = tmp_path / "support.db"
    Archive.create(archive).close()
    shard = tmp_path / "shard.db"
    Archive.create(shard).close()
    commands = [
        ["rebuild", str(archive)],
        ["merge", str(archive), str(shard)],
        ["export", str(archive), "--from-dump", str(tmp_path / "dump")],
        ["import", str(archive), "--to", "conversations", "--target-base-url", "http://127.0.0.1:9/v1"],
        ["replay", str(archive), "--report-only"],
    ]
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "a.json").write_text('{"object": "assistant", "id": "asst_1", "created_at": 1}')
    os.environ["TARGET_API_KEY"] = "k"
    try:
        with Archive.open(archive, writer="export"):
            for args in commands:
                assert main(args) == 2, args
                err = capsys.readouterr().err
                assert f"{archive} is in use by migrate export (pid {os.getpid()} on {HOST} since " in err, (
                    args
                )
            for args in (
                ["stats", str(archive)],
                ["verify", str(archive)],
                ["replay", str(archive), "--dry-run"],
            ):
                assert main(args) in (0, 1), args
                assert "in use" not in capsys.readouterr().err
    finally:
        del os.environ["TARGET_API_KEY"]
    assert not lock_path(archive).exists()


def test_the_lock_is_one_per_file_whatever_the_path(tmp_path):
    from migrator.archive.lock import ArchiveLock
    from migrator.errors import ArchiveBusyError

    archive = tmp_path / "support.db"
    Archive.create(archive).close()
    link = tmp_path / "link.db"
    link.symlink_to(archive)
    with ArchiveLock(archive, "export"):
        with pytest.raises(ArchiveBusyError, match="in use by migrate export"):
            ArchiveLock(link, "rebuild").acquire()
        os.chdir(tmp_path)
        with pytest.raises(ArchiveBusyError):
            ArchiveLock(Path("support.db"), "rebuild").acquire()
    with ArchiveLock(link, "rebuild") as lock:  # released: free again
        assert lock.took_over is None


def test_a_lock_that_cannot_be_made_is_one_line_and_exit_2(tmp_path, capsys):
    archive = tmp_path / "support.db"
    Archive.create(archive).close()
    lock_path(archive).mkdir()  # stands in for a read-only folder (which root could write anyway)
    assert main(["rebuild", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "cannot write here (the writer lock" in err and "Traceback" not in err


def test_without_os_locks_the_pid_in_the_lock_file_decides(tmp_path, monkeypatch):
    """A file system with no locks (NFS without lockd answers ENOLCK): judged by the holder's pid."""
    from migrator.archive import lock as lock_module
    from migrator.archive.lock import ArchiveLock
    from migrator.errors import ArchiveBusyError

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    archive = tmp_path / "support.db"
    Archive.create(archive).close()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = {
            "command": "export",
            "pid": sleeper.pid,
            "host": HOST,
            "started": "2026-12-01T03:12:00+00:00",
        }
        lock_path(archive).write_bytes(orjson.dumps(alive))
        with pytest.raises(ArchiveBusyError, match=rf"in use by migrate export \(pid {sleeper.pid} on "):
            ArchiveLock(archive, "rebuild").acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    with ArchiveLock(archive, "rebuild") as lock:  # its pid is gone now
        assert lock.took_over is not None and lock.took_over.pid == sleeper.pid
    elsewhere = {"command": "export", "pid": 1, "host": "host-b", "started": "2026-12-01T03:12:00+00:00"}
    lock_path(archive).write_bytes(orjson.dumps(elsewhere))
    with pytest.raises(
        ArchiveBusyError, match=r"host-b .*; if it is not running, remove .*support\.db\.lock"
    ):
        ArchiveLock(archive, "rebuild").acquire()


def test_read_then_write_transactions_wait_for_another_writer_instead_of_failing(tmp_path):
    """BEGIN IMMEDIATE: a transaction that reads then writes waits for the busy timeout while another
    connection writes. sqlite-utils' deferred BEGIN would read an old snapshot and then fail at its
    first write with "database is locked", whatever the timeout."""
    path = tmp_path / "a.db"
    Archive.create(path).close()
    store = Archive.open(path, writer="test")  # a reader's connection could not write at all
    holding, done = threading.Event(), threading.Event()

    def other_writer() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("insert or replace into meta(key, value) values ('other', '1')")
        holding.set()
        time.sleep(1.0)
        conn.execute("COMMIT")
        conn.close()
        done.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        assert holding.wait(10)
        # reads the recorded options, then writes them: must wait for the other writer, then succeed
        assert store.sessions.record_options("conversion_options", {"system_role": "developer"})
        assert done.is_set()  # it did wait for the other commit
        assert store.get_meta("conversion_options") == {"system_role": "developer"}
        assert store.get_meta("other") == 1
    finally:
        thread.join()
        store.close()
