"""A command loads what it uses: `verify`, `rebuild`, the file imports and `stats` start without the
openai SDK, the export path, the sandbox, tiktoken or jsonschema (a second of start-up and some 35 MB
a process, before this, for commands that never talk to a server). Checked in a fresh interpreter,
as the console script starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "openai",
    "httpx2",
    "migrator.export",
    "migrator.source.client",
    "migrator.sandbox",
    "tiktoken",
    "jsonschema",
)


def _loaded_after(args: list[str]) -> list[str]:
    code = (
        "import sys\n"
        "from migrator.cli import main\n"
        f"code = main({args!r})\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("loaded:"), out.stdout[-300:]
    return [m for m in line.removeprefix("loaded:").split(",") if m]


@pytest.mark.parametrize(
    "command", [["verify", "--help"], ["rebuild", "--help"], ["import", "--help"], ["stats", "--help"]]
)
def test_an_offline_command_starts_without_the_sdk_or_the_export_path(command: list[str]) -> None:
    assert _loaded_after(command) == []


def test_the_whole_command_line_is_still_there_for_help_and_for_app() -> None:
    from migrator.cli import app

    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert {
        "export",
        "verify",
        "rebuild",
        "merge",
        "import",
        "stats",
        "inspect",
        "dump",
        "replay",
        "plan",
    } <= names
    out = subprocess.run(
        [sys.executable, "-c", "from migrator.cli import run; run()", "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    for word in ("export", "verify", "rebuild", "merge", "import", "replay", "sandbox", "dump", "plan"):
        assert f" {word} " in out.stdout, word
