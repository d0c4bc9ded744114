"""Saved dumps in the shapes teams really hold, built from the sandbox's corpus over real HTTP.

The files here are written the way the tools and apps that made them wrote theirs (the
assistants-api-export layout, bare `messages.list` pages, a polling loop's run snapshots, zips), by
plain GET requests to the sandbox: nothing of migrate's own export goes into building them.
"""

from __future__ import annotations

import io
import json
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_dump import OPTIONS, sessions_jsonl

from migrator.archive import Archive
from migrator.cli import main
from migrator.dumps import ingest_dump, write_dump
from migrator.sessions import build_sessions


def get(sandbox: Any, path: str, **query: Any) -> Any:
    url = sandbox.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(
        url, headers={"Authorization": "Bearer sandbox-key", "OpenAI-Beta": "assistants=v2"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def pages(sandbox: Any, path: str, **query: Any) -> list[dict[str, Any]]:
    """Every page of a list, following `after` the way the API documents it."""
    out = [get(sandbox, path, **query)]
    while out[-1]["has_more"]:
        out.append(get(sandbox, path, **query, after=out[-1]["last_id"]))
    return out


def items(sandbox: Any, path: str, **query: Any) -> list[dict[str, Any]]:
    return [item for page in pages(sandbox, path, limit=100, order="asc", **query) for item in page["data"]]


def write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def records(archive: Archive) -> dict[str, dict[str, Any]]:
    build_sessions(archive, OPTIONS)
    return {tid: orjson.loads(r) for tid, r in archive.sessions.records()}


def live_export(sandbox: Any, path: Path) -> Archive:
    export = pytest.importorskip("migrator.export", reason="needs the export command")
    from migrator.source import SourceSettings
    from migrator.threadlist import ThreadEntry

    archive = Archive.create(path)
    settings = SourceSettings(base_url=sandbox.base_url, api_key="sandbox-key")
    entries = [ThreadEntry(tid, {}) for tid in sandbox.thread_ids()]
    summary = export.run_export(archive, entries, settings, export.ExportOptions(conversion=OPTIONS))
    assert summary.clean, summary.as_dict()
    return archive


# -- redwoodworksco/assistants-api-export -----------------------------------------------------------


def _file_ids(messages: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    """The files that exporter names: attachments, image parts, annotations, code-interpreter images."""
    found: set[str] = set()
    for m in messages:
        found.update(a["file_id"] for a in m.get("attachments") or [])
        for part in m["content"]:
            if part["type"] == "image_file":
                found.add(part["image_file"]["file_id"])
            for note in (part.get("text") or {}).get("annotations") or []:
                for key in ("file_citation", "file_path"):
                    if key in note:
                        found.add(note[key]["file_id"])
    for run in runs:
        for step in run["steps"]:
            for call in step["step_details"].get("tool_calls") or []:
                for output in (call.get("code_interpreter") or {}).get("outputs") or []:
                    if output["type"] == "image":
                        found.add(output["image"]["file_id"])
    return sorted(found)


def redwood_export(sandbox: Any, out: Path, thread_ids: list[str], *, gone: str | None = None) -> None:
    """The layout of assistants-api-export v1.0.0, as its README and script describe it."""
    assistants = items(sandbox, "/assistants")
    write(out / "assistants.json", assistants)
    failed = []
    for thread_id in thread_ids:
        record: dict[str, Any] = {
            "export_schema": "assistants-thread-export/v1",
            "thread_id": thread_id,
            "exported_at": "2026-08-20T10:00:00+00:00",
            "thread": None,
            "messages": [],
            "runs": [],
            "files": {},
            "errors": [],
        }
        if thread_id == gone:  # what it writes for a thread the API answers 404 for
            record["errors"].append(
                {"object": "thread", "id": thread_id, "error": "not_found_or_deleted", "detail": "HTTP 404"}
            )
            failed.append({"thread_id": thread_id, "error": "not_found_or_deleted"})
            write(out / "threads" / f"{thread_id}.json", record)
            continue
        record["thread"] = get(sandbox, f"/threads/{thread_id}")
        record["messages"] = items(sandbox, f"/threads/{thread_id}/messages")
        for run in items(sandbox, f"/threads/{thread_id}/runs"):
            run["steps"] = items(sandbox, f"/threads/{thread_id}/runs/{run['id']}/steps")
            record["runs"].append(run)
        for file_id in _file_ids(record["messages"], record["runs"]):
            record["files"][file_id] = get(sandbox, f"/files/{file_id}")
        write(out / "threads" / f"{thread_id}.json", record)
    write(
        out / "manifest.json",
        {
            "export_schema": "assistants-export-manifest/v1",
            "script_version": "1.0.0",
            "exported_at": "2026-08-20T10:00:00+00:00",
            "endpoint": "openai",
            "base_url": sandbox.base_url,
            "assistants_count": len(assistants),
            "threads_requested": len(thread_ids),
            "threads_exported": len(thread_ids) - len(failed),
            "threads_failed": failed,
            "notes": ["files/ entries are metadata only"],
        },
    )


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A session without what that layout cannot hold. It saves file metadata only, so a file the live
    export downloaded or read as parsed text is `missing` there (an image becomes a placeholder), and it
    lists steps without `include[]`, so file_search results come without their passages."""
    return {
        **record,
        "files": sorted(f["file_id"] for f in record["files"]),
        "warnings": [w for w in record["warnings"] if w["code"] not in ("file_missing", "image_not_inlined")],
        "messages": [_without_file_content(m) for m in record["messages"]],
    }


def _without_file_content(message: dict[str, Any]) -> Any:
    content = message.get("content")
    if isinstance(content, list):
        kept = [p for p in content if p.get("type") == "text" and not p["text"].startswith("[image ")]
        return {**message, "content": kept}
    if message["role"] == "tool" and isinstance(content, str) and content.startswith('{"results":'):
        results = [{k: v for k, v in r.items() if k != "content"} for r in orjson.loads(content)["results"]]
        return {**message, "content": results}
    return message


def test_the_assistants_api_export_layout(tmp_path: Path, sandbox: Any) -> None:
    corpus = sandbox.corpus_summary()
    thread_ids = sandbox.thread_ids()
    redwood_export(sandbox, tmp_path / "export", thread_ids)
    with live_export(sandbox, tmp_path / "live.db") as live, Archive.create(tmp_path / "rw.db") as rw:
        report = ingest_dump(rw, [tmp_path / "export"])
        assert report.problems == [], report.problems
        assert report.recognised["assistants-export-manifest/v1"] == 1
        assert report.recognised["assistants-thread-export/v1"] == len(thread_ids)
        ours, theirs = rw.counts(), live.counts()
        for key in ("assistants", "threads", "threads_done", "messages", "runs"):
            assert ours[key] == theirs[key] == (corpus["counts"].get(key) or theirs[key]), key
        # It lists the steps of every run; the live export skips those of runs without tools.
        assert (
            ours["run_steps"] == corpus["run_steps_total"]
            and theirs["run_steps"] == corpus["counts"]["run_steps"]
        )
        # The runs are stored as the API sent them: without the exporter's "steps" key.
        assert all("steps" not in orjson.loads(raw) for raw in rw.raw.texts("runs"))
        mine, expected = records(rw), records(live)
        assert set(mine) == set(expected) == set(thread_ids)
        assert rw.counts()["sessions"] == live.counts()["sessions"] == len(thread_ids)
        for thread_id in thread_ids:
            assert _comparable(mine[thread_id]) == _comparable(expected[thread_id]), thread_id


def test_the_layout_s_errors_become_findings(tmp_path: Path, sandbox: Any) -> None:
    thread_ids = sandbox.thread_ids()[:3]
    redwood_export(sandbox, tmp_path / "export", thread_ids, gone=thread_ids[0])
    record_path = tmp_path / "export" / "threads" / f"{thread_ids[1]}.json"
    record = json.loads(record_path.read_text())
    run_id = record["runs"][0]["id"]
    record["runs"][0]["steps"] = []  # how it saves steps that aged out
    record["errors"].append(
        {"object": "run_steps", "id": run_id, "error": "not_found_or_expired", "detail": "404"}
    )
    record["errors"].append(
        {"object": "file", "id": "file-gone", "error": "fetch_failed", "detail": "HTTP 500"}
    )
    write(record_path, record)
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "export"])
        found = {(f.code, f.entity_id) for f in report.findings}
        assert ("thread_missing", thread_ids[0]) in found
        assert ("steps_missing", thread_ids[1]) in found and ("file_object_missing", "file-gone") in found
        detail = next(f.detail for f in report.findings if f.code == "steps_missing" and run_id in f.detail)
        assert "not_found_or_expired" in detail
        status = dict(archive.db.execute("select thread_id, status from work").fetchall())
        assert status == {thread_ids[0]: "missing", thread_ids[1]: "done", thread_ids[2]: "done"}
        assert report.exit_code() == 1 and report.threads_missing == 1


# -- message lists alone -----------------------------------------------------------------------------


def test_message_lists_alone(tmp_path: Path, sandbox: Any) -> None:
    """An app that kept only `messages.list` pages: default order (newest first), 20 a page."""
    thread_ids = sandbox.thread_ids()
    for n, thread_id in enumerate(thread_ids):
        for k, page in enumerate(pages(sandbox, f"/threads/{thread_id}/messages")):
            write(tmp_path / "saved" / f"{n:03}-{k:02}.json", page)
    assert any(p.name.endswith("-01.json") for p in (tmp_path / "saved").iterdir())  # some had two pages
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "saved"])
        assert report.problems == [] and report.exit_code() == 0
        assert report.findings_total["thread_synthesized"] == len(thread_ids)
        got = records(archive)
    assert set(got) == set(thread_ids)  # one session per thread
    for thread_id in thread_ids:
        truth = sandbox.truth(thread_id)["messages"]
        record = got[thread_id]
        assert record["sources"] == [m["id"] for m in truth], thread_id  # every message, in order
        for message, want in zip(record["messages"], truth, strict=True):
            assert message["role"] == want["role"]
            text = "".join(want["texts"])
            if "【" not in text:  # citation markers become footnotes
                assert _text(message).startswith(text), (thread_id, want["id"])
        assert record["messages"][0]["role"] != "system"  # no run or assistant says what it was
        assert "thread_synthesized" in {w["code"] for w in record["warnings"]}


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    parts = [p.get("text") or p.get("refusal") or "" for p in content if p["type"] in ("text", "refusal")]
    return "".join(t for t in parts if not t.startswith("["))


def test_a_message_list_cut_short_stays_pending(tmp_path: Path, sandbox: Any) -> None:
    thread_id = next(
        tid for tid in sandbox.thread_ids() if len(pages(sandbox, f"/threads/{tid}/messages", limit=2)) > 1
    )
    first = pages(sandbox, f"/threads/{thread_id}/messages", limit=2)[0]
    write(tmp_path / "saved" / "page1.json", first)
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "saved"])
        assert report.threads_pending == 1 and report.exit_code() == 1
        assert {f.code for f in report.findings} >= {"thread_synthesized", "dump_page_has_more"}


# -- runs saved by a polling loop ----------------------------------------------------------------------


def polled_dump(sandbox: Any, out: Path) -> dict[str, list[dict[str, Any]]]:
    """Each thread's messages page, and every run as a poller saved it: each function run twice (at
    requires_action, then completed), no steps. Returns the function calls each thread made."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for n, thread_id in enumerate(sandbox.thread_ids()):
        write(out / f"{n:03}-thread.json", get(sandbox, f"/threads/{thread_id}"))
        for k, page in enumerate(pages(sandbox, f"/threads/{thread_id}/messages", limit=100)):
            write(out / f"{n:03}-messages{k}.json", page)
        for k, run in enumerate(items(sandbox, f"/threads/{thread_id}/runs")):
            steps = items(sandbox, f"/threads/{thread_id}/runs/{run['id']}/steps") if run["tools"] else []
            functions = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                }
                for step in steps
                for c in step["step_details"].get("tool_calls") or []
                if c["type"] == "function"
            ]
            if functions:
                calls.setdefault(thread_id, []).extend(functions)
                waiting = {
                    **run,
                    "status": "requires_action",
                    "completed_at": None,
                    "required_action": {
                        "type": "submit_tool_outputs",
                        "submit_tool_outputs": {"tool_calls": functions},
                    },
                }
                write(out / f"{n:03}-run{k}-a.json", waiting)
            write(out / f"{n:03}-run{k}-b.json", run)
    return calls


def test_polled_runs(tmp_path: Path, sandbox: Any) -> None:
    calls = polled_dump(sandbox, tmp_path / "polled")
    recovered = 0
    assert sum(len(c) for c in calls.values()) > 5
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "polled"])
        assert report.problems == []
        assert report.replaced["thread.run"] == sum(1 for p in (tmp_path / "polled").glob("*-a.json"))
        got = records(archive)
        # Every snapshot is kept; the completed one is the run.
        for thread_id in calls:
            for run_id, versions in archive.versions.of_parent("runs", thread_id).items():
                final = orjson.loads(archive.raw.of("runs", run_id))
                assert (
                    [v["status"] for v in versions]
                    == ["requires_action", final["status"]]
                    != ["requires_action", "requires_action"]
                )
    for thread_id, made in calls.items():
        record = got[thread_id]
        sent = [
            c
            for m in record["messages"]
            for c in m.get("tool_calls") or []
            if c["function"]["name"] not in ("code_interpreter", "file_search")
        ]
        assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in sent] == [
            (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in made
        ], thread_id
        answers = {m["tool_call_id"]: m["content"] for m in record["messages"] if m["role"] == "tool"}
        # Each is answered: a completed run had its outputs submitted (never saved), an expired one never.
        for call in made:
            assert answers[call["id"]].startswith(
                ("The output of this tool call was never recorded", "No output")
            )
        warned = {w["code"] for w in record["warnings"]}
        assert "steps_missing" in warned, thread_id
        assert warned & {"tool_output_not_recorded", "dangling_tool_call_closed"}, thread_id
        recovered += sum(
            1 for a in answers.values() if a.startswith("The output of this tool call was never")
        )
    assert recovered > 5  # most of the corpus's function runs completed


def test_polled_runs_round_trip_through_migrate_dump(tmp_path: Path, sandbox: Any) -> None:
    polled_dump(sandbox, tmp_path / "polled")
    with Archive.create(tmp_path / "a.db") as source:
        ingest_dump(source, [tmp_path / "polled"])
        expected = sessions_jsonl(source)
        versions = source.versions.count()
        assert versions and write_dump(source, tmp_path / "dump").problems == []
        with Archive.create(tmp_path / "b.db") as copy:
            report = ingest_dump(copy, [tmp_path / "dump"])
            assert report.problems == [] and report.versions_read == versions
            assert copy.content_hash() == source.content_hash()
            assert sessions_jsonl(copy) == expected


def test_our_own_dump_zipped(tmp_path: Path, sandbox: Any) -> None:
    """`migrate dump` zipped keeps its thread list and versions (file bytes need unzipping)."""
    polled_dump(sandbox, tmp_path / "polled")
    with Archive.create(tmp_path / "a.db") as source:
        ingest_dump(source, [tmp_path / "polled"])
        expected = sessions_jsonl(source)
        write_dump(source, tmp_path / "dump")
        with zipfile.ZipFile(tmp_path / "dump.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((tmp_path / "dump").rglob("*")):
                if path.is_file():
                    zf.write(path, "backup/" + path.relative_to(tmp_path / "dump").as_posix())
        with Archive.create(tmp_path / "b.db") as copy:
            report = ingest_dump(copy, [tmp_path / "dump.zip"])
            assert report.problems == [] and report.versions_read == source.versions.count() > 0
            assert copy.content_hash() == source.content_hash()
            assert sessions_jsonl(copy) == expected
            work = "select thread_id, status, extra from work order by 1"
            assert copy.db.execute(work).fetchall() == source.db.execute(work).fetchall()


def test_an_older_snapshot_read_last_does_not_win(tmp_path: Path) -> None:
    run = {
        "id": "run_1",
        "object": "thread.run",
        "thread_id": "thread_1",
        "created_at": 10,
        "status": "completed",
        "started_at": 11,
        "completed_at": 20,
        "tools": [],
        "required_action": None,
    }
    queued = {**run, "status": "queued", "started_at": None, "completed_at": None}
    write(tmp_path / "d" / "a.json", run)
    write(tmp_path / "d" / "b.json", queued)  # a later file, an older state
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "d"])
        assert report.versions["thread.run"] == 1
        assert orjson.loads(archive.raw.of("runs", "run_1"))["status"] == "completed"
        assert len(archive.versions.of_parent("runs", "thread_1")["run_1"]) == 2


# -- zip dumps -------------------------------------------------------------------------------------------


def test_a_zip_is_read_in_place(tmp_path: Path, sandbox: Any) -> None:
    thread_ids = sandbox.thread_ids()[:5]
    redwood_export(sandbox, tmp_path / "export", thread_ids)
    with zipfile.ZipFile(tmp_path / "export.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((tmp_path / "export").rglob("*.json")):
            zf.write(path, "export/" + path.relative_to(tmp_path / "export").as_posix())
        zf.writestr("../../outside.json", json.dumps(get(sandbox, f"/threads/{thread_ids[0]}")))
        zf.writestr("export/README.txt", "notes, not data")
    before = set(tmp_path.parent.iterdir())
    with Archive.create(tmp_path / "zip.db") as zipped, Archive.create(tmp_path / "dir.db") as folder:
        report = ingest_dump(zipped, [tmp_path / "export.zip"])
        ingest_dump(folder, [tmp_path / "export"])
        assert report.problems == [] and report.files_ignored == 1
        assert report.duplicates["thread"] == 1  # the member named ../../outside.json was only read
        assert zipped.content_hash() == folder.content_hash()
        assert sessions_jsonl(zipped) == sessions_jsonl(folder)
    assert set(tmp_path.parent.iterdir()) == before and not (tmp_path.parent / "outside.json").exists()


def test_a_zip_bomb_is_refused_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    thread = {"id": "thread_1", "object": "thread", "created_at": 1, "metadata": {}}
    message = {
        "id": "msg_1",
        "object": "thread.message",
        "thread_id": "thread_1",
        "created_at": 2,
        "role": "user",
        "content": [{"type": "text", "text": {"value": "hi", "annotations": []}}],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("thread.json", json.dumps(thread))
        zf.writestr("messages.jsonl", json.dumps(message) + "\n")
        zf.writestr("bomb.jsonl", b" " * (64 << 20))  # 64 MiB of spaces inflate ~1000 times
    (tmp_path / "dump.zip").write_bytes(buffer.getvalue())
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "dump.zip"])
        assert report.refused == 1 and report.exit_code() == 1
        (finding,) = [f for f in report.findings if f.code == "zip_member_refused"]
        assert finding.entity_id.endswith("dump.zip!bomb.jsonl") and "inflates" in finding.detail
        assert report.threads_done == 1  # the rest of the zip was read
        assert [f.entity for f in archive.findings.failures()] == ["dump"]  # a row in the archive too
    from migrator.dumps.reader import ZipLimits

    with Archive.create(tmp_path / "b.db") as archive:
        small = ingest_dump(archive, [tmp_path / "dump.zip"], zip_limits=ZipLimits(member_bytes=100))
        assert small.refused == 2  # the members over 100 bytes
    assert main(["export", str(tmp_path / "c.db"), "--from-dump", str(tmp_path / "dump.zip")]) == 1
    assert "zip_member_refused" in capsys.readouterr().err


# -- other objects, streams as text ------------------------------------------------------------------------


def test_other_objects_are_recognised_not_errors(tmp_path: Path) -> None:
    thread = {"id": "thread_1", "object": "thread", "created_at": 1, "metadata": {}}
    message = {
        "id": "msg_1",
        "object": "thread.message",
        "thread_id": "thread_1",
        "created_at": 2,
        "role": "user",
        "content": [{"type": "text", "text": {"value": "hi", "annotations": []}}],
    }
    others = [
        {"id": "thread_9", "object": "thread.deleted", "deleted": True},
        {"id": "file-9", "object": "file", "deleted": True},  # DELETE /files/{id} answers this
        {
            "id": "vsfb_1",
            "object": "vector_store.file_batch",
            "vector_store_id": "vs_1",
            "status": "completed",
            "file_counts": {"completed": 1},
        },
        {"object": "vector_store.search_results.page", "search_query": "q", "data": [], "has_more": False},
        {"id": "file-1", "object": "thread.message.file", "message_id": "msg_1", "created_at": 2},
    ]
    write(tmp_path / "d" / "all.json", [thread, message, *others])
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "d"])
        assert report.problems == [] and report.exit_code() == 0
        assert dict(report.recognised) == {
            "thread.deleted": 1,
            "file.deleted": 1,
            "vector_store.file_batch": 1,
            "vector_store.search_results.page": 1,
            "thread.message.file": 1,
        }
        assert archive.raw.count("files") == 0 and archive.raw.count("threads") == 1


def test_a_stream_saved_as_a_log(tmp_path: Path) -> None:
    stream = (
        Path(__file__).parent
        / "data"
        / "realdata"
        / "streams"
        / "075__test_streaming_existing_assistant__03_run.create.sse"
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "run.log").write_bytes(stream.read_bytes())
    (tmp_path / "d" / "notes.txt").write_text("what we saved, and when\n")
    # The data payloads alone, one a line, ending with the [DONE] marker.
    lines = [line[6:] for line in stream.read_text().splitlines() if line.startswith("data: ")]
    (tmp_path / "d" / "payloads.txt").write_text("\n".join(lines) + "\n")
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "d"])
        assert report.problems == [] and report.files_read == 2 and report.files_ignored == 1
        assert report.recognised["done"] == 2
        assert report.duplicates["thread.run.step"] > 0  # the same stream twice: stored once
        steps = [orjson.loads(raw) for raw in archive.raw.texts("run_steps")]
        assert {s["type"] for s in steps} == {"tool_calls", "message_creation"}


def test_v1_retrieval_and_file_ids(tmp_path: Path) -> None:
    """The v1 shapes the 2023 API answered with (ruby-openai's v1 cassettes have no retrieval run)."""
    assistant = {
        "id": "asst_1",
        "object": "assistant",
        "created_at": 1,
        "model": "gpt-4-1106-preview",
        "instructions": "Answer from the files.",
        "tools": [{"type": "retrieval"}],
        "file_ids": ["file-1"],
        "metadata": {},
    }
    thread = {"id": "thread_1", "object": "thread", "created_at": 1, "metadata": {}}
    user = {
        "id": "msg_1",
        "object": "thread.message",
        "created_at": 2,
        "thread_id": "thread_1",
        "role": "user",
        "content": [{"type": "text", "text": {"value": "What does it say?", "annotations": []}}],
        "file_ids": ["file-2"],
        "assistant_id": None,
        "run_id": None,
        "metadata": {},
    }
    run = {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 3,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": "completed",
        "model": "gpt-4-1106-preview",
        "instructions": "Answer from the files.",
        "tools": [{"type": "retrieval"}],
        "file_ids": ["file-1"],
        "metadata": {},
    }
    step = {
        "id": "step_1",
        "object": "thread.run.step",
        "created_at": 4,
        "run_id": "run_1",
        "thread_id": "thread_1",
        "type": "tool_calls",
        "status": "completed",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [{"id": "call_1", "type": "retrieval", "retrieval": {}}],
        },
    }
    answer = {
        **user,
        "id": "msg_2",
        "created_at": 5,
        "role": "assistant",
        "run_id": "run_1",
        "assistant_id": "asst_1",
        "file_ids": [],
        "content": [{"type": "text", "text": {"value": "It says hello.", "annotations": []}}],
    }
    files = [
        {
            "id": f,
            "object": "file",
            "bytes": 5,
            "created_at": 1,
            "filename": f"{f}.txt",
            "purpose": "assistants",
        }
        for f in ("file-1", "file-2")
    ]
    write(tmp_path / "d" / "v1.json", [assistant, thread, user, run, step, answer, *files])
    with Archive.create(tmp_path / "a.db") as archive:
        report = ingest_dump(archive, [tmp_path / "d"])
        assert report.problems == []
        (record,) = records(archive).values()
        assert orjson.loads(archive.raw.of("runs", "run_1"))["tools"] == [
            {"type": "retrieval"}
        ]  # kept verbatim
        assert sorted(archive.files.refs_of("thread_1")) == ["file-2"]
    assert [t["function"]["name"] for t in record["tools"]] == ["file_search"]
    call = record["messages"][2]["tool_calls"][0]
    assert call["function"]["name"] == "file_search" and record["messages"][3]["tool_call_id"] == "call_1"
    assert [f["file_id"] for f in record["files"]] == ["file-2"]  # the message's file_ids are its attachments
    v1 = sorted(w["detail"] for w in record["warnings"] if w["code"] == "v1_object")
    assert v1 == [
        "assistant asst_1: retrieval -> file_search, file_ids",
        "message msg_1: file_ids -> attachments",
        "message msg_2: file_ids -> attachments",
        "run run_1: retrieval -> file_search, file_ids",
        "step step_1: retrieval -> file_search",
    ]
