"""Finding the saved JSON and reading it: files and folders, JSON or JSONL, optionally gzip, any BOM.

JSONL is streamed line by line (a dump may be gigabytes); a `.json` document is read whole, which
JSON needs. Nothing here raises on bad input: every unreadable file or line goes to `skip` with its
path and line, and reading carries on.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from migrator.archive.canonical import loads
from migrator.dumps.layout import MANIFEST, THREAD_LIST

__all__ = ["Doc", "Skip", "data_format", "iter_input_files", "read_documents", "read_lines"]

Skip = Callable[[Path, int | None, str], None]

_LINE_SUFFIXES = (".jsonl", ".ndjson")
_GZIP_MAGIC = b"\x1f\x8b"
# What a cut-short or corrupt gzip stream raises while it is being read.
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class Doc:
    """One JSON value and where it came from (`line` is None for a whole `.json` document)."""

    path: Path
    line: int | None
    value: Any


def data_format(name: str) -> str | None:
    """ "lines" for .jsonl/.ndjson, "json" for .json (each optionally .gz), None for anything else."""
    lower = name.lower().removesuffix(".gz")
    if lower.endswith(_LINE_SUFFIXES):
        return "lines"
    if lower.endswith(".json"):
        return "json"
    return None


def iter_input_files(
    paths: Iterable[Path], exclude_dirs: Iterable[Path], on_ignored: Callable[[Path], None], skip: Skip
) -> Iterator[Path]:
    """Every data file under the paths, in a stable (sorted) order.

    Explicit files are read whatever their name. In folders: hidden entries are skipped, so are the
    folders holding loose file bytes, a dump's manifest and its thread list.
    """

    def unreadable(error: OSError) -> None:  # os.walk would skip such a folder in silence
        skip(Path(str(error.filename)), None, f"folder not readable ({error.strerror or error})")

    excluded = {p.resolve() for p in exclude_dirs}
    excluded_names = {p.name for p in excluded}
    for root in paths:
        if not root.is_dir():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".") and not (d in excluded_names and (here / d).resolve() in excluded)
            )
            is_dump = MANIFEST in filenames
            for name in sorted(filenames):
                if name.startswith(".") or name == MANIFEST or (is_dump and name == THREAD_LIST):
                    continue
                if data_format(name) is None:
                    on_ignored(here / name)
                    continue
                yield here / name


def _text_codec(head: bytes) -> tuple[str, int]:
    """(codec, BOM bytes to drop). Windows tools like to write a BOM, PowerShell even UTF-16."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the utf-16 codec reads the BOM itself
    return "utf-8", 0


def _open(path: Path, stack: ExitStack) -> IO[bytes]:
    raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115  (the ExitStack closes it)
    if raw.peek(2)[:2] == _GZIP_MAGIC:
        return stack.enter_context(gzip.GzipFile(fileobj=raw))  # type: ignore[return-value]
    return raw


def _decode_error(exc: orjson.JSONDecodeError) -> str:
    if "end of data" in exc.msg.lower() or "eof" in exc.msg.lower():
        return f"not valid JSON, the file looks cut short ({exc.msg})"
    return f"not valid JSON ({exc.msg})"


def _iter_lines(fh: IO[bytes], codec: str, bom: int) -> Iterator[bytes]:
    if codec == "utf-8":
        fh.read(bom)
        yield from fh
        return
    for text in io.TextIOWrapper(fh, encoding=codec, newline=None):
        yield text.encode("utf-8")


def read_lines(path: Path, skip: Skip) -> Iterator[Doc]:
    """JSON values one a line, streamed; blank lines are fine, a bad line is skipped and reported."""
    lineno = 0
    with ExitStack() as stack:
        try:
            fh = _open(path, stack)
            codec, bom = _text_codec(fh.peek(4)[:4])  # type: ignore[attr-defined]
            for lineno, line in enumerate(_iter_lines(fh, codec, bom), 1):  # noqa: B007
                line = line.strip()  # a line cut mid-string must read as cut short, not as a bad newline
                if not line:
                    continue
                try:
                    yield Doc(path, lineno, loads(line))
                except orjson.JSONDecodeError as exc:
                    skip(path, lineno, _decode_error(exc))
        except UnicodeDecodeError as exc:
            skip(path, lineno + 1, f"not text in the encoding its BOM names ({exc.reason})")
        except _STREAM_ERRORS as exc:
            skip(path, lineno + 1, f"unreadable from here on ({type(exc).__name__}: {exc})")


def _read_whole(path: Path) -> str | bytes:
    with ExitStack() as stack:
        fh = _open(path, stack)
        data = fh.read()
    codec, bom = _text_codec(data[:4])
    return data[bom:] if codec == "utf-8" else data.decode(codec)


def read_documents(path: Path, skip: Skip) -> Iterator[Doc]:
    """The JSON values a file holds: one document, or one a line.

    A `.json` file that is not one document but whose first line is valid JSON on its own is read
    as JSONL (scripts often name their JSONL output .json). Files of other names are tried both ways.
    """
    if data_format(path.name) == "lines":
        yield from read_lines(path, skip)
        return
    try:
        data = _read_whole(path)
    except UnicodeDecodeError as exc:
        skip(path, None, f"not text in the encoding its BOM names ({exc.reason})")
        return
    except _STREAM_ERRORS as exc:
        skip(path, None, f"unreadable ({type(exc).__name__}: {exc})")
        return
    try:
        yield Doc(path, None, loads(data))
        return
    except orjson.JSONDecodeError as exc:
        error = exc
    if _looks_like_lines(data):
        yield from read_lines(path, skip)
        return
    skip(path, error.lineno, _decode_error(error))


def _looks_like_lines(data: str | bytes) -> bool:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(orjson.loads(lines[0]), dict | list)
    except orjson.JSONDecodeError:
        return False
