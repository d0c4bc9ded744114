"""`migrate verify`: catalogue, verdicts, renderings (JSON, JUnit, table), budget and CLI usage."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_verify_support import cli, synthetic_archive

from migrator.archive import Archive
from migrator.errors import UsageError
from migrator.sessions import build_sessions, recorded_options
from migrator.verify import CHECKS, DRIFT_CHECKS, Budget, context_window_for, junit_xml, verify_archive

DOCS = Path(__file__).parent.parent / "docs" / "verify.md"


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_archive(tmp_path_factory.mktemp("verify") / "clean.db", threads=9)


@pytest.fixture
def db(clean_db: Path, tmp_path: Path) -> Path:
    """A private copy of the clean archive that a test may damage."""
    return Path(shutil.copy(clean_db, tmp_path / "archive.db"))


def verify_json(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli(str(path), "--json", *args)
    assert err == "", err  # nothing but the document, and it goes to stdout
    return code, orjson.loads(out)


def failing(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in document["checks"] if c["status"] == "failed"}


def sql(path: Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Damage the file behind the archive's back, as a crash, a bad disk or a bad hand would."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(statement, params)
    conn.close()


# -- the catalogue -------------------------------------------------------------------------------


def test_codes_are_unique_and_documented() -> None:
    codes = [c.code for c in CHECKS + DRIFT_CHECKS]
    assert len(codes) == len(set(codes))
    docs = DOCS.read_text()
    undocumented = [code for code in codes if f"`{code}`" not in docs]
    assert not undocumented, undocumented


# -- verdicts ----------------------------------------------------------------------------------


def test_clean_archive_exits_0_with_a_table(db: Path) -> None:
    code, out, err = cli(str(db))
    assert code == 0, out + err
    assert "clean: 0 error(s), 0 warning(s)" in out
    for category in ("integrity", "completeness", "referential", "sessions", "budget", "warnings"):
        assert category in out, out


def test_json_is_one_document_with_every_check(db: Path) -> None:
    code, doc = verify_json(db)
    assert code == 0, doc
    assert doc["ok"] is True and doc["exit_code"] == 0
    assert [c["code"] for c in doc["checks"]] == [c.code for c in CHECKS]
    assert all(c["status"] == "passed" for c in doc["checks"]), failing(doc)
    assert doc["stats"]["threads"] == 9 and doc["stats"]["sessions"] == 9
    # raw objects: 1 assistant, 9 threads, 18 messages, 9 runs, 18 steps, 1 file
    assert doc["stats"]["raw_objects"] == 56 and doc["stats"]["blobs"] == 1


def test_library_api_without_the_cli(db: Path) -> None:
    with Archive.open(db) as archive:
        report = verify_archive(archive, model="gpt-4o")
    assert int(report.exit_code()) == 0
    assert report.budget == "gpt-4o (128,000 tokens)"
    assert set(report.checks) == {c.code for c in CHECKS}


def source_lost_the_image(db: Path) -> None:
    """The source had neither bytes nor text for the image; sessions were built knowing it."""
    sql(db, "update files set content = 'missing', blob_sha256 = null")
    with Archive.open(db, writer="test") as archive:
        build_sessions(archive, recorded_options(archive), rebuild_all=True)


def test_warnings_fail_only_with_strict(db: Path) -> None:
    source_lost_the_image(db)
    code, doc = verify_json(db)
    assert code == 0, doc
    lint = {c["code"]: c for c in doc["checks"]}["file_content_missing"]
    assert lint["count"] == 1 and lint["status"] == "passed"
    assert "neither its bytes nor a parsed text" in lint["findings"][0]["message"]
    code, doc = verify_json(db, "--strict")
    assert code == 1, doc
    assert "file_content_missing" in failing(doc)


def test_a_finding_reads_as_what_was_found_not_as_the_check_passing(db: Path, tmp_path: Path) -> None:
    source_lost_the_image(db)
    sql(db, "update work set status = 'failed' where thread_id = 'thread_00002'")
    code, out, _ = cli(str(db), "--junit", str(tmp_path / "j.xml"))
    assert code == 1, out
    assert "file_content_missing (warning, 1): 1 referenced file(s) have neither bytes nor parsed text" in out
    assert "thread_failed (error, 1): 1 thread(s) failed to export" in out
    assert "no thread failed to export" not in out and "every referenced file has bytes" not in out
    # The conversion warnings only inform: their one check is not "0 passed, 0 failed".
    warnings_row = next(line for line in out.splitlines() if line.startswith("│ warnings"))
    assert [cell.strip() for cell in warnings_row.strip("│").split("│")][1:4] == ["1", "1", "0"], warnings_row
    junit = (tmp_path / "j.xml").read_text()
    assert 'message="1 thread(s) failed to export in thread_00002"' in junit, junit
    code, doc = verify_json(db)
    found = {c["code"]: c["found"] for c in doc["checks"]}
    assert found["thread_failed"] == "1 thread(s) failed to export" and found["thread_pending"] is None


def test_findings_are_capped_but_counted(db: Path) -> None:
    sql(db, "update work set status = 'pending'")
    with Archive.open(db) as archive:
        report = verify_archive(archive, max_findings=4)
    pending = report.checks["thread_pending"]
    assert pending.count == 9 and len(pending.findings) == 4 and pending.truncated
    entry = next(c for c in report.to_dict()["checks"] if c["code"] == "thread_pending")
    assert entry["truncated"] is True and entry["count"] == 9


# -- budget --------------------------------------------------------------------------------------


def test_context_window_table_uses_the_longest_prefix() -> None:
    assert context_window_for("gpt-4o-mini-2024-07-18") == 128_000
    assert context_window_for("gpt-4-turbo") == 128_000
    assert context_window_for("gpt-4-0613") == 8_192
    assert context_window_for("gpt-4.1-mini") == 1_047_576
    assert context_window_for("my-azure-deployment") is None
    assert Budget.resolve(model="o3-mini").context_window == 200_000
    with pytest.raises(UsageError, match="not both"):
        Budget.resolve(1000, "gpt-4o")


def test_sessions_over_the_window_fail(db: Path) -> None:
    code, doc = verify_json(db, "--context-window", "20")
    assert code == 1, doc
    over = failing(doc)["session_over_budget"]
    assert over["count"] == 9
    assert "tokens > 20 (--context-window)" in over["findings"][0]["message"]
    code, doc = verify_json(db, "--model", "gpt-4")
    assert code == 0, failing(doc)  # small sessions fit 8k


def test_over_its_own_models_window_is_a_warning(db: Path) -> None:
    # Without a named target, a session is measured against its own (source) model, gpt-4o here.
    sql(db, "update sessions set tokens = 200000 where thread_id = 'thread_00003'")
    code, doc = verify_json(db)
    assert code == 0, failing(doc)
    own = {c["code"]: c for c in doc["checks"]}["session_over_model_window"]
    assert own["count"] == 1
    assert own["findings"][0]["message"] == "200,000 tokens > 128,000 of its own model gpt-4o"
    code, doc = verify_json(db, "--strict")
    assert code == 1 and "session_over_model_window" in failing(doc)
    code, doc = verify_json(db, "--model", "gpt-4.1")
    assert code == 0, failing(doc)  # fits the named target


def test_unknown_session_model_is_reported_not_guessed(db: Path) -> None:
    # The record's model is renamed consistently (record and hash), so only the budget notices.
    conn = sqlite3.connect(db)
    with conn:
        for tid, record in conn.execute("select thread_id, record from sessions").fetchall():
            body = orjson.loads(record)
            body["model"] = "acme-llm"
            text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
            conn.execute(
                "update sessions set record = ?, hash = ? where thread_id = ?",
                [text.decode(), "sha256:" + hashlib.sha256(text).hexdigest(), tid],
            )
    conn.close()
    with Archive.open(db) as archive:
        report = verify_archive(archive)
    unknown = report.checks["budget_unknown_model"]
    assert unknown.count == 1 and unknown.findings[0].subject == "model acme-llm"
    assert "9 session(s) not measured" in unknown.findings[0].message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "acme-llm"], "no built-in context window for model 'acme-llm'"),
        (["--model", "gpt-4o", "--context-window", "5"], "not both"),
        (["--context-window", "0"], "--context-window"),
        (["--junit", "/nonexistent/dir/v.xml"], "does not exist"),
    ],
)
def test_bad_options_exit_2(db: Path, args: list[str], message: str) -> None:
    code, out, err = cli(str(db), *args)
    assert code == 2, out + err
    assert message in out + err


# -- JUnit -----------------------------------------------------------------------------------------


def test_junit_of_a_clean_archive(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "verify.xml"
    code, out, err = cli(str(db), "--junit", str(target))
    assert code == 0, out + err
    root = ET.parse(target).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(CHECKS) == int(root.get("tests", "-1")) == int(suite.get("tests", "-1"))
    assert root.get("failures") == "0" and not suite.findall("testcase/failure")
    assert {c.get("name") for c in cases} == {c.code for c in CHECKS}
    assert cases[0].get("classname") == "migrate.verify.integrity"


def test_junit_failures_name_the_threads(db: Path, tmp_path: Path) -> None:
    sql(db, "delete from messages where id in ('msg_00001_5', 'msg_00004_0')")
    sql(db, "update work set status = 'failed' where thread_id = 'thread_00007'")
    sql(db, "insert into anomalies values ('thread', 'thread_00002', 'repeated_cursor', 'cursor \x01 x')")
    target = tmp_path / "verify.xml"
    code, out, err = cli(str(db), "--junit", str(target), "--json")
    assert code == 1, out + err
    doc = orjson.loads(out)
    root = ET.parse(target).getroot()  # well-formed even with a control character in a finding
    failed = {
        c.get("name"): c.find("failure") for c in root.iter("testcase") if c.find("failure") is not None
    }
    assert set(failed) == set(failing(doc))
    assert int(root.get("failures", "-1")) == len(failed)
    counts = failed["message_count_mismatch"]
    assert counts is not None
    assert "thread_00001" in counts.get("message", "") and "thread_00004" in counts.get("message", "")
    assert "1 messages stored, the source listed 2" in (counts.text or "")
    assert "thread_00007" in (failed["thread_failed"].get("message") or "")  # type: ignore[union-attr]
    assert "thread_00002" in (failed["page_anomaly"].get("message") or "")  # type: ignore[union-attr]


def test_junit_puts_warnings_in_system_out_unless_strict(db: Path) -> None:
    source_lost_the_image(db)
    with Archive.open(db) as archive:
        report = verify_archive(archive)
    lenient = ET.fromstring(junit_xml(report))
    strict = ET.fromstring(junit_xml(report, strict=True))
    assert lenient.get("failures") == "0" and strict.get("failures") == "1"
    case = next(c for c in lenient.iter("testcase") if c.get("name") == "file_content_missing")
    assert "file file-verifyimage1" in (case.findtext("system-out") or "")


def test_the_verdict_is_the_exit_code_of_the_console_entry_point(db: Path) -> None:
    sql(db, "update work set status = 'failed'")
    code, out, err = cli(str(db))
    assert code == 1, out + err
    assert "needs attention: 9 error(s)" in out
    code, out, err = cli(str(db), "--json")
    assert code == 1 and orjson.loads(out)["exit_code"] == 1, out + err


def test_findings_added_first_land_as_if_they_had_come_first_truncation_included() -> None:
    # The integrity phase runs beside the others and its findings are put first at the end: the
    # report must be the one a run in phase order makes, with the kept findings capped alike.
    from migrator.verify.report import Finding, VerifyReport

    early = [Finding("check_aborted", "archive", f"early {i}") for i in range(3)]
    early.append(Finding("sqlite_integrity", "archive", "page 7 is never used"))
    late = [Finding("check_aborted", "archive", f"late {i}") for i in range(4)]

    def report() -> VerifyReport:
        return VerifyReport.empty("a.db", CHECKS, max_findings=5)

    in_order, first_at_the_end = report(), report()
    for finding in early + late:
        in_order.add(finding)
    for finding in late:
        first_at_the_end.add(finding)
    first_at_the_end.add_first(early)
    assert first_at_the_end.to_dict() == in_order.to_dict()
    assert [f.message for f in in_order.checks["check_aborted"].findings] == [
        "early 0", "early 1", "early 2", "late 0", "late 1",
    ]  # fmt: skip
    assert in_order.checks["check_aborted"].count == 7
