"""Nothing corrupt, nothing leaked (issue 19): middleboxes, echoed secrets, bodies over the limit."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import urllib.request
from pathlib import Path

from hosts import Middlebox

from migrator.archive import Archive
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

GATEWAY_PAGE = b"<html><body><h1>502 Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>"
FILE_CONTENT = re.compile(r"^/v1/files/(file[-_][A-Za-z0-9]+)/content$")


def _ids(tmp_path: Path, server: SandboxServer) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(server.thread_ids()) + "\n")
    return path


def _true_bytes(server: SandboxServer, file_id: str) -> bytes | None:
    request = urllib.request.Request(
        f"{server.base_url}/files/{file_id}/content", headers={"Authorization": "Bearer sandbox-key"}
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.read()
    except urllib.error.HTTPError:
        return None  # purpose `assistants`: not downloadable


def test_a_gateway_page_answered_for_a_file_is_never_stored_as_its_bytes(tmp_path, capsys):
    first_seen: set[str] = set()

    def error_page_first(method: str, path: str, headers: dict[str, str]):
        match = FILE_CONTENT.match(path)
        if match and match.group(1) not in first_seen:
            first_seen.add(match.group(1))
            return 200, "text/html", GATEWAY_PAGE
        return None

    with (
        SandboxServer(SandboxConfig(threads=30, seed=5)) as server,
        Middlebox(server.base_url, error_page_first) as box,
    ):
        args = [
            "export",
            str(tmp_path / "a.db"),
            "--threads",
            str(_ids(tmp_path, server)),
            "--base-url",
            box.base_url,
        ]
        main(args)
        main(args)
        capsys.readouterr()
        assert box.intercepted, "the middlebox answered no download"
        with Archive.open(tmp_path / "a.db") as archive:
            rows = archive.db.execute(
                "select f.id, b.data from files f left join blobs b on b.sha256 = f.blob_sha256 "
                "where f.content = 'downloaded'"
            ).fetchall()
            every = [file_id for (file_id,) in archive.db.execute("select id from files")]
        stored = dict(rows)
        true = {file_id: _true_bytes(server, file_id) for file_id in every}
        assert stored == {file_id: data for file_id, data in true.items() if data is not None}
        assert main(["verify", str(tmp_path / "a.db")]) == 0, capsys.readouterr().out


def test_verify_flags_a_blob_whose_size_is_not_its_file_objects(tmp_path, capsys, sandbox):
    ids = _ids(tmp_path, sandbox)
    path = tmp_path / "a.db"
    assert main(["export", str(path), "--threads", str(ids), "--base-url", sandbox.base_url]) == 0
    with sqlite3.connect(path) as db:
        file_id, sha = db.execute(
            "select id, blob_sha256 from files where content = 'downloaded' order by id limit 1"
        ).fetchone()
        # An error page stored as the file: its own hash is consistent, only its length tells.
        page_sha = hashlib.sha256(GATEWAY_PAGE).hexdigest()
        db.execute(
            "insert into blobs (sha256, bytes, mime, data) values (?, ?, 'text/html', ?)",
            [page_sha, len(GATEWAY_PAGE), GATEWAY_PAGE],
        )
        db.execute("update files set blob_sha256 = ? where id = ?", [page_sha, file_id])
    capsys.readouterr()
    assert main(["verify", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = {c["code"]: c for c in report["checks"] if c["status"] == "failed"}
    # The session built from the good bytes no longer matches them either (its file's sha256).
    assert set(failed) == {"file_size_mismatch", "session_mismatch"}, failed
    assert file_id in json.dumps(failed["file_size_mismatch"]["findings"])
