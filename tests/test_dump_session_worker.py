"""`export --from-dump` converts sessions in a worker process while it rules on the next threads:
the archive it leaves is the one an ingest followed by a build in this process leaves."""

from __future__ import annotations

from pathlib import Path

from migrator.archive import Archive
from migrator.cli import main
from migrator.dumps import ingest_dump, write_dump
from migrator.sandbox import SandboxConfig, SandboxServer
from migrator.sessions import build_sessions, resolve_options

TABLES = {
    "sessions": "select * from sessions order by thread_id",
    "session_tools": "select * from session_tools order by 1, 2, 3",
    "session_warnings": "select * from session_warnings order by 1, 2",
    "tool_definitions": "select * from tool_definitions order by 1, 2",
    "work": "select * from work order by thread_id",
}


def test_sessions_built_beside_the_ingest_equal_a_build_afterwards(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(threads=60, seed=5), port=0) as server:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(server.thread_ids()) + "\n")
        source = tmp_path / "source.db"
        assert main(["export", str(source), "--threads", str(ids), "--base-url", server.base_url]) == 0
    with Archive.open(source) as archive:
        write_dump(archive, tmp_path / "dump")
    # Batches of 500 threads: a dump of 60 is one batch, so the worker gets the whole build.
    piped = tmp_path / "piped.db"
    assert main(["export", str(piped), "--from-dump", str(tmp_path / "dump"), "--json"]) == 0
    plain = tmp_path / "plain.db"
    with Archive.create(plain, writer="export") as archive:
        ingest_dump(archive, [tmp_path / "dump"])
        built = build_sessions(archive, resolve_options(archive), workers=0)
        assert built.sessions == 60
    with Archive.open(piped) as a, Archive.open(plain) as b:
        assert a.content_hash() == b.content_hash()
        for table, sql in TABLES.items():
            rows = a.db.execute(sql).fetchall()
            assert rows == b.db.execute(sql).fetchall(), table
            assert rows or table == "session_tools", table
    assert sorted(p.name for p in tmp_path.glob("piped.db*")) == ["piped.db"]


def test_a_worker_whose_parent_died_before_it_started_watching_exits(tmp_path: Path) -> None:
    """kill -9 of an ingest while its session worker still imports: the worker's parent is init by the
    time it starts to watch, and it watched init for good, holding the archive open (the resumed run
    then could not fold its WAL back). It watches the pid its parent gave it."""
    import subprocess
    import sys
    import time

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that is nobody's parent any more
    script = (
        "import time\n"
        "from migrator.sessions import _exit_with_parent\n"
        f"_exit_with_parent({gone.pid})\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    worker = subprocess.run([sys.executable, "-c", script], timeout=20)
    assert worker.returncode == 1 and time.monotonic() - started < 15
