"""The typer app and the consoles every command shares."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Annotated, Any

import typer
import typer.core
from rich.console import Console
from typer.core import TyperGroup

from migrator.errors import Interrupted
from migrator.redact import redact


class _Commands(TyperGroup):
    def invoke(self, ctx: Any) -> Any:  # typer's own click's Context
        # typer turns a Ctrl-C inside a command into a bare exit code 130 before `main()` could tell
        # the user how to resume; as `Interrupted` it reaches `main()`, which prints the resume line.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; what was committed is kept") from None


__all__ = ["MigrateTyper", "app", "console", "console_err", "say"]


def _metavar(param: Any) -> str:
    """What a value is called in help when the option does not say: a user's word, never a Python type."""
    if getattr(param, "is_flag", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice:
        return "|".join(str(c) for c in descriptor.choices or ())
    annotation = getattr(descriptor, "annotation", None)
    kinds = {int: "N", float: "N", Path: "FILE"}
    for kind, word in kinds.items():
        if annotation is kind or kind in getattr(annotation, "__args__", ()):
            return word
    return "TEXT"


class MigrateCommand(typer.core.TyperCommand):
    """A command whose help and usage name values (ARCHIVE, FILE, URL, N), never Python types.

    typer prints `archive <path>`, `{archive}`, `--threads <str>` and `<list[Path]>`; an explicit
    metavar is kept as given, a missing one is derived from the value's kind once, here.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.metavar is None and param.param_type_name == "argument":
                param.metavar = (param.name or "value").upper()
            elif param.metavar is None and param.param_type_name == "option" and not param.is_flag:
                param.metavar = _metavar(param)

    @staticmethod
    def _argument_name(param: Any) -> str:
        return param.metavar + ("..." if param.nargs != 1 else "")

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument" and not param.hidden:
                name = self._argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument" and not param.hidden:
                args.append((self._argument_name(param), param.help or ""))
            elif param.param_type_name == "option" and (record := param.get_help_record(ctx)) is not None:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class MigrateTyper(typer.Typer):
    """A typer app whose commands are `MigrateCommand`s."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", MigrateCommand)
        return super().command(*args, **kwargs)


app = MigrateTyper(
    cls=_Commands,
    name="migrate",
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


def _print_version(value: bool) -> None:
    if value:
        from migrator import __version__

        typer.echo(f"migrate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show the traceback instead of one line (also MIGRATE_DEBUG=1; any position)."
        ),
    ] = False,
) -> None:
    """Move every conversation off the OpenAI Assistants API: export, verify, replay, import.

    Exit codes: 0 ok, 1 needs attention, 2 usage or bad input, 3 source/target refused or
    unreachable, 130 interrupted (the resume command is printed).
    """
    # `--debug` is taken out of the arguments by `main()` wherever it stands; it is declared here for the help.


# stdout carries results (and exactly one JSON document with --json); everything else goes to stderr.
console = Console(file=_Redacted("stdout"))  # type: ignore[arg-type]
console_err = Console(file=_Redacted("stderr"))  # type: ignore[arg-type]


def say(text: str, out: Console = console_err) -> None:
    """Print text as it is (no markup, no highlighting) on one line however long: paths, ids and
    resume commands must stay exactly what a user copies."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)
