"""Use case: train a model on walk-forward folds and keep its checkpoint (``pivotal train``, later the HTTP API).

Plain functions over settings and a ``RunSpec``; they return results and raise ``PivotalError`` / ``ValueError`` with
one-line messages. Printing is the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pivotal.config import Settings
from pivotal.data.backends import open_store
from pivotal.data.loaders import load_candles_file
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.pipeline import RunResult, RunSpec, finish, load_series, run


def checkpoints(settings: Settings, keep: int = 5) -> CheckpointManager:
    """The checkpoint manager of a data directory (``<data_dir>/models``)."""
    return CheckpointManager(settings.data_dir / "models", keep=keep)


@dataclass(frozen=True)
class TrainOutcome:
    result: RunResult
    report: Path | None
    tensorboard: Path


def train(
    settings: Settings,
    spec: RunSpec,
    *,
    input_file: Path | None = None,
    report_dir: Path | None = None,
    keep: int = 5,
) -> TrainOutcome:
    """Load the series (``input_file`` for the base timeframe, else the store), train and evaluate every fold, save the
    checkpoint and write the report (default ``<data_dir>/reports/<name>``)."""
    base = None
    if input_file is not None:
        base = load_candles_file(input_file, timeframe=spec.timeframes[0], exchange=spec.exchange, symbol=spec.symbol)
    market = None if input_file is not None else open_store(settings)
    try:
        candles = load_series(market, spec, base)
    finally:
        if market is not None:
            market.close()
    tensorboard = settings.data_dir / "tensorboard" / spec.model_name
    report = report_dir or settings.data_dir / "reports" / spec.model_name
    result = run(spec, candles, log_dir=tensorboard, report_dir=report)
    result = finish(result, spec, checkpoints(settings, keep), report)
    return TrainOutcome(result, result.report, settings.data_dir / "tensorboard")


def list_checkpoints(settings: Settings, name: str | None = None) -> list[CheckpointInfo]:
    """Every kept checkpoint (best first per model name)."""
    return checkpoints(settings).list(name)


def show_checkpoint(settings: Settings, ref: str) -> CheckpointInfo:
    """One checkpoint by ``NAME`` (its best) or ``NAME/ID``; ``KeyError`` naming it when absent."""
    return checkpoints(settings).resolve(ref)


def delete_checkpoints(settings: Settings, ref: str) -> list[CheckpointInfo]:
    """Delete ``NAME/ID`` (one) or every checkpoint of ``NAME``; returns what was deleted."""
    return checkpoints(settings).delete(ref)


def checkpoints_to_delete(settings: Settings, ref: str) -> list[CheckpointInfo]:
    """What ``delete_checkpoints(ref)`` would delete (for a confirmation prompt); ``KeyError`` when nothing matches."""
    manager = checkpoints(settings)
    targets = [manager.resolve(ref)] if "/" in ref else manager.list(ref)
    if not targets:
        raise KeyError(f"no checkpoints for model {ref!r}")
    return targets
