"""File bytes saved beside the JSON, matched to file objects by id or by file name.

Nothing from the source is ever used as a path: the folders are listed once, and a file object's
id or `filename` is only ever a key looked up among the names found there. Links that lead out of
a folder are not followed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.dumps.layout import names_for_id

__all__ = ["LooseFiles", "Match"]


@dataclass(frozen=True)
class Match:
    """Bytes found for a file object, or why a candidate could not be used."""

    path: Path | None
    data: bytes | None = None
    problem: str | None = None


class LooseFiles:
    """The saved bytes under some folders, by name. The index holds each name once with the folder it
    is in (one shared string a folder): the realistic 340,000-thread dump saves 128,688 files, and a
    `Path` in two lists for each was 71 MB of its ingest's memory (14 MB now)."""

    def __init__(self, folders: Iterable[Path]) -> None:
        # name -> the folder holding it, or every folder holding a file of that name.
        self._by_name: dict[str, str | list[str]] = {}
        # "file-abc.pdf" is the bytes of file-abc as often as "file-abc" is: stem -> its path(s).
        self._by_stem: dict[str, str | list[str]] = {}
        self._matched: set[str] = set()
        self.count = 0
        # The same folder given twice (a dump's own and --files-dir) must not make every name ambiguous.
        for folder in dict.fromkeys(f.resolve() for f in folders):
            self._index(folder)

    @property
    def matched(self) -> int:
        """How many saved files were used for a file object."""
        return len(self._matched)

    def _index(self, folder: Path) -> None:
        base = folder.resolve()
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if name.startswith(".") or not os.path.isfile(path):
                    continue
                if os.path.islink(path) and not Path(path).resolve().is_relative_to(base):
                    continue
                self.count += 1
                _add(self._by_name, name, dirpath)
                stem = name.split(".", 1)[0]
                if stem != name:
                    _add(self._by_stem, stem, path)

    def _paths(self, name: str) -> list[Path]:
        return [Path(folder, name) for folder in _all(self._by_name.get(name))]

    def find(self, meta: dict[str, Any]) -> Match | None:
        """The saved bytes of this file object: by id first, then by `filename` if unambiguous."""
        file_id: str = meta["id"]
        expected = meta.get("bytes") if isinstance(meta.get("bytes"), int) else None
        by_id = [p for n in names_for_id(file_id) for p in self._paths(n)]
        by_id += [Path(p) for p in _all(self._by_stem.get(file_id))]
        if by_id:
            # Named by id: that is the user's (or our dump's) own statement of which file it is.
            return self._read(by_id[0])
        filename = meta.get("filename")
        if not isinstance(filename, str) or not filename or filename != os.path.basename(filename):
            return None
        candidates = self._paths(filename)
        if expected is not None:
            sized = [p for p in candidates if p.stat().st_size == expected]
            if candidates and not sized:
                return Match(
                    candidates[0],
                    problem=f"{filename!r} is not the bytes of {file_id}: its size is not {expected} bytes",
                )
            candidates = sized
        if len(candidates) > 1:
            return Match(
                candidates[0],
                problem=f"{len(candidates)} saved files are named {filename!r}; cannot tell which is {file_id}",
            )
        return self._read(candidates[0]) if candidates else None

    def _read(self, path: Path) -> Match:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Match(path, problem=f"unreadable ({exc.strerror or exc})")
        self._matched.add(str(path))
        return Match(path, data)


def _add(index: dict[str, str | list[str]], key: str, value: str) -> None:
    held = index.get(key)
    if held is None:
        index[key] = value
    elif isinstance(held, list):
        held.append(value)
    else:
        index[key] = [held, value]


def _all(held: str | list[str] | None) -> list[str]:
    return [] if held is None else held if isinstance(held, list) else [held]
