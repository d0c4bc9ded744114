"""`ingest_dump`: saved Assistants API JSON into the archive, exactly as an export would store it."""

from __future__ import annotations

import gzip
import os
import random
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_ingest_corpus import PDF, PNG, corpus, exported_archive, file_object

from migrator.archive import Archive
from migrator.cli import main
from migrator.dumps import ingest_dump
from migrator.dumps.reader import read_lines
from migrator.errors import BadInputError

MESSY = Path(__file__).parent.parent / "fixtures" / "dumps" / "messy"

_COMPARED = {
    "assistants": "id, created_at, raw, hash",
    "threads": "id, created_at, raw, hash",
    "messages": "id, thread_id, run_id, created_at, raw, hash",
    "runs": "id, thread_id, assistant_id, created_at, status, has_tools, raw, hash",
    "run_steps": "id, thread_id, run_id, created_at, raw, hash",
    "vector_stores": "id, created_at, raw, hash",
    "vector_store_files": "vector_store_id, id, created_at, raw, hash",
    "files": "id, raw, hash, content, blob_sha256, text_from_vector_store",
    "blobs": "sha256, bytes, mime, data",
    "file_refs": "file_id, owner_kind, owner_id",
    "work": "thread_id, status, attempts, messages_seen, runs_seen, steps_seen, last_message_id, last_run_id",
}


def rows(archive: Archive, table: str) -> list[tuple[Any, ...]]:
    return archive.db.execute(f"select {_COMPARED[table]} from {table} order by 1, 2, 3").fetchall()


def page(items: list[dict[str, Any]], *, has_more: bool = False, **hints: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
        **hints,
    }


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(value))
    return path


def write_lines(path: Path, values: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(v) + b"\n" for v in values))
    return path


# -- the hand-made messy dump -------------------------------------------------------------------


def test_messy_dump(tmp_path: Path) -> None:
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [MESSY], MESSY / "bytes")

        assert dict(report.stored) == {
            "assistant": 1,
            "thread": 5,
            "thread.message": 9,
            "thread.run": 2,
            "thread.run.step": 1,
            "vector_store": 1,
            "vector_store.file": 2,
            "file": 4,
            "vector_store.file_content.page": 1,
        }
        assert dict(report.duplicates) == {"thread.message": 1}  # mixed.jsonl line 6
        assert dict(report.unknown_types) == {"fine_tuning.job": 1}
        problems = [(Path(p.path).relative_to(MESSY).as_posix(), p.line, p.reason) for p in report.problems]
        assert problems == [
            ("mixed.jsonl", 7, "unknown object type 'fine_tuning.job'"),
            ("mixed.jsonl", 8, "not valid JSON, the file looks cut short (unexpected end of data)"),
            ("mixed.jsonl", 9, "no `object` field: not an Assistants API object"),
            (
                "nameless-content.json",
                None,
                "a parsed-text page that does not say which file it is (no file_id)",
            ),
            ("truncated.json", 14, "not valid JSON, the file looks cut short (unexpected end of data)"),
        ]
        assert report.exit_code() == 1
        assert {(f.code, f.entity_id) for f in report.findings} == {
            ("thread_synthesized", "thread_beta"),  # its messages alone: the thread is made from them
            ("dump_messages_missing", "thread_gamma"),
            ("dump_page_has_more", "thread_delta"),
            ("runs_missing", "thread_eps"),
            ("steps_missing", "thread_eps"),
            ("vector_store_missing", "vs_other"),
            ("file_object_missing", "file-orphan"),
            ("file_object_missing", "file-x"),
            ("file_content_missing", "file-gone"),
        }
        assert (report.files_read, report.files_ignored, report.loose_files_matched) == (12, 1, 2)

        statuses = dict(archive.db.execute("select thread_id, status from work").fetchall())
        assert statuses == {
            "thread_alpha": "done",
            "thread_eps": "done",
            "thread_ps": "done",  # UTF-16 with a BOM
            "thread_beta": "done",
            "thread_gamma": "pending",
            "thread_delta": "pending",
        }
        assert (report.threads_done, report.threads_pending) == (4, 2)
        # Messages without their thread object are kept, not lost, and the thread is made from them.
        assert [m["id"] for m in orjson_rows(archive, "messages", "thread_beta")] == [
            "msg_beta_1",
            "msg_beta_2",
        ]
        beta = orjson.loads(archive.raw.of("threads", "thread_beta"))
        assert beta["x_migrate_synthesized"] and beta["metadata"] == {}
        assert beta["created_at"] == min(
            m["created_at"] for m in orjson_rows(archive, "messages", "thread_beta")
        )
        assert archive.raw.assistants()["asst_A"]["instructions"].endswith("🙂")  # read through the BOM
        anomalies = {(a[1], a[2]) for a in archive.db.execute("select * from anomalies")}
        assert anomalies == {
            ("thread_delta", "dump_page_has_more"),
            ("thread_gamma", "dump_messages_missing"),
        }

        files = {f: archive.files.record(f) for f in ("file-photo", "file-manual", "file-text", "file-gone")}
        assert files["file-photo"][1].data == PNG  # named by id (with an extension)
        assert files["file-manual"][1].data == PDF  # named by file name, size agrees
        assert files["file-text"][1].kind == "parsed_text"
        assert files["file-text"][1].data == b"Q: Is it on? A: Check the plug."
        assert files["file-text"][1].vector_store_id == "vs_main"
        assert files["file-gone"][1].kind == "missing"
        assert archive.files.refs_of("thread_alpha") == ["file-photo"]
        assert archive.files.refs_of("thread_eps") == ["file-orphan"]
        digest = archive.content_hash()

        # Idempotent: the same dump again stores nothing new and changes nothing.
        again = ingest_dump(archive, [MESSY], MESSY / "bytes")
        assert dict(again.stored) == {}
        assert sum(again.duplicates.values()) == sum(report.stored.values()) + 1
        assert archive.content_hash() == digest
        assert dict(archive.db.execute("select thread_id, status from work").fetchall()) == statuses


def orjson_rows(archive: Archive, table: str, thread_id: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(r[0])
        for r in archive.db.execute(f"select raw from {table} where thread_id = ? order by id", [thread_id])
    ]


def test_messy_dump_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["export", str(tmp_path / "a.db"), "--from-dump", str(MESSY), "--files-dir", str(MESSY / "bytes")]
    assert main([*args, "--json"]) == 1
    document = orjson.loads(capsys.readouterr().out)
    assert document["problems_total"] == 5 and document["threads_done"] == 4
    assert document["sessions"] == 4
    assert main(args) == 1  # again, for a person: idempotent, the same skipped lines
    err = capsys.readouterr().err
    assert "skipped " + str(MESSY / "mixed.jsonl") + ":8: not valid JSON, the file looks cut short" in err
    assert "already held (duplicates): " in err


# -- the same rows as an export ------------------------------------------------------------------


def api_dump(root: Path, data: dict[str, Any], *, shuffle: int | None = None) -> tuple[Path, Path]:
    """The corpus as a script would have saved it from the API: no manifest, no thread list."""
    objects: list[Any] = list(data["assistants"])
    for store, files in data["vector_stores"]:
        objects += [store, page(files)]
    for t in data["threads"]:
        objects.append(t["thread"])
        # The API lists newest first by default; an empty page needs the thread_id hint.
        objects.append(
            page(list(reversed(t["messages"])), thread_id=t["thread"]["id"], item_object="thread.message")
        )
        objects += [*t["runs"], *t["steps"]]
    bytes_dir = root / "bytes"
    bytes_dir.mkdir(parents=True)
    for meta, content in data["files"]:
        objects.append(meta)
        if content.kind == "downloaded":
            (bytes_dir / meta["id"]).write_bytes(content.data)
        elif content.kind == "parsed_text":
            text = content.data.decode()
            parts = [{"type": "text", "text": text[:10]}, {"type": "text", "text": text[10:]}]
            page_obj = {"object": "vector_store.file_content.page", "data": parts, "has_more": False}
            objects.append({**page_obj, "next_page": None, "file_id": meta["id"], "vector_store_id": "vs_1"})
    if shuffle is not None:
        random.Random(shuffle).shuffle(objects)
    lines = objects[: len(objects) // 2]
    write_lines(root / "saved" / "part1.jsonl", lines)
    with gzip.open(root / "saved" / "part2.ndjson.gz", "wb") as fh:
        fh.write(b"".join(orjson.dumps(o) + b"\n" for o in objects[len(objects) // 2 : -3]))
    write(root / "saved" / "deep" / "rest.json", objects[-3:])
    return root / "saved", bytes_dir


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_ingest_stores_exactly_what_an_export_stores(tmp_path: Path, seed: int | None) -> None:
    saved, bytes_dir = api_dump(tmp_path / "dump", corpus(), shuffle=seed)
    with (
        exported_archive(tmp_path / "export.db") as exported,
        Archive.create(tmp_path / "ingest.db") as ingested,
    ):
        report = ingest_dump(ingested, [saved], bytes_dir)
        assert report.problems == []
        assert report.threads_done == 4
        for table in _COMPARED:
            assert rows(ingested, table) == rows(exported, table), table
        assert ingested.content_hash() == exported.content_hash()


def test_a_thread_becomes_done_when_a_later_dump_brings_its_messages(tmp_path: Path) -> None:
    t = corpus()["threads"][0]
    first = write(tmp_path / "one" / "thread.json", t["thread"])
    second = write_lines(tmp_path / "two" / "rest.jsonl", [*t["messages"], *t["runs"]])
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [first])
        assert [f.code for f in report.findings] == ["dump_messages_missing"]
        assert archive.work.counts()["pending"] == 1
        report = ingest_dump(archive, [second])
        assert report.threads_done == 1 and report.findings == []
        assert archive.work.counts() == {"pending": 0, "done": 1, "failed": 0, "missing": 0}
        # The finding of the first ingest is withdrawn now that the messages are in.
        assert archive.db.execute("select count(*) from anomalies").fetchone()[0] == 0
        work = archive.db.execute("select messages_seen, runs_seen, last_message_id from work").fetchone()
        assert work == (2, 1, "msg_1b")


def test_new_rows_take_done_away_until_the_thread_is_settled(tmp_path: Path) -> None:
    """A kill between writing rows and settling must not leave a done thread with part of its rows."""
    from migrator.archive import LooseObject

    with exported_archive(tmp_path / "a.db") as archive:
        extra = dict(corpus()["threads"][0]["messages"][0], id="msg_late", created_at=1_700_000_099)
        assert archive.loose.store([LooseObject("messages", extra, "thread_plain")]) == ["new"]
        assert archive.db.execute("select status from work where thread_id = 'thread_plain'").fetchone()[
            0
        ] == ("pending")
        # An identical object changes nothing, so a re-read of old files does not undo a verdict.
        same = corpus()["threads"][1]["messages"][0]
        assert archive.loose.store([LooseObject("messages", same, "thread_tools")]) == ["same"]
        assert (
            archive.db.execute("select status from work where thread_id = 'thread_tools'").fetchone()[0]
            == "done"
        )


# -- reading: formats, encodings, damage ---------------------------------------------------------


def test_jsonl_is_streamed_not_read_whole(tmp_path: Path) -> None:
    """The first line is read and handed on while the writer has not even written the second."""
    fifo = tmp_path / "live.jsonl"
    os.mkfifo(fifo)
    first_seen = threading.Event()
    waited: list[bool] = []

    def writer() -> None:
        with open(fifo, "wb") as fh:
            fh.write(orjson.dumps({"object": "thread", "id": "thread_1"}) + b"\n")
            fh.flush()
            waited.append(first_seen.wait(10))
            fh.write(orjson.dumps({"object": "thread", "id": "thread_2"}) + b"\n")

    feeder = threading.Thread(target=writer)
    feeder.start()
    ids = []
    for doc in read_lines(fifo, lambda *problem: pytest.fail(str(problem))):
        ids.append(doc.value["id"])
        first_seen.set()
    feeder.join()
    assert ids == ["thread_1", "thread_2"]
    assert waited == [True]  # the reader handed on line 1 before line 2 existed


def test_a_cut_short_gzip_keeps_the_lines_before_the_cut(tmp_path: Path) -> None:
    threads = [{"object": "thread", "id": f"thread_{i:04d}", "created_at": i} for i in range(2000)]
    data = gzip.compress(b"".join(orjson.dumps(t) + b"\n" for t in threads))
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "cut.jsonl.gz"])
        kept = report.stored["thread"]
        assert 0 < kept < 2000
        assert [(p.line, p.reason.split(" (")[0]) for p in report.problems] == [
            (kept + 1, "unreadable from here on")
        ]
        ids = [r[0] for r in archive.db.execute("select id from threads order by id")]
        assert ids == [t["id"] for t in threads[:kept]]


def test_a_json_file_holding_jsonl_is_read_line_by_line(tmp_path: Path) -> None:
    t = corpus()["threads"][0]
    path = write_lines(tmp_path / "misnamed.json", [t["thread"], *t["messages"], *t["runs"]])
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [path])
        assert report.problems == []
        assert report.threads_done == 1


def test_objects_that_do_not_say_where_they_belong_are_skipped(tmp_path: Path) -> None:
    t = corpus()["threads"][0]
    orphan = {k: v for k, v in t["messages"][0].items() if k != "thread_id"}
    hinted = {k: v for k, v in t["messages"][1].items() if k != "thread_id"}
    path = write_lines(
        tmp_path / "x.jsonl",
        [
            t["thread"],
            orphan,
            page([hinted], thread_id="thread_plain"),
            {"object": "thread"},
            42,
            [[[[[[{}]]]]]],
        ],
    )
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [path])
        assert [(p.line, p.reason) for p in report.problems] == [
            (2, "thread.message msg_1a does not say its thread_id"),
            (4, "a thread without an id"),
            (5, "a JSON int, not an API object"),
            (6, "item [0][0][0][0][0]: nested deeper than any API response"),
        ]
        # The page's thread_id places a message that lacks its own.
        assert archive.db.execute("select thread_id from messages").fetchall() == [("thread_plain",)]


def test_parsed_text_pages_join_in_order_and_a_repeated_page_counts_once(tmp_path: Path) -> None:
    meta = file_object("file-doc", "doc.pdf", 100)

    def text_page(text: str) -> dict[str, Any]:
        return {
            "object": "vector_store.file_content.page",
            "file_id": "file-doc",
            "vector_store_id": "vs_b",
            "data": [{"type": "text", "text": text}],
            "has_more": True,
            "next_page": "p2",
        }

    other_store = dict(text_page("from the other store"), vector_store_id="vs_a")
    path = write_lines(tmp_path / "p.jsonl", [text_page("one "), meta, text_page("two"), text_page("one ")])
    write(tmp_path / "q.json", other_store)
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [path])
        assert report.duplicates["vector_store.file_content.page"] == 1
        assert archive.files.record("file-doc")[1].data == b"one two"
        # As the export does: the text of the first vector store (in id order) holding the file.
        ingest_dump(archive, [path, tmp_path / "q.json"])
        _, content = archive.files.record("file-doc")
        assert (content.data, content.vector_store_id) == (b"from the other store", "vs_a")


def test_parsed_texts_wait_beside_the_archive_and_a_killed_ingests_are_removed(tmp_path: Path) -> None:
    """A writer spools parsed text pages in `ARCHIVE.ingest`: what a killed ingest left there (a
    temporary folder would keep it for good) goes with the next ingest of that archive."""
    page = {
        "object": "vector_store.file_content.page",
        "file_id": "file-doc",
        "vector_store_id": "vs_a",
        "data": [{"type": "text", "text": "the text"}],
    }
    path = write_lines(tmp_path / "p.jsonl", [page, file_object("file-doc", "doc.pdf", 100)])
    spool = tmp_path / "a.db.ingest"
    spool.mkdir()
    (spool / "0").write_bytes(b"left by an ingest killed with -9")
    seen_while_reading: list[dict[str, bytes]] = []
    modes: list[int] = []
    with Archive.create(tmp_path / "a.db", writer="export") as archive:

        def progress(_p: Any) -> None:
            if spool.is_dir():
                seen_while_reading.append({f.name: f.read_bytes() for f in spool.iterdir()})
                modes.append(spool.stat().st_mode & 0o777)

        ingest_dump(archive, [path], progress=progress)
        assert archive.files.record("file-doc")[1].data == b"the text"  # not the leftover's bytes
    assert {"0": b"the text"} in seen_while_reading  # its own spool: the leftover's file was gone
    assert set(modes) == {0o700}  # private, as the archive is
    assert not spool.exists()
    # Something of the user's under that name is never touched: the text waits in a temporary folder.
    spool.write_text("mine")
    with Archive.open(tmp_path / "a.db", writer="export") as archive:
        ingest_dump(archive, [path])
    assert spool.read_text() == "mine"
    spool.unlink()
    (spool / "notes").mkdir(parents=True)
    with Archive.open(tmp_path / "a.db", writer="export") as archive:
        ingest_dump(archive, [path])
    assert (spool / "notes").is_dir()


# -- loose file bytes ----------------------------------------------------------------------------


def test_loose_bytes_are_matched_safely(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    (loose / "sub").mkdir(parents=True)
    (loose / "file-id1").write_bytes(b"by id")
    (loose / "sub" / "report.txt").write_bytes(b"by name")
    (loose / "twice.txt").write_bytes(b"12345")
    (loose / "sub" / "twice.txt").write_bytes(b"54321")
    (loose / "wrong-size.bin").write_bytes(b"xx")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside")
    (loose / "linked.txt").symlink_to(outside)
    metas = [
        file_object("file-id1", "whatever.bin", 5),
        file_object("file-name", "report.txt", 7),
        file_object("file-twice", "twice.txt", 5),
        file_object("file-size", "wrong-size.bin", 3),
        file_object("file-link", "linked.txt", 7),
        file_object("file-evil", "../secret.txt", 7),
    ]
    path = write(tmp_path / "files.json", page(metas))
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [path], loose)
        content = {m["id"]: archive.files.record(m["id"])[1] for m in metas}
        assert content["file-id1"].data == b"by id"
        assert content["file-name"].data == b"by name"
        for unmatched in ("file-twice", "file-size", "file-link", "file-evil"):
            assert content[unmatched].kind == "missing", unmatched
        reasons = sorted(p.reason for p in report.problems)
        assert reasons == [
            "bytes not used for file-size: 'wrong-size.bin' is not the bytes of file-size: its size is not 3 bytes",
            "bytes not used for file-twice: 2 saved files are named 'twice.txt'; cannot tell which is file-twice",
        ]
        assert report.loose_files_matched == 2


# -- unusable input ------------------------------------------------------------------------------


def test_a_path_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    with Archive.create(tmp_path / "a.db") as archive:
        with pytest.raises(BadInputError, match="nope: no such file or folder"):
            ingest_dump(archive, [tmp_path / "nope"])
        with pytest.raises(BadInputError) as raised:
            ingest_dump(archive, [tmp_path / "nope", tmp_path / "nada", MESSY])
        assert raised.value.message == "2 --from-dump paths do not exist"
        assert len(raised.value.problems) == 2
        with pytest.raises(BadInputError, match="--files-dir must be an existing folder"):
            ingest_dump(archive, [MESSY], tmp_path / "nope")
        assert archive.counts()["threads"] == 0  # nothing was read before the refusal


def test_a_path_that_does_not_exist_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(tmp_path / "a.db"), "--from-dump", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines() == [
        f"error: {tmp_path / 'nope'}: no such file or folder (--from-dump takes saved API JSON files or folders)"
    ]


def test_an_object_saved_again_batches_later_into_an_empty_archive_is_found_held(tmp_path: Path) -> None:
    """An empty archive's tables are not looked up for keys the ingest never stored (a filter of the
    keys it did); a message saved twice, thousands of objects apart, must still be found the second
    time: once unchanged (a duplicate), once edited (two versions, the newer current)."""
    dump = tmp_path / "dump"
    dump.mkdir()

    def message(i: int, text: str = "hi", created: int = 1_700_000_000) -> dict[str, Any]:
        return {
            "id": f"msg_{i:05d}",
            "object": "thread.message",
            "created_at": created,
            "thread_id": f"thread_{i % 50:02d}",
            "role": "user",
            "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        }

    lines = [orjson.dumps(message(i)) for i in range(5000)]  # more than two batches
    (dump / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    again = [message(7), {**message(4321, "edited"), "metadata": {"edited": "yes"}}]
    (dump / "b.jsonl").write_bytes(b"\n".join(orjson.dumps(m) for m in again) + b"\n")
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [dump])
        assert report.stored["thread.message"] - report.replaced["thread.message"] == 5000
        assert report.duplicates["thread.message"] == 1
        assert report.replaced["thread.message"] + report.versions["thread.message"] == 1
        kept = archive.db.execute("select count(*) from messages").fetchone()[0]
        versions = archive.db.execute("select count(*) from raw_versions where id = 'msg_04321'").fetchone()[
            0
        ]
    assert kept == 5000 and versions == 2
