"""`migrate rebuild` and `migrate merge`: offline work on archives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrator.cli.app import app, console_err
from migrator.cli.options import (
    ArchiveArg,
    CitationsOpt,
    HostedToolsOpt,
    JsonOpt,
    SystemRoleOpt,
    WorkersOpt,
    open_writer,
    print_json,
)
from migrator.merge import check_sources, merge_archives
from migrator.sessions import build_sessions, default_workers, resolve_options


@app.command()
def rebuild(
    archive: ArchiveArg,
    system_role: SystemRoleOpt = None,
    hosted_tools: HostedToolsOpt = None,
    citations: CitationsOpt = None,
    rebuild_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Rebuild every session, not only the stale ones (after a converter upgrade)."
        ),
    ] = False,
    workers: WorkersOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild the stale sessions of ARCHIVE from its raw objects, offline; every one with --all or
    when a conversion option changes.

    A flag left out keeps the option the archive recorded; a flag given changes it.

    Example: migrate rebuild support.db --system-role developer --citations strip
    """
    with open_writer(archive, "rebuild") as store:
        options = resolve_options(
            store, system_role=system_role, hosted_tools=hosted_tools, citations=citations
        )
        summary = build_sessions(
            store, options, rebuild_all=rebuild_all, workers=default_workers() if workers is None else workers
        )
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
    check_sources(archive, sources)  # before ARCHIVE is created: a typo must not leave an empty one
    with open_writer(archive, "merge", create=True) as store:
        summary = merge_archives(store, sources)
    if json_out:
        print_json(
            {"added": summary.added, "sessions_built": summary.sessions_built, "counts": summary.counts}
        )
    else:
        console_err.print(
            f"merged {len(sources)} archive(s) into {archive}: "
            + ", ".join(f"{n} {t}" for t, n in summary.added.items() if n)
            + f"; {summary.counts['threads_done']} threads done, {summary.sessions_built} sessions built",
            highlight=False,
        )
