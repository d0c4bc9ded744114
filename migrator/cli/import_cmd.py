"""`migrate import`: load the sessions into JSONL, an Agents SDK session database, or the Conversations API."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from migrator.archive import Archive
from migrator.cli.app import app, console_err
from migrator.cli.options import ArchiveArg, IncludeUnfinishedOpt, JsonOpt, open_writer, print_json
from migrator.errors import Interrupted, UsageError
from migrator.importers import (
    ConversationsOptions,
    ImportProgress,
    ImportSummary,
    Selection,
    TargetSettings,
    import_agents_sqlite,
    import_conversations,
    import_jsonl,
)

Target = Literal["jsonl", "agents-sqlite", "conversations"]
PLAIN_EVERY = 10.0  # seconds between progress lines on stderr


class _Progress:
    """A line on stderr every few seconds: "conversations: 1200/34000 sessions, 9800 items, 41.2/s"."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.last = quiet, time.monotonic()

    def __call__(self, p: ImportProgress) -> None:
        now = time.monotonic()
        if self.quiet or now - self.last < PLAIN_EVERY:
            return
        self.last = now
        rate = p.done / p.elapsed if p.elapsed else 0.0
        console_err.print(
            f"{p.target}: {p.done}/{p.total} sessions, {p.items} items, {rate:.1f}/s", highlight=False
        )


def _render(s: ImportSummary) -> None:
    where = f" into {s.out}" if s.out else ""
    console_err.print(
        f"{s.target}: {s.imported} sessions imported{where} ({s.items} items), {s.already} already there, "
        f"{len(s.failed)} failed, {len(s.not_found)} not in the archive, in {s.elapsed:.1f}s",
        highlight=False,
    )
    for thread_id, error in s.failed[:20]:
        console_err.print(f"  failed {thread_id}: {error}", markup=False, highlight=False)
    for code, n in sorted(s.notes.items()):
        console_err.print(f"  note {code}: {n}", markup=False, highlight=False)
    if s.unconfirmed:
        console_err.print(
            f"  {len(s.unconfirmed)} thread(s) had a create whose answer never came: the target may hold an unmapped "
            f"extra conversation for {', '.join(s.unconfirmed[:5])}; the mapping names the one to use",
            markup=False,
            highlight=False,
        )
    if s.unfinished:
        listed = ", ".join(s.unfinished[:10]) + (" …" if len(s.unfinished) > 10 else "")
        what = (
            "included" if s.include_unfinished else "left out (--include-unfinished sends their last session)"
        )
        console_err.print(f"  {len(s.unfinished)} thread(s) not done, {what}: {listed}",
                          markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    for label, path in (("agents", s.sidecar), ("mapping", s.mapping_out)):
        if path:
            console_err.print(f"  {label}: {path}", markup=False, highlight=False)


ToOpt = Annotated[Target, typer.Option("--to", help="Where the sessions go.")]
OutOpt = Annotated[
    str | None, typer.Option(help="jsonl: the file (- for stdout); agents-sqlite: the database.")
]
TargetUrlOpt = Annotated[
    str | None,
    typer.Option(envvar="TARGET_BASE_URL", help="conversations: the target API base URL (with /v1)."),
]
MappingOutOpt = Annotated[Path | None, typer.Option(help="Write thread_id -> target id rows to this CSV.")]
ThreadOpt = Annotated[list[str] | None, typer.Option(help="Only this thread (repeatable).")]
SampleOpt = Annotated[int | None, typer.Option(min=1, help="Only a deterministic sample of N sessions.")]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, max=256, help="conversations: threads in flight.")]
MaxRpsOpt = Annotated[float | None, typer.Option(min=0.01, help="conversations: request-rate ceiling.")]


@app.command("import")
def import_(
    archive: ArchiveArg,
    to: ToOpt,
    out: OutOpt = None,
    target_base_url: TargetUrlOpt = None,
    mapping_out: MappingOutOpt = None,
    thread: ThreadOpt = None,
    sample: SampleOpt = None,
    concurrency: ConcurrencyOpt = 8,
    max_rps: MaxRpsOpt = None,
    include_unfinished: IncludeUnfinishedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Import ARCHIVE's sessions: --to jsonl | agents-sqlite (SQLiteSession DB + agents.json) | conversations.

    Conversations imports resume after a kill without creating a conversation twice.

    Example: migrate import support.db --to agents-sqlite --out sessions.db --mapping-out map.csv
    """
    selection = Selection(tuple(thread or ()), sample, include_unfinished)
    _check_out(to, out, json_out)
    progress = _Progress(quiet=out == "-")
    # Conversations keeps its map in the archive: a writer. The files read sessions only: readers,
    # so they work while an export writes (a stale session is derived for the file, not stored).
    opened = open_writer(archive, f"import --to {to}") if to == "conversations" else Archive.open(archive)
    with opened as store:
        conversations = ConversationsOptions(concurrency=concurrency, max_rps=max_rps)
        summary = _import(store, to, out, selection, mapping_out, progress, target_base_url, conversations)
    if summary.interrupted:
        raise Interrupted("stopped cleanly; the map in the archive says how far each thread got",
                          hint=f"resume with: migrate {shlex.join(sys.argv[1:])}")  # fmt: skip
    if json_out:
        print_json(summary.as_dict())
    else:
        _render(summary)
    raise typer.Exit(0 if summary.clean and not summary.unconfirmed else 1)


def _check_out(to: Target, out: str | None, json_out: bool) -> None:
    if to != "conversations" and not out:
        raise UsageError(f"--to {to} needs --out {'FILE (- for stdout)' if to == 'jsonl' else 'DB'}")
    if out == "-" and (to != "jsonl" or json_out):
        raise UsageError("--out - (stdout) is only for --to jsonl without --json")


def _import(
    store: Archive,
    to: Target,
    out: str | None,
    selection: Selection,
    mapping_out: Path | None,
    progress: _Progress,
    target_base_url: str | None,
    options: ConversationsOptions,
) -> ImportSummary:
    if to == "jsonl":
        return import_jsonl(store, out or "-", selection, mapping_out=mapping_out, progress=progress)
    if to == "agents-sqlite":
        return import_agents_sqlite(
            store, Path(out or ""), selection, mapping_out=mapping_out, progress=progress
        )
    settings = _target_settings(target_base_url)
    return import_conversations(
        store, settings, selection, options=options, mapping_out=mapping_out, progress=progress
    )


def _target_settings(base_url: str | None) -> TargetSettings:
    if not base_url:
        raise UsageError("--to conversations needs --target-base-url URL (or TARGET_BASE_URL)")
    api_key = os.environ.get("TARGET_API_KEY")
    if not api_key:
        raise UsageError("--to conversations needs the target's API key", hint="set TARGET_API_KEY")
    return TargetSettings(base_url=base_url, api_key=api_key)
