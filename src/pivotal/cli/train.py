"""`pivotal train` (walk-forward training + honest evaluation report) and `pivotal predict` (one ModelOutput as JSON)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, parse_time, settings_from

# Training, models and features load torch, optuna and pandas: imported by the commands, so `--help` stays fast.
if TYPE_CHECKING:
    from pivotal.training.checkpoints import CheckpointManager


class ModelType(StrEnum):
    cnn = "cnn"
    transformer = "transformer"
    dqn = "dqn"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


def checkpoint_manager(data_dir: Path | None, store: str | None, keep: int = 5) -> CheckpointManager:
    from pivotal.training.checkpoints import CheckpointManager

    return CheckpointManager(settings_from(data_dir, store).data_dir / "models", keep=keep)


def train(
    model: ModelType = typer.Option(..., "--model", "-m", help="cnn, transformer or dqn (the DQN trains its CNN per fold)."),
    exchange: str = typer.Option("binance", "--exchange", "-e"),
    symbol: str = typer.Option(..., "--symbol", "-s", help="e.g. BTC/USDT"),
    timeframes: str = typer.Option("1h,4h,1d", "--timeframes", "-t", help="Windows; the first is the base (labels, steps)."),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Parquet/CSV of base bars, not the store."),
    name: str = typer.Option("", "--name", help="Checkpoint name (default: the model type)."),
    epochs: int = typer.Option(5, "--epochs", min=1),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    window: int = typer.Option(100, "--window", min=100, help="Bars per window (validation needs >= 100)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Sample every N base bars."),
    preset: str = typer.Option("", "--preset", help="cnn: small|medium; transformer: 5m|8m|12m."),
    walk_forward: str = typer.Option("365/7/180", "--walk-forward", help="TRAIN/GAP/TEST or TRAIN/GAP/TEST/STEP, in days."),
    folds: int = typer.Option(3, "--folds", min=1, help="Use the most recent N folds; the last is the holdout."),
    episodes: int = typer.Option(2, "--episodes", min=1, help="DQN episodes per fold."),
    fee: float = typer.Option(0.001, "--fee", min=0.0, help="DQN: fee per unit of position change."),
    slippage: float = typer.Option(0.0005, "--slippage", min=0.0, help="DQN: slippage per unit of position change."),
    device: Device = typer.Option(Device.cpu, "--device"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads."),
    seed: int = typer.Option(0, "--seed"),
    keep: int = typer.Option(5, "--keep", min=1, help="Checkpoints kept per model name (best by validation metric)."),
    report_dir: Path | None = typer.Option(None, "--report", help="Report folder (default: <data_dir>/reports/<name>)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Train on walk-forward folds, compare with baselines out of sample, write the report, keep the best checkpoints."""
    from pivotal.data.backends import open_store
    from pivotal.core.timeframes import parse_timeframes
    from pivotal.optimize.walkforward import WalkForwardSpec
    from pivotal.training.pipeline import RunSpec, finish, load_series, read_candles_file, run

    try:
        spec = RunSpec(
            model_type=model.value,
            exchange=exchange,
            symbol=symbol,
            timeframes=tuple(parse_timeframes(timeframes)),
            name=name,
            window=window,
            stride=stride,
            epochs=epochs,
            batch_size=batch_size,
            device=device.value,
            seed=seed,
            preset=preset,
            walk_forward=WalkForwardSpec.parse(walk_forward),
            max_folds=folds,
            episodes=episodes,
            fee=fee,
            slippage=slippage,
            threads=threads,
        )
        settings = settings_from(data_dir, store)
        base = read_candles_file(input_file, exchange, symbol, spec.timeframes[0]) if input_file else None
        market = None if input_file else open_store(settings)
        try:
            candles = load_series(market, spec, base)
        finally:
            if market is not None:
                market.close()
        out = report_dir or settings.data_dir / "reports" / spec.model_name
        result = run(spec, candles, log_dir=settings.data_dir / "tensorboard" / spec.model_name)
        result = finish(result, spec, checkpoint_manager(data_dir, store, keep), out)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise fail(str(exc)) from None
    for fold in result.folds:
        last = fold.history[-1] if fold.history else {}
        console.print(
            f"fold {fold.number}{' (holdout)' if fold.holdout else ''}: {fold.n_train} train / {fold.n_test} test samples"
            + (f", final train loss {last['train_loss']:.4f}, val loss {last['val_loss']:.4f}" if last else "")
        )
    console.print(f"checkpoint {spec.model_name}: {result.metric_name} = {result.metric:.4f}")
    console.print(f"report: {result.report}")
    console.print(f"TensorBoard: tensorboard --logdir {settings.data_dir / 'tensorboard'}")


def predict(
    model: str = typer.Option(..., "--model", "-m", help="Checkpoint name (its best checkpoint) or NAME/ID."),
    symbol: str = typer.Option(..., "--symbol", "-s"),
    at: str = typer.Option(..., "--at", help="As-of time (UTC date/time or epoch ms): only candles closed by then."),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Default: the exchange the model was trained on."),
    threshold: float = typer.Option(0.8, "--min-completeness", min=0.0, max=1.0),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Print the model's ModelOutput (JSON) for SYMBOL as of --at; refuses incomplete inputs with the reason."""
    from pivotal.data.backends import open_store
    from pivotal.features.completeness import check_completeness
    from pivotal.features.encoding import encode
    from pivotal.models.registry import load_model
    from pivotal.training.pipeline import RunSpec, live_input

    manager = checkpoint_manager(data_dir, store)
    try:
        info = manager.resolve(model)
        t = parse_time(at)
        assert t is not None
        extra = info.extra
        spec = RunSpec(info.model_type, exchange or extra["exchange"], symbol, tuple(extra["timeframes"]), window=extra["window"])
        input_spec = spec.input_spec().with_threshold(threshold)
        market = open_store(settings_from(data_dir, store))
        try:
            inp = live_input(market, spec, t)
        finally:
            market.close()
        completeness = check_completeness(inp, input_spec)
        if not completeness.ready:
            raise fail(f"no prediction for {symbol} at {at}: {completeness.reason}")
        loaded = load_model(manager.weights_path(info))
        output = loaded.predict(encode(inp, input_spec), symbol=symbol, timestamp=t)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise fail(str(exc)) from None
    typer.echo(output.to_json())
