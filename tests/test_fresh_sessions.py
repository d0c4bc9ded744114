"""What `import` and `replay` send is fresh, and conversion options are kept unless a flag changes them.

- A stale session is rebuilt (offline, with the recorded options) before it is sent.
- A thread that is not done is left out and listed, exit 1, unless `--include-unfinished`.
- `rebuild` without flags and a rerun of `export` without conversion flags keep the recorded options.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_import_support import loads_lines, run_cli, sandbox_conversations

from migrator.archive import Archive, Failure, SessionRow, ThreadResult
from migrator.importers import session_items
from migrator.sandbox import SandboxConfig, SandboxServer
from migrator.sessions import recorded_options

DEFAULTS = {"system_role": "system", "hosted_tools": "emulate", "citations": "footnote"}


@pytest.fixture(scope="module")
def exported(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared 40-thread sandbox exported through the CLI (copy it before changing it)."""
    path = tmp_path_factory.mktemp("fresh") / "pristine.db"
    ids = path.with_name("ids.txt")
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    with pytest.MonkeyPatch.context() as mp:  # module scope: before the per-test environment
        mp.setenv("OPENAI_API_KEY", "sandbox-key")
        code, _, err = run_cli("export", str(path), "--threads", str(ids), "--base-url", sandbox.base_url)
    assert code == 0, err
    return path


@pytest.fixture
def archive(exported: Path, tmp_path: Path) -> Path:
    target = tmp_path / "support.db"
    shutil.copyfile(exported, target)
    return target


def sessions(path: Path) -> dict[str, bytes]:
    with Archive.open(path) as store:
        return dict(store.sessions.records())


def long_thread(path: Path) -> str:
    """A thread with several assistant turns (so a truncated session is visibly different)."""
    for tid, raw in sessions(path).items():
        if sum(m["role"] == "assistant" for m in orjson.loads(raw)["messages"]) >= 3:
            return tid
    raise AssertionError("the corpus has no long thread")


def make_stale(path: Path, thread_id: str) -> dict[str, Any]:
    """The session stored for the thread is out of date (its newest turn came after the build, which
    never ran), and the thread is marked stale, as `store_thread` leaves it. Returns the fresh one."""
    with Archive.open(path, writer="test") as store:
        fresh = orjson.loads(dict(store.sessions.records([thread_id]))[thread_id])
        old = {**fresh, "messages": fresh["messages"][:-2], "sources": fresh["sources"][:-2]}
        store.sessions.store([SessionRow(thread_id, old, 0, old["tools"], {})])
        store.db.execute("update work set session_stale = 1 where thread_id = ?", [thread_id])
    return fresh


def make_unfinished(path: Path, thread_id: str) -> None:
    """A later fetch of the thread failed (a --refresh that hit a 500): it is no longer done."""
    with Archive.open(path, writer="test") as store:
        store.raw.store_thread(
            ThreadResult(
                thread_id, "failed", failure=Failure("thread", thread_id, "InternalServerError", "500")
            )
        )


def canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


# -- stale sessions --------------------------------------------------------------------------------


def test_a_stale_session_is_rebuilt_before_the_jsonl_and_agents_imports(archive, tmp_path):
    tid = long_thread(archive)
    fresh = make_stale(archive, tid)
    code, out, err = run_cli("import", str(archive), "--to", "jsonl", "--out", "-")
    assert code == 0, err
    sent = {r["thread_id"]: r for r in loads_lines(out)}
    assert canonical(sent[tid]) == canonical(fresh)  # not the stale one the archive still holds
    assert len(sent) == 40
    with Archive.open(archive) as store:  # a reader: it derived the session for its output only
        assert [t for batch in store.work.stale_batches() for t in batch] == [tid]

    db = tmp_path / "agents.db"
    code, _, err = run_cli("import", str(archive), "--to", "agents-sqlite", "--out", str(db))
    assert code == 0, err
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        held = conn.execute("select count(*) from agent_messages where session_id = ?", [tid]).fetchone()[0]
    finally:
        conn.close()
    assert held == len(session_items(fresh).items)


def test_a_stale_session_is_rebuilt_and_stored_before_a_conversations_import(archive, monkeypatch):
    monkeypatch.setenv("TARGET_API_KEY", "target-key")
    tid = long_thread(archive)
    fresh = make_stale(archive, tid)
    with SandboxServer(SandboxConfig(threads=0, seed=3), port=0) as target:
        code, _, err = run_cli(
            "import",
            str(archive),
            "--to",
            "conversations",
            "--target-base-url",
            target.base_url,
            "--thread",
            tid,
        )
        assert code == 0, err
        conversations = sandbox_conversations(target)
    assert len(conversations) == 1
    assert sessions(archive)[tid] == canonical(fresh)  # a writer stores the rebuild
    with Archive.open(archive) as store:
        assert list(store.work.stale_batches()) == []
        link = store.links.get(target.base_url, tid)
    assert link is not None and link.items_sent == len(session_items(fresh).items)


def test_a_stale_session_is_rebuilt_before_a_replay(archive, exported):
    tid = long_thread(archive)
    make_stale(archive, tid)
    args = ["--dry-run", "--turns", "all", "--thread", tid, "--model", "gpt-4.1", "--json"]
    pristine = run_cli("replay", str(exported), *args)
    code, out, err = run_cli("replay", str(archive), *args)
    assert code == pristine[0] == 0, err
    assert (
        orjson.loads(out)["requests"] == orjson.loads(pristine[1])["requests"]
    )  # every turn of the fresh one
    code, out, err = run_cli(
        "replay", str(archive), "--report-only", "--turns", "all", "--thread", tid, "--json"
    )
    assert orjson.loads(out)["requests"]["selected"] == orjson.loads(pristine[1])["requests"]
    assert sessions(archive)[tid] == sessions(exported)[tid]  # --report-only writes: it stored the rebuild


# -- unfinished threads ---------------------------------------------------------------------------------


def test_sessions_of_threads_not_done_are_left_out_listed_and_exit_1(archive, tmp_path):
    tid = sorted(sessions(archive))[3]
    make_unfinished(archive, tid)
    code, out, err = run_cli("import", str(archive), "--to", "jsonl", "--out", "-")
    assert code == 1, err
    assert tid not in {r["thread_id"] for r in loads_lines(out)} and len(loads_lines(out)) == 39
    assert f"1 thread(s) not done, left out (--include-unfinished sends their last session): {tid}" in err

    code, out, err = run_cli("import", str(archive), "--to", "jsonl", "--out", "-", "--include-unfinished")
    assert code == 0, err
    assert tid in {r["thread_id"] for r in loads_lines(out)} and len(loads_lines(out)) == 40

    out_file = str(tmp_path / "one.jsonl")
    code, out, err = run_cli(
        "import", str(archive), "--to", "jsonl", "--out", out_file, "--thread", tid, "--json"
    )
    assert code == 1 and orjson.loads(out)["unfinished"] == [tid], err
    assert orjson.loads(out)["not_found"] == [] and Path(out_file).read_bytes() == b""


def test_replay_leaves_out_threads_not_done_unless_asked(archive):
    tid = sorted(sessions(archive))[5]
    make_unfinished(archive, tid)
    code, out, err = run_cli("replay", str(archive), "--dry-run", "--model", "gpt-4.1", "--json")
    doc = orjson.loads(out)
    assert code == 1 and doc["unfinished"] == [tid] and doc["sessions"] == 39, err
    code, out, err = run_cli("replay", str(archive), "--report-only", "--model", "gpt-4.1", "--json")
    doc = orjson.loads(out)
    assert doc["sessions"]["unfinished"] == [tid] and doc["sessions"]["selected"] == 39
    assert any("not done were left out" in reason for reason in doc["needs_attention"])
    code, out, err = run_cli(
        "replay", str(archive), "--dry-run", "--model", "gpt-4.1", "--include-unfinished", "--json"
    )
    assert code == 0 and orjson.loads(out)["sessions"] == 40, err


def test_a_conversations_import_sends_nothing_of_a_thread_not_done(archive, monkeypatch):
    monkeypatch.setenv("TARGET_API_KEY", "target-key")
    ids = sorted(sessions(archive))[:3]
    make_unfinished(archive, ids[1])
    picked = [arg for tid in ids for arg in ("--thread", tid)]
    with SandboxServer(SandboxConfig(threads=0, seed=3), port=0) as target:
        code, _, err = run_cli(
            "import", str(archive), "--to", "conversations", "--target-base-url", target.base_url, *picked
        )
        assert code == 1 and ids[1] in err, err
        sent = {c["metadata"]["source_thread_id"] for c in sandbox_conversations(target)}
    assert sent == {ids[0], ids[2]}


# -- conversion options ------------------------------------------------------------------------------


def recorded(path: Path) -> dict[str, str]:
    with Archive.open(path) as store:
        return recorded_options(store).as_dict()


def first_roles(path: Path) -> set[str]:
    """The roles the run instructions got (sessions of threads that never ran have none)."""
    firsts = (orjson.loads(raw)["messages"][0]["role"] for raw in sessions(path).values())
    return {role for role in firsts if role != "user"}


def test_a_rerun_of_export_and_a_rebuild_without_flags_keep_the_recorded_options(sandbox, tmp_path):
    db, ids = tmp_path / "support.db", tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    export = ["export", str(db), "--threads", str(ids), "--base-url", sandbox.base_url]
    code, _, err = run_cli(*export, "--system-role", "developer", "--citations", "strip")
    assert code == 0, err
    chosen = {**DEFAULTS, "system_role": "developer", "citations": "strip"}
    assert recorded(db) == chosen and first_roles(db) == {"developer"}

    code, _, err = run_cli(*export)  # a rerun without conversion flags
    assert code == 0, err
    assert recorded(db) == chosen and first_roles(db) == {"developer"}

    code, out, err = run_cli("rebuild", str(db), "--json")  # a rebuild without flags
    assert code == 0, err
    assert (
        orjson.loads(out)["options"] == chosen and recorded(db) == chosen and first_roles(db) == {"developer"}
    )

    code, out, err = run_cli(
        "rebuild", str(db), "--hosted-tools", "drop", "--json"
    )  # one flag: only it changes
    assert code == 0, err
    assert recorded(db) == {**chosen, "hosted_tools": "drop"} and first_roles(db) == {"developer"}

    code, out, err = run_cli(*export, "--system-role", "system", "--json")  # a flag on a rerun changes it
    assert code == 0, err
    assert orjson.loads(out)["sessions"]["sessions"] == 40  # every session was stale, and rebuilt
    assert recorded(db) == {**chosen, "hosted_tools": "drop", "system_role": "system"}
    assert first_roles(db) == {"system"}


def test_a_rerun_of_export_from_a_dump_keeps_the_recorded_options(exported, tmp_path):
    dump = tmp_path / "dump"
    code, _, err = run_cli("dump", str(exported), str(dump))
    assert code == 0, err
    db = tmp_path / "from-dump.db"
    code, _, err = run_cli("export", str(db), "--from-dump", str(dump), "--system-role", "developer")
    assert code == 0, err
    code, _, err = run_cli("export", str(db), "--from-dump", str(dump))
    assert code == 0, err
    assert recorded(db) == {**DEFAULTS, "system_role": "developer"} and first_roles(db) == {"developer"}
