"""`migrate verify --against-source --sample N`: drift between the archive and the live source,
against the real sandbox over HTTP."""

from __future__ import annotations

import random
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_verify_support import SANDBOX_THREADS, cli, sandbox_export

from migrator.archive import Archive, object_hash
from migrator.sandbox import SandboxConfig, SandboxServer
from migrator.verify import DRIFT_CHECKS
from migrator.verify.drift import sample_threads


@pytest.fixture
def db(sandbox: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return Path(shutil.copy(sandbox_export(sandbox, tmp_path_factory), tmp_path / "archive.db"))


def drift(doc: dict[str, Any]) -> dict[str, list[str]]:
    """code -> ["subject: message", ...] for the drift checks that found something."""
    return {
        c["code"]: [f"{f['subject']}: {f['message']}" for f in c["findings"]]
        for c in doc["checks"]
        if c["category"] == "drift" and c["count"]
    }


def test_a_fresh_export_has_no_drift(sandbox: Any, db: Path) -> None:
    code, out, err = cli(
        str(db), "--json", "--against-source", "--sample", "5", "--base-url", sandbox.base_url
    )
    assert code == 0, out + err
    doc = orjson.loads(out)
    assert doc["stats"]["threads_sampled"] == 5
    assert drift(doc) == {}
    assert {c["code"] for c in doc["checks"] if c["category"] == "drift"} == {c.code for c in DRIFT_CHECKS}


def test_new_changed_and_gone_objects_are_reported(sandbox: Any, db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        # The source has a message the archive lost (as if it arrived after the export) ...
        new_msg, new_tid = conn.execute("select id, thread_id from messages order by id limit 1").fetchone()
        conn.execute("delete from messages where id = ?", [new_msg])
        conn.execute("update work set messages_seen = messages_seen - 1 where thread_id = ?", [new_tid])
        # ... a run that differs from the archived copy (stored consistently, so only drift sees it) ...
        run_id, raw = conn.execute("select id, raw from runs order by id limit 1").fetchone()
        body = orjson.loads(raw)
        body["metadata"] = {"edited": "after export"}
        conn.execute(
            "update runs set raw = ?, hash = ? where id = ?",
            [orjson.dumps(body).decode(), object_hash(body), run_id],
        )
        # ... and a done thread the source no longer knows.
        conn.execute("insert into work(thread_id, status) values ('thread_deletedatsource', 'done')")
        conn.execute(
            "insert into threads(id, created_at, raw, hash) values (?, 0, ?, ?)",
            [
                "thread_deletedatsource",
                '{"id": "thread_deletedatsource"}',
                object_hash({"id": "thread_deletedatsource"}),
            ],
        )
    conn.close()
    code, out, err = cli(
        str(db),
        "--json",
        "--against-source",
        "--sample",
        str(SANDBOX_THREADS + 1),
        "--base-url",
        sandbox.base_url,
    )
    assert code == 1, out + err
    found = drift(orjson.loads(out))
    assert f"message {new_msg}: at the source, not in the archive" in found["source_new"]
    assert f"run {run_id}: differs from the archived copy" in found["source_changed"]
    assert "thread thread_deletedatsource: the source answers 404 for this thread now" in found["source_gone"]


def test_sampling_is_uniform_and_streams(sandbox: Any, db: Path) -> None:
    with Archive.open(db) as archive:
        first = sample_threads(archive, 4, random.Random(1))
        again = sample_threads(archive, 4, random.Random(1))
        everything = sample_threads(archive, 100, random.Random(1))
    assert first == again and len(first) == 4 and set(first) <= set(everything)
    assert len(everything) == SANDBOX_THREADS


def test_drift_checks_appear_in_junit_only_when_asked(sandbox: Any, db: Path, tmp_path: Path) -> None:
    target = tmp_path / "v.xml"
    cli(str(db), "--junit", str(target))
    assert not [c for c in ET.parse(target).iter("testcase") if c.get("classname") == "migrate.verify.drift"]
    cli(str(db), "--junit", str(target), "--against-source", "--sample", "2", "--base-url", sandbox.base_url)
    drift_cases = [
        c for c in ET.parse(target).iter("testcase") if c.get("classname") == "migrate.verify.drift"
    ]
    assert len(drift_cases) == len(DRIFT_CHECKS)


def test_a_source_that_is_gone_stops_with_exit_3(db: Path) -> None:
    with SandboxServer(SandboxConfig(threads=1, seed=7, gone=True), port=0) as gone:
        code, out, err = cli(str(db), "--against-source", "--sample", "1", "--base-url", gone.base_url)
    assert code == 3, out + err
    assert err.startswith("error: ") and "answered 410 Gone" in err, err


def test_sample_without_against_source_is_a_usage_error(db: Path) -> None:
    code, out, err = cli(str(db), "--sample", "5")
    assert code == 2, out + err
    assert "--sample and --base-url go with --against-source" in err
