"""`migrate stats` and `migrate inspect`: what an archive holds."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from migrator.archive import Archive
from migrator.cli.app import app, console, say
from migrator.cli.options import ArchiveArg, JsonOpt, print_json
from migrator.errors import UsageError
from migrator.inspect import conversation_lines


@app.command()
def stats(archive: ArchiveArg, json_out: JsonOpt = False) -> None:
    """Count what ARCHIVE holds: objects, thread statuses, files, sessions, warnings.

    Example: migrate stats support.db --json
    """
    with Archive.open(archive) as store:
        counts = store.counts()
    if json_out:
        print_json(counts)
        return
    table = Table("what", "count", title=str(archive))
    for key, value in counts.items():
        if key != "warnings":
            table.add_row(key, str(value))
    for code, n in counts["warnings"].items():
        table.add_row(f"warning: {code}", str(n))
    console.print(table)


@app.command()
def inspect(
    archive: ArchiveArg,
    thread_id: Annotated[str, typer.Argument(help="The thread to show.")],
    json_out: JsonOpt = False,
) -> None:
    """Show one thread as a readable conversation (its session, or its raw messages).

    Example: migrate inspect support.db thread_abc123
    """
    with Archive.open(archive) as store:
        records = dict(store.sessions.records([thread_id]))
        raw = store.raw.thread_objects(thread_id)
    if thread_id not in records and raw is None:
        raise UsageError(
            f"{thread_id}: not in {archive}", hint="`migrate stats` shows what the archive holds"
        )
    session = orjson.loads(records[thread_id]) if thread_id in records else None
    if json_out:
        print_json({"session": session, "raw": raw})
        return
    for line in conversation_lines(session, raw):
        say(line, console)
