"""`migrate export ARCHIVE --from-records SOURCE`: an application's own message log as the source.

The log is made from a sandbox corpus (records_support.py) and stored the way a support platform
keeps it: a SQLite table in time order across conversations, and the same rows as CSV.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from records_support import MAPS, corpus_log, iso, sessions, texts_of, write_csv, write_sqlite

from migrator.archive import Archive, ThreadResult
from migrator.cli import main

MAP_ARGS = [a for m in MAPS for a in ("--map", m)]


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def export_sqlite(capsys, archive: Path, db: Path, *extra: object) -> tuple[int, str, str]:
    return cli(
        capsys, "export", archive, "--from-records", f"sqlite:///{db}", "--table", "support_messages",
        *MAP_ARGS, "--citations", "keep", *extra,
    )  # fmt: skip


def jsonl(capsys, archive: Path, out: Path) -> dict[str, dict]:
    code, _, err = cli(capsys, "import", archive, "--to", "jsonl", "--out", out)
    assert code == 0, err
    return sessions(out)


@pytest.fixture(scope="module")
def log():
    return corpus_log()


def test_a_sqlite_log_and_the_same_rows_as_csv_give_one_session_per_thread_in_order(log, tmp_path, capsys):
    db, csv_file = tmp_path / "support.db", tmp_path / "support.csv"
    write_sqlite(log, db)
    write_csv(log, csv_file)
    # The log really is scattered: a thread's rows are not contiguous, and rows share a second.
    order = [r["conversation_id"] for r in log.rows]
    assert sum(1 for a, b in zip(order, order[1:], strict=False) if a != b) > len(log.texts) * 3
    assert len({r["sent_at"] for r in log.rows}) < len(log.rows) * 0.8

    code, _, err = export_sqlite(capsys, tmp_path / "sql.db", db)
    assert code == 0, err
    assert f"{len(log.rows)} rows read" in err and f"threads {len(log.texts)} new" in err
    code, _, err = cli(
        capsys, "export", tmp_path / "csv.db", "--from-records", csv_file, *MAP_ARGS, "--citations", "keep"
    )
    assert code == 0, err

    from_sql = jsonl(capsys, tmp_path / "sql.db", tmp_path / "sql.jsonl")
    assert set(from_sql) == set(log.texts)
    for tid, want in log.texts.items():
        session = from_sql[tid]
        assert texts_of(session) == want, tid
        assert session["metadata"]["user_id"] == log.users[tid]
        assert session["metadata"]["customer_id"].isdigit()  # every other column: thread metadata
        calls = [c for m in session["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
        answered = {m["tool_call_id"] for m in session["messages"] if m["role"] == "tool"}
        assert len(calls) == log.calls[tid] and {c["id"] for c in calls} <= answered
    assert sum(log.calls.values()) > 20  # the corpus made tool calls to check
    # The same rows give the same sessions, byte for byte, whatever the source.
    jsonl(capsys, tmp_path / "csv.db", tmp_path / "csv.jsonl")
    assert (tmp_path / "csv.jsonl").read_bytes() == (tmp_path / "sql.jsonl").read_bytes()

    code, out, _ = cli(capsys, "verify", tmp_path / "sql.db", "--json")
    assert code == 0, [c for c in orjson.loads(out)["checks"] if c["status"] == "failed"]
    with Archive.open(tmp_path / "sql.db") as archive:
        assert archive.raw.count("record_rows") == len(log.rows)  # every row kept verbatim
        raw = orjson.loads(next(archive.raw.texts("threads")))
        assert raw["source"] == "records"
        first = archive.db.execute("select raw from record_rows order by thread_id, position").fetchone()[0]
        assert set(orjson.loads(first)) == {
            "id", "conversation_id", "role", "body", "sent_at", "customer_id", "user_id", "tool_calls",
            "tool_call_id",
        }  # fmt: skip


def test_a_rerun_changes_nothing_and_a_changed_thread_alone_is_updated(log, tmp_path, capsys):
    db, archive = tmp_path / "support.db", tmp_path / "a.db"
    write_sqlite(log, db)
    assert export_sqlite(capsys, archive, db)[0] == 0
    before = jsonl(capsys, archive, tmp_path / "before.jsonl")
    with Archive.open(archive) as store:
        hash_before = store.content_hash()

    code, _, err = export_sqlite(capsys, archive, db)
    assert code == 0 and f"0 new, 0 updated, {len(log.texts)} unchanged" in err, err
    with Archive.open(archive) as store:
        assert store.content_hash() == hash_before

    # One thread's rows change: a message is edited and one row added at its end.
    tid = sorted(log.texts)[3]
    conn = sqlite3.connect(db)
    first_id = conn.execute(
        "select min(id) from support_messages where conversation_id = ? and role = 'user'", [tid]
    ).fetchone()[0]
    conn.execute("update support_messages set body = 'EDITED' where id = ?", [first_id])
    last = conn.execute(
        "select max(sent_at) from support_messages where conversation_id = ?", [tid]
    ).fetchone()
    conn.execute(
        "insert into support_messages (conversation_id, role, body, sent_at, customer_id, user_id) "
        "values (?, 'user', 'one more thing', ?, 1, ?)",
        [tid, last[0], log.users[tid]],
    )
    conn.commit()
    conn.close()
    code, _, err = export_sqlite(capsys, archive, db)
    assert code == 0 and f"0 new, 1 updated, {len(log.texts) - 1} unchanged" in err, err
    after = jsonl(capsys, archive, tmp_path / "after.jsonl")
    assert {t for t in after if after[t] != before[t]} == {tid}
    texts = texts_of(after[tid])
    assert texts[0] == ("user", "EDITED") and texts[-1] == ("user", "one more thing")
    assert texts[1:-1] == log.texts[tid][1:]
    with Archive.open(archive) as store:
        counts = store.counts()
        assert counts["threads_done"] == len(log.texts) and counts["sessions"] == len(log.texts)
        assert store.raw.count("record_rows") == len(log.rows) + 1  # nothing duplicated
        assert counts["messages"] == sum(len(t) for t in log.texts.values()) + 1

    # A new conversation is added; nothing else moves.
    conn = sqlite3.connect(db)
    conn.execute(
        "insert into support_messages (conversation_id, role, body, sent_at, user_id) "
        "values ('conv_new', 'user', 'hello', '2030-01-01T00:00:00Z', 'u_new')"
    )
    conn.commit()
    conn.close()
    code, _, err = export_sqlite(capsys, archive, db)
    assert code == 0 and f"1 new, 0 updated, {len(log.texts)} unchanged" in err, err


def test_the_session_of_a_changed_thread_is_stale_until_rebuilt_in_the_same_run(log, tmp_path, capsys):
    db, archive = tmp_path / "support.db", tmp_path / "a.db"
    write_sqlite(log, db)
    assert export_sqlite(capsys, archive, db)[0] == 0
    tid = sorted(log.texts)[0]
    conn = sqlite3.connect(db)
    conn.execute("update support_messages set body = body || '!' where conversation_id = ?", [tid])
    conn.commit()
    conn.close()
    from migrator.records import RecordsRequest, ingest_records, open_records

    request = RecordsRequest(f"sqlite:///{db}", table="support_messages", maps=MAPS)
    with open_records(request) as opened, Archive.open(archive, writer="test") as store:
        report = ingest_records(store, opened)
        stale = list(store.work.stale_batches())
    assert report.threads_updated == 1 and stale == [[tid]]


def test_rows_that_cannot_be_used_are_listed_skipped_counted_and_kept_in_the_archive(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text(
        "thread_id,role,content,created_at,user_id\n"
        "t1,user,hello,2024-05-01T10:00:00Z,u1\n"
        "t1,robot,beep,2024-05-01T10:00:01Z,u1\n"
        "t1,assistant,hi,not a time,u1\n"
        ",user,orphan,2024-05-01T10:00:02Z,u1\n"
        "t1,tool,42,2024-05-01T10:00:03Z,u1\n"
        "t1,assistant,fine,1714557604000,u1\n"
    )
    code, _, err = cli(capsys, "export", tmp_path / "a.db", "--from-records", log)
    assert code == 1, err
    assert "6 rows read" in err and "4 skipped" in err
    assert "row 2: unknown role 'robot'" in err
    assert "row 3: created_at 'not a time' is not epoch seconds" in err
    assert "row 4: no thread_id" in err
    assert "row 5: a tool output without tool_call_id" in err
    code, out, _ = cli(capsys, "verify", tmp_path / "a.db", "--json")
    findings = [f for c in orjson.loads(out)["checks"] for f in c["findings"]]
    skipped = [f for f in findings if "record_row_skipped" in str(f)]
    assert code == 1 and len(skipped) == 4
    session = jsonl(capsys, tmp_path / "a.db", tmp_path / "s.jsonl")["t1"]
    assert texts_of(session) == [("user", "hello"), ("assistant", "fine")]  # epoch ms is a time too

    # A rerun of the same rows leaves the thread as it is, and lists the same rows again (the tool
    # output too, which only building the thread refuses).
    code, _, again = cli(capsys, "export", tmp_path / "a.db", "--from-records", log)
    assert code == 1 and "0 updated, 1 unchanged" in again and "4 skipped" in again, again
    assert "row 5: a tool output without tool_call_id" in again
    code, out, _ = cli(capsys, "verify", tmp_path / "a.db", "--json")
    findings = [f for c in orjson.loads(out)["checks"] for f in c["findings"]]
    assert code == 1 and len([f for f in findings if "record_row_skipped" in str(f)]) == 4

    # Fixed rows: a rerun takes them in and the findings go.
    log.write_text(
        "thread_id,role,content,created_at,user_id\n"
        "t1,user,hello,2024-05-01T10:00:00Z,u1\n"
        "t1,assistant,fine,1714557604000,u1\n"
    )
    assert cli(capsys, "export", tmp_path / "a.db", "--from-records", log)[0] == 0
    code, out, _ = cli(capsys, "verify", tmp_path / "a.db", "--json")
    assert code == 0, out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "content=text"], "column 'text' (--map content=text) is not in the source; it returned: "
         "thread_id, role, body, created_at"),
        ([], "no column for the required field 'content'; the source returned: thread_id, role, body, created_at"),
        (["--map", "contents=body"], "'contents' is not a field"),
        (["--map", "content"], "write FIELD=COLUMN"),
        (["--map", "content=body", "--query", "select 1"], "a file source is read whole"),
        (["--map", "content=body", "--system-prompt", "x", "--assistant-id", "asst_1"], "exclude each other"),
    ],
)  # fmt: skip
def test_a_bad_column_or_option_exits_2_naming_it_and_leaves_no_archive(tmp_path, capsys, args, message):
    log = tmp_path / "log.csv"
    log.write_text("thread_id,role,body,created_at\nt1,user,hi,2024-05-01T10:00:00Z\n")
    code, _, err = cli(capsys, "export", tmp_path / "a.db", "--from-records", log, *args)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and not (tmp_path / "a.db").exists()


def test_a_query_names_its_columns_and_a_bad_one_lists_what_it_returned(log, tmp_path, capsys):
    db = tmp_path / "support.db"
    write_sqlite(log, db)
    url = f"sqlite:///{db}"
    code, _, err = cli(
        capsys, "export", tmp_path / "a.db", "--from-records", url,
        "--query", "select conversation_id as thread, role, body, sent_at from support_messages", *MAP_ARGS,
    )  # fmt: skip
    assert (
        code == 2 and "column 'conversation_id' (--map thread_id=conversation_id) is not in the source" in err
    )
    assert "it returned: thread, role, body, sent_at" in err
    # A query with `:` and `%` in it reaches the database as written (no bind parameters).
    code, _, err = cli(
        capsys, "export", tmp_path / "a.db", "--from-records", url, *MAP_ARGS,
        "--query", "select * from support_messages where sent_at like '%:%' order by sent_at, id",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = cli(capsys, "export", tmp_path / "b.db", "--from-records", url, "--table", "nope")
    assert code == 2 and "no table 'nope'; its tables: support_messages" in err
    code, _, err = cli(capsys, "export", tmp_path / "b.db", "--from-records", url, "--query", "selec 1")
    assert code == 2 and "--query failed" in err and "syntax error" in err
    code, _, err = cli(capsys, "export", tmp_path / "b.db", "--from-records", url)
    assert code == 2 and "needs --query SQL or --table NAME" in err
    code, _, err = cli(
        capsys, "export", tmp_path / "b.db", "--from-records", f"sqlite:///{tmp_path}/none.db", "--table", "t"
    )
    assert code == 2 and "no such database file" in err
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "none.db").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_that_cannot_be_reached_exits_3_with_its_password_masked(tmp_path, capsys):
    pytest.importorskip("psycopg")  # a dev dependency: installed wherever the tests run
    canary = "Canary-Pw-" + os.urandom(6).hex()
    url = f"postgresql://support:{canary}@127.0.0.1:{_closed_port()}/app"
    code, out, err = cli(capsys, "export", tmp_path / "a.db", "--from-records", url, "--table", "messages")
    assert code == 3, err
    assert f"cannot connect to postgresql://support:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in err
    assert canary not in out + err and not (tmp_path / "a.db").exists()


def test_a_missing_driver_says_which_extra_to_install(tmp_path):
    # A psycopg that cannot be imported, first on the path: what a machine without the extra sees.
    shim = tmp_path / "shim" / "psycopg"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError(\"No module named 'psycopg'\", name='psycopg')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shim")}
    result = subprocess.run(
        [sys.executable, "-c", "from migrator.cli import run; run()", "export", str(tmp_path / "a.db"), "--from-records",
         "postgresql://u:secret@127.0.0.1:1/db", "--table", "t"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "needs psycopg, which is not installed" in result.stderr
    assert "pip install 'migrate-assistants[postgres]'" in result.stderr and "secret" not in result.stderr


def test_jsonl_with_content_parts_system_rows_assistants_tool_calls_and_ms_times(tmp_path, capsys):
    t = 1_714_557_600_000  # epoch milliseconds
    rows = [
        {"thread_id": "t9", "role": "system", "content": "Answer in French.", "created_at": t, "shop": "eu"},
        {"thread_id": "t9", "role": "user", "created_at": t + 1,
         "content": [{"type": "text", "text": "Où est ma commande ?"},
                     {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
        {"thread_id": "t9", "role": "assistant", "content": "Je regarde.", "created_at": t + 2, "model": "gpt-4o",
         "tool_calls": [{"id": "call_a", "type": "function",
                         "function": {"name": "track", "arguments": {"order": 7}, "output": "en route"}}]},
        {"thread_id": "t9", "role": "assistant", "content": "Elle est en route.", "created_at": t + 3},
    ]  # fmt: skip
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    code, _, err = cli(capsys, "export", tmp_path / "a.db", "--from-records", path)
    assert code == 0, err
    session = jsonl(capsys, tmp_path / "a.db", tmp_path / "s.jsonl")["t9"]
    messages = session["messages"]
    assert messages[0] == {"role": "system", "content": "Answer in French."}
    assert messages[1]["content"][0] == {"type": "text", "text": "Où est ma commande ?"}
    assert messages[1]["content"][1]["type"] == "image_url"
    assert [m["role"] for m in messages[2:]] == ["assistant", "assistant", "tool", "assistant"]
    assert messages[3]["tool_calls"][0]["function"] == {"name": "track", "arguments": '{"order":7}'}
    assert messages[4] == {"role": "tool", "tool_call_id": "call_a", "content": "en route"}
    assert session["model"] == "gpt-4o" and session["metadata"] == {"shop": "eu"}
    assert session["created_at"] == t // 1000


def test_system_prompt_and_assistant_id_give_the_session_its_system_message(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text(
        "thread_id,role,content,created_at\nt1,user,hi,2024-05-01T10:00:00Z\nt1,assistant,yo,2024-05-01T10:00:00Z\n"
    )
    args = ("export", tmp_path / "a.db", "--from-records", log)
    assert cli(capsys, *args, "--system-prompt", "Be kind.")[0] == 0
    assert jsonl(capsys, tmp_path / "a.db", tmp_path / "s.jsonl")["t1"]["messages"][0] == {
        "role": "system",
        "content": "Be kind.",
    }
    code, _, err = cli(capsys, *args, "--assistant-id", "asst_missing")
    assert code == 2 and "no such assistant" in err
    with Archive.open(tmp_path / "a.db", writer="test") as store:
        from migrator.archive import LooseObject

        assistant = {"id": "asst_x", "object": "assistant", "created_at": 1, "model": "gpt-4.1",
                     "instructions": "Be brief.", "tools": []}  # fmt: skip
        store.loose.store([LooseObject("assistants", assistant, position=0)])
    code, _, err = cli(capsys, *args, "--assistant-id", "asst_x")
    assert code == 0 and "1 updated" in err, err
    session = jsonl(capsys, tmp_path / "a.db", tmp_path / "s.jsonl")["t1"]
    assert session["messages"][0] == {"role": "system", "content": "Be brief."}
    assert session["assistant_id"] == "asst_x" and session["model"] == "gpt-4.1"


def test_a_thread_the_archive_holds_from_the_api_is_kept_not_replaced(tmp_path, capsys):
    archive = tmp_path / "a.db"
    with Archive.create(archive, writer="test") as store:
        store.work.add([("thread_api", {})])
        thread = {"id": "thread_api", "object": "thread", "created_at": 1, "metadata": {}}
        message = {"id": "msg_api", "object": "thread.message", "created_at": 2, "thread_id": "thread_api",
                   "role": "user", "content": [{"type": "text", "text": {"value": "from the API", "annotations": []}}]}  # fmt: skip
        store.raw.store_thread(
            ThreadResult("thread_api", "done", thread=thread, messages=[message], messages_seen=1)
        )
    log = tmp_path / "log.csv"
    log.write_text(f"thread_id,role,content,created_at\nthread_api,user,from the log,{iso(5)}\n")
    code, _, err = cli(capsys, "export", archive, "--from-records", log)
    assert code == 0 and "1 kept from another source" in err and "kept thread_api" in err, err
    with Archive.open(archive) as store:
        assert [m["id"] for m in store.raw.thread_objects("thread_api")["messages"]] == ["msg_api"]


def test_the_spill_leaves_no_file_behind(tmp_path, capsys, monkeypatch):
    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(spill_dir))
    monkeypatch.setenv("SQLITE_TMPDIR", str(spill_dir))
    log = tmp_path / "log.csv"
    log.write_text(
        "thread_id,role,content,created_at\n" + "".join(f"t{i % 50},user,m{i},{i}\n" for i in range(20_000))
    )
    code, _, err = cli(capsys, "export", tmp_path / "a.db", "--from-records", log)
    assert code == 0 and "threads 50 new" in err, err
    assert list(spill_dir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "log.csv", "tmp"]


def test_every_later_command_works_on_a_records_archive_dump_merge_replay(log, tmp_path, capsys):
    db, archive = tmp_path / "support.db", tmp_path / "a.db"
    write_sqlite(log, db)
    assert export_sqlite(capsys, archive, db)[0] == 0
    want = jsonl(capsys, archive, tmp_path / "a.jsonl")
    # dump -> --from-dump: the same objects (marked source: records) and the same sessions.
    code, _, err = cli(capsys, "dump", archive, tmp_path / "dump")
    assert code == 0, err
    code, _, err = cli(
        capsys, "export", tmp_path / "b.db", "--from-dump", tmp_path / "dump", "--citations", "keep"
    )
    assert code == 0, err
    assert jsonl(capsys, tmp_path / "b.db", tmp_path / "b.jsonl") == want
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    # merge keeps the threads the log's: a rerun of the log into the merged archive changes nothing.
    code, _, err = cli(capsys, "merge", tmp_path / "m.db", archive)
    assert code == 0, err
    code, _, err = export_sqlite(capsys, tmp_path / "m.db", db)
    assert code == 0 and f"0 new, 0 updated, {len(log.texts)} unchanged" in err, err
    assert jsonl(capsys, tmp_path / "m.db", tmp_path / "m.jsonl") == want
    code, out, err = cli(capsys, "replay", archive, "--model", "gpt-4.1", "--dry-run", "--json")
    assert code == 0 and orjson.loads(out)["requests"] > 0, err


def test_ctrl_c_stops_cleanly_and_the_same_command_finishes_the_job(tmp_path):
    import signal
    import time

    log = tmp_path / "log.csv"
    with open(log, "w") as fh:
        fh.write("thread_id,role,content,created_at\n")
        for i in range(300_000):
            fh.write(f"t{i % 3000},{'user' if i % 2 else 'assistant'},message {i},{1_700_000_000 + i // 5}\n")
    args = [sys.executable, "-c", "from migrator.cli import run; run()", "export", str(tmp_path / "a.db"),
            "--from-records", str(log)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "a.db").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: migrate export" in err and "Traceback" not in err
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with Archive.open(tmp_path / "a.db") as store:
        assert store.counts()["threads_done"] == 3000 and store.raw.count("record_rows") == 300_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "log.csv"]
