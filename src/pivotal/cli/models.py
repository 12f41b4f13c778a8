"""`pivotal models list|show|delete`: the checkpoints kept under <data_dir>/models."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, err_console, fail, settings_from

# pivotal.services.train loads torch: imported by the commands only, so `--help` stays fast.
app = typer.Typer(help="Trained model checkpoints: list, show, delete.", no_args_is_help=True)


def _iso_ms(ms: object, unit: str = "m") -> str:
    import numpy as np

    return str(np.datetime64(int(ms), "ms").astype(f"datetime64[{unit}]")) if isinstance(ms, int) else "?"


ShowJsonOption = typer.Option(False, "--json", help="Accepted everywhere; `show` always prints JSON (one line when piped).")


@app.command("list")
def list_models(
    name: str | None = typer.Argument(None, help="Only this model name."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Every kept checkpoint, best first per model name."""
    from pivotal.services.train import checkpoints, list_checkpoints

    settings = settings_from(data_dir, store)
    infos = list_checkpoints(settings, name)
    for problem in checkpoints(settings).problems():  # malformed index entries: one line each, the rest still listed
        err_console.print(f"[yellow]skipped:[/] {problem}")
    if as_json:
        emit_json([asdict(info) for info in infos])
        return
    if not infos:
        console.print("no checkpoints yet: train one with `pivotal train --model cnn --symbol BTC/USDT ...`")
        return
    # Fits 80 columns (also when piped): the reference `models show` takes, and what it was trained on in two lines;
    # the full timestamps and the commit are in `models show` / `--json`.
    table = Table("checkpoint (NAME/ID), created", "type, metric", "trained on")
    for info in infos:
        span = info.data_span
        data = f"{span.get('symbol', '?')} {','.join(span.get('timeframes', []))}"
        period = f"{_iso_ms(span.get('start'), 'D')} → {_iso_ms(span.get('end'), 'D')}"
        table.add_row(
            f"{info.name}/\n{info.id}\n{info.created[:10]}",
            f"{info.model_type}\n{info.metric_name}\n{info.metric:.4f}",
            f"{data}\n{period}",
        )
    console.print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME (its best checkpoint) or NAME/ID."),
    as_json: bool = ShowJsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """All metadata of one checkpoint as JSON."""
    from pivotal.services.train import show_checkpoint

    try:
        info = show_checkpoint(settings_from(data_dir, store), ref)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    emit_json(asdict(info))


@app.command("delete")
def delete(
    ref: str = typer.Argument(..., help="NAME (all its checkpoints) or NAME/ID (one)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Delete checkpoints."""
    from pivotal.services.train import checkpoints_to_delete, delete_checkpoints

    settings = settings_from(data_dir, store)
    try:
        targets = checkpoints_to_delete(settings, ref)
        if not yes and not typer.confirm(f"delete {len(targets)} checkpoint(s) of {ref}?"):
            raise typer.Exit(1)
        deleted = delete_checkpoints(settings, ref)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    console.print(f"deleted {len(deleted)} checkpoint(s): {', '.join(f'{i.name}/{i.id}' for i in deleted)}")
