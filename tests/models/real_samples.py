"""Shared helper for the model tests: encoded samples from a slice of real Binance BTC/USDT 1h bars."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pivotal.data.candles import Candles
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.models.heads import multitask_loss
from pivotal.models.protocol import InputShape
from pivotal.models.supervised import SupervisedModel
from pivotal.structure.types import PivotParams
from pivotal.training.dataset import SampleSet, build_samples, input_shape, prepare

SYMBOL = "BTC/USDT"
FILE = "binance/BTCUSDT-1h-2018-2026.parquet"


def real_candles(shared_data: Path, bars: int, offset: int = 0) -> Candles:
    frame = pd.read_parquet(shared_data / FILE).iloc[offset : offset + bars]
    return Candles.from_frame(frame, "binance", SYMBOL, "1h")


def spec_1h(window: int = 100) -> InputSpec:
    return InputSpec((WindowSpec("1h", window),), pivot_params=PivotParams(levels=5))


@lru_cache(maxsize=4)
def _samples(shared_data: str, bars: int, offset: int) -> tuple[SampleSet, InputShape]:
    spec = spec_1h()
    candles = real_candles(Path(shared_data), bars, offset)
    samples = build_samples(prepare({(SYMBOL, "1h"): candles}, spec), SYMBOL, spec, levels=3)
    return samples, input_shape(spec, 3)


def real_samples(shared_data: Path, bars: int = 700, offset: int = 20_000) -> tuple[SampleSet, InputShape]:
    """Samples (every bar after the first 100) of ``bars`` real hourly bars and the matching model InputShape."""
    return _samples(str(shared_data), bars, offset)


def full_batch_loss_before_and_after(model: SupervisedModel, samples: SampleSet, steps: int) -> tuple[float, float]:
    """Multitask loss on all samples, before and after ``steps`` seeded mini-batch train steps of 64."""
    rows = np.arange(len(samples))
    batch = samples.batch(rows)

    def loss() -> float:
        model.net.eval()
        with torch.no_grad():
            return float(multitask_loss(model.forward(batch["windows"], batch["context"]), batch)[0])

    before = loss()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        model.train_step(samples.batch(np.sort(rng.choice(rows, 64, replace=False))))
    return before, loss()
