"""Unit tests of the converter's parts: options, the strict SDK types, the validator, tokens, edges."""

from __future__ import annotations

import copy
import gc
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from migrator.convert import (
    FINDING_CODES,
    WARNING_CODES,
    ConversionOptions,
    FileInfo,
    ThreadBundle,
    convert_thread,
    count_tokens,
    validate_session,
)
from migrator.convert.models import encoding_name, is_reasoning_model
from migrator.convert.schemas import schema_problems, strict_problems
from migrator.convert.sdkstrict import message_adapter, messages_adapter, sdk_errors, tool_adapter
from migrator.convert.tokens import _encoder

_RAW = Path(__file__).parent.parent / "fixtures" / "convert" / "rawobjects.py"
_spec = importlib.util.spec_from_file_location("convert_rawobjects", _RAW)
assert _spec and _spec.loader
raw = sys.modules.get("convert_rawobjects") or importlib.util.module_from_spec(_spec)
if "convert_rawobjects" not in sys.modules:
    sys.modules["convert_rawobjects"] = raw
    _spec.loader.exec_module(raw)

TID, AID = "thread_u", "asst_u"
WEATHER = raw.function_tool(
    "get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}}
)


def codes(record: dict[str, Any]) -> list[str]:
    return [w["code"] for w in record["warnings"]]


def finding_codes(record: dict[str, Any]) -> set[str]:
    return {f.code for f in validate_session(record)}


def one_run_bundle(calls: list[dict[str, Any]], tools: list[dict[str, Any]], **run_kw: Any) -> ThreadBundle:
    r = raw.run("run_1", TID, AID, raw.T0 + 1, tools=tools, **run_kw)
    return ThreadBundle(
        thread=raw.thread(TID),
        messages=[raw.message("msg_1", TID, raw.T0 + 1, "user", "hi")],
        runs=[r],
        steps=[raw.step_tools("step_1", r, raw.T0 + 2, calls)],
        assistants={},
        files={},
    )


def base_record() -> dict[str, Any]:
    return convert_thread(
        one_run_bundle([raw.fn_call("call_1", "get_weather", '{"city":"Rome"}', "sunny")], [WEATHER])
    )


# --- options -----------------------------------------------------------------------------------


def test_options_round_trip_and_refusals() -> None:
    options = ConversionOptions(system_role="developer", hosted_tools="text", citations="strip")
    assert ConversionOptions.from_dict(options.as_dict()) == options
    assert ConversionOptions().as_dict() == {
        "system_role": "system",
        "hosted_tools": "emulate",
        "citations": "footnote",
    }
    with pytest.raises(ValueError, match="--hosted-tools"):
        ConversionOptions(hosted_tools="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown conversion option"):
        ConversionOptions.from_dict({"citations": "keep", "newer_flag": True})


# --- the SDK's types, strict ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("user", {"role": "user", "content": "hi", "metadata": {}}),
        ("user", {"role": "user", "content": [{"type": "text", "text": "hi", "annotations": []}]}),
        (
            "user",
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x", "x": 1}}]},
        ),
        ("assistant", {"role": "assistant", "content": "a", "run_id": "run_1"}),
        (
            "assistant",
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}", "output": "x"},
                    }
                ],
            },
        ),
        ("tool", {"role": "tool", "content": "x", "tool_call_id": "c", "name": "f"}),
        ("system", {"role": "system", "content": "x", "assistant_id": "asst_1"}),
    ],
)
def test_sdk_strict_types_reject_unknown_keys(role: str, message: dict[str, Any]) -> None:
    errors = sdk_errors(message_adapter(role), message)
    assert errors and all("Extra inputs are not permitted" in e for e in errors), errors
    assert sdk_errors(messages_adapter(), [message])  # the union refuses it too


def test_sdk_strict_types_accept_what_the_converter_emits() -> None:
    record = base_record()
    assert sdk_errors(messages_adapter(), record["messages"]) == []
    assert sdk_errors(tool_adapter(), record["tools"][0]) == []
    bad_tool = copy.deepcopy(record["tools"][0])
    bad_tool["function"]["x-internal"] = True
    assert sdk_errors(tool_adapter(), bad_tool) == ["function/x-internal: Extra inputs are not permitted"]


def test_sdk_strict_types_do_not_touch_the_sdk() -> None:
    from openai.types.chat import ChatCompletionUserMessageParam

    assert "__pydantic_config__" not in ChatCompletionUserMessageParam.__dict__


# --- validate_session ----------------------------------------------------------------------------


def test_a_converted_session_has_no_findings() -> None:
    assert validate_session(base_record()) == []


def test_every_finding_code_is_documented() -> None:
    assert all(sev in ("error", "warning") and text for sev, text in FINDING_CODES.values())
    assert all(text.strip() for text in WARNING_CODES.values())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["messages"].pop(), {"tool_call_unanswered", "sources_misaligned"}),
        (
            lambda r: r["messages"].append(dict(r["messages"][-1])) or r["sources"].append("x"),
            {"tool_call_answered_twice"},
        ),
        (
            lambda r: r["messages"][-1].update(tool_call_id="call_zz"),
            {"tool_message_orphan", "tool_call_unanswered"},
        ),
        (
            lambda r: (
                r["messages"].insert(3, {"role": "user", "content": "x"}) or r["sources"].insert(3, "u")
            ),
            {"tool_call_unanswered", "tool_message_orphan"},
        ),
        (
            lambda r: r["messages"][2]["tool_calls"].append(dict(r["messages"][2]["tool_calls"][0])),
            {"tool_call_id_duplicate"},
        ),
        (
            lambda r: r["tools"][0]["function"].update(name="bad name"),
            {"tool_name_invalid", "tool_call_undeclared"},
        ),
        (lambda r: r["tools"].append(copy.deepcopy(r["tools"][0])), {"tool_name_duplicate"}),
        (
            lambda r: r["tools"][0]["function"].update(parameters={"type": "object", "required": "city"}),
            {"tool_schema_invalid"},
        ),
        (lambda r: r["tools"][0]["function"].update(strict=True), {"tool_strict_invalid"}),
        (lambda r: r["sources"].pop(), {"sources_misaligned"}),
        (lambda r: r["messages"][1].update(run_id="run_1"), {"message_shape"}),
        (lambda r: r["messages"][1].update(content=[]), {"message_shape"}),
        (lambda r: r["messages"][2].update(tool_calls=[]), {"message_shape", "tool_message_orphan"}),
        (lambda r: r["params"].update(tool_choice="auto", temperature=3), {"params_invalid"}),
        (lambda r: r.update(model=None), {"model_missing"}),
        (lambda r: r.pop("files"), {"record_shape"}),
        (lambda r: r.update(extra=1), {"record_shape"}),
        (
            lambda r: r["messages"][2]["tool_calls"][0]["function"].update(arguments="{"),
            {"arguments_not_json"},
        ),
        (
            lambda r: r["messages"].append({"role": "system", "content": "late"}) or r["sources"].append("s"),
            {"system_not_first"},
        ),
        (lambda r: r["warnings"].append({"code": "made_up", "detail": ""}), {"warning_code_unknown"}),
    ],
)
def test_validator_catches(mutate: Any, expected: set[str]) -> None:
    record = base_record()
    mutate(record)
    assert finding_codes(record) == expected


def test_findings_carry_thread_and_severity() -> None:
    record = base_record()
    record["messages"].pop()
    finding = next(f for f in validate_session(record) if f.code == "tool_call_unanswered")
    assert (finding.thread_id, finding.severity) == (TID, "error")
    assert "call_1" in finding.detail


# --- schemas -------------------------------------------------------------------------------------


def test_strict_rules() -> None:
    good = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/item"}]},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
        "$defs": {"item": {"type": "object", "properties": {}, "additionalProperties": False}},
    }
    assert strict_problems(good) == ()
    assert schema_problems(good) == ()
    nested_loose = copy.deepcopy(good)
    nested_loose["$defs"]["item"] = {"type": "object", "properties": {"x": {"type": "integer"}}}
    problems = strict_problems(nested_loose)
    assert any("additionalProperties" in p for p in problems) and any("'x'" in p for p in problems)
    assert any("allOf" in p for p in strict_problems({**good, "allOf": [{}]}))
    assert strict_problems({"anyOf": [good]})  # root must be an object, not anyOf
    assert schema_problems({"type": "string"})  # chat completions wants an object root
    assert schema_problems([1])


# --- conversion edges ----------------------------------------------------------------------------


def test_emulated_hosted_tool_never_shadows_a_declared_function() -> None:
    own = raw.function_tool("file_search", "Our own search.", {"type": "object", "properties": {}})
    bundle = one_run_bundle([raw.fs_call("call_fs", [])], [own, {"type": "file_search"}])
    record = convert_thread(bundle)
    assert [t["function"]["description"] for t in record["tools"]] == ["Our own search."]
    assert "tool_schema_conflict" in codes(record)
    assert not [f for f in validate_session(record) if f.severity == "error"]


def test_text_mode_keeps_function_calls_and_inlines_hosted_ones() -> None:
    calls = [
        raw.fn_call("call_f", "get_weather", '{"city":"Rome"}', "sunny"),
        raw.ci_call("call_c", "print(1)", [raw.ci_logs("1\n")]),
    ]
    record = convert_thread(
        one_run_bundle(calls, [WEATHER, {"type": "code_interpreter"}]), ConversionOptions(hosted_tools="text")
    )
    roles = [(m["role"], s) for m, s in zip(record["messages"], record["sources"], strict=True)]
    assert roles[-3:] == [("assistant", "step_1:call_c"), ("assistant", "step_1"), ("tool", "step_1:call_f")]
    assert "print(1)" in record["messages"][-3]["content"]
    assert [t["function"]["name"] for t in record["tools"]] == ["get_weather"]


def test_hosted_call_cut_short_is_closed() -> None:
    r = raw.run("run_1", TID, AID, raw.T0, tools=[{"type": "code_interpreter"}], status="expired")
    step = raw.step_tools(
        "step_1", r, raw.T0 + 1, [raw.ci_call("call_c", "while True: pass", [])], status="expired"
    )
    bundle = ThreadBundle(
        thread=raw.thread(TID), messages=[], runs=[r], steps=[step], assistants={}, files={}
    )
    record = convert_thread(bundle)
    assert record["messages"][-1]["content"].startswith("No output was ever submitted")
    assert "dangling_tool_call_closed" in codes(record)


def test_citation_edges() -> None:
    value = "A【1:0†a.txt】 B【1:0†a.txt】 C【2:0†b.txt】"
    first = raw.citation(value, "【1:0†a.txt】", "file-a")
    second = raw.citation(value, "【1:0†a.txt】", "file-a", occurrence=1)
    wrong_index = {**raw.citation(value, "【2:0†b.txt】", "file-b"), "start_index": 0, "end_index": 3}
    overlapping = {**first, "text": "A【1:0†a.txt】", "start_index": 0}  # overlaps the first: ignored
    message = raw.message(
        "msg_1", TID, raw.T0, "assistant", [raw.text(value, [first, second, wrong_index, overlapping])]
    )
    files = {"file-a": FileInfo("file-a", "a.txt", None, None, "parsed_text")}

    def content(mode: str) -> str:
        bundle = ThreadBundle(
            thread=raw.thread(TID), messages=[message], runs=[], steps=[], assistants={}, files=files
        )
        return convert_thread(bundle, ConversionOptions(citations=mode))["messages"][0]["content"]

    assert content("footnote") == "A[1] B[1] C[2]\n\n[1] a.txt (file-a)\n[2] file-b"
    assert content("strip") == "A B C"
    assert content("keep") == value


def test_image_bytes_without_mime_are_sniffed() -> None:
    png = bytes.fromhex("89504e470d0a1a0a") + b"rest"
    message = raw.message("msg_1", TID, raw.T0, "user", [raw.image_file("file-i")])
    files = {"file-i": FileInfo("file-i", None, "0" * 64, len(png), "downloaded", data=png)}
    bundle = ThreadBundle(
        thread=raw.thread(TID), messages=[message], runs=[], steps=[], assistants={}, files=files
    )
    part = convert_thread(bundle)["messages"][0]["content"][0]
    assert part["image_url"]["url"].startswith("data:image/png;base64,")


def test_empty_thread() -> None:
    record = convert_thread(
        ThreadBundle(thread=raw.thread(TID), messages=[], runs=[], steps=[], assistants={}, files={})
    )
    assert (record["messages"], record["tools"], record["model"]) == ([], [], None)
    assert codes(record) == ["model_unknown"]
    assert {f.code: f.severity for f in validate_session(record)} == {"empty_session": "warning"}


# --- tokens --------------------------------------------------------------------------------------


def test_model_families() -> None:
    assert encoding_name("gpt-4o-mini") == encoding_name("gpt-4.1") == encoding_name("o3") == "o200k_base"
    assert encoding_name("gpt-5") == encoding_name("ft:gpt-4o-mini:org::x") == "o200k_base"
    assert (
        encoding_name("gpt-4")
        == encoding_name("gpt-3.5-turbo")
        == encoding_name("gpt-4-turbo")
        == "cl100k_base"
    )
    assert encoding_name("my-azure-deployment") == "o200k_base"
    assert (
        is_reasoning_model("o3-mini")
        and is_reasoning_model("gpt-5")
        and not is_reasoning_model("gpt-5-chat-latest")
    )
    assert not is_reasoning_model("gpt-4o")


def test_count_tokens_follows_the_cookbook() -> None:
    enc = _encoder("o200k_base").encode
    record = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}], "tools": []}
    assert count_tokens(record) == 3 + 3 + len(enc("user")) + len(enc("hello world"))
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "description": "Does f.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "string", "description": "An a.", "enum": ["x"]}},
            },
        },
    }
    with_tool = count_tokens({**record, "tools": [tool]})
    expected_tool = (
        7 + len(enc("f:Does f")) + 3 + 3 + (-3 + 3 + len(enc("x"))) + len(enc("a:string:An a")) + 12
    )
    assert with_tool - count_tokens(record) == expected_tool
    cl100k = count_tokens({**record, "model": "gpt-4"})
    assert cl100k == 3 + 3 + len(_encoder("cl100k_base").encode("user")) + len(
        _encoder("cl100k_base").encode("hello world")
    )


def test_token_counting_memory_stays_bounded_over_many_unique_texts():
    import hashlib
    import tracemalloc

    def word(n: int) -> str:  # letters only, so each is one unique pre-token piece
        return hashlib.md5(str(n).encode()).hexdigest().translate(str.maketrans("0123456789", "ghijklmnop"))

    record = {"model": "gpt-4.1", "tools": [], "messages": []}
    assert count_tokens(record) > 0  # the encoding is loaded before memory is measured
    tracemalloc.start()
    try:
        for i in range(4):
            record["messages"] = [
                {"role": "user", "content": word(n)} for n in range(i * 30_000, (i + 1) * 30_000)
            ]
            assert count_tokens(record) > 0
            del record["messages"]
            gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 120,000 unique pieces went through; nothing of them is kept (a piece cache would hold megabytes).
    assert kept < 1_000_000
