"""The user's list of thread ids (`--threads FILE`): the API cannot list threads, so this is the input.

Accepted: one id a line; CSV with a `thread_id` column; JSONL with a `thread_id` field (other fields
become session metadata). Blank lines, a BOM, surrounding spaces and duplicates are tolerated. Any
unusable line is reported with its line number, all of them at once, before any request is made.
"""

from __future__ import annotations

import csv
import itertools
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from migrator.errors import BadInputError

__all__ = ["ThreadEntry", "ThreadList", "read_thread_list", "Shard", "parse_shard"]

# Real ids are `thread_` + base62; compatible servers use other suffixes, so only the shape is checked.
THREAD_ID = re.compile(r"^thread_[A-Za-z0-9_-]{1,128}$")
# A block of the file that holds only THREAD_IDs, each ending its line with "\n" (the last may end the file).
_CLEAN_BLOCK = re.compile(r"(?:thread_[A-Za-z0-9_-]{1,128}\n)*(?:thread_[A-Za-z0-9_-]{1,128})?")


class ThreadEntry(NamedTuple):
    """One line of the list. A tuple: a list of 340,000 is read twice, and a dataclass costs more."""

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


class _Source:
    """The bytes of a --threads file, readable more than once: a path is opened again, stdin is spooled
    to an unnamed temporary file (gone when closed, never left behind)."""

    def __init__(self, source: str | Path) -> None:
        self.spool: IO[bytes] | None = None
        if str(source) == "-":
            self.name = "<stdin>"
            self.spool = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())
            shutil.copyfileobj(sys.stdin.buffer, self.spool)
            self.path = None
        else:
            self.path = Path(source)
            if self.path.is_dir():
                raise BadInputError(f"--threads {source}: is a folder, not a file of thread ids")
            if not self.path.is_file():
                raise BadInputError(f"--threads {source}: no such file")
            self.name = str(self.path)

    def lines(self) -> Iterator[bytes]:
        """The raw lines (each with its newline), streamed."""
        if self.spool is not None:
            self.spool.seek(0)
            yield from iter(self.spool.readline, b"")
            return
        with open(self.path, "rb") as fh:  # type: ignore[arg-type]
            yield from fh

    def text_lines(self) -> Iterator[str]:
        """Decoded lines with their line ends; a leading BOM dropped; binary or non-UTF-8 refused."""
        return _Source._line_texts(self.name, self.lines(), 0)

    def text_blocks(self) -> Iterator[str]:
        """`text_lines` joined into blocks of whole lines (about 1 MB each): a list of 340,000 ids is
        read twice, and a step of Python a line was most of a rerun. A block that is not clean text
        is read line by line, so the error is the one `text_lines` gives."""
        lines = self.lines()
        offset = 0
        while True:
            raw = list(itertools.islice(lines, 8192))
            if not raw:
                return
            block = b"".join(raw)
            try:
                text = None if b"\x00" in block else block.decode("utf-8-sig" if offset == 0 else "utf-8")
            except UnicodeDecodeError:
                text = None
            if text is None:
                yield from _Source._line_texts(self.name, raw, offset)
            else:
                yield text
            offset += len(block)

    @staticmethod
    def _line_texts(name: str, raw_lines: Iterable[bytes], offset: int) -> Iterator[str]:
        for raw in raw_lines:
            if b"\x00" in raw:
                raise BadInputError(
                    f"{name}: binary data, not a list of thread ids (one id a line, CSV or JSONL)"
                )
            try:
                yield raw.decode("utf-8-sig" if offset == 0 else "utf-8")
            except UnicodeDecodeError as exc:
                raise BadInputError(
                    f"{name}: not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
                ) from None
            offset += len(raw)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def _split(lines: Iterable[str]) -> Iterator[str]:
    """`str.splitlines()` of the whole text, line by line."""
    for line in lines:
        yield from line.splitlines() or [""]


def _check(thread_id: Any, where: str, problems: list[str]) -> str | None:
    if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id.strip()):
        problems.append(f"{where}: not a thread id: {str(thread_id)[:80]!r}")
        return None
    return thread_id.strip()


def _entries(source: _Source, problems: list[str]) -> Iterator[ThreadEntry]:
    name = source.name
    first = next((line.strip() for line in _split(source.text_lines()) if line.strip()), "")
    if first.startswith("{"):
        for number, line in enumerate(_split(source.text_lines()), 1):
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
        reader = csv.DictReader(source.text_lines())
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
        number = 0
        for block in source.text_blocks():
            if _CLEAN_BLOCK.fullmatch(block):
                # Nothing but ids, one a line (what a list written by a program is): checked by one
                # regex in C, where the line by line checks were a quarter of a 340,000-id rerun.
                ids = block.split("\n")
                if ids[-1] == "":
                    ids.pop()
                number += len(ids)
                for thread_id in ids:
                    yield ThreadEntry(thread_id, {})
                continue
            for line in block.splitlines():  # as `_split`: a block ends where a line does
                number += 1
                if line.strip():
                    thread_id = _check(line, f"{name}:{number}", problems)
                    if thread_id:
                        yield ThreadEntry(thread_id, {})


class ThreadList:
    """The usable entries of a --threads file, read twice instead of held: the whole file is checked
    when this is made (every unusable line reported before any request), then each iteration
    streams the entries again. A list of 340,000 ids is never in memory at once.

    Iterating yields duplicates as they stand; whoever stores them keeps the first (the work list's
    `insert or ignore`). `read_thread_list` gives the de-duplicated list instead.
    """

    def __init__(self, source: str | Path, shard: Shard | None = None) -> None:
        self.source = _Source(source)
        self.shard = shard
        try:
            problems: list[str] = []
            usable = sum(1 for _ in _entries(self.source, problems))
        except BaseException:
            self.source.close()
            raise
        name = self.source.name
        if problems:
            self.source.close()
            shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
            raise BadInputError(
                f"{name}: {len(problems)} unusable line(s); nothing was requested",
                problems=shown,
                hint="fix or remove those lines, then run the same command again",
            )
        if not usable:
            self.source.close()
            raise BadInputError(f"{name}: no thread ids in it")

    def __iter__(self) -> Iterator[ThreadEntry]:
        for entry in _entries(self.source, []):
            if self.shard is None or self.shard.owns(entry.thread_id):
                yield entry

    def close(self) -> None:
        self.source.close()


def read_thread_list(source: str | Path, shard: Shard | None = None) -> list[ThreadEntry]:
    """All usable entries, de-duplicated (first wins), or BadInputError naming every bad line."""
    entries = ThreadList(source, shard)
    try:
        seen: set[str] = set()
        out: list[ThreadEntry] = []
        for entry in entries:
            if entry.thread_id not in seen:
                seen.add(entry.thread_id)
                out.append(entry)
        return out
    finally:
        entries.close()
