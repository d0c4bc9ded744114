"""`migrate export` against the sandbox over real HTTP: completeness, request economy, failures."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from migrator.archive import Archive
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

COUNT_KEYS = (
    "assistants",
    "threads",
    "messages",
    "runs",
    "run_steps",
    "vector_stores",
    "vector_store_files",
    "files",
)


def ids_file(tmp_path: Path, server: SandboxServer, extra: tuple[str, ...] = ()) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join([*server.thread_ids(), *extra]) + "\n")
    return path


def export(
    tmp_path: Path, server: SandboxServer, *args: str, archive: str = "a.db", ids: Path | None = None
) -> int:
    ids = ids or ids_file(tmp_path, server)
    return main(
        ["export", str(tmp_path / archive), "--threads", str(ids), "--base-url", server.base_url, *args]
    )


def stats(path: Path) -> dict:
    with Archive.open(path) as archive:
        return archive.counts()


def thread_requests(server: SandboxServer) -> int:
    return sum(n for route, n in server.stats()["by_route"].items() if "/v1/threads" in route)


def test_export_equals_the_corpus_with_the_minimum_requests_and_a_rerun_asks_nothing(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=60, seed=11)) as server:
        code = export(tmp_path, server, "--json")
        out = capsys.readouterr()
        assert code == 0, out.err
        summary = json.loads(out.out)
        assert summary["threads_done"] == 60 and summary["failures"] == 0
        counts = stats(tmp_path / "a.db")
        corpus = server.corpus_summary()
        assert {k: counts[k] for k in COUNT_KEYS} == {k: corpus["counts"][k] for k in COUNT_KEYS}
        assert counts["sessions"] == 60 and counts["files_unfetched"] == 0
        made, minimum = server.stats()["total"], corpus["minimum_requests"]["total"]
        assert minimum <= made <= minimum * 1.02, server.stats()["by_route"]

        server.reset_stats()
        assert export(tmp_path, server) == 0, capsys.readouterr().err
        assert thread_requests(server) == 0
        assert server.stats()["total"] == 0  # assistants, vector stores and files are done too


def test_missing_threads_are_marked_and_the_run_needs_attention(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=5, seed=2)) as server:
        ids = ids_file(tmp_path, server, extra=("thread_deletedlongago",))
        code = export(tmp_path, server, ids=ids)
        assert code == 1, capsys.readouterr().err
        counts = stats(tmp_path / "a.db")
        assert (counts["threads_done"], counts["threads_missing"]) == (5, 1)


@pytest.mark.parametrize(
    ("knobs", "key", "needle", "code"),
    [
        ({"api_key": "the-right-key"}, "wrong-key", "OPENAI_API_KEY", 3),
        ({"gone": True}, "k", "--from-dump", 3),
    ],
)
def test_refusals_stop_at_once_with_exit_3_and_a_fix(tmp_path, capsys, monkeypatch, knobs, key, needle, code):
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with SandboxServer(SandboxConfig(threads=5, seed=2, **knobs)) as server:
        assert export(tmp_path, server) == code
        total = server.stats()["total"]
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert total <= 2  # it stopped at the first refusal instead of trying every thread
    assert stats(tmp_path / "a.db")["threads_pending"] == 5


def test_bad_thread_list_exits_2_before_any_request(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=3, seed=2)) as server:
        ids = tmp_path / "ids.txt"
        ids.write_text("thread_ok\nnot-a-thread\n")
        assert export(tmp_path, server, ids=ids) == 2
        assert server.stats()["total"] == 0
    err = capsys.readouterr().err
    assert f"{ids}:2: not a thread id" in err and "Traceback" not in err
    assert not (tmp_path / "a.db").exists()


# Each knob at a rate the retry policy should absorb, or a pagination bug it must record.
FAULTS = {
    "fault_rate": {"fault_rate": 0.15},
    "timeout_rate": {"timeout_rate": 0.05, "hang_seconds": 1.0},
    "drop_rate": {"drop_rate": 0.1},
    "truncate_rate": {"truncate_rate": 0.1},
    "invalid_json_rate": {"invalid_json_rate": 0.1},
    "empty_page_rate": {"empty_page_rate": 0.3},
    "repeat_cursor_rate": {"repeat_cursor_rate": 0.3},
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_fault_ends_complete_or_with_failure_rows(tmp_path, capsys, name):
    with SandboxServer(SandboxConfig(threads=12, seed=5, **FAULTS[name])) as server:
        code = export(tmp_path, server, "--request-timeout", "0.5", "--concurrency", "8")
        corpus = server.corpus_summary()["counts"]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    counts = stats(tmp_path / "a.db")
    with Archive.open(tmp_path / "a.db") as archive:
        failures = archive.findings.failures()
        not_done = [r[0] for r in archive.db.execute("select thread_id from work where status != 'done'")]
    failed_threads = {f.entity_id for f in failures if f.entity == "thread"}
    if name == "empty_page_rate":
        # An empty last page that claims more: the list read from its newest end meets it, whole.
        assert code == 0 and counts["anomalies"] == 0, err
    if name == "repeat_cursor_rate":
        # Read from both ends until they meet: whole, or (more than two ends' pages) a failure with its anomaly.
        assert code == 0 or (counts["anomalies"] >= 1 and failed_threads)
    if code == 0:
        assert {k: counts[k] for k in COUNT_KEYS} == {k: corpus[k] for k in COUNT_KEYS}
    else:
        assert code == 1 and failures, err
        assert set(not_done) <= failed_threads  # nothing silently missing: every gap has its row


def test_a_killed_page_loop_keeps_what_it_got(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=8, seed=5, repeat_cursor_rate=1.0)) as server:
        assert export(tmp_path, server) == 1
    with Archive.open(tmp_path / "a.db") as archive:
        kinds = {row[0] for row in archive.db.execute("select kind from anomalies")}
        # Threads short enough for one page never repeat; the long ones hit the guard.
        duplicated = archive.db.execute("select count(*) - count(distinct id) from messages").fetchone()[0]
    assert kinds == {"repeated_cursor"} and duplicated == 0


def test_shards_merged_equal_one_full_export(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=30, seed=9)) as server:
        assert export(tmp_path, server, archive="full.db") == 0
        for k in (1, 2, 3):
            assert export(tmp_path, server, "--shard", f"{k}/3", archive=f"s{k}.db") == 0
    shards = [str(tmp_path / f"s{k}.db") for k in (1, 2, 3)]
    assert main(["merge", str(tmp_path / "all.db"), *shards]) == 0
    assert main(["merge", str(tmp_path / "all.db"), *shards]) == 0  # idempotent
    with Archive.open(tmp_path / "full.db") as full, Archive.open(tmp_path / "all.db") as merged:
        assert merged.content_hash() == full.content_hash()
        assert merged.work.counts() == full.work.counts()
        assert list(merged.sessions.records()) == list(full.sessions.records())


def test_refresh_fetches_only_what_is_newer_and_duplicates_nothing(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=10, seed=4)) as server:
        assert export(tmp_path, server) == 0
        with Archive.open(tmp_path / "a.db") as archive:
            before = archive.content_hash()
        server.reset_stats()
        assert export(tmp_path, server, "--refresh", "--only", "threads") == 0
        by_route = server.stats()["by_route"]
    # Per thread: the thread, one page of messages after the last one, one page of runs after the last one.
    assert by_route == {
        "GET /v1/threads/{thread_id}": 10,
        "GET /v1/threads/{thread_id}/messages": 10,
        "GET /v1/threads/{thread_id}/runs": 10,
    }
    with Archive.open(tmp_path / "a.db") as archive:
        assert archive.content_hash() == before


def test_commands_other_than_export_refuse_what_is_not_an_archive(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert main(["stats", str(notes)]) == 2
    assert main(["stats", str(tmp_path / "nope.db")]) == 2
    assert not (tmp_path / "nope.db").exists()
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("create table t (x)").connection.commit()
    assert main(["inspect", str(foreign), "thread_x"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err


def test_from_dump_reads_several_paths_and_checks_them_before_creating_the_archive(tmp_path, capsys):
    messy = Path(__file__).parent.parent / "fixtures" / "dumps" / "messy"
    missing = tmp_path / "not-there"
    assert main(["export", str(tmp_path / "x.db"), "--from-dump", str(messy / "threads"), str(missing)]) == 2
    assert not (tmp_path / "x.db").exists()
    assert str(missing) in capsys.readouterr().err
    one = main(
        [
            "export",
            str(tmp_path / "one.db"),
            "--from-dump",
            str(messy / "assistants.json"),
            str(messy / "threads"),
        ]
    )
    both = main(
        [
            "export",
            str(tmp_path / "two.db"),
            "--from-dump",
            str(messy / "assistants.json"),
            "--from-dump",
            str(messy / "threads"),
        ]
    )
    assert one == both
    with Archive.open(tmp_path / "one.db") as a, Archive.open(tmp_path / "two.db") as b:
        assert a.counts()["assistants"] > 0 and a.counts()["threads"] > 0
        assert a.content_hash() == b.content_hash()


def test_plan_estimates_requests_and_nights_from_a_sample_without_storing(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=40, seed=11)) as server:
        ids = ids_file(tmp_path, server)
        code = main(
            [
                "plan",
                "--threads",
                str(ids),
                "--max-rps",
                "0.05",
                "--sample",
                "40",
                "--base-url",
                server.base_url,
                "--json",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        plan = json.loads(out.out)
        minimum = server.corpus_summary()["minimum_requests"]["total"]
    # An estimate: files shared between threads count twice, parsed-text pages are guessed at one.
    assert minimum * 0.9 <= plan["total_requests"] <= minimum * 1.5
    assert plan["nights"] == -(-plan["total_requests"] // (0.05 * 3600 * 8))
    assert not list(tmp_path.glob("*.db"))


def test_the_api_key_reaches_neither_the_archive_nor_any_output(tmp_path, capsys, monkeypatch):
    canary = "sk-canary-" + "7f3a9c1e5b2d4f6a8c0e"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    with SandboxServer(SandboxConfig(threads=6, seed=3)) as server:
        assert export(tmp_path, server, "--json") == 0
    with SandboxServer(SandboxConfig(threads=6, seed=3, api_key="another-key")) as server:
        assert export(tmp_path, server, archive="refused.db") == 3
    out = capsys.readouterr()
    assert canary not in out.out + out.err
    for path in tmp_path.iterdir():
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


def _tool_run_with_steps(path: Path) -> tuple[str, str]:
    with Archive.open(path) as archive:
        return archive.db.execute(
            "select r.thread_id, r.id from runs r where r.has_tools = 1 and r.status = 'completed' "
            "and exists (select 1 from run_steps s where s.run_id = r.id) order by r.id limit 1"
        ).fetchone()


def test_refresh_fetches_a_failed_thread_whole_again(tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=10, seed=4)) as server:
        assert export(tmp_path, server) == 0
        with Archive.open(tmp_path / "a.db") as archive:
            before = archive.content_hash()
        thread_id, run_id = _tool_run_with_steps(tmp_path / "a.db")
        conn = sqlite3.connect(tmp_path / "a.db")
        # As a thread whose step listing failed: messages and runs stored, steps not, status failed.
        conn.execute("delete from run_steps where thread_id = ?", [thread_id])
        conn.execute("update work set status = 'failed' where thread_id = ?", [thread_id])
        conn.commit()
        conn.close()
        assert export(tmp_path, server, "--refresh", "--only", "threads") == 0, capsys.readouterr().err
    with Archive.open(tmp_path / "a.db") as archive:
        assert archive.content_hash() == before
        assert archive.work.counts()["done"] == 10


def test_refresh_reads_again_a_run_that_was_unfinished_when_stored(tmp_path, capsys):
    from migrator.archive import object_hash

    with SandboxServer(SandboxConfig(threads=10, seed=4)) as server:
        assert export(tmp_path, server) == 0
        with Archive.open(tmp_path / "a.db") as archive:
            before = archive.content_hash()
        thread_id, run_id = _tool_run_with_steps(tmp_path / "a.db")
        conn = sqlite3.connect(tmp_path / "a.db")
        # As exported mid-run: the run still in progress, its later steps not there yet.
        raw = json.loads(conn.execute("select raw from runs where id = ?", [run_id]).fetchone()[0])
        raw["status"] = "in_progress"
        conn.execute(
            "update runs set status = 'in_progress', raw = ?, hash = ? where id = ?",
            [json.dumps(raw), object_hash(raw), run_id],
        )
        removed = conn.execute("delete from run_steps where run_id = ?", [run_id]).rowcount
        conn.execute("update work set steps_seen = steps_seen - ? where thread_id = ?", [removed, thread_id])
        conn.commit()
        conn.close()
        server.reset_stats()
        assert export(tmp_path, server, "--refresh", "--only", "threads") == 0, capsys.readouterr().err
        assert server.stats()["by_route"].get("GET /v1/threads/{thread_id}/runs/{run_id}") == 1
    with Archive.open(tmp_path / "a.db") as archive:
        assert archive.content_hash() == before
        steps = archive.db.execute("select count(*) from run_steps where run_id = ?", [run_id]).fetchone()[0]
        seen, stored = archive.db.execute(
            "select steps_seen, (select count(*) from run_steps where thread_id = ?) from work where thread_id = ?",
            [thread_id, thread_id],
        ).fetchone()
    assert steps > 0 and seen == stored
