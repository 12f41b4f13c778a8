"""Supervised training loop for the CNN and the Transformer: seeded, per-epoch metrics, TensorBoard, rich progress.

Validation is the chronological tail of the training span (never a later fold), and ``best_state`` keeps the
weights of the epoch with the lowest validation loss, so checkpoints are chosen without looking at test data.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pivotal.models.supervised import SupervisedModel
from pivotal.training.dataset import SampleSet

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    batch_size: int = 128
    seed: int = 0
    val_fraction: float = 0.15
    log_dir: Path | None = None
    progress: bool = True
    max_batches_per_epoch: int | None = None  # caps an epoch on big sets (quick runs, tests)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1) (got {self.val_fraction})")


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def split_train_val(samples: SampleSet, val_fraction: float, gap: int = 0) -> tuple[SampleSet, SampleSet]:
    """Chronological split: the last ``val_fraction`` is validation, ``gap`` samples dropped in between."""
    n_val = max(1, round(len(samples) * val_fraction))
    cut = len(samples) - n_val
    if cut - gap < 1:
        raise ValueError(f"{len(samples)} samples are too few to split off {n_val} for validation; load more data")
    return samples.take(slice(0, cut - gap)), samples.take(slice(cut, len(samples)))


def _mean(rows: list[dict[str, float]], weights: list[int]) -> dict[str, float]:
    total = max(sum(weights), 1)
    return {k: sum(r[k] * w for r, w in zip(rows, weights, strict=True)) / total for k in rows[0]} if rows else {}


def evaluate_loss(model: SupervisedModel, samples: SampleSet, batch_size: int) -> dict[str, float]:
    """Mean losses over a sample set, plus action accuracy on samples with a known action."""
    rows, weights, correct, known = [], [], 0, 0
    for start in range(0, len(samples), batch_size):
        idx = np.arange(start, min(start + batch_size, len(samples)))
        batch = samples.batch(idx)
        rows.append(model.eval_loss(batch))
        weights.append(len(idx))
        pred = model.infer(batch["windows"], batch["context"])["action_prob"].argmax(-1).cpu()
        mask = batch["action"] >= 0
        correct += int((pred[mask] == batch["action"][mask]).sum())
        known += int(mask.sum())
    out = _mean(rows, weights)
    out["action_acc"] = correct / known if known else float("nan")
    return out


class Trainer:
    def __init__(self, model: SupervisedModel, config: TrainConfig) -> None:
        self.model = model
        self.config = config
        self.history: list[dict[str, float]] = []
        self.best_val = float("inf")
        self.best_state: dict[str, Any] | None = None

    def fit(self, train: SampleSet, val: SampleSet, on_epoch: EpochCallback | None = None) -> list[dict[str, float]]:
        cfg = self.config
        rng = seed_everything(cfg.seed)
        writer = _writer(cfg.log_dir)
        batches = -(-len(train) // cfg.batch_size)
        if cfg.max_batches_per_epoch:
            batches = min(batches, cfg.max_batches_per_epoch)
        with _progress(cfg.progress) as progress:
            task = progress.add_task(f"{self.model.name}", total=cfg.epochs * batches)
            for epoch in range(1, cfg.epochs + 1):
                order = rng.permutation(len(train))
                rows, weights = [], []
                for b in range(batches):
                    idx = np.sort(order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
                    rows.append(self.model.train_step(train.batch(idx)))
                    weights.append(len(idx))
                    progress.update(task, advance=1, description=f"{self.model.name} epoch {epoch} loss {rows[-1]['loss']:.3f}")
                metrics = {f"train_{k}": v for k, v in _mean(rows, weights).items()}
                metrics.update({f"val_{k}": v for k, v in evaluate_loss(self.model, val, cfg.batch_size).items()})
                metrics["epoch"] = float(epoch)
                self._track(metrics)
                if writer is not None:
                    for key, value in metrics.items():
                        if key != "epoch":
                            writer.add_scalar(key.replace("_", "/", 1), value, epoch)
                if on_epoch is not None:
                    on_epoch(epoch, metrics)
        if writer is not None:
            writer.close()
        return self.history

    def _track(self, metrics: dict[str, float]) -> None:
        self.history.append(metrics)
        if metrics["val_loss"] < self.best_val:
            self.best_val = metrics["val_loss"]
            self.best_state = copy.deepcopy(self.model.net.state_dict())

    def restore_best(self) -> None:
        """Load the weights of the best validation epoch (no-op before any epoch)."""
        if self.best_state is not None:
            self.model.net.load_state_dict(self.best_state)


def _writer(log_dir: Path | None) -> Any:
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter  # imported lazily: tensorboard is slow to import

    return SummaryWriter(log_dir=str(log_dir))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
