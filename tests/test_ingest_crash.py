"""Kill `export --from-dump` at random moments and run it again: the archive ends exactly equal to an
uninterrupted ingest, and after every kill each `done` thread holds all of its rows and nothing else.

The ingest writes in large batches (thousands of objects a transaction, hundreds of threads settled
a transaction). The child runs with small batches so a dump a test can afford still has dozens of
commits for a kill to land between; the code path is the same.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from test_crash import kill_when

from migrator.archive import Archive
from migrator.cli import main
from migrator.dumps import write_dump
from migrator.sandbox import SandboxConfig, SandboxServer

SMALL_BATCHES = (
    "import migrator.dumps.ingest as i; i._BATCH = 40; i._SETTLE_BATCH = 3; i._NOTES_BATCH = 30; "
    "from migrator.cli import run; run()"
)


def ingest(archive: Path, dump: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen(
        [sys.executable, "-c", SMALL_BATCHES, "export", str(archive), "--from-dump", str(dump)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def assert_consistent(path: Path) -> None:
    """What a kill may leave: an intact file, and done threads whose seen counts are their rows. (Unlike
    a live export, a pending thread may hold rows: a dump's objects are stored before their thread is
    ruled on.)"""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        half_done = conn.execute(
            "select count(*) from work w where w.status = 'done' and (w.messages_seen != "
            "(select count(*) from messages m where m.thread_id = w.thread_id) or w.runs_seen != "
            "(select count(*) from runs r where r.thread_id = w.thread_id) or w.steps_seen != "
            "(select count(*) from run_steps s where s.thread_id = w.thread_id))"
        ).fetchone()[0]
        assert half_done == 0
    finally:
        conn.close()


def thread_rows(path: Path) -> dict[str, set[tuple[str, str, str]]]:
    """Every thread's rows, as (table, id, hash)."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, set[tuple[str, str, str]]] = {}
        for table, parent in (("threads", "id"), ("messages", "thread_id"), ("runs", "thread_id"),
                              ("run_steps", "thread_id")):  # fmt: skip
            for tid, oid, digest in conn.execute(f"select {parent}, id, hash from {table}"):
                out.setdefault(tid, set()).add((table, oid, digest))
        return out
    finally:
        conn.close()


def statuses(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("select thread_id, status from work"))
    except sqlite3.DatabaseError:
        return {}
    finally:
        conn.close()


def work_rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "select thread_id, status, extra, messages_seen, runs_seen, steps_seen, last_message_id, last_run_id "
            "from work order by 1"
        ).fetchall()
    finally:
        conn.close()


_KILL_AT = {  # what an ingest is killed at: messages stored, or threads done
    "messages": "select count(*) from messages",
    "done": "select count(*) from work where status = 'done'",
}


def sessions_jsonl(path: Path, out: Path) -> bytes:
    assert main(["import", str(path), "--to", "jsonl", "--out", str(out)]) == 0
    return out.read_bytes()


def test_kill_nine_during_ingest_then_resume_equals_an_uninterrupted_ingest(tmp_path):
    with SandboxServer(SandboxConfig(threads=40, seed=11), port=0) as server:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(server.thread_ids()) + "\n")
        source = tmp_path / "source.db"
        code = main(["export", str(source), "--threads", str(ids), "--base-url", server.base_url])
        assert code == 0
    with Archive.open(source) as archive:
        write_dump(archive, tmp_path / "dump")
    dump = tmp_path / "dump"

    reference = tmp_path / "reference.db"
    proc = ingest(reference, dump)
    assert proc.wait(300) == 0, proc.stderr.read().decode()[-2000:]
    expected_rows = thread_rows(reference)

    total_messages = sum(1 for rows in expected_rows.values() for row in rows if row[0] == "messages")
    rng = random.Random(18)
    for round_ in range(2):
        archive = tmp_path / f"killed-{round_}.db"
        # One kill while objects are being stored, one while threads are being ruled on.
        for count, total in (("messages", total_messages), ("done", len(expected_rows))):
            # On a loaded machine the ingest may finish between two looks: then it is run again from
            # scratch, until a kill lands while it writes.
            for _attempt in range(6):
                for leftover in tmp_path.glob(f"{archive.name}*") if count == "messages" else ():
                    leftover.unlink()
                proc = ingest(archive, dump)
                kill_when(proc, archive, _KILL_AT[count], int(rng.uniform(0.1, 0.6) * total))
                if len([s for s in statuses(archive).values() if s == "done"]) < len(expected_rows):
                    break
                if count == "done":  # finished: start this round's archive again, killed while storing
                    for leftover in tmp_path.glob(f"{archive.name}*"):
                        leftover.unlink()
                    kill_when(ingest(archive, dump), archive, _KILL_AT["messages"], total_messages // 2)
            else:
                raise AssertionError(f"six ingests finished before {count} reached the kill point")
            assert_consistent(archive)
            held = thread_rows(archive)
            done = {tid for tid, status in statuses(archive).items() if status == "done"}
            # A done thread holds exactly the rows an uninterrupted ingest gives it: never a part of them.
            for tid in done:
                assert held.get(tid) == expected_rows[tid], tid

        proc = ingest(archive, dump)
        assert proc.wait(300) == 0, proc.stderr.read().decode()[-2000:]
        with Archive.open(archive) as a, Archive.open(reference) as r:
            assert a.content_hash() == r.content_hash()
            assert a.db.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert thread_rows(archive) == expected_rows
        assert work_rows(archive) == work_rows(reference)  # statuses, seen counts, newest ids
        assert sessions_jsonl(archive, tmp_path / "a.jsonl") == sessions_jsonl(
            reference, tmp_path / "r.jsonl"
        )
        # The WAL is folded back and nothing of the ingest is left beside the archive.
        assert sorted(p.name for p in tmp_path.glob(f"{archive.name}*")) == [archive.name]
