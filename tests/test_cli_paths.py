"""Path mistakes: a folder where a file goes, a folder that does not exist, a place nobody may write.
Each is one line naming the flag, exit 2, before any work, and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_read_only import _unshare_works
from test_verify_support import synthetic_archive

from migrator.cli import main

MIGRATE = Path(sys.executable).parent / "migrate"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_archive(tmp_path_factory.mktemp("paths") / "clean.db", threads=2)


# (arguments, with A the archive, D an existing folder, N a folder that does not exist; the message)
CASES = {
    "archive is a folder (reader)": (["stats", "D"], "D: is a folder, not an archive file"),
    "archive is a folder (writer)": (
        ["export", "D", "--threads", "ids.txt"],
        "D: is a folder; give the archive",
    ),
    "archive in a missing folder": (
        ["export", "N/new.db", "--threads", "ids.txt"],
        "the folder N does not exist",
    ),
    "--threads is a folder": (["export", "new.db", "--threads", "D"], "--threads D: is a folder"),
    "plan --threads is a folder": (["plan", "--threads", "D"], "--threads D: is a folder"),
    "--threads missing": (["export", "new.db", "--threads", "gone.txt"], "--threads gone.txt: no such file"),
    "import --out is a folder": (["import", "A", "--to", "jsonl", "--out", "D"], "--out D: is a folder"),
    "import --out sqlite is a folder": (
        ["import", "A", "--to", "agents-sqlite", "--out", "D"],
        "--out D: is a folder",
    ),
    "import --out in a missing folder": (
        ["import", "A", "--to", "jsonl", "--out", "N/s.jsonl"],
        "--out N/s.jsonl: the folder N does not exist",
    ),
    "import --mapping-out is a folder": (
        ["import", "A", "--to", "jsonl", "--out", "s.jsonl", "--mapping-out", "D"],
        "--mapping-out D: is a folder",
    ),
    "verify --junit is a folder": (["verify", "A", "--junit", "D"], "--junit D: is a folder"),
    "verify --junit in a missing folder": (
        ["verify", "A", "--junit", "N/j.xml"],
        "the folder N does not exist",
    ),
    "dump into a file": (["dump", "A", "A"], "exists and is not a folder"),
    "replay --batch-out is a file": (["replay", "A", "--batch-out", "A", "--model", "m"], "not a folder"),
    "--from-dump missing": (["export", "new.db", "--from-dump", "N"], "N: no such file or folder"),
}


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_a_path_mistake_is_one_line_exit_2_and_leaves_nothing(
    clean, tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.chdir(tmp_path)
    shutil.copy(clean, tmp_path / "A")
    (tmp_path / "D").mkdir()
    (tmp_path / "ids.txt").write_text("thread_abc\n")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


@pytest.mark.skipif(
    not _unshare_works(), reason="needs `unshare -m` (a mount namespace) for a read-only bind"
)
def test_an_unwritable_place_is_one_line_exit_2(clean, tmp_path):
    """A read-only mount refuses even root (chmod would not): every writer says so before any work."""
    ro, out = tmp_path / "ro", tmp_path / "out"
    ro.mkdir(), out.mkdir()
    shutil.copy(clean, ro / "a.db")
    (tmp_path / "ids.txt").write_text("thread_abc\n")
    commands = {
        "export": ["export", f"{ro}/new.db", "--threads", str(tmp_path / "ids.txt")],
        "rebuild": ["rebuild", f"{ro}/a.db"],
        "import --out": ["import", str(ro / "a.db"), "--to", "jsonl", "--out", f"{ro}/s.jsonl"],
        "verify --junit": ["verify", str(ro / "a.db"), "--junit", f"{ro}/j.xml"],
    }
    script = "\n".join(
        [
            f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} || exit 99",
            *(
                f'{MIGRATE} {" ".join(args)} >/dev/null 2>{out}/{i}.err; echo "{i} $?"'
                for i, args in enumerate(commands.values())
            ),
        ]
    )
    env = {**os.environ, "COLUMNS": "200", "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    codes = dict(line.split() for line in result.stdout.splitlines())
    for i, name in enumerate(commands):
        err = (out / f"{i}.err").read_text()
        assert codes[str(i)] == "2", f"{name}: {err}"
        assert "cannot write in the folder" in err and len(err.strip().splitlines()) == 1, f"{name}: {err}"
    assert sorted(p.name for p in ro.iterdir()) == ["a.db"]


@pytest.mark.parametrize(
    "args",
    [
        ["import", "A", "--to", "jsonl", "--out", "P"],
        ["import", "A", "--to", "jsonl", "--out", "s.jsonl", "--mapping-out", "P"],
        ["verify", "A", "--junit", "P"],
    ],
    ids=["--out", "--mapping-out", "--junit"],
)
def test_an_output_that_is_not_a_regular_file_is_written_in_place(clean, tmp_path, args):
    """`--out /dev/null` once renamed its part file over the device and left /dev/null a regular
    file for every other process. A FIFO stands in for the device: it must still be a FIFO after,
    and what the command wrote must have come through it."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    argv = [str(clean) if a == "A" else str(fifo) if a == "P" else a for a in args]
    result = subprocess.run([str(MIGRATE), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    reader.join(timeout=60)
    assert result.returncode in (0, 1), result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode), "the FIFO was replaced by a regular file"
    assert received and received[0].strip(), "nothing came through the FIFO"
    assert not list(tmp_path.glob("pipe.*")), "a part file was left behind"
