"""`pivotal models list|show|delete`: the checkpoints kept under <data_dir>/models."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, settings_from

# pivotal.services.train loads torch: imported by the commands only, so `--help` stays fast.
app = typer.Typer(help="Trained model checkpoints: list, show, delete.", no_args_is_help=True)


def _iso_ms(ms: object) -> str:
    import numpy as np

    return str(np.datetime64(int(ms), "ms").astype("datetime64[m]")) if isinstance(ms, int) else "?"


@app.command("list")
def list_models(
    name: str | None = typer.Argument(None, help="Only this model name."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Every kept checkpoint, best first per model name."""
    from pivotal.services.train import list_checkpoints

    infos = list_checkpoints(settings_from(data_dir, store), name)
    if not infos:
        console.print("no checkpoints yet: train one with `pivotal train --model cnn --symbol BTC/USDT ...`")
        return
    table = Table("name", "id", "type", "metric", "data", "commit", "created")
    for info in infos:
        span = info.data_span
        period = f"{_iso_ms(span.get('start'))}→{_iso_ms(span.get('end'))}"
        data = f"{span.get('symbol', '?')} {','.join(span.get('timeframes', []))} {period}"
        table.add_row(
            info.name,
            info.id,
            info.model_type,
            f"{info.metric_name}={info.metric:.4f}",
            data,
            (info.commit or "-")[:10],
            info.created[:19],
        )
    console.print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME (its best checkpoint) or NAME/ID."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """All metadata of one checkpoint as JSON."""
    from pivotal.services.train import show_checkpoint

    try:
        info = show_checkpoint(settings_from(data_dir, store), ref)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    typer.echo(json.dumps(asdict(info), indent=2, sort_keys=True))


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
