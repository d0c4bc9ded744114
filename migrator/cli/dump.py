"""`migrate dump ARCHIVE DIR`: write the archive out as saved API JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrator.archive import Archive
from migrator.cli.app import app, console, console_err
from migrator.cli.options import ArchiveArg, JsonOpt, print_json
from migrator.dumps import write_dump


@app.command()
def dump(
    archive: ArchiveArg,
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A new (or empty) folder to write into.")],
    json_out: JsonOpt = False,
) -> None:
    """Write everything ARCHIVE holds into DIR as saved API JSON.

    Assistants, threads with their messages, runs and steps as list pages, vector stores, file
    objects, file bytes and parsed texts: `migrate export NEW --from-dump DIR` reads it back with
    nothing else and gives the same archive and sessions.

    Example: migrate dump support.db support-dump/
    """
    with Archive.open(archive) as store:
        summary = write_dump(store, directory)
    if json_out:
        print_json(summary.as_dict())
    else:
        written = ", ".join(f"{k} {v}" for k, v in sorted(summary.written.items()))
        console_err.print(f"wrote {written}", highlight=False, markup=False)
        if summary.threads_without_rows:
            left = ", ".join(f"{k} {v}" for k, v in sorted(summary.threads_without_rows.items()))
            console_err.print(f"not in the dump: threads without any stored object ({left})", highlight=False)
        for problem in summary.problems:
            console_err.print(f"  problem: {problem}", highlight=False, markup=False)
        console.print(f"dump: {directory}", highlight=False, markup=False)
    raise typer.Exit(summary.exit_code())
