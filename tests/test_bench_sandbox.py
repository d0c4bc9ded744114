"""`make bench`'s sandbox leaves nothing behind: its ids file's folder goes with the sandbox."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.__main__ import sandbox


def test_the_bench_sandbox_removes_its_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with sandbox(3) as (_base, _root, ids):
        assert ids.read_text().strip()
        assert ids.parent.parent == tmp_path
    assert not list(tmp_path.glob("bench-sandbox-*"))
