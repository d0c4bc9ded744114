"""A synthetic dump of N threads in our own layout (migrator/dumps/layout.py), straight from the sandbox's generator.

Exporting 340,000 threads over HTTP would take hours, so the objects the sandbox would serve are
written as `migrate dump` would have written them after an export of that sandbox: the same raw text
(orjson of the served object, key order kept), the same pages, the same file bytes and parsed texts.
`check_fidelity` proves it on a small corpus: the generated dump equals, file for file and byte for
byte, `migrate dump` of a real export of the same sandbox.

Threads are written by a process pool (one worker a core), the global objects and the files by the
parent meanwhile. Shapes:
- `two-message`: each thread is one user message and one assistant answer written without a run
  (the sandbox's "seeded" turn), the dump the issue's table was measured on;
- `realistic`: the sandbox corpus's own plans: several turns, tool calls, runs and steps, images,
  code outputs, attachments, an occasional 300-message thread.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrator.dumps.layout import DUMP_FORMAT, FILES_DIR, MANIFEST, MANIFEST_OBJECT, THREAD_LIST, VERSIONS
from migrator.sandbox.build import build_thread
from migrator.sandbox.corpus import Corpus
from migrator.sandbox.ids import thread_id
from migrator.sandbox.plan import EPOCH, THREAD_SPACING, ThreadPlan, Turn, UserMsg

SHAPES = ("two-message", "realistic")
_CHUNK = 2000  # threads a worker writes per task
_corpus: Corpus | None = None  # one per worker process


@dataclass
class DumpInfo:
    path: Path
    shape: str
    threads: int
    seed: int
    seconds: float
    written: dict[str, int]
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "shape": self.shape,
            "threads": self.threads,
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "written": self.written,
            "bytes": self.bytes,
        }


def _page(raws: list[bytes], hints: dict[str, Any], has_more: bool = False) -> bytes:
    """A list page exactly as `migrate dump` writes one (raw texts joined, then the tail)."""
    first = orjson.loads(raws[0]).get("id") if raws else None
    last = orjson.loads(raws[-1]).get("id") if raws else None
    tail = {"first_id": first, "last_id": last, "has_more": has_more, **hints}
    return b'{"object":"list","data":[' + b",".join(raws) + b"]," + orjson.dumps(tail)[1:]


def _two_message_plan(corpus: Corpus, index: int) -> ThreadPlan:
    turn = Turn("seeded", index % len(corpus.assistants), (UserMsg("text"),))
    return ThreadPlan(
        index=index,
        id=thread_id(corpus.seed, index),
        created_at=EPOCH + index * THREAD_SPACING,
        turns=(turn,),
        metadata=index % 5 != 0,
        files=(),
    )


def plan_of(corpus: Corpus, shape: str, index: int) -> ThreadPlan:
    return _two_message_plan(corpus, index) if shape == "two-message" else corpus.plan(index)


def _init(threads: int, seed: int) -> None:
    global _corpus
    _corpus = Corpus(threads, seed)


def _write_threads(task: tuple[str, str, int, int]) -> dict[str, int]:
    """Thread folders for indexes [start, stop): what an export of the sandbox would have stored."""
    root, shape, start, stop = task
    corpus = _corpus
    assert corpus is not None
    folder = Path(root) / "threads"
    counts: Counter[str] = Counter()
    for index in range(start, stop):
        data = build_thread(corpus, plan_of(corpus, shape, index))
        tid = data.thread["id"]
        here = folder / tid
        here.mkdir()
        (here / "thread.json").write_bytes(orjson.dumps(data.thread))
        counts["thread"] += 1
        hints = {"thread_id": tid}
        messages = [orjson.dumps(m) for m in data.messages]
        (here / "messages.json").write_bytes(_page(messages, {**hints, "item_object": "thread.message"}))
        counts["thread.message"] += len(messages)
        if data.runs:
            runs = [orjson.dumps(r) for r in data.runs]
            (here / "runs.json").write_bytes(_page(runs, {**hints, "item_object": "thread.run"}))
            counts["thread.run"] += len(runs)
        # As the export lists them: steps only of runs that declared tools, with file_search
        # result content only where the run declared file_search (include[] is asked for then).
        steps = []
        for run in data.runs:
            if not run["tools"]:
                continue
            full = any(t.get("type") == "file_search" for t in run["tools"])
            steps += [orjson.dumps(s) for s in (data.steps if full else data.steps_plain)[run["id"]]]
        if steps:
            (here / "steps.json").write_bytes(_page(steps, {**hints, "item_object": "thread.run.step"}))
            counts["thread.run.step"] += len(steps)
    return dict(counts)


def _globals(root: Path, corpus: Corpus, shape: str, counts: Counter[str]) -> None:
    """Assistants, vector stores, and every file an export would fetch: bytes, parsed text or neither."""
    assistants = [orjson.dumps(a) for a in corpus.assistants]
    (root / "assistants.json").write_bytes(_page(assistants, {"item_object": "assistant"}))
    counts["assistant"] += len(assistants)
    stores = root / "vector_stores"
    stores.mkdir()
    holders: dict[str, list[str]] = {}
    for vs in corpus.vector_stores:
        here = stores / vs["id"]
        here.mkdir()
        (here / "vector_store.json").write_bytes(orjson.dumps(vs))
        rows = corpus.vs_files[vs["id"]]
        hints = {"vector_store_id": vs["id"], "item_object": "vector_store.file"}
        (here / "files.json").write_bytes(_page([orjson.dumps(r) for r in rows], hints))
        counts["vector_store"] += 1
        counts["vector_store.file"] += len(rows)
        for row in rows:
            holders.setdefault(row["id"], []).append(vs["id"])
    metas = [corpus.global_files[f] for f in corpus.docs]
    if shape == "realistic":
        # The per-thread files (images, code outputs, uploads) come from the plans: one pass over them.
        metas += [m for m in corpus.all_files() if m.owner >= 0]
    (root / FILES_DIR).mkdir()
    (root / "parsed_text").mkdir()
    with open(root / "files.jsonl", "wb") as listing:
        for meta in sorted(metas, key=lambda m: m.id):
            listing.write(orjson.dumps(corpus.file_object(meta)) + b"\n")
            counts["file"] += 1
            if meta.purpose != "assistants":
                (root / FILES_DIR / meta.id).write_bytes(corpus.file_content(meta))
                counts["file_bytes"] += 1
            elif meta.id in holders:
                # Not downloadable: the export keeps the parsed text of the first store holding it.
                store = sorted(holders[meta.id])[0]
                page = {
                    "object": "vector_store.file_content.page",
                    "data": [{"type": "text", "text": "".join(corpus.doc_chunks(meta.id))}],
                    "has_more": False,
                    "next_page": None,
                    "file_id": meta.id,
                    "vector_store_id": store,
                }
                (root / "parsed_text" / f"{meta.id}.json").write_bytes(orjson.dumps(page))
                counts["parsed_texts"] += 1
            # else: an upload no store holds; the export records it `missing`, and so does the ingest.


def write_dump(root: Path, shape: str, threads: int, seed: int = 1, workers: int | None = None) -> DumpInfo:
    """Write the dump into `root` (replaced if it exists); the manifest last, as `migrate dump` does."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "threads").mkdir()
    counts: Counter[str] = Counter()
    workers = workers or os.cpu_count() or 1
    tasks = [(str(root), shape, s, min(s + _CHUNK, threads)) for s in range(0, threads, _CHUNK)]
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(threads, seed)) as pool:
        pending = pool.map(_write_threads, tasks)
        corpus = Corpus(threads, seed)
        with open(root / THREAD_LIST, "wb") as listing:
            for index in range(threads):
                listing.write(orjson.dumps({"thread_id": thread_id(seed, index)}) + b"\n")
        _globals(root, corpus, shape, counts)
        for part in pending:
            counts.update(part)
    # A fresh export read every object once: no other versions, but `migrate dump` still lists the file.
    (root / VERSIONS).write_bytes(b"")
    manifest = {
        "object": MANIFEST_OBJECT,
        "format": DUMP_FORMAT,
        "files_dir": FILES_DIR,
        "threads": THREAD_LIST,
        "versions": VERSIONS,
        "written": dict(sorted(counts.items())),
    }
    (root / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return DumpInfo(
        root, shape, threads, seed, time.monotonic() - started, dict(sorted(counts.items())), size
    )


def thread_ids_file(path: Path, threads: int, seed: int = 1) -> Path:
    with open(path, "wb") as fh:
        for index in range(threads):
            fh.write(thread_id(seed, index).encode() + b"\n")
    return path
