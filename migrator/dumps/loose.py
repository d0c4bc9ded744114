"""File bytes saved beside the JSON, matched to file objects by id or by file name.

Nothing from the source is ever used as a path: the folders are listed once, and a file object's
id or `filename` is only ever a key looked up among the names found there. Links that lead out of
a folder are not followed.
"""

from __future__ import annotations

import os
from collections import defaultdict
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
    def __init__(self, folders: Iterable[Path]) -> None:
        self._by_name: dict[str, list[Path]] = defaultdict(list)
        # "file-abc.pdf" is the bytes of file-abc as often as "file-abc" is.
        self._by_stem: dict[str, list[Path]] = defaultdict(list)
        self.matched: set[Path] = set()
        self.count = 0
        # The same folder given twice (a dump's own and --files-dir) must not make every name ambiguous.
        for folder in dict.fromkeys(f.resolve() for f in folders):
            self._index(folder)

    def _index(self, folder: Path) -> None:
        base = folder.resolve()
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name.startswith(".") or not path.is_file():
                    continue
                if path.is_symlink() and not path.resolve().is_relative_to(base):
                    continue
                self.count += 1
                self._by_name[name].append(path)
                stem = name.split(".", 1)[0]
                if stem != name:
                    self._by_stem[stem].append(path)

    def find(self, meta: dict[str, Any]) -> Match | None:
        """The saved bytes of this file object: by id first, then by `filename` if unambiguous."""
        file_id: str = meta["id"]
        expected = meta.get("bytes") if isinstance(meta.get("bytes"), int) else None
        by_id = [p for n in names_for_id(file_id) for p in self._by_name.get(n, ())]
        by_id += self._by_stem.get(file_id, [])
        if by_id:
            # Named by id: that is the user's (or our dump's) own statement of which file it is.
            return self._read(by_id[0])
        filename = meta.get("filename")
        if not isinstance(filename, str) or not filename or filename != os.path.basename(filename):
            return None
        candidates = self._by_name.get(filename, [])
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
        self.matched.add(path)
        return Match(path, data)
