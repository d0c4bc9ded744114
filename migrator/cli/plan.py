"""`migrate plan`: requests and nights an export will take."""

from __future__ import annotations

from typing import Annotated

import typer

from migrator.cli.app import app, console
from migrator.cli.options import (
    ApiVersionOpt,
    BaseUrlOpt,
    FoundryEndpointOpt,
    JsonOpt,
    print_json,
    source_settings,
)
from migrator.plan import plan_export
from migrator.threadlist import read_thread_list


@app.command()
def plan(
    threads: Annotated[
        str, typer.Option(metavar="FILE", help="Thread ids: a file (txt, CSV or JSONL) or - for stdin.")
    ],
    max_rps: Annotated[
        float | None, typer.Option(min=0.01, help="The rate you may use, in requests/s.")
    ] = None,
    sample: Annotated[int, typer.Option(min=1, max=1000, help="Threads to fetch (nothing is stored).")] = 20,
    night_hours: Annotated[float, typer.Option(min=0.5, help="Hours the export may run each night.")] = 8.0,
    base_url: BaseUrlOpt = None,
    foundry_endpoint: FoundryEndpointOpt = None,
    api_version: ApiVersionOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Estimate the requests an export needs and the nights it takes at --max-rps, from a small sample.

    Example: migrate plan --threads thread_ids.txt --max-rps 16
    """
    entries = read_thread_list(threads)
    result = plan_export(
        entries,
        source_settings(base_url, None, api_version, foundry_endpoint=foundry_endpoint),
        max_rps=max_rps,
        sample=sample,
        night_hours=night_hours,
    )
    if json_out:
        print_json(result.as_dict())
        return
    console.print(
        f"{result.threads} threads; sample of {result.sampled} needed {result.requests_per_thread} requests and "
        f"mentioned {result.files_per_thread} files a thread; about {result.total_requests} requests in all.",
        highlight=False,
    )
    if result.hours is not None:
        console.print(
            f"At {result.max_rps} req/s: {result.hours} hours, {result.nights} night(s) of {result.night_hours} h.",
            highlight=False,
        )
