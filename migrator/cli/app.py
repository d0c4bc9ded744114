"""The typer app and the consoles every command shares."""

from __future__ import annotations

import sys
from typing import IO, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from migrator.errors import Interrupted
from migrator.redact import redact


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


class _Redacted:
    """The process's stdout or stderr (looked up at each write, as rich does), with every text passing
    the one redaction step: whatever a command prints, a key a server echoed never reaches a terminal
    or a CI log."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def stream(self) -> IO[str]:
        return getattr(sys, self.name)

    def write(self, text: str) -> int:
        return self.stream.write(redact(text) or "")

    def __getattr__(self, attr: str) -> Any:  # flush, isatty, fileno, encoding...
        return getattr(self.stream, attr)


# stdout carries results (and exactly one JSON document with --json); everything else goes to stderr.
console = Console(file=_Redacted("stdout"))  # type: ignore[arg-type]
console_err = Console(file=_Redacted("stderr"))  # type: ignore[arg-type]


def say(text: str, out: Console = console_err) -> None:
    """Print text as it is (no markup, no highlighting) on one line however long: paths, ids and
    resume commands must stay exactly what a user copies."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)
