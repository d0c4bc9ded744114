"""A new user's first mistakes, through the installed console script: exit 2, click's usage message
naming what was wrong, no traceback, nothing created. Also `--version`, `--debug` in the help, and
help texts that name values (ARCHIVE, FILE, URL, N), never Python types."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from migrator import __version__
from migrator.cli import app, main

MIGRATE = Path(sys.executable).parent / "migrate"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run(
        [str(MIGRATE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


# (what a user typed, what the message must name)
USAGE_CASES = {
    "unknown option": (["stats", "a.db", "--bogus"], "--bogus"),
    "missing argument": (["stats"], "Missing argument 'ARCHIVE'"),
    "missing option": (["plan"], "Missing option '--threads'"),
    "unknown command": (["frob"], "No such command 'frob'"),
    "unknown sandbox command": (["sandbox", "frob"], "No such command 'frob'"),
    "extra argument": (["stats", "a.db", "b.db"], "unexpected extra argument(s) (b.db)"),
    "bad integer": (["export", "a.db", "--threads", "ids.txt", "--concurrency", "abc"], "'--concurrency'"),
    "bad choice --to": (["import", "a.db", "--to", "csv", "--out", "x.jsonl"], "'--to'"),
    "bad choice --citations": (["rebuild", "a.db", "--citations", "bogus"], "'--citations'"),
    "out of range --max-rps": (["export", "a.db", "--threads", "ids.txt", "--max-rps", "-1"], "'--max-rps'"),
    "out of range import --sample": (
        ["import", "a.db", "--to", "jsonl", "--out", "x", "--sample", "0"],
        "'--sample'",
    ),
    "out of range verify --sample": (["verify", "a.db", "--against-source", "--sample", "0"], "'--sample'"),
    "out of range --port": (["sandbox", "serve", "--port", "99999"], "'--port'"),
    "no arguments shows the help": ([], "Commands:"),
}


@pytest.mark.parametrize(("args", "names"), USAGE_CASES.values(), ids=USAGE_CASES.keys())
def test_a_usage_error_is_exit_2_with_the_usage_line_and_nothing_created(tmp_path, args, names):
    (tmp_path / "ids.txt").write_text("thread_abc\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Usage: migrate" in result.stderr, result.stderr
    assert names in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "unexpected" not in result.stderr.replace("unexpected extra argument", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a usage error left a file behind"


def test_version_prints_the_version(tmp_path):
    result = run(["--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"migrate {__version__}"


def test_the_help_lists_debug_version_and_the_exit_codes(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for word in ("--debug", "--version", "130 interrupted"):
        assert word in result.stdout


def _helps() -> list[tuple[str, list[str]]]:
    found = [("migrate", [])]

    def walk(group, prefix: list[str]) -> None:
        for name, command in sorted(group.commands.items()):
            if getattr(command, "commands", None):
                found.append((" ".join([*prefix, name]), [*prefix, name]))
                walk(command, [*prefix, name])
            else:
                found.append((" ".join([*prefix, name]), [*prefix, name]))

    walk(typer.main.get_command(app), [])
    return found


HELPS = _helps()
PYTHON_TYPES = re.compile(r"<[a-z][^>]*>|\{[a-z_]+\}|list\[|\bPath\b|\b(INTEGER|FLOAT|str|int|float)\b")


def help_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    # In-process: the help is the same text; only the usage errors need the real console script.
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("name", "args"), HELPS, ids=[n for n, _ in HELPS])
def test_help_names_values_never_python_types(capsys, name, args):
    text = help_of(args, capsys)
    usage_and_options = text.split("\n\n", 1)[0] + text.split("Arguments:", 1)[-1]
    assert not PYTHON_TYPES.search(usage_and_options), f"`{name} --help`:\n{text}"


def test_the_help_says_where_the_keys_come_from_and_what_the_exit_codes_mean(capsys):
    export = help_of(["export"], capsys)
    assert "OPENAI_API_KEY" in export and "--base-url" in export.split("Example:")[1]
    for command in ("import", "replay"):
        assert "TARGET_API_KEY" in help_of([command], capsys)
    verify = help_of(["verify"], capsys)
    assert all(f"{code} " in verify for code in ("Exit 0", "1 findings", "2 bad usage", "3 the source"))
    assert "--threads FILE" in help_of(["plan"], capsys)
    assert "--base-url URL" in export and "ARCHIVE" in export.splitlines()[0]
