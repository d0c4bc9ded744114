"""The user's list of thread ids (`--threads FILE`): the API cannot list threads, so this is the input.

Accepted: one id a line; CSV with a `thread_id` column; JSONL with a `thread_id` field (other fields
become session metadata). Blank lines, a BOM, surrounding spaces and duplicates are tolerated. Any
unusable line is reported with its line number, all of them at once, before any request is made.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrator.errors import BadInputError

__all__ = ["ThreadEntry", "read_thread_list", "Shard", "parse_shard"]

# Real ids are `thread_` + base62; compatible servers use other suffixes, so only the shape is checked.
THREAD_ID = re.compile(r"^thread_[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class ThreadEntry:
    thread_id: str
    extra: dict[str, Any]


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as the user writes it
    count: int

    def owns(self, thread_id: str) -> bool:
        # crc32 is stable across runs and machines (unlike hash()), which a split over N hosts needs.
        return zlib.crc32(thread_id.encode()) % self.count == self.index - 1


def parse_shard(text: str | None) -> Shard | None:
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not (1 <= int(match[1]) <= int(match[2])):
        raise BadInputError(f"--shard {text!r}: expected K/N with 1 <= K <= N, for example --shard 2/4")
    return Shard(int(match[1]), int(match[2]))


def _read_text(source: str | Path) -> tuple[str, str]:
    if str(source) == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        path = Path(source)
        if path.is_dir():
            raise BadInputError(f"--threads {source}: is a folder, not a file of thread ids")
        if not path.is_file():
            raise BadInputError(f"--threads {source}: no such file")
        data = path.read_bytes()
        name = str(path)
    if b"\x00" in data:
        raise BadInputError(f"{name}: binary data, not a list of thread ids (one id a line, CSV or JSONL)")
    try:
        return name, data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _check(thread_id: Any, where: str, problems: list[str]) -> str | None:
    if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id.strip()):
        problems.append(f"{where}: not a thread id: {str(thread_id)[:80]!r}")
        return None
    return thread_id.strip()


def _entries(name: str, text: str, problems: list[str]) -> Iterator[ThreadEntry]:
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("{"):
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                problems.append(f"{name}:{number}: not a JSON object")
                continue
            if not isinstance(obj, dict) or "thread_id" not in obj:
                problems.append(f"{name}:{number}: no thread_id field")
                continue
            thread_id = _check(obj.pop("thread_id"), f"{name}:{number}", problems)
            if thread_id:
                yield ThreadEntry(thread_id, obj)
    elif "," in first or first.lower() == "thread_id":
        reader = csv.DictReader(io.StringIO(text))
        fields = [f.strip() for f in reader.fieldnames or []]
        if "thread_id" not in fields:
            problems.append(f"{name}:1: CSV without a thread_id column (columns: {', '.join(fields)})")
            return
        reader.fieldnames = fields
        for row in reader:
            number = reader.line_num
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            thread_id = _check(row.pop("thread_id"), f"{name}:{number}", problems)
            if thread_id:
                extra = {k: v for k, v in row.items() if k and v not in (None, "")}
                yield ThreadEntry(thread_id, extra)
    else:
        for number, line in enumerate(lines, 1):
            if line.strip():
                thread_id = _check(line, f"{name}:{number}", problems)
                if thread_id:
                    yield ThreadEntry(thread_id, {})


def read_thread_list(source: str | Path, shard: Shard | None = None) -> list[ThreadEntry]:
    """All usable entries, de-duplicated (first wins), or BadInputError naming every bad line."""
    name, text = _read_text(source)
    problems: list[str] = []
    seen: set[str] = set()
    entries: list[ThreadEntry] = []
    for entry in _entries(name, text, problems):
        if entry.thread_id in seen:
            continue
        seen.add(entry.thread_id)
        if shard is None or shard.owns(entry.thread_id):
            entries.append(entry)
    if problems:
        shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        raise BadInputError(
            f"{name}: {len(problems)} unusable line(s); nothing was requested",
            problems=shown,
            hint="fix or remove those lines, then run the same command again",
        )
    if not entries and not seen:
        raise BadInputError(f"{name}: no thread ids in it")
    return entries
