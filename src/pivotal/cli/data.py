"""`pivotal data ...`: ingest (download, import) and inspection (info, gaps, export)."""

from __future__ import annotations

import typer

from pivotal.cli import data_capture, data_ingest, data_inspect

app = typer.Typer(help="Market data lake: download, import, info, gaps, export.", no_args_is_help=True)
data_ingest.register(app)
data_inspect.register(app)
data_capture.register(app)
