"""Option types shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import openai
import orjson
import typer

from migrator.cli.app import console
from migrator.errors import UsageError
from migrator.source import SourceSettings

ArchiveArg = Annotated[
    Path, typer.Argument(help="The archive file (SQLite), as written by `migrate export`.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]

SystemRoleOpt = Annotated[
    Literal["system", "developer"],
    typer.Option(help="Role of the run's instructions in each session."),
]
HostedToolsOpt = Annotated[
    Literal["emulate", "drop", "text"],
    typer.Option(
        help="file_search/code_interpreter calls: emulate as function calls, drop them, or inline as text."
    ),
]
CitationsOpt = Annotated[
    Literal["keep", "strip", "footnote"],
    typer.Option(help="Citation markers such as 【4:0†source】: keep, strip, or turn into footnotes."),
]


BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="Source API base URL, handed to the SDK unchanged (default OPENAI_BASE_URL)."
    ),
]
AzureEndpointOpt = Annotated[
    str | None,
    typer.Option("--azure-endpoint", envvar="AZURE_OPENAI_ENDPOINT", help="Azure OpenAI endpoint."),
]
ApiVersionOpt = Annotated[
    str | None, typer.Option("--api-version", envvar="OPENAI_API_VERSION", help="Azure API version.")
]


def print_json(document: object) -> None:
    """The one JSON document a `--json` command prints on stdout."""
    console.file.write(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
    console.file.flush()


def source_settings(
    base_url: str | None, azure_endpoint: str | None, api_version: str | None
) -> SourceSettings:
    settings = SourceSettings(base_url=base_url, azure_endpoint=azure_endpoint, api_version=api_version)
    try:  # the SDK reads OPENAI_API_KEY itself; ask it now so a missing key is one line, not a traceback
        (openai.AzureOpenAI if azure_endpoint else openai.OpenAI)(
            **({"azure_endpoint": azure_endpoint, "api_version": api_version} if azure_endpoint else {})
        )
    except openai.OpenAIError as exc:
        raise UsageError(f"no API key for the source ({exc})", hint="set OPENAI_API_KEY") from None
    return settings
