"""`migrate import --to jsonl`, the selection flags, the CLI contract, and the pure item/metadata rules."""

from __future__ import annotations

import csv
import hashlib

import orjson
import pytest
from test_import_support import build_archive, golden_records, loads_lines, long_record, run_cli

from migrator.archive import Archive
from migrator.importers import (
    Selection,
    conversation_metadata,
    import_jsonl,
    session_items,
)
from migrator.sessions import deterministic_sample


@pytest.fixture
def archive(tmp_path):
    return build_archive(tmp_path / "a.db", golden_records() + [long_record("thread_aa_long_1", 6)])


def test_jsonl_is_the_stored_canonical_records_sorted_and_byte_identical_across_archives(tmp_path, archive):
    out = tmp_path / "s.jsonl"
    with Archive.open(archive) as store:
        summary = import_jsonl(store, out)
        stored = [record for _, record in store.sessions.records()]
    assert out.read_bytes() == b"".join(r + b"\n" for r in stored)
    ids = [r["thread_id"] for r in loads_lines(out.read_bytes())]
    assert ids == sorted(ids) and summary.imported == len(ids) == len(golden_records()) + 1

    # Same content stored in another order, in another archive: the very same bytes.
    other = build_archive(
        tmp_path / "b.db", list(reversed(golden_records())) + [long_record("thread_aa_long_1", 6)]
    )
    with Archive.open(other) as store:
        import_jsonl(store, tmp_path / "t.jsonl")
    assert (tmp_path / "t.jsonl").read_bytes() == out.read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_cli_jsonl_to_stdout_with_thread_filter_and_a_missing_thread(archive):
    code, out, err = run_cli(
        "import", str(archive), "--to", "jsonl", "--out", "-",
        "--thread", "thread_unicode", "--thread", "thread_basic_chat", "--thread", "thread_nope",
    )  # fmt: skip
    assert code == 1, err  # done, but a requested thread is not in the archive
    assert [r["thread_id"] for r in loads_lines(out)] == ["thread_basic_chat", "thread_unicode"]
    assert "1 not in the archive" in err


def test_sample_is_deterministic_sorted_and_a_subset(archive, tmp_path):
    runs = []
    for name in ("one.jsonl", "two.jsonl"):
        code, _, err = run_cli(
            "import",
            str(archive),
            "--to",
            "jsonl",
            "--out",
            str(tmp_path / name),
            "--sample",
            "5",
        )
        assert code == 0, err
        runs.append((tmp_path / name).read_bytes())
    assert runs[0] == runs[1]
    ids = [r["thread_id"] for r in loads_lines(runs[0])]
    assert len(ids) == 5 and ids == sorted(ids)
    every = sorted(r["thread_id"] for r in golden_records()) + ["thread_aa_long_1"]
    by_hash = sorted(every, key=lambda t: hashlib.sha256(t.encode()).digest())
    assert ids == sorted(by_hash[:5])
    assert deterministic_sample(iter(every), 5) == ids
    with Archive.open(archive) as store:  # a sample of named threads samples among them
        picked, missing = Selection(("thread_unicode", "thread_basic_chat", "thread_nope"), 1).resolve(store)
    assert len(picked) == 1 and missing == ["thread_nope"]


def test_mapping_csv_joins_thread_to_line_with_metadata(archive, tmp_path):
    mapping = tmp_path / "map.csv"
    code, _, err = run_cli(
        "import", str(archive), "--to", "jsonl", "--out", str(tmp_path / "s.jsonl"),
        "--mapping-out", str(mapping),
    )  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader(mapping.open()))
    assert [r["thread_id"] for r in rows] == sorted(r["thread_id"] for r in rows)
    basic = next(r for r in rows if r["thread_id"] == "thread_basic_chat")
    assert basic["target"] == "jsonl" and basic["status"] == "written"
    assert orjson.loads(basic["metadata"])["user_id"]
    assert int(rows[0]["target_id"]) == 1


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--to", "jsonl"], "--out"),
        (["--to", "agents-sqlite"], "--out"),
        (["--to", "conversations"], "--target-base-url"),
    ],
)
def test_a_missing_flag_is_one_line_and_exit_2(archive, args, flag):
    code, out, err = run_cli("import", str(archive), *args)
    assert code == 2, err
    assert out == b"" and len(err.strip().splitlines()) == 1 and flag in err


def test_conversations_without_target_key_is_exit_2_and_names_the_variable(archive):
    code, _, err = run_cli(
        "import", str(archive), "--to", "conversations", "--target-base-url", "http://127.0.0.1:9/v1"
    )
    assert code == 2 and "TARGET_API_KEY" in err and len(err.strip().splitlines()) == 1


def test_a_missing_archive_is_refused_and_never_created(tmp_path):
    missing = tmp_path / "nope.db"
    code, _, err = run_cli("import", str(missing), "--to", "jsonl", "--out", "-")
    assert code == 2 and "no such archive" in err and not missing.exists()


def test_items_follow_the_session_in_order_without_the_instructions():
    record = long_record("thread_x", 2)
    items = session_items(record).items
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message"] * 2
    assert items[0] == {"type": "message", "role": "user", "content": "question 0 of thread_x"}
    assert items[1]["call_id"] == items[2]["call_id"] == "call_read_x_0"
    assert items[1]["name"] == "lookup" and items[2]["output"] == "result 0"


def test_items_of_rich_content_refusals_and_long_call_ids():
    record = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                ],
            },
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
            {"role": "assistant", "content": "Calling.", "tool_calls": [
                {"id": "c" * 80, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c" * 80, "content": "ok"},
        ]
    }  # fmt: skip
    converted = session_items(record)
    items = converted.items
    assert items[0]["content"] == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
    ]
    assert items[1] == {"type": "message", "role": "assistant", "content": "I can't."}
    assert items[2] == {"type": "message", "role": "assistant", "content": "Calling."}
    assert items[3]["call_id"] == items[4]["call_id"] and len(items[3]["call_id"]) <= 64
    assert converted.notes == {"call_id_shortened": 2}


def test_conversation_metadata_fits_the_limits_deterministically():
    source = {f"k{i:02d}": f"v{i}" for i in range(20)}
    source["x" * 65] = "long key"
    source["big"] = "y" * 513
    source["source_thread_id"] = "spoof"
    source["n"] = 7
    record = {"thread_id": "thread_m", "assistant_id": "asst_m", "metadata": source}
    metadata, dropped = conversation_metadata(record)
    assert len(metadata) == 16
    assert metadata["source_thread_id"] == "thread_m" and metadata["source_assistant_id"] == "asst_m"
    assert all(len(k) <= 64 and len(v) <= 512 and isinstance(v, str) for k, v in metadata.items())
    reasons = dict(dropped)
    assert reasons["x" * 65] == "key_too_long" and reasons["big"] == "value_too_long"
    assert reasons["source_thread_id"] == "reserved"
    assert sum(1 for why in reasons.values() if why == "too_many_pairs") == 7  # k14..k19 and n
    assert conversation_metadata(record) == (metadata, dropped)
    assert metadata["k00"] == "v0" and "n" not in metadata  # sorted key order decides who fits
