"""`.zip` dumps, read in place: each member is opened from the zip, never extracted.

A member's name is only ever a label and a format hint (its suffix), never a path on this disk, so
`../../etc/passwd` or `C:\\x` in a zip is harmless. A zip bomb is refused member by member before any of
it is inflated: a member declaring more than `member_bytes`, or inflating more than `ratio` times its
compressed size, or pushing the whole zip past `total_bytes`, is not read and is reported. What is read
is also counted as it streams, so a member whose header lies cannot inflate past what it declared.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

__all__ = ["ZipLimits", "zip_dumps", "zip_members"]

_MANIFEST_BYTES = 1 << 20  # a `migrate dump` manifest is a few hundred bytes


@dataclass(frozen=True)
class ZipLimits:
    member_bytes: int = 4 << 30  # 4 GiB: bigger than any real dump file, smaller than a bomb
    total_bytes: int = 64 << 30
    # JSON inflates 5-30 times; SSE recordings repeat whole objects and reach ~60. Small members may
    # exceed it harmlessly, so the ratio applies from `ratio_from` bytes on.
    ratio: int = 200
    ratio_from: int = 1 << 20


class _Counted:
    """A member's stream that stops at the size its header declared (and closes its zip, if it owns one)."""

    def __init__(self, fh: IO[bytes], limit: int, label: str, owner: zipfile.ZipFile | None = None) -> None:
        self._fh, self._left, self._label, self._owner = fh, limit, label, owner

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n if n >= 0 else self._left + 1)
        self._left -= len(data)
        if self._left < 0:
            raise OSError(f"{self._label} inflates past the size it declares")
        return data

    def peek(self, n: int = 1) -> bytes:
        return self._fh.peek(n)  # type: ignore[attr-defined]

    def readline(self, limit: int = -1) -> bytes:
        data = self._fh.readline(limit)
        self._left -= len(data)
        if self._left < 0:
            raise OSError(f"{self._label} inflates past the size it declares")
        return data

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        self._fh.close()
        if self._owner is not None:
            self._owner.close()

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Member:
    label: str  # "dump.zip!threads/thread_x.json": for the report only
    name: str  # the member's last name component: its format comes from its suffix
    size: int
    opener: Callable[[], IO[bytes]]
    in_dump: bool = False  # beside a `migrate dump` manifest in the same zip folder


def _parent(name: str) -> str:
    return str(PurePosixPath(name.replace("\\", "/")).parent)


def _dump_folders(zf: zipfile.ZipFile, manifest: str) -> set[str]:
    return {_parent(i.filename) for i in zf.infolist() if PurePosixPath(i.filename).name == manifest}


def zip_dumps(
    path: Path, manifest: str, limits: ZipLimits
) -> Iterator[tuple[bytes, Callable[[str], Member | None]]]:
    """`migrate dump` folders zipped: each manifest's bytes, and a lookup of its sibling members by name."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        return  # reported when its members are read
    with zf:
        infos = {i.filename.replace("\\", "/"): i for i in zf.infolist()}
        for folder in sorted(_dump_folders(zf, manifest)):
            prefix = "" if folder == "." else folder + "/"
            info = infos.get(prefix + manifest)
            if info is None or info.file_size > _MANIFEST_BYTES:
                continue
            data = zf.read(info)

            def sibling(name: str, prefix: str = prefix) -> Member | None:
                info = infos.get(prefix + name)
                if info is None or info.is_dir() or _refusal(info, 0, limits):
                    return None
                label = f"{path}!{info.filename}"

                def opener(info: zipfile.ZipInfo = info, label: str = label) -> IO[bytes]:
                    owner = zipfile.ZipFile(path)
                    return _Counted(owner.open(info), info.file_size, label, owner)  # type: ignore[return-value]

                return Member(label, name, info.file_size, opener, True)

            yield data, sibling


def _hidden(name: str) -> bool:
    # `..` is only text here (never a path), so such a member is read like any other.
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any((p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in parts)


def zip_members(
    path: Path,
    limits: ZipLimits,
    refuse: Callable[[str, str], None],
    broken: Callable[[str], None],
    manifest: str = "",
) -> Iterator[Member]:
    """The members worth reading, in name order; refused ones go to `refuse(label, why)`."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        broken(f"not a readable zip ({exc})")
        return
    with zf:
        total = 0
        dumps = _dump_folders(zf, manifest) if manifest else set()
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir() or _hidden(info.filename):
                continue
            label = f"{path}!{info.filename}"
            why = _refusal(info, total, limits)
            if why:
                refuse(label, why)
                continue
            total += info.file_size

            def opener(info: zipfile.ZipInfo = info, label: str = label) -> IO[bytes]:
                return _Counted(zf.open(info), info.file_size, label)  # type: ignore[return-value]

            name = PurePosixPath(info.filename.replace("\\", "/")).name
            yield Member(label, name, info.file_size, opener, _parent(info.filename) in dumps)


def _refusal(info: zipfile.ZipInfo, total: int, limits: ZipLimits) -> str | None:
    size, packed = info.file_size, max(info.compress_size, 1)
    if info.flag_bits & 0x1:
        return "encrypted member"
    if size > limits.member_bytes:
        return f"declares {size} bytes, over the {limits.member_bytes}-byte limit for one member"
    if size >= limits.ratio_from and size / packed > limits.ratio:
        return (
            f"inflates {size / packed:.0f} times ({packed} -> {size} bytes), over the limit of {limits.ratio}"
        )
    if total + size > limits.total_bytes:
        return f"would take the zip past {limits.total_bytes} bytes in all"
    return None
