"""OpenAI after 2026-08-26: an Assistants path answers 404 "Invalid URL". Export, plan and verify stop at
once with one line (exit 3) naming the ways out; no thread is marked missing and nothing is retried."""

from __future__ import annotations

from pathlib import Path

import pytest
from hosts import LookAlike

from migrator.archive import Archive
from migrator.cli import main
from migrator.sandbox import SandboxConfig, SandboxServer

WAYS_OUT = ("2026-08-26", "--from-dump", "--from-records", "--foundry-endpoint")


@pytest.fixture(scope="module")
def sunset() -> SandboxServer:
    with SandboxServer(SandboxConfig(threads=12, seed=4, flavor="sunset")) as server:
        yield server


def ids_file(tmp_path: Path, server: SandboxServer) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(server.thread_ids()) + "\n")
    return path


def one_error_line(err: str) -> str:
    assert "Traceback" not in err and "unexpected" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def work_counts(path: Path) -> dict[str, int]:
    with Archive.open(path) as archive:
        return archive.work.counts()


@pytest.mark.parametrize("only", [None, "threads"])
def test_export_stops_at_once_naming_the_ways_out_and_marks_no_thread_missing(sunset, tmp_path, capsys, only):
    sunset.reset_stats()
    args = ["--only", only] if only else []
    archive = tmp_path / "a.db"
    code = main(
        ["export", str(archive), "--threads", str(ids_file(tmp_path, sunset)), "--base-url", sunset.base_url]
        + args
    )
    line = one_error_line(capsys.readouterr().err)
    assert code == 3, line
    assert all(word in line for word in WAYS_OUT), line
    assert "no thread was marked missing" in line
    counts = work_counts(archive)
    assert counts["missing"] == 0 and counts["failed"] == 0 and counts["pending"] == 12, counts
    with Archive.open(archive) as store:
        assert store.findings.failures() == []
    # No retries and no request per thread: the first answer (the assistants list, or one thread each
    # for the few already on the wire) ends the run.
    total = sunset.stats()["total"]
    assert total <= (1 if only is None else 12), sunset.stats()["by_route"]


def test_a_base_url_without_v1_is_named_as_the_other_cause(sunset, tmp_path, capsys):
    code = main(
        [
            "export",
            str(tmp_path / "a.db"),
            "--threads",
            str(ids_file(tmp_path, sunset)),
            "--base-url",
            sunset.root_url,
        ]
    )
    line = one_error_line(capsys.readouterr().err)
    assert code == 3, line
    assert f"try --base-url {sunset.root_url}/v1" in line and "2026-08-26" in line, line


def test_plan_stops_the_same_way(sunset, tmp_path, capsys):
    code = main(["plan", "--threads", str(ids_file(tmp_path, sunset)), "--base-url", sunset.base_url])
    line = one_error_line(capsys.readouterr().err)
    assert code == 3 and all(word in line for word in WAYS_OUT), line


def test_verify_against_the_source_stops_the_same_way(sunset, tmp_path, capsys):
    with SandboxServer(SandboxConfig(threads=12, seed=4)) as live:
        ids = ids_file(tmp_path, live)
        assert (
            main(["export", str(tmp_path / "a.db"), "--threads", str(ids), "--base-url", live.base_url]) == 0
        )
    capsys.readouterr()
    code = main(["verify", str(tmp_path / "a.db"), "--against-source", "--base-url", sunset.base_url])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err and all(word in err for word in WAYS_OUT), err


DEPRECATED = {"error": {"message": "The Assistants API is deprecated and has been shut down.", "type": "x"}}


@pytest.mark.parametrize(
    "answer",
    [
        (404, {"error": {"message": "Not Found", "type": "invalid_request_error"}}),  # 404 on the collection
        (400, DEPRECATED),
        (410, {"error": {"message": "Gone", "type": "invalid_request_error"}}),
    ],
)
def test_a_collection_404_a_deprecation_400_and_410_are_the_sunset_too(tmp_path, capsys, answer):
    with LookAlike({"GET /v1/assistants": answer}) as host:
        ids = tmp_path / "ids.txt"
        ids.write_text("thread_a\nthread_b\n")
        code = main(["export", str(tmp_path / "a.db"), "--threads", str(ids), "--base-url", host.base_url])
        line = one_error_line(capsys.readouterr().err)
        assert code == 3 and "2026-08-26" in line, line
        assert host.requests["GET /v1/assistants"] == 1  # never retried
        assert not any("/threads" in key for key in host.requests), host.requests
    assert work_counts(tmp_path / "a.db")["missing"] == 0
