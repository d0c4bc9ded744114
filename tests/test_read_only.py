"""The commands that read an archive only read it: SQLite's read-only mode, no migrations, no WAL
switch, no sidecar files. They work on a `chmod 444` file, on a read-only mount, and while the archive
needs an upgrade they say which writing command applies it instead of applying it themselves."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_utils import Database
from test_verify_support import synthetic_archive

from migrator.archive import Archive
from migrator.archive.schema import MIGRATIONS
from migrator.cli import main
from migrator.errors import NotAnArchiveError

MIGRATE = Path(sys.executable).parent / "migrate"
THREAD = "thread_00001"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_archive(tmp_path_factory.mktemp("ro") / "clean.db", threads=4)


def readers(archive: Path, out: Path) -> dict[str, list[str]]:
    """Every command that reads an archive, with the outputs it writes placed in OUT."""
    a = str(archive)
    return {
        "stats": ["stats", a],
        "stats --json": ["stats", a, "--json"],
        "inspect": ["inspect", a, THREAD],
        "verify": ["verify", a, "--junit", str(out / "verify.xml")],
        "verify --json": ["verify", a, "--json"],
        "import jsonl": ["import", a, "--to", "jsonl", "--out", str(out / "s.jsonl")],
        "import agents-sqlite": ["import", a, "--to", "agents-sqlite", "--out", str(out / "s.db")],
        "dump": ["dump", a, str(out / "dump")],
        "replay --dry-run": ["replay", a, "--dry-run", "--model", "gpt-4.1"],
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", list(readers(Path("a"), Path("o"))))
def test_a_reader_works_on_a_chmod_444_archive_and_changes_nothing(clean, tmp_path, capsys, name):
    folder, out = tmp_path / "ci-artifact", tmp_path / "out"
    folder.mkdir(), out.mkdir()
    archive = Path(shutil.copy(clean, folder / "support.db"))
    archive.chmod(0o444)
    before = digest(archive), listing(folder), archive.stat().st_mtime_ns
    code = main(readers(archive, out)[name])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    assert "readonly" not in captured.err and "unexpected" not in captured.err, captured.err
    # Not a byte, not a -wal/-shm/-journal/.lock beside it, not even the modification time.
    assert (digest(archive), listing(folder), archive.stat().st_mtime_ns) == before


def test_a_reader_connection_cannot_write(clean, tmp_path):
    archive = Path(shutil.copy(clean, tmp_path / "a.db"))
    with Archive.open(archive) as store:
        assert store.read_only
        assert store.counts()["threads_done"] == 4
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.db.execute("insert into meta(key, value) values ('x', '1')")
    with sqlite3.connect(archive) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # never switched to WAL


def _unshare_works() -> bool:
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unshare_works(), reason="needs `unshare -m` (a mount namespace) for a read-only bind"
)
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_every_reader_works_on_a_read_only_mount(clean, tmp_path, journal):
    """A CI artifact on a read-only mount, through the installed console script. A WAL-mode archive
    there has no -shm and nobody may create one: it is read as immutable."""
    source, mount, out = tmp_path / "src", tmp_path / "ro", tmp_path / "out"
    source.mkdir(), mount.mkdir(), out.mkdir()
    archive = Path(shutil.copy(clean, source / "support.db"))
    if journal == "wal":
        conn = sqlite3.connect(archive)
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.close()
    before = digest(archive), listing(source)
    commands = readers(mount / "support.db", out)
    script = "\n".join(
        [
            "set -u",
            f"mount --bind {source} {mount}",
            f"mount -o remount,bind,ro {mount}",
            f"touch {mount}/probe 2>/dev/null && echo 'the mount is writable' && exit 99",
            *(
                f'{MIGRATE} {" ".join(args)} >/dev/null 2>{out}/{i}.err; echo "{i} $?"'
                for i, args in enumerate(commands.values())
            ),
        ]
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    codes = dict(line.split() for line in result.stdout.splitlines())
    for i, name in enumerate(commands):
        err = (out / f"{i}.err").read_text()
        assert codes[str(i)] in ("0", "1"), f"{name}: exit {codes[str(i)]}: {err}"
        assert "Traceback" not in err and "unexpected" not in err, f"{name}: {err}"
    assert (out / "s.jsonl").read_bytes().count(b"\n") == 4
    assert (digest(archive), listing(source)) == before


def test_an_archive_that_needs_an_upgrade_names_the_command_and_stays_as_it_is(tmp_path, capsys):
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    MIGRATIONS.apply(Database(conn), stop_before=[MIGRATIONS._migrations[-1].name])
    conn.close()
    before = digest(old), listing(tmp_path)
    for args in (
        ["stats", str(old)],
        ["verify", str(old)],
        ["import", str(old), "--to", "jsonl", "--out", "-"],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "not upgraded yet" in err and f"`migrate rebuild {old}` upgrades it" in err, err
    assert (digest(old), listing(tmp_path)) == before
    with Archive.open(old, writer="rebuild") as store:  # a writer applies the pending step
        assert store.applied_migrations() == {m.name for m in MIGRATIONS._migrations}
    assert main(["stats", str(old)]) == 0


def test_stats_on_an_empty_sqlite_file_never_writes_the_schema_into_it(tmp_path, capsys):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("create table t(x)").connection.execute("drop table t").connection.close()
    before = digest(empty)
    assert main(["stats", str(empty)]) == 2
    assert "without tables, not an archive" in capsys.readouterr().err
    assert digest(empty) == before
    with pytest.raises(NotAnArchiveError):
        Archive.open(empty)


def test_the_archive_a_writer_creates_and_the_files_a_reader_writes_are_private(clean, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    archive = Path(shutil.copy(clean, tmp_path / "a.db"))
    os.umask(0o022)
    for args in (
        [
            "import",
            str(archive),
            "--to",
            "jsonl",
            "--out",
            str(out / "s.jsonl"),
            "--mapping-out",
            str(out / "m.csv"),
        ],
        ["import", str(archive), "--to", "agents-sqlite", "--out", str(out / "s.db")],
        ["verify", str(archive), "--junit", str(out / "verify.xml")],
    ):
        assert main(args) in (0, 1), capsys.readouterr().err
    assert main(["replay", str(archive), "--batch-out", str(out / "batch"), "--model", "gpt-4.1"]) in (0, 1)
    written = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert {"s.jsonl", "m.csv", "s.db", "agents.json", "verify.xml"} <= set(written)
    assert any(name.startswith("batch/replay-") for name in written), written
    assert all(mode == 0o600 for mode in written.values()), written
