"""The pure parts of --from-records: times, fields, and what one thread's rows become."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from migrator.convert import ThreadBundle, convert_thread
from migrator.errors import UsageError
from migrator.records.build import BuildSettings, RowIn, build_thread
from migrator.records.fields import parse_maps, resolve_columns
from migrator.records.values import Fields, Rejected, parse_row, parse_time, raw_row

T = 1_714_557_600  # 2024-05-01T10:00:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T, T),
        (T * 1000 + 250, T + 0.25),
        (T * 1_000_000, T),
        (str(T), T),
        (f"{T}.5", T + 0.5),
        ("2024-05-01T10:00:00Z", T),
        ("2024-05-01 10:00:00", T),  # no zone: UTC
        ("2024-05-01T12:00:00+02:00", T),
        ("2024-05-01 10:00:00.123+00", T + 0.123),
        (datetime(2024, 5, 1, 10), T),
        (datetime(2024, 5, 1, 11, tzinfo=timezone(timedelta(hours=1))), T),
        (Decimal(T), T),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (-5, None),
        (float("nan"), None),
    ],
)
def test_parse_time(value, expected):
    got = parse_time(value)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_maps_and_columns():
    assert parse_maps(["thread_id=conv", "content = body"]) == {"thread_id": "conv", "content": "body"}
    with pytest.raises(UsageError, match="given twice"):
        parse_maps(["content=a", "content=b"])
    cols = resolve_columns(
        ["conv", "role", "body", "created_at", "user_id"], {"thread_id": "conv", "content": "body"}
    )
    assert cols.index["thread_id"] == "conv" and cols.index["content"] == "body"
    assert "user_id" not in cols.used  # every other column: thread metadata
    # A column taken by a mapping is not also read under its own name.
    cols = resolve_columns(["thread_id", "role", "text", "content", "created_at"], {"content": "text"})
    assert "content" not in cols.used


def row(n: int, role: str, content, at: float = T, tid: str = "t", **extra) -> RowIn:
    raw = {"thread_id": tid, "role": role, "content": content, "created_at": at, **extra}
    cols = resolve_columns(list(raw), {})
    fields = parse_row(raw_row(list(raw), list(raw.values())), cols)
    assert isinstance(fields, Fields), fields
    return RowIn(n, fields, raw)


def session(rows: list[RowIn], settings: BuildSettings = BuildSettings()) -> dict:
    built = build_thread("t", rows, settings)
    assert not built.rejected, built.rejected
    bundle = ThreadBundle(built.thread, built.messages, built.runs, built.steps, {}, {})
    return convert_thread(bundle)


def test_rows_of_one_second_keep_their_row_order_text_before_its_tool_calls():
    calls = '[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]'
    rows = [
        row(1, "user", "q"),
        row(2, "assistant", "let me check", tool_calls=calls),
        row(3, "tool", "42", tool_call_id="c1"),
        row(4, "assistant", "it is 42"),
        row(5, "user", "thanks"),
    ]
    messages = session(rows)["messages"]
    assert [(m["role"], m.get("content")) for m in messages] == [
        ("user", "q"),
        ("assistant", "let me check"),
        ("assistant", None),
        ("tool", "42"),
        ("assistant", "it is 42"),
        ("user", "thanks"),
    ]


def test_the_newest_system_row_is_the_system_message_even_after_the_last_turn():
    rows = [row(1, "system", "old"), row(2, "user", "hi"), row(3, "assistant", "yo"), row(4, "system", "new")]
    record = session(rows)
    assert record["messages"][0] == {"role": "system", "content": "new"}
    assert [w["code"] for w in record["warnings"]].count("instructions_changed") == 1


def test_ids_are_stable_and_distinct_across_threads():
    a = build_thread("a", [row(1, "user", "x", tid="a")])
    b = build_thread("b", [row(1, "user", "x", tid="b")])
    again = build_thread("a", [row(7, "user", "x", tid="a")])  # another row number, same place in the thread
    assert a.messages[0]["id"] != b.messages[0]["id"]
    assert a.messages[0]["id"] == again.messages[0]["id"]
    assert a.thread["source"] == a.messages[0]["source"] == "records"


def test_rows_a_thread_cannot_use_are_rejected_with_a_reason():
    built = build_thread(
        "t",
        [
            row(1, "user", "a", message_id="m1"),
            row(2, "user", "b", message_id="m1"),
            row(3, "tool", "out", tool_call_id="nope"),
        ],
    )
    assert [(r.number, why.split(" ")[0]) for r, why in built.rejected] == [(2, "message_id"), (3, "a")]
    assert len(built.messages) == 1 and len(built.rows) == 1


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("role", "bot", "unknown role"),
        ("created_at", "soon", "is not epoch seconds"),
        ("tool_calls", "[{", "tool_calls is not JSON"),
        ("tool_calls", '[{"type": "function"}]', "without a function name"),
        ("metadata", "[1]", "metadata is not a JSON object"),
        ("thread_id", "", "no thread_id"),
    ],
)
def test_bad_rows_say_why(field, value, reason):
    raw = {
        "thread_id": "t",
        "role": "user",
        "content": "x",
        "created_at": T,
        "tool_calls": None,
        "metadata": None,
    }
    raw[field] = value
    result = parse_row(raw, resolve_columns(list(raw), {}))
    assert isinstance(result, Rejected) and reason in result.reason


def test_raw_rows_are_json_with_every_column_and_text_stays_text():
    raw = raw_row(["a", "a", "when", "n"], ["x", "y", datetime(2024, 5, 1, tzinfo=UTC), Decimal("1.50")])
    assert raw == {"a": "x", "a#2": "y", "when": "2024-05-01T00:00:00+00:00", "n": "1.50"}
    fields = parse_row({"thread_id": 1, "role": "User", "content": "[not json", "created_at": T, "vip": True},
                       resolve_columns(["thread_id", "role", "content", "created_at", "vip"], {}))  # fmt: skip
    assert isinstance(fields, Fields)
    assert (fields.thread_id, fields.role, fields.content, fields.thread_metadata) == (
        "1",
        "user",
        "[not json",
        {"vip": "true"},
    )
