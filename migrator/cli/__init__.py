"""The `migrate` command line: parse, open resources, call the library, map errors to exit codes.

Errors become exit codes in exactly one place, `main()`. Commands live one module each and stay
short; the work is done by the library they call.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

import typer

from migrator.cli.app import app, say
from migrator.errors import BadInputError, ExitCode, Interrupted, MigrateError

# Importing the command modules registers them on `app`.
from migrator.cli import export as _export  # noqa: E402,F401  isort: skip
from migrator.cli.export import resume_command  # noqa: E402  isort: skip
from migrator.cli import stats as _stats  # noqa: E402,F401  isort: skip
from migrator.cli import rebuild as _rebuild  # noqa: E402,F401  isort: skip
from migrator.cli import plan as _plan  # noqa: E402,F401  isort: skip
from migrator.cli import demo as _demo  # noqa: E402,F401  isort: skip
from migrator.cli import dump as _dump  # noqa: E402,F401  isort: skip
from migrator.cli import sandbox as _sandbox  # noqa: E402,F401  isort: skip
from migrator.cli import import_cmd as _import_cmd  # noqa: E402,F401  isort: skip
from migrator.cli import verify as _verify  # noqa: E402,F401  isort: skip
from migrator.cli import replay as _replay  # noqa: E402,F401  isort: skip

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
        result = app(args=args, prog_name="migrate", standalone_mode=False)
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
    sys.exit(main())
