"""Verify and rebuild in worker processes give what they give in one: the same report, finding for
finding and in the same order, and the same derived tables."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_verify_matrix import (
    break_raw_json,
    dangling_tool_call,
    delete_placed_message,
    edit_raw_json,
    orphan_tool_output,
    raw_changed_without_rebuild,
    session_deleted,
    session_text_edited,
)
from test_verify_support import cli, sandbox_export

from migrator.cli import main

DAMAGE = (
    edit_raw_json,
    break_raw_json,
    session_text_edited,
    raw_changed_without_rebuild,
    session_deleted,
    orphan_tool_output,
    dangling_tool_call,
    delete_placed_message,
)


@pytest.fixture(scope="module")
def damaged(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(shutil.copy(sandbox_export(sandbox, tmp_path_factory), tmp_path_factory.mktemp("w") / "a.db"))
    conn = sqlite3.connect(path)
    with conn:
        for damage in DAMAGE:
            damage(conn)
    conn.close()
    return path


def report(path: Path, *flags: str) -> dict[str, Any]:
    code, out, err = cli(str(path), "--json", *flags)
    assert code == 1, out + err
    doc = orjson.loads(out)
    doc.pop("elapsed_seconds")
    return doc


def test_verify_with_workers_reports_exactly_what_one_process_reports(damaged: Path) -> None:
    alone = report(damaged, "--workers", "0")
    failed = {c["code"] for c in alone["checks"] if c["status"] == "failed"}
    # The damage reaches every kind of session finding the re-derivation makes.
    assert {"session_mismatch", "session_missing", "raw_unreadable", "message_count_mismatch"} <= failed, (
        failed
    )
    assert report(damaged, "--workers", "2") == alone
    assert report(damaged) == alone  # the default for this machine's cores


def test_verify_reports_a_thread_the_converter_cannot_read_with_workers_too(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    path = Path(shutil.copy(sandbox_export(sandbox, tmp_path_factory), tmp_path / "a.db"))
    conn = sqlite3.connect(path)
    with conn:
        break_raw_json(conn)  # one message no longer parses: its thread's re-derivation fails alone
    conn.close()
    alone = report(path, "--workers", "0")
    failed = {c["code"]: c for c in alone["checks"] if c["status"] == "failed"}
    assert failed["session_derive_failed"]["count"] == 1
    assert report(path, "--workers", "2") == alone


def derived(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"select * from {table} order by 1, 2").fetchall()
            for table in ("sessions", "session_warnings", "session_tools", "tool_definitions")
        }
    finally:
        conn.close()


def test_rebuild_with_workers_stores_what_one_process_stores(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    clean = sandbox_export(sandbox, tmp_path_factory)
    one, two = (Path(shutil.copy(clean, tmp_path / name)) for name in ("one.db", "two.db"))
    assert main(["rebuild", str(one), "--citations", "strip", "--workers", "0"]) == 0
    assert main(["rebuild", str(two), "--citations", "strip", "--workers", "2"]) == 0
    assert derived(one) == derived(two)
    assert derived(one) != derived(clean)  # the option changed every session that cites


def test_a_negative_worker_count_is_a_usage_error(damaged: Path) -> None:
    assert main(["verify", str(damaged), "--workers", "-1"]) == 2


def _failed(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checks with findings, errors and warnings alike."""
    return {c["code"]: c for c in doc["checks"] if c["count"]}


def _one_work_row_changed(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, assignment: str
) -> tuple[Path, str]:
    """A copy of the sandbox's archive with the work row of its first session changed (`set ...`)."""
    path = Path(shutil.copy(sandbox_export(sandbox, tmp_path_factory), tmp_path / "a.db"))
    conn = sqlite3.connect(path)
    with conn:
        (tid,) = conn.execute("select thread_id from sessions order by thread_id limit 1").fetchone()
        conn.execute(f"update work set {assignment} where thread_id = ?", [tid])
    conn.close()
    return path, tid


def test_verify_reports_a_session_whose_thread_is_not_done_in_one_process_and_with_workers(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # Verify counts the sessions of done threads as it goes and asks for orphans only when the
    # count falls short of all sessions: one orphan must still be found and named.
    path, tid = _one_work_row_changed(sandbox, tmp_path_factory, tmp_path, "status = 'failed'")
    alone = report(path, "--workers", "0")
    orphan = _failed(alone)["session_orphan"]
    assert orphan["count"] == 1 and tid in str(orphan["findings"])
    assert report(path, "--workers", "2") == alone


def test_the_re_derivation_reads_each_threads_work_extras_in_one_process_and_with_workers(
    sandbox: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # The fields of a --threads JSONL (work.extra) are part of a session's metadata; verify hands them
    # to the re-derivation from its own pass over the work rows, so a changed one must show.
    path, tid = _one_work_row_changed(
        sandbox, tmp_path_factory, tmp_path, """extra = '{"user_id": "u-extra"}'"""
    )
    alone = report(path, "--workers", "0")
    mismatch = _failed(alone)["session_mismatch"]
    assert mismatch["count"] == 1 and "metadata" in str(mismatch["findings"])
    assert report(path, "--workers", "2") == alone
    assert main(["rebuild", str(path), "--all"]) == 0
    code, out, err = cli(str(path), "--json")
    assert "session_mismatch" not in _failed(orjson.loads(out)), out + err
    conn = sqlite3.connect(path)
    record = conn.execute("select record from sessions where thread_id = ?", [tid]).fetchone()[0]
    conn.close()
    assert orjson.loads(record)["metadata"]["user_id"] == "u-extra"
