"""`migrate dump`: the archive written out as saved API JSON, and read back by `--from-dump` exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from test_ingest import MESSY, rows
from test_ingest_corpus import corpus, exported_archive, message, store_as_export, thread
from test_sandbox_support import schema_errors

from migrator.archive import Archive, Failure, ThreadResult
from migrator.cli import main
from migrator.convert import ConversionOptions
from migrator.dumps import ingest_dump, write_dump
from migrator.errors import UsageError
from migrator.sessions import build_sessions
from migrator.threadlist import read_thread_list

OPTIONS = ConversionOptions()


def sessions_jsonl(archive: Archive) -> bytes:
    build_sessions(archive, OPTIONS)
    return b"".join(record + b"\n" for _, record in archive.sessions.records())


def round_trip(source: Archive, tmp_path: Path) -> Archive:
    """Dump `source`, ingest the dump into a new archive, and check both hold the same."""
    expected_sessions = sessions_jsonl(source)
    summary = write_dump(source, tmp_path / "dump")
    assert summary.problems == []
    copy = Archive.create(tmp_path / "copy.db")
    report = ingest_dump(copy, [tmp_path / "dump"])  # nothing else: no --files-dir
    assert report.problems == [], report.problems
    assert report.files_ignored == 0
    assert copy.content_hash() == source.content_hash()
    assert sessions_jsonl(copy) == expected_sessions
    for table in ("file_refs", "blobs"):
        assert rows(copy, table) == rows(source, table), table
    work = "select thread_id, status, extra, messages_seen, runs_seen, steps_seen from work order by 1"
    assert copy.db.execute(work).fetchall() == source.db.execute(work).fetchall()
    return copy


def test_round_trip(tmp_path: Path) -> None:
    with exported_archive(tmp_path / "a.db") as source:
        copy = round_trip(source, tmp_path)
        assert copy.counts()["sessions"] == 4
        records = [orjson.loads(r) for _, r in copy.sessions.records()]
        # The thread list carried the metadata of each thread (from the user's --threads JSONL).
        assert {r["thread_id"]: r["metadata"].get("tier") for r in records}["thread_tools"] == "gold"
        # The downloaded image made it back as bytes (inlined), the manual as parsed text.
        files = {f["file_id"]: f["content"] for r in records for f in r["files"]}
        assert files == {"file-img": "downloaded", "file-manual": "parsed_text"}
        copy.close()


def test_layout(tmp_path: Path) -> None:
    with exported_archive(tmp_path / "a.db") as source:
        summary = write_dump(source, tmp_path / "dump")
    root = tmp_path / "dump"
    assert dict(summary.written) == {
        "assistant": 1,
        "thread": 4,
        "thread.message": 6,
        "thread.run": 3,
        "thread.run.step": 2,
        "vector_store": 1,
        "vector_store.file": 1,
        "file": 4,
        "file_bytes": 2,
        "parsed_texts": 1,
    }
    manifest = orjson.loads((root / "migrate-dump.json").read_bytes())
    assert manifest["format"] == "migrator.dump/v1" and manifest["files_dir"] == "files"
    assert sorted(p.name for p in (root / "threads").iterdir()) == [
        "thread_empty",
        "thread_files",
        "thread_plain",
        "thread_tools",
    ]
    messages = orjson.loads((root / "threads" / "thread_tools" / "messages.json").read_bytes())
    assert [m["id"] for m in messages["data"]] == ["msg_2a", "msg_2b"]
    assert {k: v for k, v in messages.items() if k != "data"} == {
        "object": "list",
        "first_id": "msg_2a",
        "last_id": "msg_2b",
        "has_more": False,
        "thread_id": "thread_tools",
        "item_object": "thread.message",
    }
    empty = orjson.loads((root / "threads" / "thread_empty" / "messages.json").read_bytes())
    assert (empty["data"], empty["thread_id"]) == ([], "thread_empty")
    assert not (root / "threads" / "thread_empty" / "runs.json").exists()
    assert (root / "files" / "file-img").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in (root / "files").iterdir()) == ["file-img", "file-spare"]
    text = orjson.loads((root / "parsed_text" / "file-manual.json").read_bytes())
    assert schema_errors("VectorStoreFileContentResponse", text) == []
    assert text["data"][0]["text"].endswith("Ünïcødé ✓")
    assert [orjson.loads(line)["id"] for line in (root / "files.jsonl").read_bytes().splitlines()] == [
        "file-code",
        "file-img",
        "file-manual",
        "file-spare",
    ]
    # The thread list is a --threads file as the export reads it.
    entries = {e.thread_id: e.extra for e in read_thread_list(root / "threads.jsonl")}
    assert entries["thread_tools"] == {"tier": "gold", "user_id": "u2"}
    assert (root.stat().st_mode & 0o777) == 0o700  # private conversations


def test_the_same_archive_dumps_to_the_same_bytes(tmp_path: Path) -> None:
    with exported_archive(tmp_path / "a.db") as source:
        write_dump(source, tmp_path / "one")
        write_dump(source, tmp_path / "two")

    def tree(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_ids_that_are_not_safe_names_round_trip(tmp_path: Path) -> None:
    evil_thread, evil_file = "thread/../../escape", "CON"
    data = corpus()
    t = {
        "thread": thread(evil_thread),
        "messages": [
            message(
                "msg_evil",
                evil_thread,
                "user",
                "look",
                at=90,
                content=[{"type": "image_file", "image_file": {"file_id": evil_file, "detail": "auto"}}],
            )
        ],
        "runs": [],
        "steps": [],
    }
    data["threads"].append(t)
    data["extra"][evil_thread] = {}
    png = next(content for meta, content in data["files"] if meta["id"] == "file-img")
    data["files"].append((dict(data["files"][0][0], id=evil_file), png))
    with Archive.create(tmp_path / "a.db") as source:
        store_as_export(source, data)
        copy = round_trip(source, tmp_path)
        names = sorted(p.name for p in (tmp_path / "dump" / "threads").iterdir())
        assert len(names) == 5 and all("/" not in n and not n.startswith(".") for n in names)
        assert [p.name for p in (tmp_path / "dump" / "files").iterdir() if p.name.startswith("id-sha256-")]
        assert not (tmp_path / "escape").exists()
        assert copy.files.record(evil_file)[1].kind == "downloaded"
        copy.close()


def test_an_unfinished_thread_stays_unfinished(tmp_path: Path) -> None:
    """A thread the export could not finish keeps no session after the round trip either."""
    with exported_archive(tmp_path / "a.db") as source:
        source.work.add([("thread_broken", {}), ("thread_gone", {})])
        broken = ThreadResult(
            "thread_broken",
            "failed",
            thread=thread("thread_broken"),
            messages=[message("msg_b1", "thread_broken", "user", "partial", at=5)],
            failure=Failure("thread", "thread_broken", "TransientError", "503 after retries", 503),
        )
        source.raw.store_thread(broken)
        source.raw.store_thread(ThreadResult("thread_gone", "missing"))
        summary = write_dump(source, tmp_path / "dump")
        assert dict(summary.threads_without_rows) == {"missing": 1}
        page = orjson.loads((tmp_path / "dump" / "threads" / "thread_broken" / "messages.json").read_bytes())
        assert page["has_more"] is True  # "there may be more" in the API's own words
        copy = Archive.create(tmp_path / "copy.db")
        report = ingest_dump(copy, [tmp_path / "dump"])
        assert copy.content_hash() == source.content_hash()
        assert sessions_jsonl(copy) == sessions_jsonl(source)
        status = copy.db.execute("select status from work where thread_id = 'thread_broken'").fetchone()[0]
        assert status == "pending"
        assert [f.code for f in report.findings if f.entity_id == "thread_broken"] == ["dump_page_has_more"]
        copy.close()


def test_naming_the_dump_s_own_bytes_folder_changes_nothing(tmp_path: Path) -> None:
    with exported_archive(tmp_path / "a.db") as source:
        write_dump(source, tmp_path / "dump")
        with Archive.create(tmp_path / "copy.db") as copy:
            report = ingest_dump(copy, [tmp_path / "dump"], tmp_path / "dump" / "files")
            assert report.problems == [] and report.loose_files_matched == 2
            assert copy.content_hash() == source.content_hash()


def test_a_messy_ingest_round_trips_too(tmp_path: Path) -> None:
    """Orphans (messages without a thread, files of an absent store) are dumped and come back."""
    with Archive.create(tmp_path / "a.db") as source:
        ingest_dump(source, [MESSY], MESSY / "bytes")
        copy = round_trip(source, tmp_path)
        copy.close()


def test_dump_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "keep.txt").write_text("mine")
    with exported_archive(tmp_path / "a.db") as source, pytest.raises(UsageError, match="is not empty"):
        write_dump(source, tmp_path / "dump")
    assert [p.name for p in (tmp_path / "dump").iterdir()] == ["keep.txt"]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exported_archive(tmp_path / "a.db").close()
    assert main(["dump", str(tmp_path / "a.db"), str(tmp_path / "dump"), "--json"]) == 0
    document: dict[str, Any] = orjson.loads(capsys.readouterr().out)
    assert document["written"]["thread"] == 4 and document["problems"] == []
    assert main(["dump", str(tmp_path / "a.db"), str(tmp_path / "dump")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["dump", str(tmp_path / "none.db"), str(tmp_path / "d2")]) == 2
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "d2").exists()
    with Archive.open(tmp_path / "a.db", writer="test") as damaged:
        damaged.db.execute("delete from blobs where mime = 'image/png'")  # bytes lost after the export
    assert main(["dump", str(tmp_path / "a.db"), str(tmp_path / "d3")]) == 1
    assert "file-img: content downloaded recorded, but its blob is gone" in capsys.readouterr().err


def test_sandbox_export_round_trip(tmp_path: Path, sandbox: Any) -> None:
    """The issue's proof: a real export from the sandbox, `migrate dump`, ingest: nothing changes."""
    export = pytest.importorskip("migrator.export", reason="needs the export command (migrator/export.py)")
    from migrator.source import SourceSettings
    from migrator.threadlist import ThreadEntry

    entries = [ThreadEntry(tid, {"user_id": f"u{i % 3}"}) for i, tid in enumerate(sandbox.thread_ids())]
    with Archive.create(tmp_path / "a.db") as source:
        settings = SourceSettings(base_url=sandbox.base_url, api_key="sandbox-key")
        summary = export.run_export(source, entries, settings, export.ExportOptions(conversion=OPTIONS))
        assert summary.clean, summary.as_dict()
        counts = source.counts()
        assert counts["threads_done"] == len(entries) and counts["run_steps"]
        assert counts["files_downloaded"] and counts["files_parsed_text"] and counts["files_missing"]
        copy = round_trip(source, tmp_path)
        assert copy.counts()["sessions"] == len(entries)
        copy.close()
