"""`pivotal train` (walk-forward training + honest evaluation report) and `pivotal predict` (one ModelOutput as JSON).

Argument parsing and printing only: the use cases are ``pivotal.services.train`` and ``pivotal.services.predict``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from pivotal.cli.common import DataDirOption, StoreOption, console, emit_json, fail, parse_time, settings_from

# Services load torch and pandas: imported by the commands, so `--help` stays fast.


class ModelType(StrEnum):
    cnn = "cnn"
    transformer = "transformer"
    dqn = "dqn"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class Preset(StrEnum):
    """Size presets: cnn small|medium (models.protocol.CNN_PRESETS), transformer 5m|8m|12m (TRANSFORMER_PRESETS)."""

    small = "small"
    medium = "medium"
    p5m = "5m"
    p8m = "8m"
    p12m = "12m"


def train(
    model: ModelType = typer.Option(..., "--model", "-m", help="cnn, transformer or dqn (the DQN trains its CNN per fold)."),
    exchange: str = typer.Option("binance", "--exchange", "-e", help="Exchange of the stored series (ccxt id)."),
    symbol: str = typer.Option(..., "--symbol", "-s", help="e.g. BTC/USDT"),
    timeframes: str = typer.Option(
        "1h,4h,1d", "--timeframes", "--timeframe", "-t", help="Windows; the first is the base (labels, steps)."
    ),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Parquet/CSV of base bars, not the store."),
    name: str = typer.Option("", "--name", help="Checkpoint name (default: the model type)."),
    epochs: int = typer.Option(5, "--epochs", min=1),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    window: int = typer.Option(100, "--window", min=100, help="Bars per window (validation needs >= 100)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Sample every N base bars."),
    preset: Preset | None = typer.Option(None, "--preset", help="cnn: small or medium; transformer: 5m, 8m or 12m."),
    walk_forward: str = typer.Option("365/7/180", "--walk-forward", help="TRAIN/GAP/TEST or TRAIN/GAP/TEST/STEP, in days."),
    folds: int = typer.Option(3, "--folds", min=1, help="Use the most recent N folds; the last is the holdout."),
    episodes: int = typer.Option(2, "--episodes", min=1, help="DQN episodes per fold."),
    fee: float = typer.Option(0.001, "--fee", min=0.0, help="DQN: fee per unit of position change."),
    slippage: float = typer.Option(0.0005, "--slippage", min=0.0, help="DQN: slippage per unit of position change."),
    device: Device = typer.Option(Device.cpu, "--device"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads."),
    seed: int = typer.Option(0, "--seed"),
    min_completeness: float = typer.Option(
        0.8, "--min-completeness", min=0.0, max=1.0, help="Drop samples whose input predict would refuse at this threshold."
    ),
    start: str | None = typer.Option(None, "--start", help="First sample time (UTC); features still use earlier bars."),
    end: str | None = typer.Option(None, "--end", help="Samples before this time (UTC)."),
    keep: int = typer.Option(5, "--keep", min=1, help="Checkpoints kept per model name (best by validation metric)."),
    report_dir: Path | None = typer.Option(None, "--report", help="Report folder (default: <data_dir>/reports/<name>)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Train on walk-forward folds, compare with baselines out of sample, write the report, keep the best checkpoints."""
    from pivotal.core.errors import PivotalError
    from pivotal.core.timeframes import parse_timeframes
    from pivotal.services.train import train as train_model
    from pivotal.training.pipeline import RunSpec
    from pivotal.validation.walkforward import WalkForwardSpec

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
            preset=preset.value if preset is not None else "",
            walk_forward=WalkForwardSpec.parse(walk_forward),
            max_folds=folds,
            episodes=episodes,
            fee=fee,
            slippage=slippage,
            threads=threads,
            min_completeness=min_completeness,
            start=parse_time(start),
            end=parse_time(end),
        )
        settings = settings_from(data_dir, store)
        outcome = train_model(settings, spec, input_file=input_file, report_dir=report_dir, keep=keep)
    except (PivotalError, ValueError, FileNotFoundError, KeyError) as exc:
        raise fail(str(exc)) from None
    result = outcome.result
    for fold in result.folds:
        last = fold.history[-1] if fold.history else {}
        console.print(
            f"fold {fold.number}{' (holdout)' if fold.holdout else ''}: {fold.n_train} train / {fold.n_test} test samples"
            + (f", final train loss {last['train_loss']:.4f}, val loss {last['val_loss']:.4f}" if last else "")
        )
    console.print(f"checkpoint {spec.model_name}: {result.metric_name} = {result.metric:.4f}")
    console.print(f"report: {outcome.report}")
    console.print(f"TensorBoard: tensorboard --logdir {outcome.tensorboard}")


def predict(
    model: str = typer.Option(..., "--model", "-m", help="Checkpoint name (its best checkpoint) or NAME/ID."),
    symbol: str = typer.Option(..., "--symbol", "-s"),
    at: str = typer.Option(..., "--at", help="As-of time (UTC date/time or epoch ms): only candles closed by then."),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Default: the exchange the model was trained on."),
    threshold: float = typer.Option(0.8, "--min-completeness", min=0.0, max=1.0),
    as_json: bool = typer.Option(False, "--json", help="Accepted everywhere; predict always prints JSON (one line when piped)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Print the model's ModelOutput (JSON) for SYMBOL as of --at; refuses incomplete inputs with the reason."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.predict import predict as predict_output

    try:
        t = parse_time(at)
        assert t is not None
        output = predict_output(settings_from(data_dir, store), model, symbol, t, exchange=exchange, min_completeness=threshold)
    except KeyError as exc:
        raise fail(str(exc.args[0]) if exc.args else str(exc)) from None
    except (PivotalError, ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    emit_json(json.loads(output.to_json()))
