"""`migrate export`: fill an archive from a live source or from saved dumps."""

from __future__ import annotations

import contextlib
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from migrator.cli import handover
from migrator.cli.app import app, console, console_err, say
from migrator.cli.options import (
    ApiVersionOpt,
    ArchiveArg,
    AzureEndpointOpt,
    BaseUrlOpt,
    CitationsOpt,
    FoundryEndpointOpt,
    HostedToolsOpt,
    JsonOpt,
    SystemRoleOpt,
    open_writer,
    print_json,
    source_settings,
)
from migrator.cli.progress import DumpProgress, ExportProgress
from migrator.errors import Interrupted, UsageError
from migrator.export import (
    DEFAULT_CONCURRENCY,
    ExportOptions,
    ExportSummary,
    parse_parts,
    require_thread_ids,
)
from migrator.records import RecordsReport, RecordsRequest, export_records
from migrator.sessions import resolve_options
from migrator.source.settings import DEFAULT_MAX_BODY_MB, SourceSettings
from migrator.threadlist import ThreadEntry, ThreadList, parse_shard

MoreDumpPathsArg = Annotated[
    list[Path] | None,
    typer.Argument(hidden=True, help="Further --from-dump paths: --from-dump A B C reads all three."),
]
ThreadsOpt = Annotated[
    str | None,
    typer.Option(
        metavar="FILE", help="Thread ids: a file (txt, CSV or JSONL with thread_id) or - for stdin."
    ),
]
FromDumpOpt = Annotated[
    list[Path] | None,
    typer.Option(metavar="PATH", help="Saved API JSON (files or folders) instead of a live source."),
]
FilesDirOpt = Annotated[
    Path | None, typer.Option(metavar="DIR", help="With --from-dump: file bytes saved by id or name.")
]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, max=512, help="Requests in flight.")]
MaxRpsOpt = Annotated[
    float | None, typer.Option(min=0.01, help="Request-rate ceiling (default: learn it from the source).")
]
RequestTimeoutOpt = Annotated[
    float, typer.Option(min=0.1, help="Seconds before one request counts as timed out (it is retried).")
]
MaxBodyMbOpt = Annotated[
    float,
    typer.Option(
        min=0.001,
        metavar="MB",
        help="Largest answer taken from the source; a bigger one is a failure row naming its object.",
    ),
]
OnlyOpt = Annotated[
    str | None, typer.Option(metavar="PARTS", help="Comma list of assistants,threads,vector-stores,files.")
]
RefreshOpt = Annotated[bool, typer.Option(help="For done threads, fetch only what is newer (delta sync).")]
AllThreadsOpt = Annotated[
    bool,
    typer.Option(
        "--all-threads",
        help="List the threads at the source (Foundry, some look-alikes) instead of --threads; "
        "a rerun lists again and adds new ones.",
    ),
]
ShardOpt = Annotated[
    str | None, typer.Option(metavar="K/N", help="K/N: take the K-th of N deterministic slices of the ids.")
]
FromRecordsOpt = Annotated[
    str | None,
    typer.Option(
        metavar="FILE|URL",
        help="Your own message log instead of a live source: a CSV or JSONL file, or a database URL "
        "(sqlite:///app.db, postgresql://user@host/db, mysql://...).",
    ),
]
QueryOpt = Annotated[
    str | None,
    typer.Option(metavar="SQL", help="With a database --from-records: the SELECT whose rows are the log."),
]
TableOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME", help="With a database --from-records: read this table (instead of --query)."
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="FIELD=COLUMN",
        help="With --from-records: the column that holds FIELD (repeatable), e.g. --map thread_id=conv_id.",
    ),
]
SystemPromptOpt = Annotated[
    str | None, typer.Option(metavar="TEXT", help="With --from-records: the system prompt of every session.")
]
AssistantIdOpt = Annotated[
    str | None,
    typer.Option(
        metavar="ID",
        help="With --from-records: the archived assistant whose instructions, model and tools the rows used.",
    ),
]


def render_summary(summary: ExportSummary, archive: Path) -> None:
    s = summary
    say(
        f"{archive}: threads done {s.threads_done}, failed {s.threads_failed}, missing {s.threads_missing}, "
        f"left {s.threads_left}; this run stored {s.messages} messages, {s.runs} runs, {s.run_steps} steps, "
        f"{s.files} files and built {s.sessions.sessions} sessions with {s.requests} requests "
        f"({s.requests / s.elapsed if s.elapsed else 0:.1f}/s, {s.throttled} answered 429, {s.retries} retries) "
        f"in {s.elapsed:.1f}s"
    )
    if not s.clean:
        console_err.print(
            f"{s.failures} failure(s) recorded: `migrate verify {archive}` lists them; rerun the same command "
            "to retry failed threads",
            highlight=False,
            soft_wrap=True,
        )


def resume_command(argv: list[str]) -> str:
    """The command to run again; ids read from stdin are already in the archive, so drop `--threads -`."""
    args: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--threads" and i + 1 < len(argv) and argv[i + 1] == "-":
            skip = True
            continue
        if arg == "--threads=-":
            continue
        args.append(arg)
    return "migrate " + shlex.join(args)


def _dump_paths(from_dump: list[Path] | None, more: list[Path] | None, threads: str | None) -> list[Path]:
    if more and not from_dump:
        raise UsageError(
            f"unexpected argument {more[0]}", hint="one archive a run; dumps go after --from-dump"
        )
    if threads:
        raise UsageError("--from-dump reads saved JSON; it does not take --threads")
    return [*(from_dump or []), *(more or [])]


def _from_dump(
    archive: Path, paths: list[Path], files_dir: Path | None, flags: dict[str, str | None], json_out: bool
) -> int:
    from migrator.dumps import check_dump_paths, read_dump
    from migrator.sessions import build_sessions, ingest_workers

    check_dump_paths(paths, files_dir)  # before the archive exists: a typo must not leave an empty one
    new = not archive.exists()
    with open_writer(archive, "export", create=True) as store:
        with DumpProgress() as progress:
            ingest = read_dump(store, paths, files_dir, progress=progress)
        report, options = ingest.report, resolve_options(store, **flags)
        console_err.print(f"sessions: building {ingest.to_settle()}", highlight=False)
        sessions = build_sessions(store, options, batches=ingest.settled(), workers=ingest_workers())
        sessions.sessions += build_sessions(store, options).sessions  # stale from an earlier run
    if new and report.empty:
        archive.unlink()  # a dump with nothing to keep leaves no archive behind
    if json_out:
        print_json({**report.as_dict(), "sessions": sessions.sessions})
    else:
        report.render(console_err)
        if not (new and report.empty):
            console_err.print(f"built {sessions.sessions} sessions into {archive}", highlight=False)
    return report.exit_code()


def _from_records(
    archive: Path, request: RecordsRequest, flags: dict[str, str | None], json_out: bool, *others: object
) -> int:
    """`--from-records`; `others` are the other sources' options, which it refuses."""
    if any(others):
        raise UsageError("--from-records reads your own log; it takes neither --threads nor --from-dump")
    # Build in a fresh image of this process (handover.py says why), signals held from the hand-over.
    fresh = handover.hold_signals if handover.possible() else None
    with ExportProgress(enabled=True) as progress:
        outcome = export_records(
            archive,
            request,
            flags,
            lambda p: open_writer(p, "export", create=True),
            progress,
            hand_over=fresh,
        )
    if outcome.lock_fd is not None and outcome.options is not None:
        passed = handover.Handover(
            outcome.lock_fd, str(archive.resolve()), outcome.report.state(), outcome.options, 0.0, "records"
        )
        handover.hand_over(passed)  # returns only when the exec failed: then the build runs here
        return _build_after_records(archive, passed, json_out)
    return _records_done(outcome.report, outcome.sessions, outcome.archive_kept, archive, json_out)


def _build_after_records(archive: Path, passed: handover.Handover, json_out: bool) -> int:
    """The sessions of an ingest of records, in the image it handed over to."""
    from migrator.records import build_records_sessions

    with handover.reopened(archive, passed) as store:
        sessions = build_records_sessions(store, passed.conversion)
    return _records_done(RecordsReport.from_state(passed.summary), sessions, True, archive, json_out)


def _records_done(report: RecordsReport, sessions: int, kept: bool, archive: Path, json_out: bool) -> int:
    if json_out:
        print_json({**report.as_dict(), "sessions": sessions})
    else:
        report.render(console_err)
        if kept:
            console_err.print(f"built {sessions} sessions into {archive}", highlight=False)
    return report.exit_code()


def _live(
    archive: Path,
    threads: str | None,
    options: ExportOptions,
    where: tuple[str | None, str | None, str | None, str | None, float, float],
    conversion: dict[str, str | None],
    json_out: bool,
) -> None:
    """A live source: `where` is (base URL, Azure endpoint, api-version, Foundry endpoint, request
    timeout, largest body in MB)."""
    entries = ThreadList(threads, options.shard) if threads else None  # checked whole, then streamed
    with contextlib.closing(entries) if entries is not None else contextlib.nullcontext():
        base_url, azure_endpoint, api_version, foundry_endpoint, timeout, max_body_mb = where
        settings = source_settings(
            base_url, azure_endpoint, api_version, timeout=timeout, foundry_endpoint=foundry_endpoint
        )
        settings.max_body_mb = max_body_mb
        _fetch(archive, entries, settings, options, conversion, json_out)


def _fetch(
    archive: Path,
    entries: Iterable[ThreadEntry] | None,
    settings: SourceSettings,
    options: ExportOptions,
    conversion: dict[str, str | None],
    json_out: bool,
) -> None:
    from migrator.export import run_export  # the openai SDK: only a live source needs it
    from migrator.export.finish import finish_export

    require_thread_ids(archive, entries, options)
    with open_writer(archive, "export", create=True) as store, ExportProgress(enabled=True) as progress:
        options.conversion = resolve_options(store, **conversion)
        summary = run_export(store, entries, settings, options, progress, build=False)
        started = time.monotonic() - summary.elapsed
        # The sessions are built in a fresh image of this process (handover.py says why), unless
        # there is nothing to build (a rerun): then the exec would only cost its start-up.
        here = not (
            handover.possible() and store.lock and not summary.interrupted and store.work.stale_count()
        )
        if here:
            summary = finish_export(store, summary, options.conversion, progress)
        else:
            handover.hold_signals()  # until the build's image holds the archive (handover.py)
            lock_fd = store.lock.hand_over()
    if here:
        _finish(summary, archive, json_out)
    conversion_used = options.conversion.as_dict()
    passed = handover.Handover(
        lock_fd, str(Path(archive).resolve()), summary.as_dict(), conversion_used, started
    )
    handover.hand_over(passed)  # returns only when the exec failed: then the build runs here
    _build_after_fetch(archive, passed, json_out)


def _build_after_fetch(archive: Path, passed: handover.Handover, json_out: bool) -> NoReturn:
    """The sessions of a live export, in the image its fetch handed over to (signals held)."""
    from migrator.convert import ConversionOptions
    from migrator.export.finish import finish_export

    with handover.reopened(archive, passed) as store, ExportProgress(enabled=True) as progress:
        summary = ExportSummary.from_dict(passed.summary)
        conversion = ConversionOptions.from_dict(passed.conversion)
        summary = finish_export(store, summary, conversion, progress, passed.started)
    _finish(summary, archive, json_out)


def _finish(summary: ExportSummary, archive: Path, json_out: bool) -> NoReturn:
    if summary.interrupted:
        raise Interrupted(
            "interrupted cleanly; every finished thread is saved",
            hint=f"resume with: {resume_command(sys.argv[1:])}",
        )
    if json_out:
        print_json(summary.as_dict())
    else:
        render_summary(summary, archive)
        console.print(f"archive: {archive}", highlight=False)
    raise typer.Exit(0 if summary.clean else 1)


@app.command()
def export(
    archive: ArchiveArg,
    more_dump_paths: MoreDumpPathsArg = None,
    threads: ThreadsOpt = None,
    all_threads: AllThreadsOpt = False,
    from_dump: FromDumpOpt = None,
    files_dir: FilesDirOpt = None,
    from_records: FromRecordsOpt = None,
    query: QueryOpt = None,
    table: TableOpt = None,
    map_fields: MapOpt = None,
    system_prompt: SystemPromptOpt = None,
    assistant_id: AssistantIdOpt = None,
    base_url: BaseUrlOpt = None,
    azure_endpoint: AzureEndpointOpt = None,
    foundry_endpoint: FoundryEndpointOpt = None,
    api_version: ApiVersionOpt = None,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    max_rps: MaxRpsOpt = None,
    request_timeout: RequestTimeoutOpt = 60.0,
    max_body_mb: MaxBodyMbOpt = DEFAULT_MAX_BODY_MB,
    only: OnlyOpt = None,
    refresh: RefreshOpt = False,
    shard: ShardOpt = None,
    system_role: SystemRoleOpt = None,
    hosted_tools: HostedToolsOpt = None,
    citations: CitationsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export assistants, threads, messages, runs, steps, vector stores and files into ARCHIVE.

    The source's key is OPENAI_API_KEY (AZURE_OPENAI_API_KEY with --azure-endpoint). Resumable: run
    the same command again after a kill and it carries on where it stopped.

    Example: migrate export support.db --threads thread_ids.txt --base-url http://assistants.internal:8080/v1 --max-rps 16

    Example: migrate export support.db --foundry-endpoint URL --all-threads
    """
    conversion = {"system_role": system_role, "hosted_tools": hosted_tools, "citations": citations}
    if (passed := handover.take_over(archive)) is not None:  # this image builds what another filled
        if passed.source == "records":
            raise typer.Exit(_build_after_records(archive, passed, json_out))
        _build_after_fetch(archive, passed, json_out)
    if threads and all_threads:
        raise UsageError("give --threads FILE or --all-threads, not both")
    if from_records:  # exits: the log is the only source of the run
        req = RecordsRequest(from_records, query, table, tuple(map_fields or ()), system_prompt, assistant_id)
        raise typer.Exit(
            _from_records(archive, req, conversion, json_out, threads, from_dump, more_dump_paths)
        )
    if from_dump or more_dump_paths:
        paths = _dump_paths(from_dump, more_dump_paths, threads)
        raise typer.Exit(_from_dump(archive, paths, files_dir, conversion, json_out))
    options = ExportOptions(
        parse_parts(only), concurrency, max_rps, refresh, parse_shard(shard), all_threads=all_threads
    )
    where = (base_url, azure_endpoint, api_version, foundry_endpoint, request_timeout, max_body_mb)
    _live(archive, threads, options, where, conversion, json_out)
