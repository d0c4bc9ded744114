"""`migrate demo`: a real export against the embedded sandbox, verified, in under a minute."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from migrator.archive import Archive
from migrator.cli.app import app, console, say
from migrator.cli.export import render_summary
from migrator.cli.progress import ExportProgress
from migrator.export import ExportOptions, ExportSummary, run_export
from migrator.inspect import conversation_lines
from migrator.source import SourceSettings
from migrator.threadlist import ThreadEntry
from migrator.verify import VerifyReport, render_table, verify_archive

if TYPE_CHECKING:  # the sandbox is imported by the demo only: every other command starts without it
    from migrator.sandbox import SandboxServer

SHOWN = ("assistants", "threads_done", "messages", "runs", "run_steps", "vector_stores", "files", "sessions")


def _show(store: Archive, server: SandboxServer, path: Path | None) -> VerifyReport:
    """The archive beside the corpus it came from, the verify verdict, and one migrated thread."""
    corpus = server.corpus_summary()
    counts = store.counts()
    table = Table("what", "archived", "in the source", title="export")
    for key in SHOWN:
        table.add_row(key, str(counts[key]), str(corpus["counts"].get(key.removesuffix("_done"), "")))
    table.add_row("requests", str(server.stats()["total"]), f"minimum {corpus['minimum_requests']['total']}")
    console.print(table)
    report = verify_archive(store)
    render_table(report, console)
    showcase = store.sessions.showcase("dangling_tool_call_closed", 6, 14)
    if showcase:
        record = dict(store.sessions.records([showcase]))[showcase]
        console.print(
            f"\none migrated thread (`migrate inspect {path or 'ARCHIVE'} {showcase}`):", highlight=False
        )
        for line in conversation_lines(orjson.loads(record), None):
            say("  " + line, console)
    return report


@app.command()
def demo(
    threads: Annotated[int, typer.Option(min=1, max=5000, help="Threads in the sandbox corpus.")] = 150,
    archive: Annotated[
        Path | None, typer.Option(help="Keep the archive here (default: a temporary folder, removed after).")
    ] = None,
) -> None:
    """Start the embedded sandbox, export its corpus for real, verify it, and show a migrated thread.

    Example: migrate demo --threads 300 --archive demo.db
    """
    from migrator.sandbox import SandboxConfig, SandboxServer

    with (
        tempfile.TemporaryDirectory(prefix="migrate-demo-") as tmp,
        SandboxServer(SandboxConfig(threads=threads, seed=1)) as server,
    ):
        path = archive or Path(tmp) / "demo.db"
        console.print(f"sandbox: {server.base_url} ({threads} threads); archive: {path}", highlight=False)
        with Archive.create(path, writer="demo") as store:
            render_summary(_export_sandbox(store, server), path)
            report = _show(store, server, archive)  # a temporary archive is not named: it goes
    _next_steps(archive)  # a temporary archive is gone by now: the hint names only what still exists
    raise typer.Exit(int(report.exit_code()))


def _export_sandbox(store: Archive, server: SandboxServer) -> ExportSummary:
    """The real export, as `migrate export` runs it, of the sandbox's corpus (each thread a user)."""
    entries = [ThreadEntry(tid, {"user_id": f"user_{i % 17}"}) for i, tid in enumerate(server.thread_ids())]
    settings = SourceSettings(base_url=server.base_url, api_key="sk-demo-sandbox-not-a-real-key")
    with ExportProgress() as progress:
        return run_export(store, entries, settings, ExportOptions(), progress)


def _next_steps(archive: Path | None) -> None:
    kept = f"the archive stays in {archive}: `migrate stats {archive}`; " if archive else ""
    console.print(
        f"\nnext: {kept}`migrate sandbox serve --ids-out ids.txt` and "
        "`migrate export my.db --threads ids.txt --base-url http://127.0.0.1:8765/v1` to try it by hand"
        + ("" if archive else " (`migrate demo --archive demo.db` keeps the archive)"),
        highlight=False,
        soft_wrap=True,
    )
