"""A live export builds its sessions in a fresh image of the same process (migrator/cli/handover.py):
the same pid, the same writer lock kept across the exec, and an image without the openai SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator.archive import Archive
from migrator.archive.lock import ArchiveLock, lock_path
from migrator.cli import main
from migrator.errors import ArchiveBusyError

ROOT = Path(__file__).parent.parent

# Each image of the command registers this at start; an exec drops the first image's, so the probe
# file says what the image that finished the command had imported, and under which pid.
PROBE = (
    "import atexit, os, sys\n"
    "atexit.register(lambda: open(os.environ['PROBE'], 'a').write("
    "f\"{os.getpid()} {'openai' in sys.modules} {os.environ.get('MIGRATE_EXPORT_HANDOVER') is not None}\\n\"))\n"
    "from migrator.cli import run; run()"
)


def export(
    archive: Path, ids: Path, server, probe: Path, *extra: str, before: str = ""
) -> subprocess.CompletedProcess[str]:
    """The installed command's run, probed; `before`: Python run first (a wrapper's doing)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE": str(probe)}
    command = [sys.executable, "-c", before + PROBE, "export", str(archive), "--threads", str(ids)]
    command += ["--base-url", server.base_url, *extra]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    # The pid of the child we started, so the probe can show the build ran in that same process.
    return subprocess.CompletedProcess([str(proc.pid)], proc.returncode, out, err)


def session_hashes(archive: Path) -> dict[str, str]:
    with Archive.open(archive) as store:
        return dict(store.db.execute("select thread_id, hash from sessions").fetchall())


def test_the_build_runs_in_a_fresh_image_of_the_same_process(sandbox, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    archive, probe = tmp_path / "a.db", tmp_path / "probe.txt"
    done = export(archive, ids, sandbox, probe, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    threads = len(sandbox.thread_ids())
    assert summary["threads_done"] == threads and summary["sessions"]["sessions"] == threads
    assert summary["requests"] > threads  # the fetch's figures crossed the exec
    assert summary["network_seconds"] > 0 and summary["elapsed"] >= summary["network_seconds"]
    # One image finished the command: the same pid, without the SDK, the hand-over out of its environment.
    assert probe.read_text().split() == [done.args[0], "False", "False"]
    assert not lock_path(archive).exists()  # the lock crossed the exec and was released at the end
    with Archive.open(archive) as store:
        assert store.work.stale_count() == 0
        assert store.sessions.counts()["sessions"] == threads

    # In this process (no exec: a library call or CliRunner) the same export builds the same sessions.
    again = tmp_path / "b.db"
    assert main(["export", str(again), "--threads", str(ids), "--base-url", sandbox.base_url]) == 0
    assert session_hashes(archive) == session_hashes(again)


def test_a_rerun_builds_nothing_and_stores_no_file_again(sandbox, tmp_path: Path) -> None:
    """Files recorded `missing` are asked again once a run; unchanged, they mark no session stale."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    archive, probe = tmp_path / "a.db", tmp_path / "probe.txt"
    assert export(archive, ids, sandbox, probe).returncode == 0
    with Archive.open(archive) as store:
        missing = store.db.execute("select count(*) from files where content = 'missing'").fetchone()[0]
    assert missing > 0  # the sandbox's corpus has files whose bytes cannot be had
    rerun = export(archive, ids, sandbox, probe, "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["files"], summary["messages"], summary["sessions"]["sessions"]) == (0, 0, 0)
    # Nothing to build: the rerun finished in its first image (an exec would only cost its start-up).
    first, second = probe.read_text().splitlines()
    assert first.split()[1:] == ["False", "False"] and second.split()[1:] == ["True", "False"]


def test_the_kept_lock_refuses_a_second_writer_until_adopted_and_released(tmp_path: Path) -> None:
    archive = tmp_path / "a.db"
    Archive.create(archive, writer="export").close()
    lock = ArchiveLock(archive, "export").acquire()
    fd = lock.hand_over()
    lock.release()  # no longer this object's: the lock stays
    with pytest.raises(ArchiveBusyError, match="in use by migrate export"):
        ArchiveLock(archive, "rebuild").acquire()
    adopted = ArchiveLock.adopt(archive, "export", fd)
    assert not os.get_inheritable(fd)  # a worker the build starts does not inherit it
    adopted.release()
    assert not lock_path(archive).exists()
    ArchiveLock(archive, "rebuild").acquire().release()


def test_a_descriptor_that_is_not_the_lock_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.db"
    Archive.create(archive, writer="export").close()
    other = os.open(tmp_path / "other.txt", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        with pytest.raises(ArchiveBusyError, match="not its writer lock"):
            ArchiveLock.adopt(archive, "export", other)
    finally:
        os.close(other)


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("{not json", "is not a hand-over"),
        (
            '{"lock_fd": 3, "archive": "/elsewhere.db", "summary": {}, "conversion": {}, "started": 0}',
            "hands over /elsewhere.db",
        ),
    ],
)
def test_a_stray_hand_over_in_the_environment_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
    names: str,
) -> None:
    monkeypatch.setenv("MIGRATE_EXPORT_HANDOVER", value)
    assert main(["export", str(tmp_path / "a.db"), "--threads", str(tmp_path / "ids.txt")]) == 2
    err = capsys.readouterr().err
    assert names in err and "unset it" in err and "Traceback" not in err
    assert "MIGRATE_EXPORT_HANDOVER" not in os.environ  # taken out at once, whatever it held


@pytest.mark.parametrize(
    ("wrapper", "why"),
    [
        ("import sys; sys.executable = '/nonexistent/python'\n", "the exec fails"),
        (
            "import sys; sys.argv.append('--json')\n",
            "sys.argv was rewritten: the exec would run another command",
        ),
    ],
)
def test_without_a_faithful_exec_the_build_runs_in_the_first_image(
    sandbox, tmp_path: Path, wrapper: str, why: str
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    archive, probe = tmp_path / "a.db", tmp_path / "probe.txt"
    done = export(archive, ids, sandbox, probe, "--json", before=wrapper)
    assert done.returncode == 0, (why, done.stderr)
    assert json.loads(done.stdout)["sessions"]["sessions"] == len(sandbox.thread_ids()), why
    assert probe.read_text().split() == [done.args[0], "True", "False"], why  # one image, the SDK in it
    assert not lock_path(archive).exists(), why


def stops_across_the_exec(
    commands: list[tuple[list[str], Path]], env: dict[str, str], stop: int
) -> list[int]:
    """Each command is stopped at its own moment after its build's image starts (0, 20, 80, 200
    ms): exit 130 with the resume line or 0, never a traceback, a death by signal or a left lock
    file; the same command run again then ends with exit 0. The exit codes, in order."""
    codes = []
    for (command, archive), delay in zip(commands, (0.0, 0.02, 0.08, 0.2), strict=True):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        environ = Path(f"/proc/{proc.pid}/environ")
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if b"MIGRATE_EXPORT_HANDOVER=" in environ.read_bytes():  # the build's image runs
                    break
            except OSError:
                break
            time.sleep(0.002)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(stop)
        out, err = proc.communicate(timeout=120)
        codes.append(proc.returncode)
        assert proc.returncode in (0, 130), (delay, proc.returncode, err)
        assert "Traceback" not in err, (delay, err)
        if proc.returncode == 130:
            assert "resume with: migrate export" in err, (delay, err)
        assert not lock_path(archive).exists(), (delay, err)
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    return codes


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to see the exec happen")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_as_the_build_image_starts_is_an_ordinary_stop(sandbox, tmp_path: Path, stop: int) -> None:
    """Signals are held from the hand-over until the new image holds the archive (see
    `stops_across_the_exec`); the run after a stop builds every session."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = []
    for n in range(4):
        archive = tmp_path / f"a{n}.db"
        command = [sys.executable, "-c", "from migrator.cli import run; run()", "export", str(archive)]
        commands.append(([*command, "--threads", str(ids), "--base-url", sandbox.base_url], archive))
    codes = stops_across_the_exec(commands, env, stop)
    for _, archive in commands:
        with Archive.open(archive) as store:
            assert store.work.stale_count() == 0
            assert store.sessions.counts()["sessions"] == len(sandbox.thread_ids())
    assert 130 in codes  # at least one stop landed before the build ended: the test saw what it claims


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to see the exec happen")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_as_the_records_build_image_starts_is_an_ordinary_stop(tmp_path: Path, stop: int) -> None:
    """The same for `--from-records`, whose build is handed over too."""
    sys.path.insert(0, str(ROOT / "tests"))
    from records_support import MAPS, corpus_log, write_sqlite

    db = tmp_path / "log.db"
    write_sqlite(corpus_log(), db)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = []
    for n in range(4):
        archive = tmp_path / f"a{n}.db"
        command = [sys.executable, "-c", "from migrator.cli import run; run()", "export", str(archive)]
        command += ["--from-records", f"sqlite:///{db}", "--table", "support_messages"]
        commands.append(([*command, *(a for m in MAPS for a in ("--map", m))], archive))
    codes = stops_across_the_exec(commands, env, stop)
    counts = []
    for _, archive in commands:
        with Archive.open(archive) as store:
            assert store.work.stale_count() == 0
            counts.append(store.sessions.counts()["sessions"])
    assert len(set(counts)) == 1 and counts[0] > 0
    assert 130 in codes


def test_an_export_from_records_builds_in_a_fresh_image_without_sqlalchemy(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from records_support import MAPS, corpus_log, write_sqlite

    db, archive, probe = tmp_path / "log.db", tmp_path / "a.db", tmp_path / "probe.txt"
    write_sqlite(corpus_log(), db)
    args = ["export", str(archive), "--from-records", f"sqlite:///{db}", "--table", "support_messages"]
    args += [a for m in MAPS for a in ("--map", m)]
    records_probe = PROBE.replace("'openai' in sys.modules", "'sqlalchemy' in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE": str(probe)}
    proc = subprocess.Popen(
        [sys.executable, "-c", records_probe, *args, "--json"], env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    report = json.loads(out)
    # The ingest's figures crossed the exec, and one image finished: the same pid, without SQLAlchemy.
    assert report["rows_read"] > 0 and report["sessions"] == report["threads_new"] > 0
    assert report["cpu_seconds"] > 0
    assert probe.read_text().split() == [str(proc.pid), "False", "False"]
    assert not lock_path(archive).exists()
    with Archive.open(archive) as store:
        assert store.work.stale_count() == 0

    # In this process (no exec) the same export builds the same sessions.
    again = tmp_path / "b.db"
    assert main([*args[:1], str(again), *args[2:]]) == 0
    assert session_hashes(archive) == session_hashes(again)
