"""What the export's progress line says: each phase counts what it waits on, on one line."""

from __future__ import annotations

import json
import re

from migrator.cli import main
from migrator.cli.progress import _line
from migrator.export import ExportSnapshot

BASE = dict(threads_total=2000, threads_finished=2000, messages=17274, requests=15000, throttled=0,
            retries=0, failures=0, elapsed=40.0)  # fmt: skip


def test_the_files_phase_counts_files_not_threads():
    line = _line(ExportSnapshot(phase="files", files_total=995, files_done=741, **BASE))
    assert line.startswith("files: files 741/995, threads 2000/2000, messages 17274"), line


def test_the_threads_phase_counts_threads_with_an_eta():
    line = _line(ExportSnapshot(phase="threads", **{**BASE, "threads_finished": 500}))
    assert line.startswith("threads: threads 500/2000,") and line.endswith("eta 2 min"), line


def test_session_building_after_an_export_shows_its_own_progress(sandbox, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.thread_ids()) + "\n")
    archive = tmp_path / "a.db"
    assert main(["export", str(archive), "--threads", str(ids), "--base-url", sandbox.base_url]) == 0
    err = capsys.readouterr().err
    total = len(sandbox.thread_ids())
    assert re.search(rf"^sessions: built 0/{total}$", err, re.M), err


def test_an_export_from_a_dump_shows_files_bytes_and_objects(tmp_path, capsys):
    from test_verify_support import synthetic_archive

    from migrator.archive import Archive
    from migrator.dumps import IngestProgress, ingest_dump, write_dump

    with Archive.open(synthetic_archive(tmp_path / "a.db", threads=5)) as store:
        write_dump(store, tmp_path / "dump")
    seen: list[IngestProgress] = []
    with Archive.create(tmp_path / "lib.db") as store:
        ingest_dump(store, [tmp_path / "dump"], progress=seen.append)
    assert seen and seen[-1].files_read >= 5 and seen[-1].objects > 0
    # A dump of ours says in its manifest how many objects it holds: counted against that, its
    # files are not walked for their sizes first.
    manifest = json.loads((tmp_path / "dump" / "migrate-dump.json").read_text())
    held = sum(n for kind, n in manifest["written"].items() if kind != "file_bytes")
    assert (
        seen[-1].objects == seen[-1].objects_total == held
        and seen[-1].bytes_total == 0 == seen[-1].bytes_read
    )
    assert seen[-1].eta_seconds is None and seen[len(seen) // 2].eta_seconds is not None
    assert [p.bytes_read for p in seen] == sorted(p.bytes_read for p in seen)
    # Anything else (here a folder of its threads alone) is counted in bytes against every byte on disk.
    seen.clear()
    with Archive.create(tmp_path / "other.db") as store:
        ingest_dump(store, [tmp_path / "dump" / "threads"], progress=seen.append)
    assert seen[-1].bytes_read == seen[-1].bytes_total > 0 and seen[-1].objects_total == 0
    assert main(["export", str(tmp_path / "b.db"), "--from-dump", str(tmp_path / "dump")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^dump: files \d+, objects stored \d+/\d+, \d+ objects/s", err, re.M), err
    assert "sessions: building 5" in err, err


def test_ctrl_c_during_an_export_from_a_dump_prints_the_resume_line_and_exits_130(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import orjson

    # Long enough to be read for many seconds: a stop lands in the middle of it.
    lines = (
        orjson.dumps({"id": f"msg_{i:07d}", "object": "thread.message", "created_at": 1700000000 + i,
                      "thread_id": f"thread_{i % 500:04d}", "role": "user", "run_id": None,
                      "content": [{"type": "text", "text": {"value": "hello", "annotations": []}}]})
        for i in range(100_000)
    )  # fmt: skip
    (tmp_path / "messages.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    archive = tmp_path / "a.db"
    migrate = Path(sys.executable).parent / "migrate"
    proc = subprocess.Popen(
        [str(migrate), "export", str(archive), "--from-dump", str(tmp_path / "messages.jsonl")],
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stderr.readline()  # the first progress line: it is reading
    assert first.startswith("dump: files"), first
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, err
    assert f"resume with: migrate export {archive} --from-dump {tmp_path / 'messages.jsonl'}" in err, err
    assert "Traceback" not in err and not (tmp_path / "a.db.lock").exists()
