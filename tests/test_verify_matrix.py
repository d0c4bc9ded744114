"""The corruption matrix: each kind of damage, applied to a copy of a clean archive (a real export
of sandbox threads, made once), is detected with the right exit code, check code and message, and
never with a traceback."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_verify_support import cli, sandbox_export


@pytest.fixture(scope="session")
def clean_archive(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = sandbox_export(sandbox, tmp_path_factory)
    code, out, err = cli(str(path), "--json")
    assert code == 0, out + err  # the clean export verifies clean: what the matrix damages is all there
    return path


# -- damage helpers: plain sqlite3 on the file, behind the archive's back -----------------------


def _one(conn: sqlite3.Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"the clean archive has nothing for: {query}"
    return row


def _session_with_call(conn: sqlite3.Connection) -> tuple[str, dict[str, Any]]:
    for tid, record in conn.execute("select thread_id, record from sessions order by thread_id"):
        body = orjson.loads(record)
        if any(m.get("tool_calls") for m in body["messages"]):
            return tid, body
    raise AssertionError("no session with a tool call in the clean archive")


def _store_session(conn: sqlite3.Connection, tid: str, body: dict[str, Any], *, rehash: bool = True) -> None:
    text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    if rehash:  # a consistent edit: only re-derivation and the structural checks can see it
        conn.execute(
            "update sessions set record = ?, hash = ? where thread_id = ?",
            [text.decode(), "sha256:" + hashlib.sha256(text).hexdigest(), tid],
        )
    else:
        conn.execute("update sessions set record = ? where thread_id = ?", [text.decode(), tid])


def delete_placed_message(conn: sqlite3.Connection) -> str:
    msg, tid = _one(
        conn,
        "select json_extract(raw, '$.step_details.message_creation.message_id'), thread_id from run_steps "
        "where json_extract(raw, '$.step_details.type') = 'message_creation' order by id",
    )
    conn.execute("delete from messages where id = ?", [msg])
    return tid


def edit_raw_json(conn: sqlite3.Connection) -> str:
    (msg,) = _one(conn, "select id from messages order by id")
    conn.execute("update messages set raw = json_set(raw, '$.metadata.edited', 'yes') where id = ?", [msg])
    return msg


def break_raw_json(conn: sqlite3.Connection) -> str:
    (tid,) = _one(conn, "select id from threads order by id")
    conn.execute("update threads set raw = substr(raw, 1, 20) where id = ?", [tid])
    return tid


def _rewrite_blob(conn: sqlite3.Connection, change: Callable[[bytes], bytes]) -> str:
    sha, data = _one(conn, "select sha256, data from blobs order by bytes desc, sha256")
    conn.execute("update blobs set data = ? where sha256 = ?", [change(data), sha])
    return sha


def flip_blob_byte(conn: sqlite3.Connection) -> str:
    return _rewrite_blob(conn, lambda d: d[:10] + bytes([d[10] ^ 0x01]) + d[11:])


def truncate_blob(conn: sqlite3.Connection) -> str:
    return _rewrite_blob(conn, lambda d: d[: len(d) // 2])


def orphan_tool_output(conn: sqlite3.Connection) -> str:
    tid, body = _session_with_call(conn)
    body["messages"].insert(1, {"role": "tool", "tool_call_id": "call_ghost", "content": "42"})
    _store_session(conn, tid, body)
    return tid


def dangling_tool_call(conn: sqlite3.Connection) -> str:
    tid, body = _session_with_call(conn)
    body["messages"] = [m for m in body["messages"] if m.get("role") != "tool"]
    _store_session(conn, tid, body)
    return tid


def remove_run_step(conn: sqlite3.Connection) -> str:
    step, tid = _one(
        conn,
        "select id, thread_id from run_steps where json_extract(raw, '$.step_details.type') = 'tool_calls' order by id",
    )
    conn.execute("delete from run_steps where id = ?", [step])
    return tid


def remove_run(conn: sqlite3.Connection) -> str:
    run, tid = _one(conn, "select run_id, thread_id from run_steps order by id")
    conn.execute("delete from runs where id = ?", [run])
    return run


def done_with_pages_missing(conn: sqlite3.Connection) -> str:
    (tid,) = _one(conn, "select thread_id from messages group by thread_id order by count(*) desc, thread_id")
    conn.execute("delete from messages where thread_id = ?", [tid])
    return tid


def page_ended_abnormally(conn: sqlite3.Connection) -> str:
    (tid,) = _one(conn, "select thread_id from work where status = 'done' order by thread_id")
    conn.execute(
        "insert into anomalies values ('thread', ?, 'empty_page_has_more', 'messages: empty page with has_more')",
        [tid],
    )
    return tid


def thread_left_pending(conn: sqlite3.Connection) -> str:
    (tid,) = _one(conn, "select thread_id from work order by thread_id")
    conn.execute("update work set status = 'pending' where thread_id = ?", [tid])
    return tid


def thread_failed(conn: sqlite3.Connection) -> str:
    (tid,) = _one(conn, "select thread_id from work order by thread_id")
    conn.execute("update work set status = 'failed' where thread_id = ?", [tid])
    conn.execute(
        "insert into failures values ('thread', ?, 'APITimeoutError', 'timed out after 4 attempts', null, 4)",
        [tid],
    )
    return tid


def file_never_fetched(conn: sqlite3.Connection) -> str:
    (file_id,) = _one(conn, "select id from files order by id")
    conn.execute("delete from files where id = ?", [file_id])
    return file_id


def blob_row_lost(conn: sqlite3.Connection) -> str:
    (file_id,) = _one(conn, "select id from files where blob_sha256 is not null order by id")
    conn.execute("delete from blobs")
    return file_id


def session_deleted(conn: sqlite3.Connection) -> str:
    (tid,) = _one(conn, "select thread_id from sessions order by thread_id")
    conn.execute("delete from sessions where thread_id = ?", [tid])
    return tid


def session_text_edited(conn: sqlite3.Connection) -> str:
    tid, body = _session_with_call(conn)
    body["messages"][-1]["content"] = "an answer nobody gave"
    _store_session(conn, tid, body, rehash=False)
    return tid


def raw_changed_without_rebuild(conn: sqlite3.Connection) -> str:
    """A raw row replaced with a consistent hash but the session left as it was."""
    from migrator.archive import object_hash

    msg, tid, raw = _one(
        conn,
        "select id, thread_id, raw from messages where json_extract(raw, '$.role') = 'user' "
        "and json_extract(raw, '$.content[0].type') = 'text' order by id",
    )
    body = orjson.loads(raw)
    body["content"][0]["text"]["value"] = "a question nobody asked"
    conn.execute(
        "update messages set raw = ?, hash = ? where id = ?",
        [orjson.dumps(body).decode(), object_hash(body), msg],
    )
    return tid


def index_out_of_step(conn: sqlite3.Connection) -> str:
    """An index that no longer matches its table, as a torn write leaves it."""
    (name,) = _one(
        conn,
        "select name from sqlite_master where type = 'index' and tbl_name = 'messages' and sql is not null",
    )
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        """update sqlite_master set sql = replace(sql, '("thread_id"', '("run_id"') where name = ?""", [name]
    )
    conn.execute("PRAGMA writable_schema = OFF")
    return name


def table_dropped(conn: sqlite3.Connection) -> str:
    """A table gone from an otherwise readable file: the checks that need it stop, the rest run."""
    conn.execute("drop table anomalies")
    return "anomalies"


# -- damage to the file as a whole -------------------------------------------------------------


def foreign_sqlite(path: Path) -> str:
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("create table customers (id integer primary key, name text)")
    conn.commit()
    conn.close()
    return ""


def newer_schema(path: Path) -> str:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "insert into _sqlite_migrations (migration_set, name, applied_at) "
            "values ('migrate-archive', 'm999_from_the_future', '2027-01-01')"
        )
    conn.close()
    return "m999_from_the_future"


def not_sqlite(path: Path) -> str:
    path.write_bytes(b"thread_id\nthread_abc\n")
    return ""


def no_such_file(path: Path) -> str:
    path.unlink()
    return ""


def truncated_archive(path: Path) -> str:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ""


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Any], str]
    exit_code: int
    code: str | None  # the check that must fail (None: the command refuses the file, exit 2)
    message: str  # in the finding (with {x} = what damage() returned) or on stderr
    whole_file: bool = False


CASES = [
    Case(
        "deleted message row",
        delete_placed_message,
        1,
        "message_count_mismatch",
        "messages stored, the source listed",
    ),
    Case(
        "deleted message row (placed by a step)",
        delete_placed_message,
        1,
        "step_message_missing",
        "which is not stored",
    ),
    Case("edited raw JSON", edit_raw_json, 1, "raw_hash_mismatch", "differs from the stored"),
    Case("unparseable raw JSON", break_raw_json, 1, "raw_unreadable", "raw JSON does not parse"),
    Case("flipped blob byte", flip_blob_byte, 1, "blob_sha256_mismatch", "bytes hash to"),
    Case("truncated file bytes", truncate_blob, 1, "blob_sha256_mismatch", "bytes hash to"),
    Case(
        "orphan tool output",
        orphan_tool_output,
        1,
        "session_tool_message_orphan",
        "tool_call_id 'call_ghost'",
    ),
    Case(
        "dangling tool call in a stored session",
        dangling_tool_call,
        1,
        "session_tool_call_unanswered",
        "'call_",
    ),
    Case(
        "removed run step",
        remove_run_step,
        1,
        "step_count_mismatch",
        "run steps stored, the source listed",
    ),
    Case("removed run (steps orphaned)", remove_run, 1, "orphan_step", "its run {x} is not stored"),
    Case(
        "thread done with pages missing",
        done_with_pages_missing,
        1,
        "message_count_mismatch",
        "0 messages stored",
    ),
    Case("page ended abnormally", page_ended_abnormally, 1, "page_anomaly", "empty_page_has_more"),
    Case("thread left pending", thread_left_pending, 1, "thread_pending", "not exported yet"),
    Case("thread failed", thread_failed, 1, "thread_failed", "APITimeoutError: timed out"),
    Case("referenced file never fetched", file_never_fetched, 1, "file_unfetched", "never fetched"),
    Case("blob row lost", blob_row_lost, 1, "file_blob_missing", "its blob is not in the archive"),
    Case("session deleted", session_deleted, 1, "session_missing", "run `migrate rebuild`"),
    Case("session text edited", session_text_edited, 1, "session_tampered", "does not match its stored hash"),
    Case(
        "raw changed, session not rebuilt",
        raw_changed_without_rebuild,
        1,
        "session_mismatch",
        "re-derivation in messages",
    ),
    Case("index out of step with its table", index_out_of_step, 1, "sqlite_integrity", ""),
    Case("table dropped", table_dropped, 1, "check_aborted", "checks stopped: no such table: {x}"),
    Case("foreign SQLite file", foreign_sqlite, 2, None, "a SQLite file, but not a migrate archive", True),
    Case("archive from a newer schema", newer_schema, 2, None, "written by a newer migrate", True),
    Case("not a SQLite file", not_sqlite, 2, None, "not a SQLite file", True),
    Case("no such file", no_such_file, 2, None, "no such archive", True),
    Case("truncated archive file", truncated_archive, 2, None, "database disk image is malformed", True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damage_is_detected(case: Case, clean_archive: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(clean_archive, tmp_path / "archive.db"))
    if case.whole_file:
        detail = case.damage(path)
    else:
        conn = sqlite3.connect(path)
        with conn:
            detail = case.damage(conn)
        conn.close()
    if case.code is None:
        code, out, err = cli(str(path), "--json")
        assert code == case.exit_code, out + err
        assert out == "", out  # no half document on stdout
        assert case.message in err, err
        return
    code, out, err = cli(str(path), "--json")
    doc = orjson.loads(out)
    failed = {c["code"]: c for c in doc["checks"] if c["status"] == "failed"}
    assert code == case.exit_code == doc["exit_code"], sorted(failed)
    assert case.code in failed, sorted(failed)
    messages = [f"{f['subject']}: {f['message']}" for f in failed[case.code]["findings"]]
    expected = case.message.format(x=detail)
    assert any(expected in m for m in messages), messages
    if detail and case.code not in ("sqlite_integrity", "check_aborted"):
        assert any(detail in m for m in messages) or any(
            detail == f["thread_id"] for f in failed[case.code]["findings"]
        ), messages


def test_the_matrix_covers_at_least_12_kinds_of_damage() -> None:
    assert len({c.damage for c in CASES}) >= 12
