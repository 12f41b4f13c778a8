"""Transformer: preset parameter counts, shapes, ModelOutput, and a short real-data training that lowers its loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pivotal.models.io import ModelOutput
from pivotal.models.protocol import TRANSFORMER_PRESETS, TRANSFORMER_TARGET_PARAMS, InputShape, TransformerConfig
from pivotal.models.transformer import TransformerModel, preset_config
from tests.models.real_samples import full_batch_loss_before_and_after, real_samples

torch.set_num_threads(1)


@pytest.mark.parametrize("preset", ["5m", "8m", "12m"])
def test_preset_parameter_counts_are_within_3_percent_of_their_budget(preset: str) -> None:
    count = TransformerModel(preset_config(preset)).parameter_count()
    target = TRANSFORMER_TARGET_PARAMS[preset]
    assert abs(count - target) / target < 0.03, f"{preset}: {count:,} parameters"


def test_8m_preset_has_the_reference_dimensions() -> None:
    cfg = TRANSFORMER_PRESETS["8m"]
    assert (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.d_ff) == (256, 8, 4, 1024)
    assert (TRANSFORMER_PRESETS["5m"].d_model, TRANSFORMER_PRESETS["12m"].d_model) == (192, 320)


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown transformer preset '9m'.*'12m', '5m', '8m'"):
        preset_config("9m")


def test_forward_shapes_with_a_window_not_divisible_by_the_patch() -> None:
    shape = InputShape(n_windows=2, window_len=105, n_channels=11, n_context=20, levels=3)
    model = TransformerModel(TransformerConfig(shape=shape, d_model=32, n_heads=4, n_layers=1, d_ff=64, head_hidden=32))
    out = model.forward(torch.zeros(4, 2, 105, 11), torch.zeros(4, 20))
    assert out.kind_logits.shape == (4, 3, 2) and out.action_logits.shape == (4, 3) and out.hidden.shape == (4, 32)


def test_predict_and_short_real_data_training(shared_data: Path) -> None:
    samples, shape = real_samples(shared_data)
    config = TransformerConfig(
        shape=shape, d_model=32, n_heads=4, n_layers=1, d_ff=64, n_cross_layers=1, head_hidden=32, dropout=0.0
    )
    model = TransformerModel(config, name="tf-test", lr=3e-3)
    out = model.predict((samples.windows[0].astype(np.float32), samples.context[0]), symbol="BTC/USDT", timestamp=1)
    assert isinstance(out, ModelOutput) and out.model_type == "transformer" and len(out.pivots) == 3

    before, after = full_batch_loss_before_and_after(model, samples, steps=30)
    assert after < 0.8 * before
