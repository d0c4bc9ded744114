"""`migrate rebuild` and `migrate merge`: offline work on archives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrator.archive import Archive
from migrator.cli.app import app, console_err
from migrator.cli.options import (
    ArchiveArg,
    CitationsOpt,
    HostedToolsOpt,
    JsonOpt,
    SystemRoleOpt,
    open_writer,
    print_json,
)
from migrator.errors import UsageError
from migrator.sessions import build_sessions, recorded_options, resolve_options


@app.command()
def rebuild(
    archive: ArchiveArg,
    system_role: SystemRoleOpt = None,
    hosted_tools: HostedToolsOpt = None,
    citations: CitationsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild every session of ARCHIVE from its raw objects, offline (new converter or new options).

    A flag left out keeps the option the archive recorded; a flag given changes it.

    Example: migrate rebuild support.db --system-role developer --citations strip
    """
    with open_writer(archive, "rebuild") as store:
        options = resolve_options(
            store, system_role=system_role, hosted_tools=hosted_tools, citations=citations
        )
        summary = build_sessions(store, options, rebuild_all=True)
    if json_out:
        print_json({**summary.__dict__, "options": options.as_dict()})
    else:
        console_err.print(
            f"rebuilt {summary.sessions} sessions ({summary.messages} messages, {summary.warnings} warnings)",
            highlight=False,
        )


@app.command()
def merge(
    archive: ArchiveArg,
    sources: Annotated[list[Path], typer.Argument(help="Shard archives to fold into ARCHIVE.")],
    json_out: JsonOpt = False,
) -> None:
    """Fold shard archives (from `export --shard K/N`) into ARCHIVE; idempotent, creates ARCHIVE if needed.

    Example: migrate merge all.db shard-1.db shard-2.db shard-3.db
    """
    for source in sources:
        if source.resolve() == archive.resolve():
            raise UsageError(f"{source}: cannot merge an archive into itself")
        Archive.check(source)  # refuse anything that is not an archive before creating ARCHIVE
    added: dict[str, int] = {}
    with open_writer(archive, "merge", create=True) as store:
        for source in sources:
            for table, n in store.merge_from(source).items():
                added[table] = added.get(table, 0) + n
        sessions = build_sessions(store, recorded_options(store))
        counts = store.counts()
    if json_out:
        print_json({"added": added, "sessions_built": sessions.sessions, "counts": counts})
    else:
        console_err.print(
            f"merged {len(sources)} archive(s) into {archive}: "
            + ", ".join(f"{n} {t}" for t, n in added.items() if n)
            + f"; {counts['threads_done']} threads done, {sessions.sessions} sessions built",
            highlight=False,
        )
