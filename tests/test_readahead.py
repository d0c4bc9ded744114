"""The dump ingest's read-ahead: a second process that reads a big dump's files a window ahead of the
ingest (migrator/dumps/readahead.py). It must read in the ingest's order, end with the ingest (done,
failed or killed) and never change what is stored."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from migrator.archive import Archive
from migrator.dumps import ingest_dump
from migrator.dumps.readahead import HAND_OVER_BYTES, START_AFTER_FILES, ReadAhead, Walk
from migrator.dumps.reader import _read_whole, iter_input_files


def _processes_reading(root: Path) -> list[int]:
    """Pids of read-ahead processes whose command line names `root`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"readahead.py") for a in argv) and str(root).encode() in argv:
            found.append(int(entry))
    return found


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _thread_folders(root: Path, threads: int, padding: int = 0) -> None:
    for i in range(threads):
        folder = root / "threads" / f"thread_{i:05d}"
        folder.mkdir(parents=True)
        (folder / "thread.json").write_bytes(
            orjson.dumps({"id": f"thread_{i:05d}", "object": "thread", "created_at": 1_700_000_000 + i})
        )
        message = {
            "id": f"msg_{i:05d}",
            "object": "thread.message",
            "created_at": 1_700_000_000 + i,
            "thread_id": f"thread_{i:05d}",
            "role": "user",
            "content": [{"type": "text", "text": {"value": f"hello {i}" + "." * padding, "annotations": []}}],
            "run_id": None,
        }
        (folder / "messages.json").write_bytes(
            orjson.dumps({"object": "list", "data": [message], "has_more": False})
        )


def test_it_walks_in_the_order_the_ingest_reads(tmp_path: Path) -> None:
    root = tmp_path / "dump"
    names = ("b/z.json", "b/a.json", "a.json", "c/d/e.jsonl", "c/b.json", ".hidden/x.json", "c/.x.json")
    for rel in (*names, "files/file-1.pdf", "c/files/x.json"):  # files/: saved bytes, not walked
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}")
    loose = root / "files"
    ingest_order = [str(s.path) for s in iter_input_files([root], [loose], lambda _p: None, lambda *_a: None)]
    with ThreadPoolExecutor(4) as pool:
        ahead_order = list(Walk(pool, [str(loose.resolve())]).files_under(str(root)))
    assert ahead_order == ingest_order
    assert [Path(p).relative_to(root).as_posix() for p in ahead_order] == [
        "a.json",
        "b/a.json",
        "b/z.json",
        "c/b.json",
        "c/d/e.jsonl",
        "c/files/x.json",
    ]


def test_a_big_dump_is_read_ahead_and_the_process_ends_with_the_ingest(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    threads = START_AFTER_FILES // 2 + 2000  # two files a thread: past the start, by 4,000 files
    _thread_folders(dump, threads, padding=1000)  # more than its pipe holds: it is still there
    seen_running: list[int] = []

    def progress(p) -> None:
        if p.files_read > START_AFTER_FILES + 100 and not seen_running:
            seen_running.extend(_processes_reading(dump))

    archive = Archive.create(tmp_path / "a.db", writer="export")
    try:
        report = ingest_dump(archive, [dump], progress=progress)
    finally:
        archive.close()
    assert seen_running, "no read-ahead process ran while the big dump was read"
    assert all(_gone(pid, 0.5) for pid in seen_running), "the read-ahead outlived its ingest"
    assert report.stored["thread"] == threads and report.stored["thread.message"] == threads
    assert report.threads_done == threads


@pytest.mark.timeout(60)
def test_each_file_gets_its_own_bytes_whatever_the_walk_holds(tmp_path: Path) -> None:
    """Among files the ingest never reads (ignored names, hidden ones, saved bytes, a file too big to
    hand over, a link to a folder, a FIFO, a link to a device), each file it reads is handed exactly
    its bytes, or read by the ingest itself, and the folders it is handed listed walk to the same
    files."""
    dump = tmp_path / "dump"
    _thread_folders(dump, START_AFTER_FILES)
    for i in range(0, START_AFTER_FILES, 97):  # spread over the walk, before and after the start
        folder = dump / "threads" / f"thread_{i:05d}"
        (folder / "notes.md").write_text("not data")
        (folder / ".hidden.json").write_text("{}")
        (folder / "a_first.json").write_bytes(orjson.dumps({"id": f"asst_{i}", "object": "assistant"}))
    big = dump / "threads" / "thread_01990" / "zz_big.jsonl"
    line = orjson.dumps({"id": "asst_big", "object": "assistant", "pad": "x" * 1000}) + b"\n"
    big.write_bytes(line * (HAND_OVER_BYTES // len(line) + 10))
    (dump / "files").mkdir()
    (dump / "files" / "file-1.json").write_text("{}")
    (dump / "threads" / "thread_01000" / "gone.json").symlink_to(tmp_path / "nowhere.json")
    excluded = [dump / "files"]
    (dump / "threads" / "thread_01500" / "linked").symlink_to(dump / "threads" / "thread_01501")
    # Special files under names the ingest ignores: read, they would hold the read-ahead forever.
    os.mkfifo(dump / "threads" / "thread_01200" / "pipe.md")
    (dump / "threads" / "thread_01300" / "zero.md").symlink_to("/dev/zero")
    (dump / "threads" / "thread_01600" / ".git").mkdir()
    sources = list(iter_input_files([dump], excluded, lambda _p: None, lambda *_a: None))
    handed, listed, walked = [], [], []
    with ReadAhead([dump], excluded) as ahead:

        def listing(folder: str):
            found = ahead.listed(folder)
            if found is not None:
                listed.append(folder)
            return found

        read = iter_input_files([dump], excluded, lambda _p: None, lambda *_a: None, listed=listing)
        for files, source in enumerate(read, 1):
            walked.append(source)
            ahead.seen(files)
            given = ahead.handed(source)
            if given is not source:
                handed.append(source.path)
                assert given.label == source.label and given.path is None
                assert _read_whole(given) == _read_whole(source), source.path
    assert [s.path for s in walked] == [s.path for s in sources]  # listings read ahead walk the same
    assert len(listed) > START_AFTER_FILES // 2 - 200  # a folder a thread: all but the first and a few
    assert len(handed) > len(sources) - START_AFTER_FILES - 200
    assert str(big) not in handed and not any(p.endswith("gone.json") for p in handed)


def test_a_small_dump_starts_no_second_process(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    _thread_folders(dump, 10)
    seen: list[int] = []
    archive = Archive.create(tmp_path / "a.db", writer="export")
    try:
        ingest_dump(archive, [dump], progress=lambda _p: seen.extend(_processes_reading(dump)))
    finally:
        archive.close()
    assert seen == []


def test_it_ends_when_the_ingest_is_killed(tmp_path: Path) -> None:
    """kill -9 of the ingest closes the read-ahead's pipe: it stops, however far it had to go."""
    dump = tmp_path / "dump"
    _thread_folders(dump, START_AFTER_FILES, padding=2000)  # 8 MB: more than the pipe holds
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from migrator.dumps.readahead import ReadAhead, START_AFTER_FILES
        ahead = ReadAhead([Path({str(dump)!r})])
        for files in range(1, START_AFTER_FILES + 2):
            ahead.seen(files)
        print(ahead._process.pid, flush=True)
        sys.stdin.read()  # until the test kills this process
        """
    )
    ingest = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        pid = int(ingest.stdout.readline())
        assert not _gone(pid, 1), "with its pipe full, the read-ahead waits for the ingest"
        ingest.kill()
        ingest.wait()
        assert _gone(pid, 5), "the read-ahead outlived a killed ingest"
    finally:
        ingest.kill()
        ingest.wait()


def test_a_read_ahead_that_cannot_start_only_reads_nothing(tmp_path: Path) -> None:
    ahead = ReadAhead([tmp_path / "not-there", tmp_path / "a-file.json"])
    for files in range(1, START_AFTER_FILES * 2 + 1):
        ahead.seen(files)
    ahead.close()
    assert ahead.files == START_AFTER_FILES * 2
    assert _processes_reading(tmp_path / "not-there") == []
