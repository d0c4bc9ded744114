"""`migrate sandbox ...` (filled in by the sandbox work)."""

from __future__ import annotations

import typer

from migrator.cli.app import app

sandbox_app = typer.Typer(help="The embedded Assistants v2 sandbox server.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
