"""The `migrate` command line: parse, open resources, call the library, map errors to exit codes.

Errors become exit codes in exactly one place, `main()`. Commands live one module each and stay
short; the work is done by the library they call.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator

import typer

from migrator.cli.app import app as _app
from migrator.cli.app import say
from migrator.errors import BadInputError, ExitCode, Interrupted, MigrateError

# Importing a command module registers its commands on `app`. `main()` imports only the module of the
# command it runs: the others would cost every start-up their libraries (the openai SDK and pydantic
# models, rich's progress bars, the sandbox...), which `verify` or `rebuild` never use. Help, an
# unknown command and `app` itself (see `__getattr__`) get every module, in this order.
_MODULES: dict[str, tuple[str, ...]] = {
    "export": ("export",),
    "stats": ("stats", "inspect"),
    "rebuild": ("rebuild", "merge"),
    "plan": ("plan",),
    "demo": ("demo",),
    "dump": ("dump",),
    "sandbox": ("sandbox",),
    "import_cmd": ("import",),
    "verify": ("verify",),
    "replay": ("replay",),
}
_MODULE_OF = {command: module for module, commands in _MODULES.items() for command in commands}


def _load_commands(args: list[str] | None = None) -> None:
    """Register the command `args` names, or every command when they name none."""
    word = next((a for a in args or () if not a.startswith("-")), None)
    wanted = [_MODULE_OF[word]] if word in _MODULE_OF else list(_MODULES)
    for module in wanted:
        importlib.import_module(f"migrator.cli.{module}")


# Importing migrator.cli.app bound the submodule here as `app`; without it, `from migrator.cli import app`
# reaches `__getattr__`, which registers every command first (the name was the typer app before too).
del globals()["app"]


def __getattr__(name: str) -> object:
    if name == "app":  # the whole command line, as a test or a tool that lists the commands sees it
        _load_commands()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resume_command(args: list[str]) -> str:
    from migrator.cli.export import resume_command as resume

    return resume(args)


__all__ = ["app", "main"]

# The click that typer raises from: typer >= 0.2x ships its own copy (`typer._click`), older ones use
# click itself. Taken from typer's own exception so `except` matches whichever it is; catching the
# `click` package instead never matched, and every usage error read "unexpected" with exit 1.
_CLICK_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _sigterm_as_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a command the way Ctrl-C does (exit 130, resume line)


@contextlib.contextmanager
def _sigterm_handled() -> Iterator[None]:
    """Outside the async phases (which handle SIGTERM themselves) SIGTERM becomes KeyboardInterrupt."""
    try:
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    except ValueError:  # not the main thread (a test calling main() from a worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. `--debug` (or MIGRATE_DEBUG=1) re-raises instead of one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("MIGRATE_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    with _sigterm_handled():
        return _main(args, debug)


def _main(args: list[str], debug: bool) -> int:
    try:
        # Without standalone mode click hands back typer.Exit's code instead of raising it.
        _load_commands(args)
        result = _app(args=args, prog_name="migrate", standalone_mode=False)
    except MigrateError as exc:
        if debug:
            raise
        if getattr(exc, "resumable", False) and exc.hint is None:
            exc.hint = f"resume with: {resume_command(args)}"
        if isinstance(exc, BadInputError):
            for problem in exc.problems:
                say(f"  {problem}")
        label = "stopped" if isinstance(exc, Interrupted) else "error"
        # soft_wrap: a resume command must stay one line a user can copy.
        say(f"{label}: {exc}")
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        return _interrupted(args)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except _CLICK_ERRORS as exc:  # usage errors arrive here with standalone_mode=False
        exc.show()  # click's own message: "Usage: ...", "Try 'migrate X -h' for help.", "Error: ..."
        return int(ExitCode.USAGE)
    except Exception as exc:
        if debug:
            raise
        # Not the user's input (that is exit 2): a fault of ours or of the machine (a full disk...).
        say(f"error: unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)")
        return int(ExitCode.ATTENTION)
    if result == ExitCode.INTERRUPTED:
        # typer turns a Ctrl-C it meets outside the group's invoke (see app.py) into a silent exit
        # code 130; no command of ours returns 130 itself (an Interrupted error is reported above).
        return _interrupted(args)
    return int(result) if isinstance(result, int) else 0


def _interrupted(args: list[str]) -> int:
    say(f"stopped: interrupted; what was committed is kept (resume with: {resume_command(args)})")
    return int(ExitCode.INTERRUPTED)


def run() -> None:
    """The installed `migrate` command (a test's CliRunner calls the app instead)."""
    from migrator.cli import handover

    with handover.allow():
        code = main()
    sys.exit(code)
