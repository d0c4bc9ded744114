"""Option types shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from migrator.cli.app import console

ArchiveArg = Annotated[Path, typer.Argument(help="The archive file (SQLite), as written by `migrate export`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]

SystemRoleOpt = Annotated[
    Literal["system", "developer"],
    typer.Option(help="Role of the run's instructions in each session."),
]
HostedToolsOpt = Annotated[
    Literal["emulate", "drop", "text"],
    typer.Option(help="file_search/code_interpreter calls: emulate as function calls, drop them, or inline as text."),
]
CitationsOpt = Annotated[
    Literal["keep", "strip", "footnote"],
    typer.Option(help="Citation markers such as 【4:0†source】: keep, strip, or turn into footnotes."),
]


def print_json(document: object) -> None:
    """The one JSON document a `--json` command prints on stdout."""
    console.file.write(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")
    console.file.flush()
