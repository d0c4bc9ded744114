"""`migrate import`: load the sessions into JSONL, an Agents SDK session database, or the Conversations API;
or rebuild the archive's vector stores (files included) on a target."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from migrator.archive import Archive
from migrator.cli.app import app, console_err
from migrator.cli.options import ArchiveArg, IncludeUnfinishedOpt, JsonOpt, open_writer, print_json
from migrator.errors import Interrupted, UsageError
from migrator.importers import ImportProgress, ImportSummary, Selection, import_agents_sqlite, import_jsonl
from migrator.outputs import check_output

if TYPE_CHECKING:  # the remote targets are imported by the runs that use them (the openai SDK)
    from migrator.importers import TargetSettings, VectorProgress, VectorStoresSummary

Target = Literal["jsonl", "agents-sqlite", "conversations", "vector-stores"]
REMOTE = ("conversations", "vector-stores")
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
        soft_wrap=True,
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


ToOpt = Annotated[
    Target, typer.Option("--to", help="Where the sessions (or, vector-stores, the knowledge base) go.")
]
OutOpt = Annotated[
    str | None,
    typer.Option(metavar="FILE", help="jsonl: the file (- for stdout); agents-sqlite: the database."),
]
TargetUrlOpt = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        envvar="TARGET_BASE_URL",
        help="conversations, vector-stores: the target API base URL (with /v1); agents-sqlite: whose "
        "rebuilt vector stores file_search binds (when several).",
    ),
]
MappingOutOpt = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="Write source id -> target id rows to this CSV FILE (mode 0600)."),
]
ThreadOpt = Annotated[list[str] | None, typer.Option(metavar="ID", help="Only this thread (repeatable).")]
SampleOpt = Annotated[int | None, typer.Option(min=1, help="Only a deterministic sample of N sessions.")]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(min=1, max=256, help="conversations: threads in flight; vector-stores: creates in flight."),
]
MaxRpsOpt = Annotated[
    float | None, typer.Option(min=0.01, help="conversations, vector-stores: request-rate ceiling.")
]
PollSecondsOpt = Annotated[
    float,
    typer.Option(min=0, help="vector-stores: wait at most N seconds for the files' ingestion to end."),
]


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
    poll_seconds: PollSecondsOpt = 600.0,
    json_out: JsonOpt = False,
) -> None:
    """Import ARCHIVE's sessions: --to jsonl | agents-sqlite (SQLiteSession DB + agents.json) | conversations;
    or --to vector-stores: its files uploaded and vector stores recreated on the target.

    Conversations and vector-stores imports take the target's key from TARGET_API_KEY and resume
    after a kill without creating anything twice.

    Example: migrate import support.db --to agents-sqlite --out sessions.db --mapping-out map.csv
    """
    if to == "vector-stores":
        if thread or sample or out:
            raise UsageError(
                "--to vector-stores rebuilds every vector store: drop --thread, --sample and --out"
            )
        _vector_stores(archive, target_base_url, (concurrency, max_rps, poll_seconds), mapping_out, json_out)
    selection = Selection(tuple(thread or ()), sample, include_unfinished)
    summary = _sessions(
        archive, to, out, selection, mapping_out, target_base_url, (concurrency, max_rps), json_out
    )
    if summary.interrupted:
        raise Interrupted("interrupted cleanly; the map in the archive says how far each thread got",
                          hint=f"resume with: migrate {shlex.join(sys.argv[1:])}")  # fmt: skip
    if json_out:
        print_json(summary.as_dict())
    else:
        _render(summary)
    raise typer.Exit(0 if summary.clean and not summary.unconfirmed else 1)


def _sessions(
    archive: Path,
    to: Target,
    out: str | None,
    selection: Selection,
    mapping_out: Path | None,
    target_base_url: str | None,
    rate: tuple[int, float | None],
    json_out: bool,
) -> ImportSummary:
    _check_out(to, out, json_out, mapping_out)
    progress = _Progress(quiet=out == "-")
    # Conversations keeps its map in the archive: a writer. The files read sessions only: readers,
    # so they work while an export writes (a stale session is derived for the file, not stored).
    opened = open_writer(archive, f"import --to {to}") if to in REMOTE else Archive.open(archive)
    with opened as store:
        return _import(store, to, out, selection, mapping_out, progress, target_base_url, rate)


def _check_out(to: Target, out: str | None, json_out: bool, mapping_out: Path | None) -> None:
    if to not in REMOTE and not out:
        raise UsageError(f"--to {to} needs --out {'FILE (- for stdout)' if to == 'jsonl' else 'DB'}")
    if out == "-" and (to != "jsonl" or json_out):
        raise UsageError("--out - (stdout) is only for --to jsonl without --json")
    if out and out != "-":
        check_output(Path(out), "--out")
    if mapping_out is not None:
        check_output(mapping_out, "--mapping-out")


def _import(
    store: Archive,
    to: Target,
    out: str | None,
    selection: Selection,
    mapping_out: Path | None,
    progress: _Progress,
    target_base_url: str | None,
    rate: tuple[int, float | None],
) -> ImportSummary:
    if to == "jsonl":
        return import_jsonl(store, out or "-", selection, mapping_out=mapping_out, progress=progress)
    if to == "agents-sqlite":
        return import_agents_sqlite(
            store,
            Path(out or ""),
            selection,
            mapping_out=mapping_out,
            progress=progress,
            stores_of=target_base_url,
        )
    from migrator.importers import ConversationsOptions, import_conversations

    settings = _target_settings(to, target_base_url)
    options = ConversationsOptions(concurrency=rate[0], max_rps=rate[1])
    return import_conversations(
        store, settings, selection, options=options, mapping_out=mapping_out, progress=progress
    )


def _target_settings(to: str, base_url: str | None) -> TargetSettings:
    if not base_url:
        raise UsageError(f"--to {to} needs --target-base-url URL (or TARGET_BASE_URL)")
    api_key = os.environ.get("TARGET_API_KEY")
    if not api_key:
        raise UsageError(f"--to {to} needs the target's API key", hint="set TARGET_API_KEY")
    from migrator.importers import TargetSettings

    return TargetSettings(base_url=base_url, api_key=api_key)


def _vector_stores(
    archive: Path,
    target_base_url: str | None,
    rate: tuple[int, float | None, float],
    mapping_out: Path | None,
    json_out: bool,
) -> None:
    """`rate`: (creates in flight, request-rate ceiling, seconds to wait for ingestion)."""
    from migrator.importers import VectorStoresOptions, import_vector_stores

    settings = _target_settings("vector-stores", target_base_url)
    options = VectorStoresOptions(concurrency=min(rate[0], 16), max_rps=rate[1], poll_seconds=rate[2])
    with open_writer(archive, "import --to vector-stores") as store:
        summary = import_vector_stores(
            store, settings, options=options, mapping_out=mapping_out, progress=_VectorProgress()
        )
    if summary.interrupted:
        raise Interrupted("stopped cleanly; the map in the archive says what was created",
                          hint=f"resume with: migrate {shlex.join(sys.argv[1:])}")  # fmt: skip
    if json_out:
        print_json(summary.as_dict())
    else:
        _render_vector(summary)
    raise typer.Exit(0 if summary.clean else 1)


class _VectorProgress:
    """A line on stderr every few seconds: "vector-stores attachments: 120/151"."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, p: VectorProgress) -> None:
        now = time.monotonic()
        if now - self.last < PLAIN_EVERY:
            return
        self.last = now
        console_err.print(f"vector-stores {p.phase}: {p.done}/{p.total}, {p.elapsed:.0f}s", highlight=False)


def _render_vector(s: VectorStoresSummary) -> None:
    def say(text: str) -> None:
        console_err.print(text, markup=False, highlight=False, soft_wrap=True)

    def counts(table: dict[str, int]) -> str:
        return ", ".join(f"{n} {kind}s" for kind, n in sorted(table.items())) or "nothing"

    say(
        f"vector-stores: {s.stores} stores, {s.files} files, {s.attachments} attachments in the archive -> {s.out}"
    )
    say(f"  created {counts(s.created)}; already there {counts(s.already)}; found after a lost answer "
        f"{counts(s.adopted)}; in {s.elapsed:.1f}s")  # fmt: skip
    sent = ", ".join(f"{n} {how}" for how, n in sorted(s.content.items()))
    if sent:
        say(f"  files sent as: {sent}")
    say("  ingestion: " + (", ".join(f"{n} {status}" for status, n in sorted(s.ingestion.items())) or "none"))
    if s.ingestion.get("in_progress"):
        say("  files still ingesting: run the same command again to go on polling (nothing is created again)")
    for kind, source_id, error in s.failed[:50]:
        say(f"  failed {kind} {source_id}: {error}")
    for file_id, why in s.skipped[:50]:
        say(f"  skipped file {file_id}: {why}")
    for code, n in sorted(s.notes.items()):
        say(f"  note {code}: {n}")
    if s.unconfirmed:
        say(f"  {len(s.unconfirmed)} create(s) had no answer and were looked up on the target before anything was "
            f"sent again: {', '.join(s.unconfirmed[:5])}")  # fmt: skip
    if s.mapping_out:
        say(f"  mapping: {s.mapping_out}")
