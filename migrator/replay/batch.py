"""Batch API files: `--batch-out DIR` writes the requests, `--batch-results FILE...` reads the answers.

Input lines are the Batch API's `BatchRequestInput`, which `vllm run-batch` reads unchanged:

    {"custom_id": "<request hash>", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

`custom_id` is the request hash (64 hex digits, within the 64-character custom_id limits of batch
services), so results land on the same ledger rows a live replay uses, and the report is the same.
The Batch API takes one model per file and at most 50,000 lines and 200 MB a file: files are
split by model and by those limits, named `replay-<model>-0001.jsonl`, and written as `.part`
until complete. A request is listed once even when two turns share it; requests the ledger already
holds an answer for are left out. DIR must hold no other `.jsonl` file (the whole folder is meant to
be uploaded or globbed), and gets a `manifest.json` listing the files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from migrator.archive import BATCH_TARGET, Archive, ReplayRow
from migrator.errors import BadInputError, ExitCode, UsageError
from migrator.outputs import open_private, write_private
from migrator.replay.report import ReplayReport
from migrator.replay.requests import URLS, ReplayRequest, iter_chunks
from migrator.replay.run import FINAL, LOOKUP_CHUNK, ReplayOptions, iter_selection, replay_offline
from migrator.sessions import rebuild_stale
from migrator.source.client import RETRYABLE_STATUS

__all__ = [
    "BATCH_URL",
    "BatchFile",
    "BatchSummary",
    "MAX_FILE_BYTES",
    "MAX_FILE_LINES",
    "ingest_results",
    "parse_result_line",
    "write_batches",
]

BATCH_URL = "/v1/chat/completions"
MAX_FILE_LINES = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
SELECTION_KEY = "replay_batch_selection"  # archive meta: what the last --batch-out chose
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class BatchFile:
    name: str
    model: str
    lines: int = 0
    bytes: int = 0


@dataclass
class BatchSummary:
    directory: str
    files: list[BatchFile] = field(default_factory=list)
    requests: int = 0  # lines written
    already_answered: int = 0  # chosen requests left out: the ledger holds their answer
    duplicates: int = 0  # turns whose request another turn already lists
    report: ReplayReport | None = None  # sessions and build problems of the selection

    def exit_code(self) -> ExitCode:
        left_out = self.report is not None and self.report.unfinished and not self.report.include_unfinished
        return ExitCode.ATTENTION if left_out else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "requests": self.requests,
            "already_answered": self.already_answered,
            "duplicates": self.duplicates,
            "files": [vars(f) for f in self.files],
            "sessions": self.report.sessions if self.report else 0,
            "unbuildable": self.report.problem_examples if self.report else [],
            "unfinished": self.report.unfinished if self.report else [],
        }


def batch_line(request: ReplayRequest) -> bytes:
    """One BatchRequestInput line, the body embedded byte for byte as hashed."""
    head = orjson.dumps({"custom_id": request.request_hash, "method": "POST", "url": request.url})
    return head[:-1] + b',"body":' + request.body + b"}\n"


class _Writer:
    """One model's files: a new one whenever the next line would break a limit."""

    def __init__(self, directory: Path, model: str, files: list[BatchFile]) -> None:
        self.directory = directory
        self.slug = _SLUG.sub("_", model).strip("_") or "model"
        self.model = model
        self.files = files
        self.index = 0
        self.current: BatchFile | None = None
        self.fh: IO[bytes] | None = None

    def write(self, line: bytes) -> None:
        if len(line) > MAX_FILE_BYTES:
            raise UsageError(f"a request of {len(line):,} bytes exceeds the Batch API's 200 MB file limit")
        c = self.current
        if c is None or c.lines >= MAX_FILE_LINES or c.bytes + len(line) > MAX_FILE_BYTES:
            self.close()
            self.index += 1
            c = self.current = BatchFile(f"replay-{self.slug}-{self.index:04d}.jsonl", self.model)
            self.fh = open_private(self.directory / (c.name + ".part"))  # closed in close()
        assert self.fh is not None
        self.fh.write(line)
        c.lines += 1
        c.bytes += len(line)

    def close(self) -> None:
        if self.fh is None or self.current is None:
            return
        self.fh.close()
        part = self.directory / (self.current.name + ".part")
        os.replace(part, self.directory / self.current.name)  # a .jsonl is always a whole file
        self.files.append(self.current)
        self.fh = self.current = None


def _check_directory(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--batch-out {directory}: not a folder")
    if not directory.exists():
        if not directory.parent.is_dir():
            raise UsageError(f"--batch-out {directory}: the folder {directory.parent} does not exist")
        directory.mkdir()
    others = sorted(p.name for p in directory.glob("*.jsonl"))
    if others:
        raise UsageError(
            f"--batch-out {directory}: already holds {len(others)} .jsonl file(s) ({', '.join(others[:3])})",
            hint="use an empty folder: every .jsonl in it is meant to go to the Batch API",
        )


def write_batches(archive: Archive, directory: Path, options: ReplayOptions) -> BatchSummary:
    """Write the chosen requests the ledger has no answer for; mark them `batched` in the ledger."""
    _check_directory(directory)
    rebuild_stale(archive)
    report = options.new_report(archive)
    summary = BatchSummary(str(directory), report=report)
    writers: dict[str, _Writer] = {}
    listed: set[str] = set()
    try:
        for chunk in iter_chunks(iter_selection(archive, options, report), LOOKUP_CHUNK):
            rows = archive.ledger.rows((r.request_hash for r in chunk), BATCH_TARGET)
            marked = []
            for request in chunk:
                h = request.request_hash
                row = rows.get(h)
                if row is not None and row.state in FINAL:
                    summary.already_answered += 1
                    continue
                if h in listed:  # custom_id must be unique in a batch
                    summary.duplicates += 1
                    continue
                listed.add(h)
                if request.model not in writers:
                    writers[request.model] = _Writer(directory, request.model, summary.files)
                writers[request.model].write(batch_line(request))
                marked.append((h, request.thread_id, request.turn, request.model))
                summary.requests += 1
            archive.ledger.mark_batched(marked)
    finally:
        for writer in writers.values():
            writer.close()
    summary.files.sort(key=lambda f: f.name)
    archive.set_meta(
        SELECTION_KEY,
        {
            "model": options.model,
            "turns": options.turns,
            "sample": options.sample,
            "threads": list(options.threads),
            "api": options.api,
            "stores_of": options.stores_of,
        },
    )
    manifest = {
        "format": "migrator.replay-batch/v1",
        "url": URLS[options.api],
        "completion_window": "24h",
        "requests": summary.requests,
        "files": [vars(f) for f in summary.files],
        "selection": {"model": options.model, "turns": options.turns, "sample": options.sample},
        "then": "migrate replay ARCHIVE --batch-results OUTPUT.jsonl [ERRORS.jsonl ...]",
    }
    write_private(directory / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return summary


# -- results ------------------------------------------------------------------------------------------


def parse_result_line(line: bytes) -> ReplayRow:
    """One BatchRequestOutput line as a ledger row. Raises ValueError naming what is wrong."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise ValueError("no custom_id")
    response, error = obj.get("response"), obj.get("error")
    if isinstance(response, dict) and isinstance(response.get("status_code"), int):
        status = response["status_code"]
        body = response.get("body")
        text = orjson.dumps(body).decode() if body is not None else None
        if status == 200:
            if not isinstance(body, dict):
                raise ValueError("response.body of a 200 is not an object")
            usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            return ReplayRow(
                custom_id,
                "done",
                status_code=200,
                response=text,
                prompt_tokens=prompt if isinstance(prompt, int) else None,
                completion_tokens=completion if isinstance(completion, int) else None,
                via="batch",
            )
        inner = body.get("error", body) if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        state = "failed" if status in RETRYABLE_STATUS else "rejected"
        return ReplayRow(
            custom_id,
            state,
            status_code=status,
            response=text,
            error=f"{status}: {message or ''}".strip(),
            via="batch",
        )
    if isinstance(error, dict):
        return ReplayRow(
            custom_id,
            "failed",
            error=f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip(),
            via="batch",
        )
    raise ValueError("neither a response with a status_code nor an error")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                yield number, line


def ingest_results(archive: Archive, files: list[Path], options: ReplayOptions) -> ReplayReport:
    """Store every result line in the ledger, then report on the chosen requests (offline)."""
    problems = []
    for path in files:
        if not path.is_file():
            problems.append(f"{path}: no such file")
            continue
        for number, line in _lines(path):
            try:
                parse_result_line(line)
            except ValueError as exc:
                problems.append(f"{path}:{number}: {exc}")
    if problems:
        raise BadInputError(
            f"--batch-results: {len(problems)} unusable line(s); nothing was stored",
            problems=problems[:100],
            hint="pass the output and error files the Batch API (or vllm run-batch) wrote",
        )
    stored = skipped = lines = 0
    for path in files:
        for chunk in iter_chunks((parse_result_line(line) for _, line in _lines(path)), 1000):
            lines += len(chunk)
            s, k = archive.ledger.ingest(chunk)
            stored, skipped = stored + s, skipped + k
    report = replay_offline(archive, options)
    report.run = {
        "result_files": len(files),
        "result_lines": lines,
        "stored": stored,
        "already_answered": skipped,
    }
    return report


def recorded_selection(archive: Archive) -> dict[str, Any] | None:
    """What the last --batch-out chose (model, turns, sample, threads), for --batch-results."""
    return archive.get_meta(SELECTION_KEY)
