"""Shared test set-up: isolated environment, pinned output width, one sandbox per worker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Rich output width is pinned so assertions on rendered text do not depend on the terminal.
os.environ["COLUMNS"] = "160"
os.environ.setdefault("NO_COLOR", "1")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No test sees the developer's real credentials, base URLs or home folder."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "AZURE_", "TARGET_", "FOUNDRY_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sandbox-key")  # the sandbox accepts any bearer key
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """A small healthy sandbox shared by the tests of one worker (tests must not change its knobs)."""
    from migrator.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(threads=40, seed=7), port=0) as server:
        yield server


def pytest_terminal_summary(terminalreporter) -> None:
    """Say in the summary whether the tests against a real PostgreSQL server ran (CI's log shows it)."""
    stats = terminalreporter.stats
    reports = [
        r
        for outcome in ("passed", "failed")
        for r in stats.get(outcome, [])
        if getattr(r, "when", "") == "call" and "test_records_postgres" in getattr(r, "nodeid", "")
    ]
    skipped = [r for r in stats.get("skipped", []) if "test_records_postgres" in getattr(r, "nodeid", "")]
    if reports:
        servers = sorted({v for r in reports for k, v in r.user_properties if k == "postgres_server"})
        passed = sum(1 for r in reports if r.outcome == "passed")
        terminalreporter.write_line(
            f"PostgreSQL: {passed} passed, {len(reports) - passed} failed against a real server "
            f"started by the test fixture ({'; '.join(servers) or 'server unknown'})"
        )
    elif skipped:
        terminalreporter.write_line(f"PostgreSQL: {len(skipped)} tests skipped (see the skip reason above)")
