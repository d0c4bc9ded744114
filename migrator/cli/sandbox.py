"""`migrate sandbox serve` and `migrate sandbox ids`: the embedded Assistants v2 sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrator.cli.app import MigrateTyper, app, console, console_err, say
from migrator.errors import UsageError

if TYPE_CHECKING:  # the sandbox is imported by its commands only: every other command starts without it
    from migrator.sandbox import SandboxServer

sandbox_app = MigrateTyper(help="The embedded Assistants v2 sandbox server.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")

ThreadsOpt = Annotated[int, typer.Option(help="Threads in the synthetic corpus.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the corpus: same threads and seed, same bytes.")]


def _rate(what: str) -> object:
    return typer.Option(help=f"Fraction 0..1 of {what}.")


PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one.")]
ApiKeyOpt = Annotated[str | None, typer.Option(metavar="KEY", help="Answer 401 to any other bearer key.")]
IdsOutOpt = Annotated[Path | None, typer.Option(help="Write the corpus's thread ids here, one a line.")]
LatencyOpt = Annotated[float, typer.Option(help="Delay added to every /v1 answer, in ms.")]
RpsLimitOpt = Annotated[float | None, typer.Option(help="Requests a second before honest 429s.")]
FaultRateOpt = Annotated[float, _rate("requests answered 500/502/503")]
TimeoutRateOpt = Annotated[float, _rate("requests that hang, then close unanswered")]
HangOpt = Annotated[float, typer.Option(help="How long a timeout fault hangs.")]
DropRateOpt = Annotated[float, _rate("connections closed without a response")]
TruncateRateOpt = Annotated[float, _rate("bodies cut in half after a full Content-Length")]
InvalidJsonRateOpt = Annotated[float, _rate("200 answers whose body is not JSON")]
EmptyPageRateOpt = Annotated[float, _rate("threads whose message list ends in has_more + an empty page")]
RepeatCursorRateOpt = Annotated[float, _rate("threads whose message list repeats its first page")]
GoneOpt = Annotated[bool, typer.Option("--gone", help="410 Gone on every Assistants path.")]
ReplayDriftOpt = Annotated[float, _rate("chat-completion replays that differ from the corpus")]
PoliteClockOpt = Annotated[
    bool,
    typer.Option(
        "--polite-clock",
        help="Give each object its own second (default: a turn's objects share one, as the API's do).",
    ),
]
FlavorOpt = Annotated[
    str,
    typer.Option(
        metavar="openai|foundry|lookalike|sunset",
        help="What to pretend to be: OpenAI's Assistants v2, an Azure AI Foundry project, a self-hosted "
        "look-alike, or OpenAI after its sunset (404 on every Assistants path).",
    ),
]
ProjectOpt = Annotated[str, typer.Option(metavar="NAME", help="Foundry: serve under /api/projects/NAME.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(metavar="TOKEN", help="Foundry: a static bearer token accepted beside minted ones."),
]
TokenTtlOpt = Annotated[
    int | None,
    typer.Option(metavar="N", help="Foundry: every token answers 401 expired after N requests."),
]
MissingRoleOpt = Annotated[
    bool,
    typer.Option("--missing-role", help="Foundry: answer 403 PermissionDenied (no Azure AI User role)."),
]


@sandbox_app.command()
def serve(
    *,
    port: PortOpt = 8765,
    threads: ThreadsOpt = 200,
    seed: SeedOpt = 1,
    api_key: ApiKeyOpt = None,
    ids_out: IdsOutOpt = None,
    latency_ms: LatencyOpt = 0.0,
    rps_limit: RpsLimitOpt = None,
    fault_rate: FaultRateOpt = 0.0,
    timeout_rate: TimeoutRateOpt = 0.0,
    hang_seconds: HangOpt = 3.0,
    drop_rate: DropRateOpt = 0.0,
    truncate_rate: TruncateRateOpt = 0.0,
    invalid_json_rate: InvalidJsonRateOpt = 0.0,
    empty_page_rate: EmptyPageRateOpt = 0.0,
    repeat_cursor_rate: RepeatCursorRateOpt = 0.0,
    gone: GoneOpt = False,
    replay_drift: ReplayDriftOpt = 0.0,
    polite_clock: PoliteClockOpt = False,
    flavor: FlavorOpt = "openai",
    project: ProjectOpt = "sandbox-project",
    token: TokenOpt = None,
    token_ttl_requests: TokenTtlOpt = None,
    missing_role: MissingRoleOpt = False,
) -> None:
    """Serve the sandbox on 127.0.0.1 until Ctrl-C; the base URL goes to stderr.

    Example: migrate sandbox serve --threads 2000 --rps-limit 50 --ids-out ids.txt
    """
    knobs = dict(locals())  # every other parameter is a SandboxConfig field of the same name
    port, ids_out = knobs.pop("port"), knobs.pop("ids_out")
    server = _server(knobs, port)
    if ids_out is not None:
        ids_out.write_text("".join(f"{tid}\n" for tid in server.thread_ids()))
    shown = "" if flavor == "openai" else f", flavor {flavor}"
    _serve(server, f"sandbox serving {server.base_url} ({threads} threads, seed {seed}{shown})")


def _server(knobs: dict[str, object], port: int) -> SandboxServer:
    """The server, or one line: a bad knob, or a port that cannot be had."""
    from migrator.sandbox import SandboxConfig, SandboxServer

    try:
        return SandboxServer(SandboxConfig(**knobs), port=port)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on port {port}: {exc.strerror}", hint="try --port 0") from None


def _serve(server: SandboxServer, line: str) -> None:
    say(line)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console_err.print("sandbox stopped", markup=False)


@sandbox_app.command()
def ids(*, threads: ThreadsOpt = 200, seed: SeedOpt = 1) -> None:
    """Print the thread ids of a corpus, one a line, without serving it.

    Example: migrate sandbox ids --threads 50 --seed 7 > ids.txt
    """
    if threads < 0:
        raise UsageError(f"threads must be an integer >= 0, got {threads}")
    from migrator.sandbox import thread_ids

    console.file.write("".join(f"{tid}\n" for tid in thread_ids(threads, seed)))
    console.file.flush()
