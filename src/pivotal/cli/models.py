"""`pivotal models list|show|delete|train-live|promote|rollback`: the checkpoints kept under <data_dir>/models, the
online trainer and which version serves."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, err_console, fail, settings_from

# pivotal.services.train loads torch: imported by the commands only, so `--help` stays fast.
app = typer.Typer(help="Trained model checkpoints: list, show, delete; online training, promote, rollback.", no_args_is_help=True)


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
    """All metadata of one checkpoint as JSON; for a model with a serving version (online training, promote) also
    ``online``: the serving version, staleness per symbol, the last promotion events and trainer metrics."""
    from pivotal.services.online import models_root, online_status
    from pivotal.services.train import show_checkpoint

    settings = settings_from(data_dir, store)
    try:
        info = show_checkpoint(settings, ref)
        online = online_status(models_root(settings), info.name)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    emit_json(asdict(info) if online is None else {**asdict(info), "online": online})


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


@app.command("train-live")
def train_live(
    name: str = typer.Argument(..., help="Model name: training starts from its serving (or best) checkpoint."),
    queue: str = typer.Option(..., "--queue", help="Sample queue: sqlite:PATH (embedded) or redis://HOST:PORT/DB?stream=NAME."),
    batch_size: int = typer.Option(64, "--batch-size", help="Samples per training step."),
    steps: int = typer.Option(2, "--steps", help="Gradient steps per batch."),
    alpha: float = typer.Option(0.05, "--alpha", help="Promotion gate: one-sided paired t-test level."),
    min_samples: int = typer.Option(20, "--min-samples", help="Promotion gate: fewest out-of-sample samples."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many published versions."),
    idle_exit_s: float | None = typer.Option(None, "--idle-exit", help="Stop after this many seconds without samples."),
    tensorboard: bool = typer.Option(True, "--tensorboard/--no-tensorboard", help="Write scalars to <data_dir>/tensorboard."),
    nice: int = typer.Option(10, "--nice", help="Lower this process's CPU priority by this much (serving comes first)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Run the online trainer (its own process): consume samples, fine-tune, publish versions, gate promotions."""
    from pivotal.services.online import models_root
    from pivotal.services.online import train_live as run_trainer
    from pivotal.training.online import OnlineConfig
    from pivotal.training.promotion import GateConfig

    settings = settings_from(data_dir, store)
    try:
        config = OnlineConfig(
            batch_size, steps, gate=GateConfig(alpha, min_samples),
            log_dir=settings.data_dir / "tensorboard" / f"{name}-online" if tensorboard else None,
        )  # fmt: skip
        trainer = run_trainer(models_root(settings), name, queue, config, max_steps, idle_exit_s, nice=nice)
    except (KeyError, ValueError) as exc:
        raise fail(str(exc.args[0] if exc.args else exc)) from None
    console.print(f"online trainer of {name} stopped; newest version {trainer.head.id if trainer.head else '-'}")


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Checkpoint id to serve (see `pivotal models list NAME`)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Serve NAME/VERSION now (manual, no gate); logged in the promotion log."""
    from pivotal.services.online import models_root
    from pivotal.services.online import promote as do_promote

    try:
        event = do_promote(models_root(settings_from(data_dir, store)), name, version)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    console.print(f"{name}: {event.version} serves now (was {event.previous or 'none'})")


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Model name."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Serve the version that served before the current one; logged in the promotion log."""
    from pivotal.core.errors import UserInputError
    from pivotal.services.online import models_root
    from pivotal.services.online import rollback as do_rollback

    try:
        event = do_rollback(models_root(settings_from(data_dir, store)), name)
    except (KeyError, UserInputError) as exc:
        raise fail(str(exc.args[0])) from None
    console.print(f"{name}: rolled back to {event.version} (was {event.previous})")
