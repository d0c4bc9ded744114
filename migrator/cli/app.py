"""The typer app and the consoles every command shares."""

from __future__ import annotations

from typing import Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from migrator.errors import Interrupted


class _Commands(TyperGroup):
    def invoke(self, ctx: click.Context) -> Any:
        # typer turns a Ctrl-C inside a command into a bare exit code 130 before `main()` could tell
        # the user how to resume; as `Interrupted` it reaches `main()`, which prints the resume line.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; what was committed is kept") from None


app = typer.Typer(
    cls=_Commands,
    name="migrate",
    help="Move every conversation off the OpenAI Assistants API: export, verify, replay, import.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

# stdout carries results (and exactly one JSON document with --json); everything else goes to stderr.
console = Console()
console_err = Console(stderr=True)


def say(text: str, out: Console = console_err) -> None:
    """Print text as it is (no markup, no highlighting) on one line however long: paths, ids and
    resume commands must stay exactly what a user copies."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)
