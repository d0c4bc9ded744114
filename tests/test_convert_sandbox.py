"""Cross-check: the sandbox's synthetic corpus, converted, is accepted by the sandbox's own
chat-completions validator (an independent implementation of the spec) and by validate_session."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import pytest

from migrator.convert import ConversionOptions, FileInfo, ThreadBundle, convert_thread, validate_session
from migrator.refs import thread_file_refs
from migrator.sandbox import chat
from migrator.sandbox.corpus import Corpus
from migrator.sandbox.errors import ApiError

N_THREADS = 80
OPTIONS = [
    ConversionOptions(),
    ConversionOptions(system_role="developer", hosted_tools="text", citations="strip"),
    ConversionOptions(hosted_tools="drop", citations="keep"),
]
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


@cache
def corpus() -> Corpus:
    return Corpus(N_THREADS, 11)


def bundles() -> Iterator[ThreadBundle]:
    c = corpus()
    for index in range(N_THREADS):
        data = c.thread(index)
        steps = [step for run_steps in data.steps.values() for step in run_steps]
        files = {}
        for file_id in sorted(thread_file_refs(data.thread, data.messages, steps)):
            meta = c.file_meta(file_id)
            if meta is None:
                continue
            content = c.file_content(meta)
            mime = next((m for magic, m in _IMAGE_SIGNATURES if content.startswith(magic)), None)
            files[file_id] = FileInfo(
                file_id, meta.filename, None, len(content), "downloaded", mime, content if mime else None
            )
        used = {r["assistant_id"] for r in data.runs} | {
            m["assistant_id"] for m in data.messages if m["assistant_id"]
        }
        yield ThreadBundle(
            thread=data.thread,
            messages=data.messages,
            runs=data.runs,
            steps=steps,
            assistants={a: c.assistant_by_id[a] for a in used if a in c.assistant_by_id},
            files=files,
        )


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.as_dict().values()))
def test_sandbox_corpus_converts_to_sendable_sessions(options: ConversionOptions) -> None:
    refused, messages = [], 0
    for bundle in bundles():
        record = convert_thread(bundle, options)
        messages += len(record["messages"])
        assert [f for f in validate_session(record) if f.severity == "error"] == [], record["thread_id"]
        if not record["messages"] or not record["model"]:
            continue  # an empty or never-run thread: nothing a target could be sent
        request = {"model": record["model"], "messages": record["messages"], **record["params"]}
        if record["tools"]:
            request["tools"] = record["tools"]
        try:
            chat.validate(request)
        except ApiError as exc:
            refused.append(f"{record['thread_id']}: {exc}")
    assert refused == []
    assert messages > N_THREADS  # the corpus really produced conversations
