"""Shared CLI plumbing: settings with overrides, opening the configured store, time parsing."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pivotal.config import Settings

console = Console()
err_console = Console(stderr=True)

# Every picture and report a command writes goes under ./pivotal-out/<command>/ unless --out names another folder
# (documented in the README; /pivotal-out/ is git-ignored).
OUT_ROOT = Path("pivotal-out")


class StoreBackend(StrEnum):
    """The market store backends (``pivotal.data.backends``); an enum so `--help` lists them."""

    duckdb = "duckdb"
    postgres = "postgres"


DataDirOption = typer.Option(None, "--data-dir", help="Data directory (default: PIVOTAL_DATA_DIR or ~/.local/share/pivotal).")


def _check_store(value: str | None) -> str | None:
    """A usage error naming the choices, before any settings are read (``--store mysql``)."""
    if value is not None and value not in StoreBackend.__members__:
        raise typer.BadParameter(f"{value!r} is not a store backend; choose one of: {', '.join(StoreBackend)}")
    return value


StoreOption = typer.Option(
    None,
    "--store",
    metavar="[duckdb|postgres]",
    help="Store backend: duckdb or postgres (default: PIVOTAL_STORE, else duckdb).",
    callback=_check_store,
)
JsonOption = typer.Option(False, "--json", help="Print JSON (indented on a terminal, one line when piped).")


def out_dir(command: str, out: Path | None) -> Path:
    """The folder a command writes into: ``--out`` or ``./pivotal-out/<command>``; created."""
    folder = out if out is not None else OUT_ROOT / command
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create output folder {folder}: {exc.strerror}; pass --out to write elsewhere") from None
    if not folder.is_dir():
        raise fail(f"--out {folder}: not a folder")
    return folder


def _finite(value: Any) -> Any:
    """JSON has no inf/NaN: they become null (an infinite profit factor, an undefined ratio)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _finite(value.item())
    return value


def emit_json(value: Any) -> None:
    """JSON on stdout: indented for a person at a terminal, one line for a pipe (jq, a file, another program)."""
    pretty = sys.stdout.isatty()
    typer.echo(json.dumps(_finite(value), indent=2 if pretty else None, default=str, allow_nan=False))


def settings_from(data_dir: Path | None = None, store: str | None = None) -> Settings:
    from pivotal.config import load_settings  # pydantic-settings: only for commands that run, not for --help
    from pivotal.core.errors import UserInputError

    try:
        return load_settings(data_dir=data_dir, store=store)
    except UserInputError as exc:  # a malformed config.toml, an unknown --store: one line, no traceback
        raise fail(str(exc)) from None


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
    # soft_wrap: one error is one line however narrow the terminal or pipe (a reader may grep it, a log keeps it whole);
    # markup off for the message, which may hold brackets from file contents.
    err_console.print("[bold red]error:[/] ", end="")
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def one_line_error(exc: BaseException) -> str | None:
    """The one-line message for an error a user can cause or fix (None: a bug, keep the traceback).

    ``PivotalError`` carries its message; settings that fail validation (``PIVOTAL_STORE=mysql``) and a PostgreSQL
    connection lost mid-command are phrased here, without importing pydantic or psycopg at start-up."""
    from pivotal.core.errors import PivotalError

    if isinstance(exc, PivotalError):
        return str(exc)
    kind = f"{type(exc).__module__}.{type(exc).__name__}"
    if kind.startswith("pydantic") and hasattr(exc, "errors"):
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first.get("loc", ())) or "?"
        return (
            f"invalid setting {name}={first.get('input')!r}: {first.get('msg')}; fix: correct PIVOTAL_{name.upper()}, "
            "the option, or the config file"
        )
    if kind.startswith("psycopg") and type(exc).__name__ == "OperationalError":
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"lost the PostgreSQL connection: {reason}; fix: check the server, then run the command again"
    return None


class OneLineErrors(typer.core.TyperGroup):
    """The top-level command group: every error a user can act on ends as one line on stderr and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = one_line_error(exc)
            if message is None:
                raise
            raise fail(message) from None
