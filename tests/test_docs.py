"""The README is part of the contract: every command is documented there and has help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from migrator.cli import app, main

README = (Path(__file__).parent.parent / "README.md").read_text()


def _commands(group, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if getattr(command, "commands", None):  # a group (typer vendors its own click)
            found.extend(_commands(command, full + " "))
        else:
            found.append((full, command))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_cli_has_the_commands_of_the_design():
    names = {name for name, _ in COMMANDS}
    assert names >= {
        "export",
        "rebuild",
        "merge",
        "dump",
        "verify",
        "replay",
        "import",
        "stats",
        "inspect",
        "plan",
        "sandbox serve",
        "sandbox ids",
        "demo",
    }


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_is_in_the_readme_with_help_and_an_example(name, command, capsys):
    assert f"migrate {name}" in README, f"`migrate {name}` is not documented in README.md"
    assert command.help and "Example:" in command.help, f"`migrate {name}` has no help with an example"
    assert main([*name.split(), "--help"]) == 0
    assert "Usage:" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_option_is_in_the_readme_and_has_help(name, command):
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and not param.hidden:
            flag = max(param.opts, key=len)
            if flag in ("--help",):
                continue
            assert param.help, f"`migrate {name} {flag}` has no help"
            assert re.search(re.escape(flag) + r"\b", README), f"`migrate {name} {flag}` is not in README.md"


def test_make_targets_named_in_the_readme_exist():
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    for target in re.findall(r"`make (\w+)`", README):
        assert re.search(rf"^{target}:", makefile, re.M), (
            f"make {target} is in the README but not the Makefile"
        )


def test_every_conversion_warning_code_is_in_the_readme():
    from migrator.convert import WARNING_CODES

    undocumented = [code for code in WARNING_CODES if f"`{code}`" not in README]
    assert not undocumented, f"warning codes missing from the README's table: {undocumented}"
    assert "invalid_unicode" in WARNING_CODES  # a lone surrogate is a warning, never a failed thread
