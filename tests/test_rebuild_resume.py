"""Kill -9 a rebuild at random moments: the next `migrate rebuild` resumes where it stopped (only the
sessions still stale are built) and the archive ends equal to an uninterrupted rebuild."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from test_crash import MIGRATE

from bench.dumpgen import write_dump
from migrator.cli import main

THREADS = 1500  # three batches of 500, and more than a second of converting on any machine


def rebuild(archive: Path, *flags: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen(
        [*MIGRATE, "rebuild", str(archive), *flags, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def fresh(archive: Path) -> int:
    conn = sqlite3.connect(archive)
    try:
        return conn.execute("select count(*) from work where session_stale = 0").fetchone()[0]
    finally:
        conn.close()


def derived(archive: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(archive)
    try:
        return {
            table: conn.execute(f"select * from {table} order by 1, 2").fetchall()
            for table in ("sessions", "session_warnings", "session_tools", "tool_definitions")
        } | {"stale": conn.execute("select thread_id, session_stale from work order by 1").fetchall()}
    finally:
        conn.close()


@pytest.mark.timeout(900)
def test_kills_during_a_rebuild_then_a_plain_rebuild_resume_exactly(tmp_path: Path) -> None:
    rng = random.Random(18)
    dump = tmp_path / "dump"
    write_dump(dump, "realistic", THREADS, seed=5, workers=1)
    reference = tmp_path / "reference.db"
    assert main(["export", str(reference), "--from-dump", str(dump)]) in (0, 1)
    killed = tmp_path / "killed.db"
    shutil.copy(reference, killed)

    # The reference: one uninterrupted rebuild with another option (every session stale).
    proc = rebuild(reference, "--citations", "strip")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert orjson.loads(out)["sessions"] == THREADS

    kills = 0
    for attempt in range(10):
        before = fresh(killed)
        # The first run changes the option (all stale), the others resume with it as a user would;
        # when a run finished before its kill, --all starts the whole build again.
        restart = attempt == 0 or before == THREADS
        proc = rebuild(killed, "--citations", "strip", "--all") if restart else rebuild(killed)
        deadline = time.monotonic() + 120
        # Wait for this run's first batch (one that starts again first marks every session stale).
        waiting = {0, before} if restart else set(range(before + 1))
        while proc.poll() is None and time.monotonic() < deadline and fresh(killed) in waiting:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        left = fresh(killed)
        assert left % 500 == 0  # whole batches or nothing of them
        if proc.returncode == -signal.SIGKILL and 0 < left < THREADS:
            kills += 1
            if kills == 2 or left == THREADS - 500:
                break  # killed with work left: the plain rebuild below must resume it
    assert kills >= 1, "no rebuild was killed with sessions left to build"

    stale = THREADS - fresh(killed)
    proc = rebuild(killed)  # no flag: the recorded options, only what is still stale
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert stale > 0 and orjson.loads(out)["sessions"] == stale  # resumed, not started again
    assert derived(killed) == derived(reference)

    proc = rebuild(killed)  # nothing stale: nothing rebuilt
    out, _ = proc.communicate(timeout=600)
    assert orjson.loads(out)["sessions"] == 0
    proc = rebuild(killed, "--all")
    out, _ = proc.communicate(timeout=600)
    assert orjson.loads(out)["sessions"] == THREADS
    assert derived(killed) == derived(reference)
    assert not Path(f"{killed}-wal").exists()
