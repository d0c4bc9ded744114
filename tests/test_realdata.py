"""Real recordings of api.openai.com (third-party test suites) as saved dumps: every bundle and every
`responses/` folder of `../shared/realdata/`, and the licensed copy in `tests/data/realdata/`.

Every expectation here was written by reading the recorded JSON and SSE files (ids, texts, calls,
statuses), never by running the converter and saving what it printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from migrator.archive import Archive
from migrator.cli import main
from migrator.convert import ConversionOptions
from migrator.dumps import ingest_dump
from migrator.sessions import build_sessions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata"
COPY = Path(__file__).parent / "data" / "realdata"
NEVER_RECORDED = "The output of this tool call was never recorded"
EQUATION = "I need to solve the equation `3x + 11 = 14`. Can you help me?"


def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(
            f"{SHARED} is absent: this clone has no ../shared beside it (tests/data/realdata still runs)"
        )
    return SHARED


def sessions(db: Path, *paths: Path) -> tuple[Any, dict[str, dict[str, Any]]]:
    with Archive.create(db) as archive:
        report = ingest_dump(archive, list(paths))
        build_sessions(archive, ConversionOptions())
        records = {tid: orjson.loads(r) for tid, r in archive.sessions.records()}
    return report, records


def shape(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """(role, text) per message; an assistant's tool calls as [(name, arguments)]."""
    out: list[tuple[str, Any]] = []
    for m in record["messages"]:
        if m.get("tool_calls"):
            out.append(
                (m["role"], [(c["function"]["name"], c["function"]["arguments"]) for c in m["tool_calls"]])
            )
        else:
            out.append((m["role"], m["content"] if isinstance(m["content"], str) else m["content"]))
    return out


def codes(record: dict[str, Any]) -> set[str]:
    return {w["code"] for w in record["warnings"]}


def check(record: dict[str, Any], expected: list[tuple[str, Any]]) -> None:
    """Texts are compared by their start (the recordings' answers are long); calls exactly."""
    got = shape(record)
    assert len(got) == len(expected), got
    for (role, content), (want_role, want) in zip(got, expected, strict=True):
        assert role == want_role, got
        if isinstance(want, str):
            assert isinstance(content, str) and content.startswith(want), (content, want)
        else:
            assert content == want, got


# -- the bundles: what bundles/README.md says each holds, read from its files -------------------------

CI = "code_interpreter"
BUNDLES: dict[str, tuple[str, list[tuple[str, Any]], set[str]]] = {
    # The stream of create_and_run: the user message was sent inside the request, never recorded.
    "dotnet_StreamingToolCall_function": (
        "thread_6oUGUBxLwhyApwhYBhWjHI5f",
        [
            ("assistant", [("get_current_weather", "{}")]),
            ("tool", "warm and sunny"),
            ("assistant", "Since it's warm and sunny outside, you should consider wearing lightweight"),
        ],
        set(),
    ),
    # No thread object (create_and_run), the run saved at requires_action and at completed, no steps.
    "dotnet_FunctionToolsWork_function": (
        "thread_iPTdbXGcxD5XNzfCaYWFJylc",
        [
            ("user", "What should I eat on Thursday?"),
            ("assistant", [("get_favorite_food_for_day_of_week", '{"day_of_week":"Thursday"}')]),
            ("tool", NEVER_RECORDED),
            ("assistant", "You should eat tacos on Thursday! 🌮"),
        ],
        {"thread_synthesized", "steps_missing", "tool_output_not_recorded"},
    ),
    "dotnet_FileSearchWorks_file_search": (
        "thread_Q1yKHOMIqQaRApLIyDkJgISP",
        [
            ("user", "Using the files you have available, what's Filip's favorite food?"),
            ("assistant", [("file_search", "{}")]),
            ("tool", '{"results":[{"file_id":"file-DLCAr5NoVMw44WT3FrWWva","file_name":"favorite_foods.txt"'),
            # The 【4:0†favorite_foods.txt】 marker as a footnote (the default --citations).
            (
                "assistant",
                "Filip's favorite food is cake[1].\n\n[1] favorite_foods.txt (file-DLCAr5NoVMw44WT3FrWWva)",
            ),
        ],
        {"hosted_tool_emulated", "file_missing"},  # file metadata only, no bytes were recorded
    ),
    # The steps page is newest first: six code_interpreter calls, the newest with an image output;
    # the six messages their message_creation steps name were never listed.
    "dotnet_BasicRunStepFunctionalityWorks_code_interpreter": (
        "thread_OS44jZFnGgFsgkVM85h4FzVY",
        [("system", "You help the user with mathematical descriptions and visual")]
        + [
            item
            for code, output in (
                ("import pandas as pd\n\n# Let's read the uploaded", "(the code printed nothing)"),
                ("# Trying to read the file using Excel file format", "(the code printed nothing)"),
                ("# Attempt to read the file as a text file to insp", "(the code printed nothing)"),
                ("from io import StringIO\n\n# Correct the formatti", "(the code printed nothing)"),
                ("# Correct lines that have more than two commas by", "(the code printed nothing)"),
                (
                    "import numpy as np\nimport matplotlib.pyplot as p",
                    "[image output: file-TEzYYqVu4gtxS4hvLGYGeM",
                ),
            )
            for item in (("assistant", code), ("tool", output))
        ],
        {"hosted_tool_emulated", "step_message_missing", "file_missing"},
    ),
    # A function run saved at requires_action and at completed; no steps request was recorded.
    "openllmetry_llamaindex_function": (
        "thread_7W4a2FW5Rkd7NVyieFaFB5la",
        [
            ("system", "You are a bot designed to answer questions about cities"),
            ("user", "Which city has the highest population?"),
            ("assistant", [("sql_tool", '{"input":"SELECT city, MAX(population) FROM city_stats"}')]),
            ("tool", NEVER_RECORDED),
            ("assistant", "The city with the highest population, as per the available data, is Tokyo"),
        ],
        {"steps_missing", "tool_output_not_recorded"},
    ),
    # Recorded while the run was queued and its step in progress; no messages list.
    "ruby_file_search": (
        "thread_Z8kflIC6P6N5SpnkPW4q7waD",
        [
            ("system", "You are a file search tool. Find the answer in the given fi"),
            ("assistant", [("file_search", "{}")]),
            (
                "tool",
                '{"results":[{"file_id":"file-m2NU6eb0PIvENSYcPSILFqTM","file_name":"somatosensory.pdf"',
            ),
        ],
        {"hosted_tool_emulated", "run_unfinished", "file_missing"},
    ),
}


def _code_calls(record: dict[str, Any]) -> None:
    """code_interpreter calls carry their code as JSON arguments: compare the code's start."""
    for m in record["messages"]:
        for call in m.get("tool_calls") or ():
            if call["function"]["name"] == CI:
                code = orjson.loads(call["function"]["arguments"])["code"]
                m["content"], m["tool_calls"] = code, None


def check_bundle(name: str, folder: Path, tmp_path: Path) -> dict[str, Any]:
    thread_id, expected, warnings = BUNDLES[name]
    report, records = sessions(tmp_path / f"{name}.db", folder)
    assert report.problems == [], report.problems
    assert list(records) == [thread_id]
    record = records[thread_id]
    _code_calls(record)
    check(record, expected)
    assert codes(record) == warnings, record["warnings"]
    # Every call is answered at once by a tool message with its id.
    for i, m in enumerate(record["messages"]):
        for j, call in enumerate(m.get("tool_calls") or ()):
            assert record["messages"][i + 1 + j]["tool_call_id"] == call["id"]
    return record


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_bundle_copy(name: str, tmp_path: Path) -> None:
    """The copy in tests/data: runs in every clone."""
    check_bundle(name, COPY / "bundles" / name, tmp_path)


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_bundle_shared(name: str, tmp_path: Path) -> None:
    folder = shared() / "bundles" / name
    for path in sorted(folder.iterdir()):  # the copy is still a byte copy of its original
        assert (COPY / "bundles" / name / path.name).read_bytes() == path.read_bytes(), path
    check_bundle(name, folder, tmp_path)


def test_every_bundle_has_expectations() -> None:
    assert sorted(p.name for p in (shared() / "bundles").iterdir() if p.is_dir()) == sorted(BUNDLES)


def test_the_llamaindex_call_and_its_steps_missing_detail(tmp_path: Path) -> None:
    record = check_bundle(
        "openllmetry_llamaindex_function", COPY / "bundles" / "openllmetry_llamaindex_function", tmp_path
    )
    details = {w["code"]: w["detail"] for w in record["warnings"]}
    assert details["tool_output_not_recorded"].startswith("call_FQHqJLWflWhfgGs74fEUa1IO (sql_tool)")
    assert "1 call(s) recovered" in details["steps_missing"]
    assert record["sources"][2:4] == [
        "run_Z41LV5j3Ad562WCaFedq2xuQ",
        "run_Z41LV5j3Ad562WCaFedq2xuQ:call_FQHqJLWflWhfgGs74fEUa1IO",
    ]


# -- streams and v1 objects from the copy --------------------------------------------------------------


def test_a_recorded_stream_and_the_same_stream_cut_short(tmp_path: Path) -> None:
    streams = COPY / "streams"
    names = ("073__", "074__", "075__")
    whole = [p for p in sorted(streams.iterdir()) if p.name.startswith(names)]
    _, records = sessions(tmp_path / "a.db", *whole)
    thread = "thread_awwJQNiSolLl9sG4Kw9wImOo"
    record = records[thread]
    _code_calls(record)
    answer = "The solution to the equation \\( 3x + 11 = 14 \\) is \\( x = 1 \\)."
    check(
        record,
        [
            ("system", "Please address the user as Jane Doe. The user has a premium account."),
            ("user", EQUATION),
            ("assistant", "import sympy as sp\r\n\r\n# Define the varia"),
            ("tool", "(the code printed nothing)"),
            ("assistant", answer),
        ],
    )
    assert record["messages"][-1]["content"] == answer
    # Cut the stream before the message's final event: the message is what its deltas built.
    text = (streams / "075__test_streaming_existing_assistant__03_run.create.sse").read_text()
    cut = tmp_path / "cut" / "075__cut.sse"
    cut.parent.mkdir()
    cut.write_text(text[: text.index("event: thread.message.completed")])
    report, records = sessions(tmp_path / "b.db", *whole[:2], cut)
    assert report.problems == [] and report.assembled["thread.message"] == 1
    assert records[thread]["messages"][-1] == {"role": "assistant", "content": answer}
    assert "incomplete_message" in codes(records[thread])  # it never said it was finished
    assert report.recognised["thread.message.delta"] > 0 and "done" not in report.recognised


def test_a_function_call_streamed_in_two_requests(tmp_path: Path) -> None:
    """create_and_run stopped at requires_action; submit_tool_outputs streamed the rest."""
    files = sorted(p for p in (COPY / "streams").iterdir() if p.name.startswith(("265__", "266__", "267__")))
    report, records = sessions(tmp_path / "a.db", *files)
    assert report.problems == [] and report.recognised["done"] == 2
    check(
        records["thread_6oUGUBxLwhyApwhYBhWjHI5f"],
        [
            ("assistant", [("get_current_weather", "{}")]),
            ("tool", "warm and sunny"),
            ("assistant", "Since it's warm and sunny outside"),
        ],
    )
    with Archive.open(tmp_path / "a.db") as archive:  # every state of the run is kept, the newest current
        versions = archive.versions.of_parent("runs", "thread_6oUGUBxLwhyApwhYBhWjHI5f")
        states = [v["status"] for v in versions["run_oyfV44CrJXYJkvb2qsd80LvJ"]]
        assert states[0] == "queued" and "requires_action" in states and states[-1] == "completed"
        assert orjson.loads(archive.raw.of("runs", "run_oyfV44CrJXYJkvb2qsd80LvJ"))["status"] == "completed"


def test_v1_objects(tmp_path: Path) -> None:
    report, records = sessions(tmp_path / "a.db", COPY / "v1")
    assert report.problems == []
    record = records["thread_hIQsehJB94eTRvrhwKb6FZdK"]
    check(record, [("user", "Can you help me write an API library to interact with the OpenAI API please?")])
    assert codes(record) == {"v1_object", "thread_synthesized", "model_unknown"}
    with Archive.open(tmp_path / "a.db") as archive:  # the raw object is kept as it was
        raw = orjson.loads(archive.raw.of("messages", "msg_Jmqr30m4cHplkMoltCilFOxj"))
        assert raw["file_ids"] == [] and "attachments" not in raw


# -- the responses/ folders ------------------------------------------------------------------------


OPENLLMETRY_STREAMED = {  # one code_interpreter call each, from the SSE recordings
    "thread_1HjgF1qM3kuRK2aviYYaLlxF",
    "thread_awwJQNiSolLl9sG4Kw9wImOo",
    "thread_bf8Tmw8TRNTaVBtdp9BeQkRQ",
    "thread_hWxpy21JS72pW32JTFBvjrDe",
    "thread_yq92IqkKTMwVVkasrUHITqlD",
    "thread_zQ4UyIUMsHtbXPa79T2nHuLf",
}
OPENLLMETRY_POLLED = {  # polled until completed; their steps were never requested
    "thread_9rcovf4j8qkEvmSitOOaYLno",
    "thread_T6qwGAxh0EaHsPrcHZ7JCJ1k",
    "thread_YqClQbqizTwAw9b6MZcodIJN",
    "thread_aRW4ZrIuBnOEnfI30Lw039m5",
    "thread_erGl66dVoAO1EY2Mp3lvn9JB",
    "thread_fdyyA79W1hDbyS6hs9rNjRkv",
    "thread_l2iv1A0UEDYvLvNsVUxfYjY2",
    "thread_vXcQ4J2NGOtmDmB2oKNtobFR",
    "thread_zFy5QgmvjOhZyrmGP7SSFbMo",
}
LLAMA = "thread_7W4a2FW5Rkd7NVyieFaFB5la"


def test_openllmetry_responses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared() / "openllmetry" / "responses"
    assert main(["export", str(tmp_path / "a.db"), "--from-dump", str(folder), "--json"]) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert document["threads_done"] == 16 and document["sessions"] == 16 and document["problems_total"] == 0
    with Archive.open(tmp_path / "a.db") as archive:
        records = {tid: orjson.loads(r) for tid, r in archive.sessions.records()}
    assert set(records) == OPENLLMETRY_STREAMED | OPENLLMETRY_POLLED | {LLAMA}
    for thread_id, record in records.items():
        if thread_id == LLAMA:
            continue
        texts = [
            (m["role"], m.get("content")) for m in record["messages"] if m["role"] in ("user", "assistant")
        ]
        assert texts[0] == ("user", EQUATION), thread_id
        assert texts[-1][0] == "assistant" and "x = 1" in texts[-1][1], thread_id
        calls = [c for m in record["messages"] for c in m.get("tool_calls") or ()]
        if thread_id in OPENLLMETRY_STREAMED:
            assert [c["function"]["name"] for c in calls] == [CI], thread_id
            assert (
                "sympy" in orjson.loads(calls[0]["function"]["arguments"])["code"]
                or "symbols" in calls[0]["function"]["arguments"]
            )
            assert "steps_missing" not in codes(record)
        else:
            assert calls == [] and "steps_missing" in codes(record), thread_id
    llama = records[LLAMA]
    calls = [c["function"] for m in llama["messages"] for c in m.get("tool_calls") or ()]
    assert calls == [
        {"name": "sql_tool", "arguments": '{"input":"SELECT city, MAX(population) FROM city_stats"}'}
    ]
    assert {"steps_missing", "tool_output_not_recorded"} <= codes(llama)


@pytest.mark.parametrize("repo", ["openllmetry", "openai-dotnet", "ruby-openai"])
def test_every_responses_folder_reads_without_a_problem(repo: str, tmp_path: Path) -> None:
    report, records = sessions(tmp_path / "a.db", shared() / repo / "responses")
    assert report.problems_total == 0 and not report.unknown_types, report.problems
    assert report.recognised and records
    for record in records.values():  # each session is whole: every call answered, nothing dangling
        ids = [c["id"] for m in record["messages"] for c in m.get("tool_calls") or ()]
        answered = [m["tool_call_id"] for m in record["messages"] if m["role"] == "tool"]
        assert ids == answered, record["thread_id"]


def test_everything_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folders = [str(shared() / repo / "responses") for repo in ("openllmetry", "openai-dotnet", "ruby-openai")]
    code = main(["export", str(tmp_path / "all.db"), "--from-dump", *folders])
    err = capsys.readouterr().err
    assert "skipped" not in err and "unknown object type" not in err, err
    # What was not stored, and why, is counted: deletions, file batches, search pages, stream deltas.
    for kind in (
        "thread.deleted",
        "assistant.deleted",
        "file.deleted",
        "vector_store.file_batch",
        "vector_store.search_results.page",
        "thread.message.delta",
        "thread.run.step.delta",
    ):
        assert f" {kind} " in err.replace("\n", " "), kind
    assert "deletion confirmation" in err and "stream delta" in err
    # Threads whose messages were never recorded are pending or done from their runs: exit 1, said so.
    assert code == 1 and "pending" in err
