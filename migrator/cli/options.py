"""Option types shared by several commands, defined once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
import typer

from migrator.archive import Archive
from migrator.cli.app import console, say
from migrator.errors import UsageError

if TYPE_CHECKING:
    from migrator.archive.lock import ArchiveLock
    from migrator.source import SourceSettings

ArchiveArg = Annotated[
    Path, typer.Argument(metavar="ARCHIVE", help="The archive file (SQLite), as written by `migrate export`.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]

WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        help="Processes that convert sessions (0: this one). [default: verify one per core beyond the "
        "first, rebuild one per core beyond two; at most 4]",
    ),
]

# Conversion flags default to None, "not given": the archive's recorded options then stay as they are.
SystemRoleOpt = Annotated[
    Literal["system", "developer"] | None,
    typer.Option(
        metavar="system|developer",
        help="Role of the run's instructions in each session. [default: as recorded, else system]",
    ),
]
HostedToolsOpt = Annotated[
    Literal["emulate", "drop", "text"] | None,
    typer.Option(
        metavar="emulate|drop|text",
        help="file_search/code_interpreter calls: emulate as function calls, drop them, or inline as text. "
        "[default: as recorded, else emulate]",
    ),
]
CitationsOpt = Annotated[
    Literal["keep", "strip", "footnote"] | None,
    typer.Option(
        metavar="keep|strip|footnote",
        help="Citation markers such as 【4:0†source】: keep, strip, or turn into footnotes. "
        "[default: as recorded, else footnote]",
    ),
]
IncludeUnfinishedOpt = Annotated[
    bool,
    typer.Option(
        "--include-unfinished",
        help="Also send the last session of threads that are not done (pending, failed, missing); "
        "without it they are left out and listed, and the command exits 1.",
    ),
]


BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        help="Source API base URL, handed to the SDK unchanged (default OPENAI_BASE_URL).",
    ),
]
AzureEndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--azure-endpoint", metavar="URL", envvar="AZURE_OPENAI_ENDPOINT", help="Azure OpenAI endpoint."
    ),
]
ApiVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--api-version",
        metavar="VERSION",
        envvar="OPENAI_API_VERSION",
        help="Azure OpenAI or Foundry API version, sent on every request (Foundry default: 2025-05-01).",
    ),
]
FoundryEndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--foundry-endpoint",
        envvar="FOUNDRY_PROJECT_ENDPOINT",
        metavar="URL",
        help="Azure AI Foundry project endpoint (https://RESOURCE.services.ai.azure.com/api/projects/PROJECT, "
        "no /v1); Entra ID token from FOUNDRY_TOKEN, else azure-identity (az login).",
    ),
]


def open_writer(
    path: Path, command: str, *, create: bool = False, held: ArchiveLock | None = None
) -> Archive:
    """Open ARCHIVE holding its writer lock (a second writer exits 2 naming this one); say so when
    the lock of a process that is gone was taken over. `held`: the lock, already taken."""
    if held is not None:
        store = Archive.open(path, writer=command, held=held)
    else:
        store = (Archive.create if create else Archive.open)(path, writer=command)
    store.on_lock_wait = lambda waited: say(
        f"waiting for the archive: locked by another process ({waited:.0f} s)"
    )
    if store.lock is not None and (store.lock.took_over is not None or store.lock.stray):
        who = store.lock.took_over.describe() if store.lock.took_over else "an unreadable lock file"
        say(f"{path}: took over the writer lock left by {who}, which is no longer running")
    return store


def print_json(document: object) -> None:
    """The one JSON document a `--json` command prints on stdout."""
    console.file.write(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )
    console.file.flush()


def source_settings(
    base_url: str | None,
    azure_endpoint: str | None,
    api_version: str | None,
    *,
    timeout: float | None = None,
    foundry_endpoint: str | None = None,
) -> SourceSettings:
    # The source client and the SDK are imported by the commands that talk to a source, not at start-up.
    import openai

    from migrator.source import SourceSettings

    if foundry_endpoint:
        return _foundry_settings(foundry_endpoint, base_url, azure_endpoint, api_version, timeout)
    settings = SourceSettings(base_url=base_url, azure_endpoint=azure_endpoint, api_version=api_version)
    if timeout is not None:
        settings.timeout = timeout
    try:  # the SDK reads OPENAI_API_KEY itself; ask it now so a missing key is one line, not a traceback
        (openai.AzureOpenAI if azure_endpoint else openai.OpenAI)(
            **({"azure_endpoint": azure_endpoint, "api_version": api_version} if azure_endpoint else {})
        )
    except openai.OpenAIError as exc:
        raise UsageError(f"no API key for the source ({exc})", hint="set OPENAI_API_KEY") from None
    return settings


def _foundry_settings(
    endpoint: str,
    base_url: str | None,
    azure_endpoint: str | None,
    api_version: str | None,
    timeout: float | None,
) -> SourceSettings:
    if base_url or azure_endpoint:
        raise UsageError(
            "--foundry-endpoint is the whole source: leave out --base-url and --azure-endpoint "
            "(and unset AZURE_OPENAI_ENDPOINT)"
        )
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise UsageError(
            f"--foundry-endpoint {endpoint!r} is not a URL",
            hint="give the project endpoint, https://RESOURCE.services.ai.azure.com/api/projects/PROJECT",
        )
    from migrator.source import SourceSettings
    from migrator.source.entra import foundry_tokens

    # FOUNDRY_TOKEN is read here and handed to the SDK per request; it is never stored or printed.
    tokens = foundry_tokens(os.environ.get("FOUNDRY_TOKEN") or None)
    settings = SourceSettings(foundry_endpoint=url, api_version=api_version, tokens=tokens)
    if timeout is not None:
        settings.timeout = timeout
    return settings
