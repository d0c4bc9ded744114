"""`migrate export` against self-hosted look-alikes (the sandbox's `lookalike` flavor, after myla 0.2.40,
and hand-made hosts): missing routes are findings, odd shapes are read liberally, the export finishes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hosts import LookAlike, page

from migrator.archive import Archive
from migrator.cli import main
from migrator.convert import ConversionOptions
from migrator.convert.content import convert_content
from migrator.convert.raw import epoch_seconds
from migrator.sandbox import SandboxConfig, SandboxServer

THREADS, SEED = 20, 5


@pytest.fixture(scope="module")
def look() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, flavor="lookalike")) as srv:
        yield srv


def export(tmp_path: Path, base_url: str, ids: list[str], *args: str) -> tuple[int, Path]:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    archive = tmp_path / "a.db"
    return main(["export", str(archive), "--threads", str(path), "--base-url", base_url, *args]), archive


def said(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or p.get("refusal") or "" for p in content or () if isinstance(p, dict))


def test_the_export_finishes_every_thread_and_the_sessions_carry_the_texts_in_order(look, tmp_path, capsys):
    code, archive = export(tmp_path, look.base_url, look.thread_ids(), "--citations", "keep", "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["threads_done"] == THREADS and summary["failures"] == 0, summary
    with Archive.open(archive) as store:
        assert store.findings.failures() == []
        anomalies = {(a.entity_id, a.kind) for a in store.findings.iter_anomalies()}
        records = {tid: orjson.loads(r) for tid, r in store.sessions.records()}
        warnings = store.counts()["warnings"]
    # Each missing route once, whatever the number of files and threads that met it.
    assert anomalies == {("vector_stores", "route_missing"), ("file", "route_missing")}, anomalies
    assert warnings.get("steps_missing", 0) > 0  # runs that declared tools, with empty step lists
    for tid in look.thread_ids():
        expected = [text for m in look.truth(tid)["messages"] for text in m["texts"]]
        spoken = [said(m) for m in records[tid]["messages"] if m["role"] in ("user", "assistant")]
        spoken = [s for s in spoken if s]
        position = 0
        for text in expected:  # every text of the source, in the source's order
            while position < len(spoken) and text not in spoken[position]:
                position += 1
            assert position < len(spoken), (tid, text, spoken)
            position += 1
        assert records[tid]["created_at"] < 10**11  # seconds in the session, whatever the source wrote


def test_verify_reports_the_missing_routes_as_warnings(look, tmp_path, capsys):
    code, archive = export(tmp_path, look.base_url, look.thread_ids()[:3])
    capsys.readouterr()
    main(["verify", str(archive), "--json"])
    checks = {c["code"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    missing = checks["source_route_missing"]
    assert missing["severity"] == "warning" and len(missing["findings"]) == 2, missing
    for code in ("page_anomaly", "export_failure"):
        assert checks[code]["status"] == "passed", checks[code]


THREAD = {"id": "thread_a", "object": "thread", "created_at": 1_700_000_000_000, "metadata": {}}
MESSAGES = [
    {
        "id": "msg_2",
        "object": "thread.message",
        "created_at": 1_700_000_002_000,
        "thread_id": "thread_a",
        "role": "assistant",
        "run_id": "run_1",
        "content": [{"type": "text", "text": [{"value": "second"}]}],
    },
    {
        "id": "msg_1",
        "object": "thread.message",
        "created_at": 1_700_000_001_000,
        "thread_id": "thread_a",
        "role": "user",
        "run_id": None,
        "content": [{"type": "text", "text": "first"}],
    },
]
RUN = {
    "id": "run_1",
    "object": "thread.run",
    "created_at": 1_700_000_001_500,
    "thread_id": "thread_a",
    "status": "completed",
    "model": "m",
    "instructions": "",
    "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    ],
}


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_missing_step_route_is_one_finding_and_the_thread_is_done(tmp_path, capsys, status):
    routes = {
        "GET /v1/assistants": page([]),
        "GET /v1/vector_stores": (status, {"detail": "Not Found"}),
        "GET /v1/threads/thread_a": (200, THREAD),
        "GET /v1/threads/thread_a/messages": page(MESSAGES),
        "GET /v1/threads/thread_a/runs": page([RUN]),
        "GET /v1/threads/thread_a/runs/run_1/steps": (status, {"detail": "Not Found"}),
    }
    with LookAlike(routes) as host:
        code, archive = export(tmp_path, host.base_url, ["thread_a"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    with Archive.open(archive) as store:
        assert store.work.counts()["done"] == 1 and store.findings.failures() == []
        kinds = {(a.entity_id, a.kind) for a in store.findings.iter_anomalies()}
        record = orjson.loads(dict(store.sessions.records())["thread_a"])
    assert kinds == {("vector_stores", "route_missing"), ("run_steps", "route_missing")}, kinds
    # Milliseconds order like seconds: the user's message first, whatever order the list had.
    assert [said(m) for m in record["messages"] if m["role"] != "system"] == ["first", "second"]


def test_text_is_read_as_a_string_a_value_or_a_list_of_values():
    options = ConversionOptions()
    from migrator.convert.codes import Notes
    from migrator.convert.content import ContentContext

    for text in ("hello", {"value": "hello", "annotations": []}, [{"value": "hel"}, {"value": "lo"}]):
        ctx = ContentContext(options=options, files={}, notes=Notes())
        message = {"id": "m", "role": "user", "content": [{"type": "text", "text": text}]}
        assert convert_content(message, "user", ctx)["content"] == "hello", text


def test_timestamps_in_milliseconds_become_seconds():
    assert epoch_seconds(1_700_000_000) == 1_700_000_000
    assert epoch_seconds(1_700_000_000_123) == 1_700_000_000
    assert epoch_seconds(None) is None and epoch_seconds(True) is None
