"""The one request path: nothing waits forever, a dead host stops the run soon, a signal stops it.

The commands run through the installed console script in their own process, against a port nobody
listens on, a host that accepts connections and never answers, and a sandbox that dies mid-run.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hosts import FullHost, SilentHost, closed_port, finish, start
from test_import_support import build_archive, golden_records
from test_replay_support import export_archive

from migrator.archive import Archive
from migrator.cli import main
from migrator.errors import UnreachableError
from migrator.importers import Selection, TargetSettings, import_conversations
from migrator.replay import ReplayOptions, replay_live
from migrator.replay import TargetSettings as ReplayTarget
from migrator.sandbox import SandboxConfig, SandboxServer


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    """An archive of four sessions, ready for replay and import."""
    return build_archive(tmp_path / "sessions.db", golden_records()[:4])


@pytest.fixture
def ids(tmp_path: Path) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"thread_{i:03d}\n" for i in range(40)))
    return path


def _command(name: str, base_url: str, sessions: Path, ids: Path, tmp_path: Path) -> list[str]:
    if name == "replay":
        return ["replay", str(sessions), "--target-base-url", base_url, "--model", "gpt-4.1"]
    if name == "import":
        return ["import", str(sessions), "--to", "conversations", "--target-base-url", base_url]
    return ["export", str(tmp_path / "new.db"), "--threads", str(ids), "--base-url", base_url]


FLAG = {"replay": "--target-base-url", "import": "--target-base-url", "export": "--base-url"}


@pytest.mark.parametrize("name", ["replay", "import", "export"])
def test_a_refused_port_stops_the_run_with_exit_3_and_one_line_naming_the_host(name, sessions, ids, tmp_path):
    port = closed_port()
    code, err = finish(start(*_command(name, f"http://127.0.0.1:{port}/v1", sessions, ids, tmp_path)))
    assert code == 3, err
    assert f"error: cannot connect to 127.0.0.1:{port} (connection refused): check {FLAG[name]}\n" in err
    assert "Traceback" not in err and "unexpected" not in err
    if name == "export":
        # Nothing is failed one by one for it: the threads wait for a corrected --base-url.
        with Archive.open(tmp_path / "new.db") as archive:
            assert archive.work.counts() == {"pending": 40, "done": 0, "failed": 0, "missing": 0}
            assert archive.findings.failures() == []
    if name == "import":
        # Nothing reached the target: no create is counted as possibly made.
        with Archive.open(sessions) as archive:
            links = list(archive.links.of_target(f"http://127.0.0.1:{port}/v1", None))
        assert all(link.unconfirmed_creates == 0 for link in links)


def test_a_create_stopped_while_its_connection_is_still_being_made_is_not_unconfirmed(sessions):
    # Nothing can have reached a host the connection never got to: counting such a create as one
    # whose outcome is unknown (an unmapped twin may exist) is a false alarm. A refused port under
    # load ends other creates this way, mid-connect.
    with FullHost() as host:
        proc = start("import", str(sessions), "--to", "conversations", "--target-base-url", host.base_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until its creates are under way, waiting for a connection
            with sqlite3.connect(sessions) as conn:
                if conn.execute("select count(*) from conversation_map").fetchone()[0]:
                    break
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc, timeout=30)
    assert code == 130, err
    with Archive.open(sessions) as archive:
        links = list(archive.links.of_target(host.base_url, None))
    assert links and all(link.unconfirmed_creates == 0 for link in links), links


def test_plan_against_a_refused_port_exits_3(ids):
    port = closed_port()
    code, err = finish(start("plan", "--threads", str(ids), "--base-url", f"http://127.0.0.1:{port}/v1"))
    assert code == 3, err
    assert f"cannot connect to 127.0.0.1:{port} (connection refused): check --base-url" in err


def test_export_against_a_host_that_never_answers_ends_by_itself(ids, tmp_path):
    with SilentHost() as host:
        proc = start(*_command("export", host.base_url, tmp_path, ids, tmp_path), "--request-timeout", "1")
        code, err = finish(proc, timeout=120)
    assert code == 3, err
    assert f"cannot connect to 127.0.0.1:{host.port} (no answer within 1 s): check --base-url" in err
    with Archive.open(tmp_path / "new.db") as archive:
        assert archive.work.counts()["pending"] == 40 and archive.findings.failures() == []


def test_replay_and_import_against_a_host_that_never_answers_end_by_themselves(sessions):
    # Their CLI has no timeout option (120 s and 60 s); the same path with a short one.
    with SilentHost() as host, Archive.open(sessions, writer="test") as archive:
        target = ReplayTarget(base_url=host.base_url, api_key="k", timeout=0.5)
        with pytest.raises(UnreachableError, match="no answer within 0.5 s"):
            replay_live(archive, target, ReplayOptions(model="gpt-4.1"))
        settings = TargetSettings(base_url=host.base_url, api_key="k", timeout=0.5)
        with pytest.raises(UnreachableError, match="no answer within 0.5 s"):
            import_conversations(archive, settings, Selection())
        # Creates that went out and were never answered are counted, never hidden.
        links = list(archive.links.of_target(host.base_url.rstrip("/"), None))
    assert links and all(link.status == "creating" for link in links)
    assert sum(link.unconfirmed_creates for link in links) >= 1


@pytest.mark.parametrize("name", ["replay", "import", "export", "plan", "verify"])
def test_sigterm_while_waiting_on_a_silent_host_exits_130_with_the_resume_line(
    name, sessions, ids, tmp_path, sandbox
):
    with SilentHost() as host:
        if name == "plan":
            args = ["plan", "--threads", str(ids), "--base-url", host.base_url]
        elif name == "verify":
            done = export_archive(sandbox.base_url, 40, 7, tmp_path / "done.db")
            args = ["verify", str(done), "--against-source", "--base-url", host.base_url]
        else:
            args = _command(name, host.base_url, sessions, ids, tmp_path)
        proc = start(*args)
        host.wait_for_connection()
        time.sleep(0.3)  # well inside the wait for an answer that never comes
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc, timeout=30)
        print(f"{name}: ended {time.monotonic() - sent:.2f} s after SIGTERM")
    assert code == 130, err
    assert f"resume with: migrate {name} " in err, err
    assert "Traceback" not in err


def test_sigterm_mid_replay_exits_130_and_the_same_command_resumes(sandbox, tmp_path):
    db = export_archive(sandbox.base_url, 40, 7, tmp_path / "replay.db")
    with SandboxServer(SandboxConfig(threads=0, seed=3, latency_ms=150)) as target:
        args = [
            "replay",
            str(db),
            "--target-base-url",
            target.base_url,
            "--model",
            "gpt-4.1",
            "--turns",
            "all",
        ]
        proc = start(*args, "--concurrency", "2")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and target.stats()["total"] < 4:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc, timeout=30)
        assert code == 130, err
        assert f"resume with: migrate {' '.join(args)} --concurrency 2" in err
        with sqlite3.connect(db) as conn:
            answered = conn.execute("select count(*) from replay_ledger where state = 'done'").fetchone()[0]
        assert answered >= 1  # the answers that came back are kept
        target.configure(latency_ms=0)
        code, err = finish(start(*args))
        assert code in (0, 1), err  # the verdict is parity's; it finished
        with sqlite3.connect(db) as conn:
            states = dict(conn.execute("select state, count(*) from replay_ledger group by state").fetchall())
        assert set(states) <= {"done", "rejected"}, states


def test_a_source_that_dies_mid_export_stops_it_with_exit_3_and_keeps_what_was_done(
    tmp_path, capsys, monkeypatch
):
    # A shorter verdict than the production 60 s; the rule is the same.
    monkeypatch.setattr("migrator.http.path.DEAD_AFTER_SECONDS", 1.0)
    port, ids, db = closed_port(), tmp_path / "ids.txt", tmp_path / "a.db"
    # Its own process, so that killing it closes every connection at once, as a crash does.
    source = start("sandbox", "serve", "--port", str(port), "--threads", "300", "--seed", "5",
                   "--latency-ms", "20", "--ids-out", str(ids))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (ids.exists() and ids.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)

        def kill_when_exporting() -> None:
            while time.monotonic() < deadline:
                try:
                    with sqlite3.connect(db) as conn:
                        if (
                            conn.execute("select count(*) from work where status = 'done'").fetchone()[0]
                            >= 20
                        ):
                            break
                except sqlite3.Error:
                    pass
                time.sleep(0.02)
            source.kill()

        killer = threading.Thread(target=kill_when_exporting)
        killer.start()
        base_url = f"http://127.0.0.1:{port}/v1"
        code = main(["export", str(db), "--threads", str(ids), "--base-url", base_url, "--concurrency", "8"])
        killer.join()
    finally:
        source.kill()
        source.communicate()
    err = capsys.readouterr().err
    assert code == 3, err
    assert f"cannot connect to 127.0.0.1:{port} (connection refused): check --base-url" in err
    with Archive.open(db) as archive:
        work = archive.work.counts()
        assert work["done"] >= 20 and work["pending"] > 0, work
        assert work["failed"] == 0  # no thread failed one by one for the dead host
