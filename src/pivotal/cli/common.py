"""Shared CLI plumbing: settings with overrides, opening the configured store, time parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pivotal.config import Settings

console = Console()
err_console = Console(stderr=True)

DataDirOption = typer.Option(None, "--data-dir", help="Data directory (default: PIVOTAL_DATA_DIR or ~/.local/share/pivotal).")
StoreOption = typer.Option(None, "--store", help="Store backend: duckdb (default) or postgres.")


def settings_from(data_dir: Path | None = None, store: str | None = None) -> Settings:
    from pivotal.config import load_settings  # pydantic-settings: only for commands that run, not for --help

    return load_settings(data_dir=data_dir, store=store)


def parse_time(value: str | None) -> int | None:
    """Parse '2024-01-01', '2024-01-01T12:00' (UTC) or epoch milliseconds into epoch ms."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"cannot parse time {value!r}; use YYYY-MM-DD[THH:MM[:SS]] (UTC) or epoch ms") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)
