"""Kill `export --from-records` (-9) while it stores threads, and while it builds their sessions in
the image it hands over to, then run it again: the archive ends equal to an uninterrupted run's, and
after every kill each `done` thread holds all of its rows and objects, never a part of them.

The child stores small batches, two to a commit, so a log a test can afford still has dozens of commits for a kill to
land between; the code path is the same.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from records_support import MAPS, corpus_log, write_sqlite
from test_crash import count_in, kill_when

from migrator.archive import Archive
from migrator.cli import main

ROOT = Path(__file__).parent.parent
SMALL_BATCHES = "import migrator.records.ingest as i; i._STORE_ROWS = 40; i._COMMIT_ROWS = 80; from migrator.cli import run; run()"


def export(archive: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["export", str(archive), "--from-records", f"sqlite:///{log}", "--table", "support_messages"]
    args += [a for m in MAPS for a in ("--map", m)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", SMALL_BATCHES, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def tables(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"select * from {table} order by 1, 2").fetchall()
            for table in ("threads", "messages", "runs", "run_steps", "record_rows", "record_threads", "work")
        }
    finally:
        conn.close()


def half_done(path: Path) -> int:
    """Done threads whose seen counts are not their rows, or whose log rows are not all held."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        return conn.execute(
            "select count(*) from work w where w.status = 'done' and (w.messages_seen != "
            "(select count(*) from messages m where m.thread_id = w.thread_id) or w.runs_seen != "
            "(select count(*) from runs r where r.thread_id = w.thread_id) or w.steps_seen != "
            "(select count(*) from run_steps s where s.thread_id = w.thread_id) or "
            "(select rows from record_threads t where t.thread_id = w.thread_id) != "
            "(select count(*) from record_rows r where r.thread_id = w.thread_id))"
        ).fetchone()[0]
    finally:
        conn.close()


def sessions_jsonl(path: Path, out: Path) -> bytes:
    assert main(["import", str(path), "--to", "jsonl", "--out", str(out)]) == 0
    return out.read_bytes()


def test_kill_nine_while_storing_or_building_then_rerun_equals_an_uninterrupted_export(tmp_path):
    log = tmp_path / "log.db"
    corpus = corpus_log(threads=300, seed=5)
    write_sqlite(corpus, log)
    threads = len(corpus.texts)
    reference = tmp_path / "reference.db"
    proc = export(reference, log)
    assert proc.wait(300) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    expected = tables(reference)

    rng = random.Random(15)
    archive = tmp_path / "killed.db"
    done = "select count(*) from work where status = 'done'"
    # One kill while threads are stored; then the resumed run is killed as soon as every thread is
    # stored: in the ingest's image after its last commit, or in the build's before its first.
    for at in (int(rng.uniform(0.2, 0.7) * threads), threads):
        for _attempt in range(6):  # on a loaded machine the export may finish between two looks
            proc = export(archive, log)
            if (
                kill_when(proc, archive, done, at)
                and count_in(archive, "select count(*) from sessions") < threads
            ):
                break
            for leftover in tmp_path.glob(f"{archive.name}*"):
                leftover.unlink()
        else:
            raise AssertionError("six exports finished before the kill point")
        assert half_done(archive) == 0

    proc = export(archive, log)
    assert proc.wait(300) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    assert tables(archive) == expected
    with Archive.open(archive) as a, Archive.open(reference) as r:
        assert a.content_hash() == r.content_hash()
        assert a.work.stale_count() == 0
    assert sessions_jsonl(archive, tmp_path / "a.jsonl") == sessions_jsonl(reference, tmp_path / "r.jsonl")
    assert sorted(p.name for p in tmp_path.glob(f"{archive.name}*")) == [archive.name]
