"""The source's list order is the truth: `created_at` ties are common and ids are random.

Every test here sets ids against the true order (or lets the rude sandbox do it), so a store, a
converter or a dump that broke ties by id would fail it. Also here: the faults of issue 11 that cost
data silently (unfinished dumps, one bad character, verify counts that checked nothing).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from lookalike import page as lookalike_page
from lookalike import serve
from sqlite_utils import Database
from test_sandbox_support import Raw, walk

from migrator.archive import Archive, ThreadResult, object_hash
from migrator.archive.canonical import canonical_json, dumps
from migrator.archive.schema import MIGRATIONS
from migrator.cli import main
from migrator.convert import ThreadBundle, convert_thread
from migrator.convert.interleave import order_thread
from migrator.dumps import ingest_dump, write_dump
from migrator.merge import merge_from
from migrator.verify import verify_archive
from migrator.verify.queries import thread_tallies

T = 1_700_000_000


def message(mid: str, tid: str, at: int, role: str = "user", text: str = "hi", run_id: str | None = None):
    return {
        "id": mid,
        "object": "thread.message",
        "created_at": at,
        "thread_id": tid,
        "status": "completed",
        "role": role,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": "asst_1" if run_id else None,
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
    }


def thread(tid: str, at: int = T) -> dict[str, Any]:
    return {"id": tid, "object": "thread", "created_at": at, "metadata": {}, "tool_resources": {}}


def run(rid: str, tid: str, at: int, status: str = "completed") -> dict[str, Any]:
    return {
        "id": rid,
        "object": "thread.run",
        "created_at": at,
        "thread_id": tid,
        "assistant_id": "asst_1",
        "status": status,
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [],
    }


def message_ids(archive: Archive, tid: str) -> list[str]:
    objects = archive.raw.thread_objects(tid)
    assert objects is not None
    return [m["id"] for m in objects["messages"]]


def cli(*args: str) -> int:
    return main([str(a) for a in args])


# -- the end-to-end order: a rude sandbox, exported, gives sessions in its own list order --------


def test_a_sandbox_export_gives_sessions_in_exactly_the_served_order(sandbox, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    assert cli("export", tmp_path / "a.db", "--threads", ids, "--base-url", sandbox.base_url) == 0
    with Archive.open(tmp_path / "a.db") as archive:
        records = {tid: orjson.loads(record) for tid, record in archive.sessions.records()}
    raw = Raw(sandbox.port)
    same_second = unsorted = 0
    for tid in sandbox.thread_ids():
        sources = records[tid]["sources"]
        at = {source: i for i, source in enumerate(sources)}
        served, _ = walk(raw, f"/v1/threads/{tid}/messages")
        order = [m["id"] for m in served]
        unsorted += order != sorted(order)
        # Every message, in exactly the order the source lists them.
        assert [s for s in sources if s in set(order)] == order, tid
        runs, _ = walk(raw, f"/v1/threads/{tid}/runs")
        for r in runs:
            mine = [m["id"] for m in served if m["run_id"] == r["id"]]
            items = mine
            if r["tools"]:  # the export lists steps only for runs that declared tools
                steps, _ = walk(raw, f"/v1/threads/{tid}/runs/{r['id']}/steps")
                items = [
                    s["step_details"]["message_creation"]["message_id"]
                    if s["type"] == "message_creation"
                    else s["id"]
                    for s in steps
                    if s["type"] == "message_creation" or s["step_details"]["tool_calls"]
                ]
                assert all(item in at for item in items), (tid, r["id"])
                # Inside the run: its steps and messages in the order the step list gives.
                assert sorted(items, key=at.__getitem__) == items, (tid, r["id"])
            if not items:
                continue
            if mine:
                before = order[: order.index(mine[0])]
            else:  # a run that left no message follows the messages of its second
                before = [m["id"] for m in served if m["created_at"] <= r["created_at"]]
            after = [m for m in order if m not in before and m not in mine]
            first, last = min(at[i] for i in items), max(at[i] for i in items)
            assert all(at[m] < first for m in before) and all(at[m] > last for m in after), (tid, r["id"])
            users = [m for m in served if m["id"] in before and m["role"] == "user"]
            same_second += bool(users) and users[-1]["created_at"] == r["created_at"]
    raw.close()
    # The corpus is as rude as the API: turns share one second, and ids do not sort in creation order.
    assert same_second > 30 and unsorted > 30


# -- the archive: positions, the refresh cursor, merge, the upgrade of an old archive ------------


def test_rows_keep_their_list_order_and_a_refresh_appends_after_them(tmp_path: Path) -> None:
    with Archive.create(tmp_path / "a.db") as archive:
        archive.work.add([("thread_1", {})])
        first = [message("msg_z", "thread_1", T), message("msg_y", "thread_1", T)]
        archive.raw.store_thread(ThreadResult("thread_1", "done", thread("thread_1"), first, messages_seen=2))
        assert message_ids(archive, "thread_1") == ["msg_z", "msg_y"]
        last = "select last_message_id, messages_seen from work where thread_id = 'thread_1'"
        assert archive.db.execute(last).fetchone() == ("msg_y", 2)
        # --refresh: the delta lists msg_a after msg_y, and re-reads msg_y (stored unfinished).
        changed = dict(message("msg_y", "thread_1", T), status="incomplete")
        delta = ThreadResult(
            "thread_1",
            "done",
            thread("thread_1"),
            [message("msg_a", "thread_1", T), changed],
            messages_seen=2,
            delta=True,
        )
        archive.raw.store_thread(delta)
        assert message_ids(archive, "thread_1") == ["msg_z", "msg_y", "msg_a"]
        assert archive.db.execute(last).fetchone() == ("msg_a", 3)
        assert archive.raw.thread_objects("thread_1")["messages"][1]["status"] == "incomplete"
        assert [r.thread_id for r in thread_tallies(archive) if r.messages != r.messages_seen] == []


def test_merge_keeps_each_shard_s_order(tmp_path: Path) -> None:
    for name, tid in (("one.db", "thread_1"), ("two.db", "thread_2")):
        with Archive.create(tmp_path / name) as shard:
            shard.work.add([(tid, {})])
            rows = [message(f"msg_{tid}_z", tid, T), message(f"msg_{tid}_a", tid, T)]
            shard.raw.store_thread(ThreadResult(tid, "done", thread(tid), rows, messages_seen=2))
    with Archive.create(tmp_path / "all.db") as merged:
        merge_from(merged, tmp_path / "one.db")
        merge_from(merged, tmp_path / "two.db")
        merge_from(merged, tmp_path / "one.db")  # idempotent, order included
        assert message_ids(merged, "thread_1") == ["msg_thread_1_z", "msg_thread_1_a"]
        assert message_ids(merged, "thread_2") == ["msg_thread_2_z", "msg_thread_2_a"]


def test_an_old_archive_gets_positions_from_its_stored_order_and_a_note(tmp_path: Path) -> None:
    from migrator.archive.schema import ORDER_NOTE  # (imported here so the module loads on older code)

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS.apply(Database(conn), stop_before=["m005_add_list_positions"])
    for mid, tid in (("msg_b", "thread_tied"), ("msg_a", "thread_tied"), ("msg_c", "thread_plain")):
        obj = message(mid, tid, T)
        conn.execute(
            "insert into messages(id, thread_id, run_id, created_at, raw, hash) values (?, ?, null, ?, ?, ?)",
            [mid, tid, T, dumps(obj), object_hash(obj)],
        )
        conn.execute("insert or ignore into threads(id, created_at, raw, hash) values (?, ?, ?, ?)",
                     [tid, T, dumps(thread(tid)), object_hash(thread(tid))])  # fmt: skip
        conn.execute(
            "insert or ignore into work(thread_id, status, messages_seen) values (?, 'done', 0)", [tid]
        )
    conn.execute(
        "update work set messages_seen = (select count(*) from messages m where m.thread_id = work.thread_id)"
    )
    conn.close()
    with Archive.open(path, writer="test") as archive:
        assert message_ids(archive, "thread_tied") == ["msg_a", "msg_b"]  # the old order, (created_at, id)
        positions = archive.db.execute("select id, position from messages order by id").fetchall()
        assert positions == [("msg_a", 0), ("msg_b", 1), ("msg_c", 0)]
        note = archive.get_meta(ORDER_NOTE)
        assert note["threads"] == 1 and "ordered by id" in note["detail"]
        report = verify_archive(archive)
        finding = report.checks["order_ties_ambiguous"]
        assert finding.count == 1 and "1 thread(s)" in finding.findings[0].message
        assert not finding.failed(strict=False) and finding.failed(strict=True)


# -- the converter: list order breaks ties, never ids ---------------------------------------------


def test_same_second_turns_follow_the_message_list() -> None:
    """Two turns in one second: the second user message answers the first run, not precedes it."""
    tid = "thread_1"
    messages = [
        message("msg_u1", tid, T),
        message("msg_a1", tid, T, "assistant", run_id="run_z"),
        message("msg_u2", tid, T),
        message("msg_a2", tid, T, "assistant", run_id="run_a"),
    ]
    timeline, _ = order_thread(messages, [run("run_z", tid, T), run("run_a", tid, T)], [])
    assert [entry.obj["id"] for entry in timeline] == ["msg_u1", "msg_a1", "msg_u2", "msg_a2"]
    # A run that left no message: a message of its second comes first (a run reads what is there).
    timeline, _ = order_thread([message("msg_u", tid, T)], [run("run_failed", tid, T, "failed")], [])
    assert [(e.kind, e.obj["id"]) for e in timeline] == [("message", "msg_u")]


def test_the_converter_takes_ties_in_list_order() -> None:
    tid = "thread_1"
    listed = [message("msg_b", tid, T), message("msg_a", tid, T, "assistant"), message("msg_c", tid, T)]
    bundle = ThreadBundle(thread(tid), listed, [], [], {}, {})
    assert [s for s in convert_thread(bundle)["sources"]] == ["msg_b", "msg_a", "msg_c"]
    swapped = ThreadBundle(thread(tid), [listed[1], listed[0], listed[2]], [], [], {}, {})
    assert [s for s in convert_thread(swapped)["sources"]] == ["msg_a", "msg_b", "msg_c"]


# -- dumps: file and line order in, the archive's order out ---------------------------------------


def _write_lines(path: Path, values: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(v) + b"\n" for v in values))
    return path


def test_a_dump_keeps_its_file_order_and_reads_newest_first_pages_backwards(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    # As the API answers by default (order=desc): newest first. The true order is b, a, c.
    desc = [
        message("msg_c", "thread_1", T + 2),
        message("msg_a", "thread_1", T),
        message("msg_b", "thread_1", T),
    ]
    (dump / "t1").mkdir(parents=True)
    (dump / "t1" / "thread.json").write_bytes(orjson.dumps(thread("thread_1")))
    (dump / "t1" / "messages.json").write_bytes(
        orjson.dumps(
            {"object": "list", "data": desc, "first_id": "msg_c", "last_id": "msg_b", "has_more": False}
        )
    )
    # JSONL in the order they happened, one second, ids against it.
    _write_lines(
        dump / "t2.jsonl",
        [thread("thread_2"), message("msg_z", "thread_2", T), message("msg_y", "thread_2", T)],
    )
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [dump])
        assert report.exit_code() == 0 and report.threads_done == 2
        assert message_ids(archive, "thread_1") == ["msg_b", "msg_a", "msg_c"]
        assert message_ids(archive, "thread_2") == ["msg_z", "msg_y"]
        # `migrate dump` writes that order (ascending), and reading it back keeps it.
        write_dump(archive, tmp_path / "out")
        written = orjson.loads((tmp_path / "out" / "threads" / "thread_1" / "messages.json").read_bytes())
        assert [m["id"] for m in written["data"]] == ["msg_b", "msg_a", "msg_c"]
        with Archive.create(tmp_path / "copy.db") as copy:
            ingest_dump(copy, [tmp_path / "out"])
            assert message_ids(copy, "thread_1") == ["msg_b", "msg_a", "msg_c"]
            assert message_ids(copy, "thread_2") == ["msg_z", "msg_y"]


def _list(items: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"],
        "last_id": items[-1]["id"],
        "has_more": has_more,
    }


def test_a_dump_whose_last_message_page_says_has_more_stays_pending(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    pages = [
        _list([message("msg_1", "thread_1", T), message("msg_2", "thread_1", T + 1)], has_more=True),
        _list([message("msg_3", "thread_1", T + 2), message("msg_4", "thread_1", T + 3)], has_more=True),
    ]
    _write_lines(dump / "thread_1.jsonl", [thread("thread_1"), *pages])
    done = [
        thread("thread_2"),
        _list([message("msg_5", "thread_2", T)], has_more=True),
        _list([message("msg_6", "thread_2", T)], has_more=False),
    ]
    _write_lines(dump / "thread_2.jsonl", done)
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [dump])
        statuses = dict(archive.db.execute("select thread_id, status from work").fetchall())
        assert statuses == {"thread_1": "pending", "thread_2": "done"}
        assert [(f.code, f.entity_id) for f in report.findings] == [("dump_page_has_more", "thread_1")] * 2
        assert report.exit_code() == 1


def test_export_from_a_dump_exits_1_when_a_thread_is_left_pending(tmp_path: Path, capsys) -> None:
    dump = _write_lines(
        tmp_path / "dump" / "t.jsonl",
        [thread("thread_1"), message("msg_1", "thread_1", T), thread("thread_2")],
    )
    assert cli("export", tmp_path / "a.db", "--from-dump", dump) == 1
    err = capsys.readouterr().err
    assert "threads done 1, pending 1" in err and "dump_messages_missing thread_2" in err


def test_a_dump_without_any_assistants_object_exits_1_and_leaves_no_archive(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.md").write_text("not a dump")
    (folder / "empty.json").write_text("[]")
    (folder / "page.json").write_text('{"object": "list", "data": [], "has_more": false}')
    assert cli("export", tmp_path / "a.db", "--from-dump", folder) == 1
    assert "no Assistants API objects" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


# -- one bad character -----------------------------------------------------------------------------

# Half an emoji, as a byte-limited writer leaves it: a JSON escape orjson refuses.
BROKEN = b'"Refund please \\ud83d"'


def _broken_thread_routes(tid: str, items: bytes) -> dict[str, bytes]:
    return {
        f"/v1/threads/{tid}": orjson.dumps(thread(tid)),
        f"/v1/threads/{tid}/messages": lookalike_page(items),
        f"/v1/threads/{tid}/runs": lookalike_page([]),
    }


def test_a_lone_surrogate_costs_nothing_it_is_kept_and_the_session_says_so(tmp_path: Path, capsys) -> None:
    tid = "thread_u"
    ok = orjson.dumps(message("msg_ok", tid, T))
    bad = orjson.dumps(message("msg_bad", tid, T + 1, text="PLACEHOLDER")).replace(b'"PLACEHOLDER"', BROKEN)
    ids = tmp_path / "ids.txt"
    ids.write_text(tid + "\n")
    with serve(_broken_thread_routes(tid, b"[" + ok + b"," + bad + b"]")) as base_url:
        code = cli("export", tmp_path / "a.db", "--threads", ids, "--base-url", base_url, "--only", "threads")
    assert code == 0, capsys.readouterr().err
    with Archive.open(tmp_path / "a.db") as archive:
        assert archive.work.counts()["done"] == 1
        raw = archive.db.execute("select raw from messages where id = 'msg_bad'").fetchone()[0]
        assert "Refund please \\ud83d" in raw  # what the source sent, escape and all
        record = orjson.loads(dict(archive.sessions.records())[tid])
    assert record["messages"][1]["content"] == "Refund please \ufffd"
    assert {"code": "invalid_unicode", "detail": "message msg_bad"} in record["warnings"]
    capsys.readouterr()
    assert cli("verify", tmp_path / "a.db") == 0, capsys.readouterr().out


def test_a_lone_surrogate_in_a_dump_is_read_and_round_trips(tmp_path: Path) -> None:
    line = orjson.dumps(message("msg_bad", "thread_1", T, text="PLACEHOLDER")).replace(
        b'"PLACEHOLDER"', BROKEN
    )
    dump = tmp_path / "dump" / "t.jsonl"
    dump.parent.mkdir()
    dump.write_bytes(orjson.dumps(thread("thread_1")) + b"\n" + line + b"\n")
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [dump])
        assert report.problems == [] and report.threads_done == 1
        write_dump(archive, tmp_path / "out")
        with Archive.create(tmp_path / "copy.db") as copy:
            assert ingest_dump(copy, [tmp_path / "out"]).problems == []
            assert copy.content_hash() == archive.content_hash()


def test_the_canonical_form_keeps_lone_surrogates_and_bad_bytes_as_escapes() -> None:
    from migrator.archive.canonical import loads

    obj = loads(b'{"b": "x\\ud83dy", "a": [1, 2.5, null, "\\ude00", "\\ud83d\\ude00"]}')
    assert obj == {"b": "x\ud83dy", "a": [1, 2.5, None, "\ude00", "\U0001f600"]}
    assert dumps(obj) == '{"b":"x\\ud83dy","a":[1,2.5,null,"\\ude00","😀"]}'
    assert canonical_json(obj) == '{"a":[1,2.5,null,"\\ude00","😀"],"b":"x\\ud83dy"}'.encode()
    assert loads(dumps(obj)) == obj
    assert loads(b'{"a": "\xff ok"}') == {"a": "\udcff ok"}  # a byte that is not UTF-8
    with pytest.raises(orjson.JSONDecodeError):
        loads(b'{"a": "\\ud83d", "b": NaN}')  # still JSON or nothing


# -- verify counts what the pages held, not what was kept -----------------------------------------


def test_verify_sees_an_object_the_source_served_but_the_export_could_not_keep(
    tmp_path: Path, capsys
) -> None:
    tid = "thread_v"
    nameless = dict(message("msg_x", tid, T + 1))
    del nameless["id"]  # a look-alike's item without an id: it cannot be stored
    items = orjson.dumps([message("msg_1", tid, T), nameless, message("msg_2", tid, T + 2)])
    ids = tmp_path / "ids.txt"
    ids.write_text(tid + "\n")
    with serve(_broken_thread_routes(tid, items)) as base_url:
        cli("export", tmp_path / "a.db", "--threads", ids, "--base-url", base_url, "--only", "threads")
    capsys.readouterr()
    assert cli("verify", tmp_path / "a.db") == 1
    out = capsys.readouterr().out
    assert "message_count_mismatch" in out and "2 messages stored, the source listed 3" in out


def test_verify_sees_an_object_a_dump_held_but_the_ingest_could_not_keep(tmp_path: Path, capsys) -> None:
    nameless = dict(message("msg_x", "thread_1", T + 1))
    del nameless["id"]
    page = _list(
        [message("msg_1", "thread_1", T), nameless, message("msg_2", "thread_1", T + 2)], has_more=False
    )
    dump = _write_lines(tmp_path / "dump" / "t.jsonl", [thread("thread_1"), page])
    cli("export", tmp_path / "a.db", "--from-dump", dump)
    capsys.readouterr()
    assert cli("verify", tmp_path / "a.db") == 1
    assert "2 messages stored, the source listed 3" in capsys.readouterr().out
