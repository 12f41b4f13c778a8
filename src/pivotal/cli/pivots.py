"""`pivotal pivots ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="pivots commands.", no_args_is_help=True)
