"""The README's session runs as written: exactly its `$` lines, in a fresh shell that has nothing but
the clone's `.venv` (no OPENAI_* variables, a plain PATH), and every line of output it shows that
does not depend on the clock (progress lines, rates and durations) comes out as shown."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()


def session() -> list[tuple[str, list[str]]]:
    """The README session's commands, each with the output lines shown under it."""
    block = README.split("## A session", 1)[1].split("```\n", 2)[1]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def _steady(line: str) -> str | None:
    """A shown line as it must come out, floats blurred; None for what depends on the clock."""
    if line == "..." or "req/s" in line or line.startswith("…"):
        return None
    return re.sub(r"\d+\.\d+", "N.N", line.rstrip())


def test_the_session_is_what_the_readme_says_it_is():
    commands = [command for command, _ in session()]
    assert commands[0] == ". .venv/bin/activate" and commands[-1] == "kill %1"
    assert any(c.startswith("migrate sandbox serve") and c.endswith("&") for c in commands)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a 2000-thread export: a minute on an idle machine, more on a busy one
def test_the_readme_session_runs_as_written_in_a_fresh_shell(tmp_path):
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the clone's venv, as `make install` made it
    lines = ["set -e"]
    for i, (command, _) in enumerate(session()):
        lines.append(f"echo '### {i}'")
        lines.append(command)
        if command.endswith("&"):
            # A person reads "sandbox serving ..." before typing on; the script waits for the same.
            lines.append("for _ in $(seq 600); do [ -s ids.txt ] && break; sleep 0.1; done; sleep 0.5")
    shell = subprocess.Popen(
        ["bash", "-c", "\n".join(lines)],
        cwd=tmp_path,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a failed run leaves no sandbox on port 8765
    )
    try:
        out, _ = shell.communicate(timeout=1700)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
    assert shell.returncode == 0, out
    produced = {re.sub(r"\d+\.\d+", "N.N", line.rstrip()) for line in out.splitlines()}
    for command, shown in session():
        for line in shown:
            steady = _steady(line)
            assert steady is None or steady in produced, f"`{command}` did not print {line!r}:\n{out}"
    assert "Traceback" not in out and not any(line.startswith("error:") for line in out.splitlines())
