"""`migrate replay` against the sandbox over real HTTP: live, resume after kill -9, batch files, dry run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import spec
from jsonschema import Draft202012Validator
from test_replay_support import cli, cli_json, export_archive, store_records

from migrator.archive import Archive
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

CHAT = "POST /v1/chat/completions"
ENV = {"TARGET_API_KEY": "target-secret-key"}
THREADS, SEED = 40, 7  # the corpus of conftest's shared `sandbox`


def chats(server: Any) -> int:
    return server.stats()["by_route"].get(CHAT, 0)


def reproducible(doc: dict[str, Any]) -> dict[str, Any]:
    """The report without what no two runs share (latency, what this invocation did)."""
    return {k: v for k, v in doc.items() if k not in ("archive", "latency_ms", "run")}


def line_validator(name: str) -> Draft202012Validator:
    """The spec's batch line schema (OpenAPI 3.0: `nullable`) as JSON Schema."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: convert(v) for k, v in node.items() if k != "nullable"}
            if node.get("nullable") and "type" in node:
                out["type"] = [node["type"], "null"]
            return out
        return [convert(v) for v in node] if isinstance(node, list) else node

    return Draft202012Validator(convert(spec.batch_lines()[name]))


def ledger(path: Path) -> dict[str, tuple[str, int]]:
    with Archive.open(path) as archive:
        return {
            h: (s, n)
            for h, s, n in archive.db.execute("select request_hash, state, attempts from replay_ledger")
        }


@pytest.fixture(scope="module")
def exported(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_archive(sandbox.base_url, THREADS, SEED, tmp_path_factory.mktemp("replay") / "clean.db")


@pytest.fixture
def db(exported: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(exported, tmp_path / "archive.db"))


def live(db: Path, base_url: str, *args: str) -> tuple[int, dict[str, Any]]:
    return cli_json(str(db), "--target-base-url", base_url, "--model", "gpt-4.1", *args, env=ENV)


# -- live --------------------------------------------------------------------------------------------


def test_every_request_accepted_with_parity_and_a_resume_sends_nothing(sandbox: Any, db: Path) -> None:
    before = chats(sandbox)
    code, doc = live(db, sandbox.base_url)
    sent = chats(sandbox) - before
    assert code == 0, doc["needs_attention"]
    requests = doc["requests"]
    assert requests["selected"] == requests["accepted"] == sent == doc["run"]["sent"] > 0
    assert doc["acceptance"] == 1.0 and doc["parity"]["rate"] == 1.0 and doc["parity"]["tool_call_turns"] > 0
    assert doc["text"]["turns"] > 0 and 0 < doc["text"]["similarity_mean"] <= 1
    assert doc["usage"]["prompt_tokens"] > 0 and doc["usage"]["estimated_cost_usd"] > 0
    assert doc["latency_ms"]["count"] == sent
    assert len(ledger(db)) == sent
    # A second run answers from the ledger: not one request reaches the target.
    code, again = live(db, sandbox.base_url)
    assert code == 0 and chats(sandbox) - before == sent
    assert again["run"]["already_answered"] == sent and again["run"]["sent"] == 0
    assert reproducible(again) == reproducible(doc)
    # ...and so does the offline report, with no target at all.
    code, offline = cli_json(str(db), "--report-only", "--model", "gpt-4.1")
    assert code == 0 and reproducible(offline) == reproducible(doc)
    # The target's key is never written anywhere.
    assert ENV["TARGET_API_KEY"].encode() not in db.read_bytes()


def test_drifted_answers_lower_parity_and_the_threshold_fails(db: Path) -> None:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, replay_drift=0.5), port=0) as drifting:
        code, doc = live(db, drifting.base_url, "--turns", "all", "--min-parity", "0.9")
    assert code == 1
    assert doc["acceptance"] == 1.0 and doc["parity"]["rate"] < 0.9
    assert any("parity" in reason for reason in doc["needs_attention"])
    assert doc["parity_mismatches"] and doc["text"]["similarity_mean"] < 1


def test_rejections_carry_the_providers_error_and_are_not_sent_again(sandbox: Any, db: Path) -> None:
    with Archive.open(db, writer="test") as archive:
        tid, raw = next(archive.sessions.records())
        broken = orjson.loads(raw)
        broken["params"] = {"top_p": 7}  # the endpoint refuses it
        store_records(archive, [broken])
    code, doc = live(db, sandbox.base_url, "--thread", tid)
    assert code == 1 and doc["requests"]["rejected"] == 1 and doc["acceptance"] == 0.0
    example = doc["rejections"]["examples"][0]
    assert example["thread_id"] == tid and example["status_code"] == 400 and "top_p" in example["error"]
    before = chats(sandbox)
    assert live(db, sandbox.base_url, "--thread", tid)[1]["requests"]["rejected"] == 1
    assert chats(sandbox) == before


def test_refused_key_exits_3_and_no_answer_is_invented(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, api_key="the-right-key"), port=0) as locked:
        os.environ["TARGET_API_KEY"] = "a-wrong-key"
        try:
            code = main(
                [
                    "replay",
                    str(db),
                    "--target-base-url",
                    locked.base_url,
                    "--model",
                    "gpt-4.1",
                    "--sample",
                    "3",
                ]
            )
        finally:
            del os.environ["TARGET_API_KEY"]
    assert code == 3, capsys.readouterr()
    assert "TARGET_API_KEY" in capsys.readouterr().err
    assert all(state == "sent" for state, _ in ledger(db).values())  # in flight, sent again next time
    assert b"a-wrong-key" not in db.read_bytes()


def test_usage_errors_exit_2(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(db), "--model", "m"]) == 2  # no target
    assert "--target-base-url" in capsys.readouterr().err
    assert main(["replay", str(db), "--target-base-url", "http://127.0.0.1:9/v1"]) == 2  # no key
    assert main(["replay", str(db), "--dry-run", "--report-only"]) == 2
    assert main(["replay", str(db), "--dry-run", "--thread", "thread_nope"]) == 2
    assert "thread_nope" in capsys.readouterr().err
    assert main(["replay", str(db.parent / "missing.db"), "--dry-run"]) == 2
    assert not (db.parent / "missing.db").exists()


# -- kill -9 and resume ------------------------------------------------------------------------------


def _replay_process(db: Path, base_url: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", "from migrator.cli import run; run()", "replay", str(db), "--target-base-url",
            base_url, "--model", "gpt-4.1", "--turns", "all", "--concurrency", "4", "--json"]  # fmt: skip
    env = {**os.environ, **ENV, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_replay_resumes_without_resending_a_completed_request(db: Path) -> None:
    with SandboxServer(SandboxConfig(threads=THREADS, seed=SEED, latency_ms=25), port=0) as slow:
        proc = _replay_process(db, slow.base_url)
        deadline = time.monotonic() + 30
        while chats(slow) < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = ledger(db)
        completed = {h for h, (state, _) in at_kill.items() if state in ("done", "rejected")}
        in_flight = {h for h, (state, _) in at_kill.items() if state == "sent"}
        assert completed and len(in_flight) <= 4, (len(completed), len(in_flight))

        out, err = _replay_process(db, slow.base_url).communicate(timeout=60)
        doc = orjson.loads(out)
        total = chats(slow)
    after = ledger(db)
    distinct = len(after)
    assert doc["requests"]["accepted"] == doc["requests"]["selected"], err
    assert all(state == "done" for state, _ in after.values())
    assert distinct <= total <= distinct + len(in_flight)  # at most the in-flight ones went twice
    assert all(after[h][1] == 1 for h in completed)  # no completed request was sent again
    # Every request the sandbox saw was in the ledger first (a row marked `sent` an instant before the
    # kill may never have left the process: attempts can exceed what the sandbox counted, not the reverse).
    assert total <= sum(n for _, n in after.values()) <= distinct + len(in_flight)


# -- batch files ---------------------------------------------------------------------------------------


def test_batch_files_are_spec_lines_and_their_results_give_the_live_report(
    sandbox: Any, exported: Path, tmp_path: Path
) -> None:
    live_db = Path(shutil.copy(exported, tmp_path / "live.db"))
    batch_db = Path(shutil.copy(exported, tmp_path / "batch.db"))
    code, live_doc = live(live_db, sandbox.base_url)
    assert code == 0, live_doc["needs_attention"]

    out = tmp_path / "batch"
    before = chats(sandbox)
    code, summary = cli_json(str(batch_db), "--batch-out", str(out), "--model", "gpt-4.1")
    assert code == 0 and chats(sandbox) == before  # nothing sent
    files = sorted(out.glob("*.jsonl"))
    assert [f.name for f in files] == [f["name"] for f in summary["files"]] == ["replay-gpt-4.1-0001.jsonl"]
    request_line, output_line = line_validator("BatchRequestInput"), line_validator("BatchRequestOutput")
    ids, results = set(), []
    import httpx2 as http  # the HTTP library the openai SDK ships with

    with http.Client(base_url=sandbox.base_url, headers={"Authorization": "Bearer k"}) as client:
        for number, line in enumerate(files[0].read_bytes().splitlines(), 1):
            obj = orjson.loads(line)
            assert list(request_line.iter_errors(obj)) == [], number
            assert set(obj) == {"custom_id", "method", "url", "body"} and obj["url"] == "/v1/chat/completions"
            assert spec.errors("CreateChatCompletionRequest", obj["body"]) == [], number
            assert obj["custom_id"] not in ids
            ids.add(obj["custom_id"])
            # A synthetic Batch API run: the same body sent to the same deterministic endpoint.
            answer = client.post("/chat/completions", content=orjson.dumps(obj["body"]))
            result = {"id": f"batch_req_{number}", "custom_id": obj["custom_id"],
                      "response": {"status_code": answer.status_code, "request_id": f"req_{number}",
                                   "body": answer.json()}, "error": None}  # fmt: skip
            assert list(output_line.iter_errors(result)) == []
            results.append(orjson.dumps(result))
    assert len(ids) == summary["requests"] == live_doc["requests"]["selected"]
    # Two files, as the Batch API returns them (output and errors), in any order.
    (tmp_path / "out.jsonl").write_bytes(b"\n".join(results[::2]) + b"\n")
    (tmp_path / "err.jsonl").write_bytes(b"\n".join(results[1::2]) + b"\n")
    code, batch_doc = cli_json(
        str(batch_db), "--batch-results", str(tmp_path / "out.jsonl"), str(tmp_path / "err.jsonl")
    )
    assert reproducible(batch_doc) == reproducible(live_doc)
    assert batch_doc["run"]["stored"] == len(ids) and batch_doc["latency_ms"] is None
    # Answered requests are never written to a batch file again.
    code, again = cli_json(str(batch_db), "--batch-out", str(tmp_path / "again"), "--model", "gpt-4.1")
    assert code == 0 and again["requests"] == 0 and again["already_answered"] == len(ids)


def test_batch_out_refuses_a_folder_with_other_jsonl(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.jsonl").write_text("{}\n")
    assert main(["replay", str(db), "--batch-out", str(out), "--model", "gpt-4.1"]) == 2
    assert "mine.jsonl" in capsys.readouterr().err
    assert main(["replay", str(db), "--batch-results", str(out / "mine.jsonl")]) == 2  # not a result line


def test_batch_files_split_at_the_line_limit(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migrator.replay import batch

    monkeypatch.setattr(batch, "MAX_FILE_LINES", 7)
    code, summary = cli_json(
        str(db), "--batch-out", str(tmp_path / "b"), "--model", "gpt-4.1", "--turns", "all"
    )
    assert code == 0 and len(summary["files"]) > 1
    assert (
        all(f["lines"] <= 7 for f in summary["files"])
        and sum(f["lines"] for f in summary["files"]) == summary["requests"]
    )
    assert not list((tmp_path / "b").glob("*.part"))
    assert orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())["requests"] == summary["requests"]


# -- dry run -------------------------------------------------------------------------------------------


def test_dry_run_names_a_broken_session_exits_1_and_sends_nothing(sandbox: Any, db: Path) -> None:
    with Archive.open(db, writer="test") as archive:
        records = [orjson.loads(raw) for _, raw in archive.sessions.records()]
        victim = next(r for r in records if any(m.get("tool_calls") for m in r["messages"]))
        victim["messages"] = [m for m in victim["messages"] if m["role"] != "tool"]  # calls left unanswered
        store_records(archive, [victim])
    before = chats(sandbox)
    code, doc = cli_json(
        str(db), "--dry-run", "--target-base-url", sandbox.base_url, "--model", "gpt-4.1", env=ENV
    )
    assert code == 1 and doc["threads_with_errors"] == [victim["thread_id"]]
    assert any(f["code"] == "tool_call_unanswered" for f in doc["findings"])
    assert doc["sessions"] == THREADS and doc["to_send"] == doc["requests"] > 0
    assert chats(sandbox) == before
    code, out, _ = cli(str(db), "--dry-run", "--model", "gpt-4.1")
    assert code == 1 and victim["thread_id"] in out


def test_the_entry_point_returns_the_verdict(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Archive.open(db, writer="test") as archive:
        tid, raw = next(archive.sessions.records())
        broken = orjson.loads(raw)
        broken["tools"] = [{"type": "function", "function": {"name": "bad name!"}}]
        store_records(archive, [broken])
    assert main(["replay", str(db), "--dry-run", "--model", "gpt-4.1"]) == 1
    assert tid in capsys.readouterr().out


def test_one_live_replay_per_archive(sandbox: Any, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from migrator.archive.lock import lock_path

    args = ["replay", str(db), "--target-base-url", sandbox.base_url, "--model", "gpt-4.1", "--sample", "2"]
    os.environ.update(ENV)
    try:
        with Archive.open(db, writer="replay"):  # this very process is replaying
            before = chats(sandbox)
            assert main(args) == 2
            err = capsys.readouterr().err
            assert (
                f"{db} is in use by migrate replay (pid {os.getpid()} on {socket.gethostname()} since " in err
            )
            assert chats(sandbox) == before  # refused before a request went out
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        # ...a process that has exited left its lock file: it is taken over, with a line.
        stale = {"command": "replay", "pid": int(dead.stdout), "host": socket.gethostname(),
                 "started": "2026-12-01T03:12:00+00:00"}  # fmt: skip
        lock_path(db).write_bytes(orjson.dumps(stale))
        assert main(args) == 0
        err = capsys.readouterr().err
        assert f"took over the writer lock left by migrate replay (pid {int(dead.stdout)}" in err
        assert not lock_path(db).exists()  # released (and removed) at the end
    finally:
        for key in ENV:
            del os.environ[key]
