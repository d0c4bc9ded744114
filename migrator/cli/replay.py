"""`migrate replay`: send every migrated session's turns to the target and compare the answers."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer

from migrator.archive import Archive
from migrator.cli.app import app, console, console_err
from migrator.cli.options import ArchiveArg, IncludeUnfinishedOpt, JsonOpt, open_writer, print_json
from migrator.errors import UsageError
from migrator.replay import (
    ReplayOptions,
    TargetSettings,
    dry_run,
    ingest_results,
    load_prices,
    recorded_selection,
    render_report,
    replay_live,
    replay_offline,
    write_batches,
)

_Opt = typer.Option
TargetUrlOpt = Annotated[
    str | None,
    _Opt(
        "--target-base-url",
        metavar="URL",
        envvar="TARGET_BASE_URL",
        help="Target chat-completions base URL (with /v1).",
    ),
]
ModelOpt = Annotated[
    str | None, _Opt("--model", metavar="M", help="Target model (overrides each session's model).")
]
TurnsOpt = Annotated[
    Literal["last", "all"] | None,
    _Opt(
        "--turns",
        metavar="last|all",
        help="Replay the last assistant turn of each session, or all of them. [default: last]",
    ),
]
SampleOpt = Annotated[
    int | None, _Opt("--sample", metavar="N", min=1, help="Only N sessions (a fixed spread sample).")
]
ThreadOpt = Annotated[list[str] | None, _Opt("--thread", metavar="ID", help="Only this thread (repeatable).")]
ConcurrencyOpt = Annotated[int, _Opt("--concurrency", metavar="N", min=1, help="Requests in flight at once.")]
RpsOpt = Annotated[
    float | None, _Opt("--max-rps", metavar="R", min=0.001, help="Requests per second, at most.")
]
TpmOpt = Annotated[
    float | None, _Opt("--max-tpm", metavar="T", min=1, help="Tokens per minute, at most (estimated).")
]
ApiOpt = Annotated[
    Literal["chat", "responses"] | None,
    _Opt(
        "--api",
        metavar="chat|responses",
        help="Replay as chat completions or as Responses API requests (file_search bound to the stores "
        "`import --to vector-stores` rebuilt). [default: chat]",
    ),
]
DryRunOpt = Annotated[bool, _Opt("--dry-run", help="Build and validate every request; send nothing.")]
BatchOutOpt = Annotated[
    Path | None, _Opt("--batch-out", metavar="DIR", help="Write Batch API JSONL files to DIR; send nothing.")
]
ResultsOpt = Annotated[
    list[Path] | None,
    _Opt("--batch-results", metavar="FILE", help="Ingest Batch API output/error FILE(s), then report."),
]
MoreResultsArg = Annotated[
    list[Path] | None,
    typer.Argument(metavar="FILE", help="More result files after --batch-results FILE.", show_default=False),
]
ReportOnlyOpt = Annotated[
    bool, _Opt("--report-only", help="Report from the answers in the archive; no network.")
]
MinAcceptOpt = Annotated[
    float, _Opt("--min-accept", metavar="X", min=0, max=1, help="Exit 1 below this acceptance.")
]
MinParityOpt = Annotated[
    float, _Opt("--min-parity", metavar="X", min=0, max=1, help="Exit 1 below this tool-call parity.")
]
PricesOpt = Annotated[
    Path | None, _Opt("--prices", metavar="FILE.json", help="JSON price table overriding the built-in one.")
]


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A status line on a terminal; a plain line every 10 s in logs."""
    if not enabled:
        yield lambda finished, seen: None
        return
    last = [time.monotonic()]
    if console_err.is_terminal:
        with console_err.status("replay") as status:
            yield lambda finished, seen: status.update(f"replay: {finished:,} answered of {seen:,} seen")
        return

    def plain(finished: int, seen: int) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            console_err.print(f"replay: {finished:,} answered of {seen:,} seen", highlight=False)

    yield plain


def _options(store: Archive, results: bool, **given: object) -> ReplayOptions:
    """Flags as given; for --batch-results, what --batch-out chose fills the selection flags not given."""
    recorded = recorded_selection(store) if results else None
    if (
        recorded
        and given["model"] is None
        and given["turns"] is None
        and not given["sample"]
        and not given["threads"]
    ):
        given.update(model=recorded["model"], turns=recorded["turns"], sample=recorded["sample"])
        given["threads"] = tuple(recorded.get("threads") or ())
    if recorded and given["api"] is None:  # the results answer the requests --batch-out wrote
        given["api"] = recorded.get("api") or "chat"
        given["stores_of"] = given["stores_of"] or recorded.get("stores_of")
    given["turns"] = given["turns"] or "last"
    given["api"] = given["api"] or "chat"
    return ReplayOptions(**given)  # type: ignore[arg-type]


@app.command()
def replay(
    archive: ArchiveArg,
    more_results: MoreResultsArg = None,
    target_base_url: TargetUrlOpt = None,
    model: ModelOpt = None,
    turns: TurnsOpt = None,
    sample: SampleOpt = None,
    thread: ThreadOpt = None,
    concurrency: ConcurrencyOpt = 8,
    max_rps: RpsOpt = None,
    max_tpm: TpmOpt = None,
    api: ApiOpt = None,
    dry: DryRunOpt = False,
    batch_out: BatchOutOpt = None,
    batch_results: ResultsOpt = None,
    report_only: ReportOnlyOpt = False,
    min_accept: MinAcceptOpt = 1.0,
    min_parity: MinParityOpt = 0.0,
    prices: PricesOpt = None,
    include_unfinished: IncludeUnfinishedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Send each session's prefix to the target model, compare with the original answers. Exit 1 below threshold.

    --api responses sends Responses API requests (and --batch-out writes /v1/responses lines).
    TARGET_API_KEY holds the target's key. Resumable: answers live in the archive, none is sent twice.

    Example: migrate replay support.db --target-base-url http://localhost:8000/v1 --model gpt-4.1 --sample 500
    """
    results = _results(batch_results, more_results, dry=dry, batch_out=batch_out, report_only=report_only)
    # Every mode but the dry run writes the ledger (and rebuilds stale sessions first): a writer.
    with Archive.open(archive) if dry else open_writer(archive, "replay") as store:
        options = _options(
            store, bool(results), model=model, turns=turns, sample=sample, threads=tuple(thread or ()),
            concurrency=concurrency, max_rps=max_rps, max_tpm=max_tpm, min_accept=min_accept,
            min_parity=min_parity, prices=load_prices(prices), include_unfinished=include_unfinished,
            api=api, stores_of=target_base_url,
        )  # fmt: skip
        outcome = _run(store, options, dry, batch_out, results, report_only, target_base_url)
    _show(outcome, json_out)


def _results(
    batch_results: list[Path] | None,
    more: list[Path] | None,
    *,
    dry: bool,
    batch_out: Path | None,
    report_only: bool,
) -> list[Path]:
    """The result files to ingest; refuses a stray argument and modes that cannot be combined."""
    results = [*(batch_results or ()), *(more or ())]
    if more and not batch_results:
        raise UsageError(f"unexpected argument {more[0]} (result files follow --batch-results)")
    modes = [m for m, on in (("--dry-run", dry), ("--batch-out", batch_out), ("--batch-results", results),
                             ("--report-only", report_only)) if on]  # fmt: skip
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} cannot be combined")
    return results


def _run(
    store: Archive,
    options: ReplayOptions,
    dry: bool,
    batch_out: Path | None,
    results: list[Path],
    report_only: bool,
    target_base_url: str | None,
) -> object:
    if dry:
        return dry_run(store, options)
    if batch_out is not None:
        return write_batches(store, batch_out, options)
    if results:
        return ingest_results(store, results, options)
    if report_only:
        return replay_offline(store, options)
    with _progress(True) as on_progress:
        return replay_live(store, _target(target_base_url), options, on_progress=on_progress)


def _target(base_url: str | None) -> TargetSettings:
    if not base_url:
        raise UsageError("no target: pass --target-base-url URL or set TARGET_BASE_URL")
    key = os.environ.get("TARGET_API_KEY")
    if not key:
        raise UsageError(
            "no API key for the target", hint="set TARGET_API_KEY (any value for a keyless server)"
        )
    return TargetSettings(base_url=base_url, api_key=key)


def _show(outcome: object, json_out: bool) -> None:
    from migrator.replay import BatchSummary, DryRunReport, ReplayReport

    if json_out:
        print_json(outcome.to_dict())  # type: ignore[attr-defined]
    elif isinstance(outcome, ReplayReport):
        render_report(outcome, console)
    elif isinstance(outcome, DryRunReport):
        doc = outcome.to_dict()
        console.print(
            f"dry run: {doc['sessions']:,} sessions, {doc['requests']:,} requests "
            f"({doc['to_send']:,} to send, ~{doc['approx_prompt_tokens']:,} prompt tokens); "
            f"{doc['errors']:,} error(s), {doc['warnings']:,} warning(s); nothing sent",
            highlight=False,
        )
        for f in doc["findings"][:20]:
            console.print(f"  {f['severity']} {f['thread_id']}: {f['code']}: {f['detail']}", markup=False)
    elif isinstance(outcome, BatchSummary):
        for f in outcome.files:
            console.print(f"  {f.name}: {f.lines:,} requests, {f.bytes:,} bytes ({f.model})", markup=False)
        console.print(
            f"wrote {outcome.requests:,} requests in {len(outcome.files)} file(s) to {outcome.directory} "
            f"({outcome.already_answered:,} already answered, left out); then: migrate replay ARCHIVE "
            "--batch-results OUTPUT.jsonl [ERRORS.jsonl]",
            markup=False,
            highlight=False,
        )
    code = getattr(outcome, "exit_code", None)
    raise typer.Exit(int(code()) if code else 0)
