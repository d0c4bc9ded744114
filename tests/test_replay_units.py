"""`migrate replay` pure parts: turns and prefixes, hashes, comparison, prices, report, batch lines, ledger."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import orjson
import pytest
import spec
from test_replay_support import record, session_archive, tool_turn_record

from migrator.archive import BATCH_TARGET, Archive, ReplayRow
from migrator.archive.schema import MIGRATIONS
from migrator.errors import BadInputError, ExitCode
from migrator.replay import PriceTable, ReplayOptions, compare, load_prices, replay_offline, text_similarity
from migrator.replay.batch import batch_line, parse_result_line
from migrator.replay.report import ReplayReport
from migrator.replay.requests import (
    assistant_turns,
    request_hash,
    requests_for_record,
    requests_for_session,
)
from migrator.sessions import deterministic_sample

# -- turns, prefixes, hashes ---------------------------------------------------------------------


def test_turns_are_assistant_messages_and_last_is_the_last_one() -> None:
    messages = tool_turn_record("thread_a")["messages"]
    assert assistant_turns(messages, "all") == [2, 4]
    assert assistant_turns(messages, "last") == [4]
    # an assistant speaking first has nothing before it to answer
    assert assistant_turns([{"role": "assistant", "content": "hi"}], "all") == []


def test_request_is_the_prefix_with_tools_and_params_and_model_override() -> None:
    rec = tool_turn_record("thread_a")
    (first, last), problem = requests_for_record("thread_a", rec, turns="all", model="target-m")
    assert problem is None
    body = first.body_dict()
    assert body == {
        "model": "target-m",
        "messages": rec["messages"][:2],
        "tools": rec["tools"],
        "temperature": 0.5,
    }
    assert last.body_dict()["messages"] == rec["messages"][:4]
    assert first.expected == rec["messages"][2]
    assert spec.errors("CreateChatCompletionRequest", body) == []
    # the session's own model when there is no override; no `tools` key when there are none
    plain = record("thread_b", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    (only,), _ = requests_for_record("thread_b", plain, turns="last", model=None)
    assert only.body_dict() == {"model": "gpt-4.1", "messages": plain["messages"][:1], "temperature": 0.5}


def test_hash_is_sha256_of_canonical_json_whatever_the_key_order() -> None:
    rec = tool_turn_record("thread_a")
    shuffled = json.loads(json.dumps(rec, sort_keys=False))
    shuffled["messages"][2] = dict(reversed(list(shuffled["messages"][2].items())))
    (a,), _ = requests_for_record("t", rec, turns="last", model="m")
    (b,), _ = requests_for_record("t", shuffled, turns="last", model="m")
    assert (
        a.request_hash
        == b.request_hash
        == request_hash(orjson.dumps(a.body_dict(), option=orjson.OPT_SORT_KEYS))
    )
    assert len(a.request_hash) == 64 and int(a.request_hash, 16) >= 0  # fits a 64-character custom_id


def test_sessions_that_cannot_become_requests_are_named() -> None:
    assert requests_for_session("t1", b"{not json", turns="last", model="m")[1].code == "record_unreadable"
    no_model = record(
        "t2", [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], model=None
    )
    assert requests_for_record("t2", no_model, turns="last", model=None)[1].code == "no_model"
    assert requests_for_record("t2", no_model, turns="last", model="m")[1] is None
    assert requests_for_record("t3", record("t3", []), turns="last", model="m") == ([], None)  # empty: fine


def test_sample_is_deterministic_spread_and_grows_by_adding() -> None:
    ids = [f"thread_{i:04d}" for i in range(1000)]
    ten = deterministic_sample(iter(ids), 10)
    assert ten == deterministic_sample(reversed(ids), 10) == sorted(ten)
    assert set(ten) <= set(deterministic_sample(ids, 20))
    assert ten != ids[:10]


# -- comparison ----------------------------------------------------------------------------------


def _calls(*pairs: tuple[str, str]) -> dict:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(pairs)
        ],
    }


def test_parity_compares_names_and_json_arguments_in_any_order() -> None:
    want = _calls(("lookup", '{"a": 1, "b": [1, 2]}'), ("notify", '{"to": "x"}'))
    same = _calls(("notify", '{ "to" : "x" }'), ("lookup", '{"b":[1,2],"a":1}'))
    assert compare(want, same).parity is True
    other_args = _calls(("lookup", '{"a": 2, "b": [1, 2]}'), ("notify", '{"to": "x"}'))
    result = compare(want, other_args)
    assert (result.parity, result.names_equal, result.kind_mismatch) == (False, True, False)
    text = compare(want, {"role": "assistant", "content": "I can't"})
    assert (text.parity, text.names_equal, text.kind_mismatch) == (False, False, True)
    assert compare(_calls(("f", "not json ")), _calls(("f", "not json"))).parity is True
    assert compare(_calls(("f", "{}")), _calls(("f", "{}"), ("f", "{}"))).parity is False  # a call twice


def test_text_similarity_is_a_normalized_word_ratio() -> None:
    assert text_similarity("Your refund, is ISSUED!", "your refund is issued") == 1.0
    assert text_similarity("", "") == 1.0
    assert text_similarity("alpha beta", "") == 0.0
    assert text_similarity("a b c d", "a b x d") == 0.75
    assert 0 < text_similarity("the parcel is out for delivery", "your parcel is out today") < 1
    result = compare(
        {"role": "assistant", "content": [{"type": "text", "text": "Hello there"}]}, _calls(("f", "{}"))
    )
    assert (result.kind, result.similarity, result.kind_mismatch) == ("text", 0.0, True)


# -- prices --------------------------------------------------------------------------------------


def test_prices_use_the_longest_prefix_and_the_users_file(tmp_path: Path) -> None:
    table = PriceTable()
    assert table.price_of("gpt-4.1-mini-2025-04-14") == table.prices["gpt-4.1-mini"]
    assert table.cost("gpt-4.1", 1_000_000, 1_000_000) == pytest.approx(10.0)
    assert table.cost("local-llama", 10, 10) is None
    path = tmp_path / "prices.json"
    path.write_text('{"local-": {"input": 0.5, "output": 1}, "gpt-4.1": {"input": 1, "output": 1}}')
    custom = load_prices(path)
    assert custom.cost("local-llama", 2_000_000, 0) == pytest.approx(1.0)
    assert custom.cost("gpt-4.1", 1_000_000, 1_000_000) == pytest.approx(2.0)
    path.write_text('{"x": {"input": -1}, "y": "cheap"}')
    with pytest.raises(BadInputError) as err:
        load_prices(path)
    assert len(err.value.problems) == 2


# -- report --------------------------------------------------------------------------------------


def _reply(message: dict, prompt: int = 100, completion: int = 10) -> str:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1",
        "choices": [
            {"index": 0, "message": {"refusal": None, **message}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    assert spec.errors("CreateChatCompletionResponse", body) == []
    return orjson.dumps(body).decode()


def test_report_figures_and_verdict() -> None:
    (tool, text), _ = requests_for_record("t", tool_turn_record("t"), turns="all", model="gpt-4.1")
    report = ReplayReport("a.db", "gpt-4.1", "all", min_accept=0.9, min_parity=0.5)
    report.add(tool, ReplayRow(tool.request_hash, "done", response=_reply(tool.expected), latency_ms=12.0,
                               prompt_tokens=1_000_000, completion_tokens=0))  # fmt: skip
    report.add(
        text,
        ReplayRow(
            text.request_hash, "done", response=_reply({"role": "assistant", "content": "Order 123 shipped."})
        ),
    )
    assert report.acceptance == 1.0 and report.parity == 1.0 and report.exit_code() == ExitCode.OK
    doc = report.to_dict()
    assert doc["usage"]["estimated_cost_usd"] == pytest.approx(2.0)
    assert 0 < doc["text"]["similarity_mean"] < 1 and doc["latency_ms"]["count"] == 1
    report.add(
        text, ReplayRow(text.request_hash, "rejected", status_code=400, error="400: Invalid 'messages[1]'")
    )
    assert report.acceptance == pytest.approx(2 / 3) and report.exit_code() == ExitCode.ATTENTION
    assert report.to_dict()["rejections"]["examples"][0]["error"].startswith("400")
    report.add(tool, None)
    assert any("no answer yet" in r for r in report.reasons())


# -- batch lines ---------------------------------------------------------------------------------


def test_batch_line_is_a_spec_batch_request_with_the_body_as_hashed() -> None:
    (request,), _ = requests_for_record("t", tool_turn_record("t"), turns="last", model="gpt-4.1")
    line = batch_line(request)
    assert line.endswith(b"}\n") and b"\n" not in line[:-1]
    obj = orjson.loads(line)
    assert (
        obj["custom_id"] == request.request_hash
        and obj["method"] == "POST"
        and obj["url"] == "/v1/chat/completions"
    )
    assert orjson.dumps(obj["body"], option=orjson.OPT_SORT_KEYS) == request.body
    assert spec.errors("CreateChatCompletionRequest", obj["body"]) == []


def test_result_lines_become_ledger_rows() -> None:
    ok = {"id": "b1", "custom_id": "h1", "response": {"status_code": 200, "request_id": "r", "body": orjson.loads(
        _reply({"role": "assistant", "content": "x"}, 7, 3))}, "error": None}  # fmt: skip
    row = parse_result_line(orjson.dumps(ok))
    assert (row.state, row.prompt_tokens, row.completion_tokens, row.via) == ("done", 7, 3, "batch")
    bad = {
        "custom_id": "h2",
        "response": {"status_code": 400, "body": {"error": {"message": "Invalid 'tools'"}}},
    }
    assert parse_result_line(orjson.dumps(bad)).state == "rejected"
    assert "Invalid 'tools'" in parse_result_line(orjson.dumps(bad)).error
    busy = {"custom_id": "h3", "response": {"status_code": 503, "body": {}}}
    assert parse_result_line(orjson.dumps(busy)).state == "failed"
    expired = {"custom_id": "h4", "response": None, "error": {"code": "batch_expired", "message": "not run"}}
    assert parse_result_line(orjson.dumps(expired)).error == "batch_expired: not run"
    for broken in (b"nope", b"[]", b'{"response": {}}', b'{"custom_id": "x"}'):
        with pytest.raises(ValueError):
            parse_result_line(broken)


# -- the ledger ----------------------------------------------------------------------------------


def test_ledger_schema_is_the_documented_one(tmp_path: Path) -> None:
    with Archive.create(tmp_path / "a.db") as archive:
        columns = {c.name: c.type for c in archive.db["replay_ledger"].columns}
        indexes = {tuple(i.columns) for i in archive.db["replay_ledger"].indexes}
        pks = archive.db["replay_ledger"].pks
    assert columns == {
        "request_hash": "TEXT", "thread_id": "TEXT", "turn": "INTEGER", "model": "TEXT", "state": "TEXT",
        "attempts": "INTEGER", "status_code": "INTEGER", "response": "TEXT", "error": "TEXT",
        "latency_ms": "REAL", "prompt_tokens": "INTEGER", "completion_tokens": "INTEGER", "via": "TEXT",
        "updated_at": "REAL", "target": "TEXT",
    }  # fmt: skip
    assert indexes >= {("thread_id", "turn"), ("state",)}
    assert pks == ["request_hash", "target"]  # another target is another replay


def test_an_archive_from_before_the_ledger_gains_it_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    from sqlite_utils import Database

    MIGRATIONS.apply(Database(conn), stop_before="m003_create_replay_ledger")
    conn.close()
    with Archive.open(path, writer="test") as archive:
        assert "replay_ledger" in archive.db.table_names()
        assert "m003_create_replay_ledger" in archive.applied_migrations()


def test_ledger_states_never_downgrade_a_finished_request(tmp_path: Path) -> None:
    path = session_archive(tmp_path / "a.db", [tool_turn_record("thread_a")])
    target = "http://127.0.0.1:9/v1"
    with Archive.open(path, writer="test") as archive:
        archive.ledger.begin("h1", "thread_a", 4, "m", target)
        archive.ledger.begin("h1", "thread_a", 4, "m", target)  # resumed while in flight
        assert archive.ledger.rows(["h1"], target)["h1"].attempts == 2
        archive.ledger.finish(ReplayRow("h1", "done", response="{}", status_code=200, target=target))
        archive.ledger.mark_batched([("h1", "thread_a", 4, "m"), ("h2", "thread_a", 2, "m")])
        assert archive.ledger.ingest([ReplayRow("h1", "done"), ReplayRow("h9", "done")]) == (2, 0)
        archive.ledger.mark_batched([("h1", "thread_a", 4, "m")])  # answered: stays done
        assert archive.ledger.ingest([ReplayRow("h1", "rejected", error="x")]) == (0, 1)
        rows = archive.ledger.rows(["h1", "h2", "h9", "nope"], BATCH_TARGET)
        assert {h: r.state for h, r in rows.items()} == {"h1": "done", "h2": "batched", "h9": "done"}
        assert archive.ledger.rows(["h1", "h2"], target).keys() == {"h1"}  # each target its own replay
        assert archive.ledger.unlinked() == 1  # h9 answers no request this archive built


def test_offline_report_reads_only_the_ledger(tmp_path: Path) -> None:
    path = session_archive(tmp_path / "a.db", [tool_turn_record("thread_a"), tool_turn_record("thread_b")])
    with Archive.open(path, writer="test") as archive:
        report = replay_offline(archive, ReplayOptions(model="gpt-4.1"))
        assert (report.sessions, report.requests, report.pending) == (2, 2, 2)
        assert report.exit_code() == ExitCode.ATTENTION


def test_token_pacer_spends_a_bucket_then_waits_for_the_rate() -> None:
    import asyncio
    import time

    from migrator.replay.client import TokenPacer

    async def spend() -> tuple[float, float]:
        pacer = TokenPacer(6000)  # 100 tokens a second, a bucket of 600
        started = time.monotonic()
        await pacer.acquire(600)
        first = time.monotonic() - started
        await pacer.acquire(30)  # the bucket is empty: 0.3 s of refill
        return first, time.monotonic() - started

    first, second = asyncio.run(spend())
    # Lower bounds are the property (load can only make waits longer): a full bucket is spent at
    # once, then 30 tokens wait 0.3 s of refill.
    assert first < 0.25 <= second
    pacer = TokenPacer(6000)
    pacer.level = 0
    pacer.settle(estimated=100, actual=40)  # the usage came back smaller: the difference is returned
    assert pacer.level == 60
