"""`pivotal configs ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="configs commands.", no_args_is_help=True)
