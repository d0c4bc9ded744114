"""`migrate verify`: the offline CI gate; its exit code is the verdict."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrator.archive import Archive
from migrator.cli.app import app, console, console_err
from migrator.cli.options import (
    ApiVersionOpt,
    ArchiveArg,
    AzureEndpointOpt,
    BaseUrlOpt,
    FoundryEndpointOpt,
    JsonOpt,
    WorkersOpt,
    print_json,
    source_settings,
)
from migrator.errors import UsageError
from migrator.outputs import check_output
from migrator.sessions import default_workers
from migrator.verify import render_table, verify_archive, write_junit

if TYPE_CHECKING:
    from migrator.source.settings import SourceSettings

ContextWindowOpt = Annotated[
    int | None, typer.Option("--context-window", help="Budget every session against N tokens.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", metavar="MODEL", help="Budget against this target model's context window."),
]
JunitOpt = Annotated[
    Path | None,
    typer.Option("--junit", metavar="FILE", help="Also write JUnit XML (one test case per check)."),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 1).")]
AgainstSourceOpt = Annotated[
    bool, typer.Option("--against-source", help="Also re-fetch a sample of done threads and report drift.")
]
SampleOpt = Annotated[
    int | None, typer.Option("--sample", min=1, help="With --against-source: threads to re-fetch [20].")
]


@contextlib.contextmanager
def _phases() -> Iterator[Callable[[str], None]]:
    """A spinner naming the running phase on a terminal; silent in CI logs."""
    if not console_err.is_terminal:
        yield lambda _phase: None
        return
    with console_err.status("verify") as status:
        yield lambda phase: status.update(f"verify: {phase}")


def _source(
    against_source: bool,
    sample: int | None,
    base_url: str | None,
    azure_endpoint: str | None,
    api_version: str | None,
    foundry_endpoint: str | None,
) -> SourceSettings | None:
    """The source --against-source compares with (its key checked now); None without the flag."""
    if not against_source:
        if sample is not None or base_url:
            raise UsageError("--sample and --base-url go with --against-source")
        return None
    return source_settings(base_url, azure_endpoint, api_version, foundry_endpoint=foundry_endpoint)


@app.command()
def verify(
    archive: ArchiveArg,
    context_window: ContextWindowOpt = None,
    model: ModelOpt = None,
    json_out: JsonOpt = False,
    junit: JunitOpt = None,
    strict: StrictOpt = False,
    against_source: AgainstSourceOpt = False,
    sample: SampleOpt = None,
    base_url: BaseUrlOpt = None,
    azure_endpoint: AzureEndpointOpt = None,
    foundry_endpoint: FoundryEndpointOpt = None,
    api_version: ApiVersionOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Check ARCHIVE offline: integrity, completeness, references, sessions, budget.

    Exit 0 clean, 1 findings (warnings too with --strict), 2 bad usage or not an archive,
    3 the source refused or is unreachable (--against-source). It only reads ARCHIVE.

    Example: migrate verify support.db --model gpt-4.1 --junit verify.xml
    """
    if junit is not None:
        check_output(junit, "--junit")
    source = _source(against_source, sample, base_url, azure_endpoint, api_version, foundry_endpoint)
    with Archive.open(archive) as store, _phases() as on_phase:
        report = verify_archive(
            store,
            context_window=context_window,
            model=model,
            strict=strict,
            against_source=source,
            sample=20 if sample is None else sample,
            on_phase=on_phase,
            workers=default_workers(counting=False) if workers is None else workers,
        )
    if junit is not None:
        write_junit(report, junit)
    if json_out:
        print_json(report.to_dict())
    else:
        render_table(report, console)
    raise typer.Exit(int(report.exit_code()))
