"""CNN: shapes, ModelOutput contents, save/load, and a short real-data training that lowers its training loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pivotal.models.cnn import CNNModel
from pivotal.models.io import ACTIONS, ModelOutput
from pivotal.models.protocol import CNNConfig, InputShape, Model
from pivotal.models.registry import load_model
from pivotal.models.supervised import pick_device
from tests.models.real_samples import full_batch_loss_before_and_after, real_samples

torch.set_num_threads(1)


def test_forward_shapes_for_any_batch() -> None:
    shape = InputShape(n_windows=3, window_len=120, n_channels=11, n_context=40, levels=4)
    model = CNNModel(CNNConfig(shape=shape))
    out = model.forward(torch.zeros(5, 3, 120, 11), torch.zeros(5, 40))
    assert out.kind_logits.shape == (5, 4, 2)
    assert out.price.shape == out.log_bars.shape == (5, 4)
    assert out.action_logits.shape == (5, 3)
    assert out.confidence_logit.shape == (5,)
    assert out.hidden.shape == (5, model.config.trunk_hidden)
    assert model.net.window_states.shape == (5, 3, model.config.gru_hidden)


def test_default_cnn_is_small() -> None:
    # the latency goal (p99 <= 5 ms, benchmarks/bench_models.py) needs a small net; guard against silent growth
    assert CNNModel().parameter_count() < 200_000
    assert isinstance(CNNModel(), Model)


def test_predict_returns_a_complete_model_output(shared_data: Path) -> None:
    samples, shape = real_samples(shared_data)
    model = CNNModel(CNNConfig(shape=shape), name="cnn-test")
    out = model.predict(
        (samples.windows[-1].astype(np.float32), samples.context[-1]), symbol="BTC/USDT", timestamp=int(samples.time[-1])
    )
    assert isinstance(out, ModelOutput)
    assert out.model_type == "cnn" and out.model_name == "cnn-test" and out.timestamp == int(samples.time[-1])
    assert out.action in ACTIONS and abs(sum(out.action_probabilities.values()) - 1.0) < 1e-6
    assert out.action == max(out.action_probabilities, key=out.action_probabilities.get)
    assert [p.level for p in out.pivots] == [1, 2, 3]
    assert all(p.bars_until >= 0 and p.kind in ("H", "L") for p in out.pivots)
    assert out.hidden_states["trunk"].shape == (model.config.trunk_hidden,)
    assert out.hidden_states["window_states"].shape == (1, model.config.gru_hidden)
    assert ModelOutput.from_json(out.to_json()).action == out.action


def test_predict_rejects_wrong_shapes_naming_expected_and_actual() -> None:
    model = CNNModel(CNNConfig(shape=InputShape(1, 100, 11, 32, 3)))
    with pytest.raises(ValueError, match=r"expected windows \(1, 100, 11\).*got \(1, 90, 11\)"):
        model.predict((np.zeros((1, 90, 11), np.float32), np.zeros(32, np.float32)))


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path, shared_data: Path) -> None:
    samples, shape = real_samples(shared_data)
    model = CNNModel(CNNConfig(shape=shape), seed=3)
    model.train_step(samples.batch(np.arange(64)))  # move weights and batch-norm statistics away from init
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    x = (samples.windows[10].astype(np.float32), samples.context[10])
    assert loaded.predict(x).to_json() == model.predict(x).to_json()
    other = CNNModel(CNNConfig(shape=shape, gru_hidden=16))
    with pytest.raises(ValueError, match="config differs"):
        other.load(tmp_path / "m.pt")


def test_short_real_data_training_lowers_training_loss(shared_data: Path) -> None:
    samples, shape = real_samples(shared_data)
    model = CNNModel(CNNConfig(shape=shape), seed=0, lr=3e-3)
    before, after = full_batch_loss_before_and_after(model, samples, steps=40)
    assert after < 0.8 * before


def test_device_choice_is_explicit() -> None:
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"torch\.cuda\.is_available\(\) is False; use --device cpu"):
            pick_device("cuda")
