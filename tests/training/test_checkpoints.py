"""Checkpoints: rotation keeps the best N, writes are atomic, the best one reloads, list/show/delete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pivotal.models.cnn import CNNModel
from pivotal.models.protocol import CNNConfig, InputShape
from pivotal.models.registry import load_model
from pivotal.training.checkpoints import CheckpointManager

SHAPE = InputShape(n_windows=1, window_len=100, n_channels=11, n_context=8, levels=2)
SPAN = {"exchange": "binance", "symbol": "BTC/USDT", "timeframes": ["1h"], "start": 0, "end": 1}


def _model(name: str = "cnn", seed: int = 0) -> CNNModel:
    return CNNModel(CNNConfig(shape=SHAPE, conv_channels=(8,), gru_hidden=8, trunk_hidden=16), name=name, seed=seed)


def test_rotation_keeps_the_best_n_lower_is_better(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep=3)
    for loss in (0.9, 0.5, 0.7, 0.3, 0.8, 0.6):
        manager.save(_model(), "val_loss", loss, False, SPAN)
    assert [i.metric for i in manager.list("cnn")] == [0.3, 0.5, 0.6]
    assert len(list((tmp_path / "cnn").glob("*.pt"))) == 3  # the weights of dropped checkpoints are gone too


def test_rotation_keeps_the_best_n_higher_is_better_and_names_are_separate(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep=2)
    for ret in (0.1, -0.2, 0.3):
        manager.save(_model("dqn"), "val_net_log_return", ret, True, SPAN)
    manager.save(_model("other"), "val_loss", 1.0, False, SPAN)
    assert [i.metric for i in manager.list("dqn")] == [0.3, 0.1]
    assert manager.names() == ["dqn", "other"]


def test_metadata_records_model_config_span_metric_commit_and_time(tmp_path: Path) -> None:
    info = CheckpointManager(tmp_path).save(_model(), "val_loss", 0.42, False, SPAN, {"window": 100})
    [stored] = json.loads((tmp_path / "index.json").read_text())["checkpoints"]  # the versioned metadata index
    assert (stored["id"], stored["path"]) == (info.id, f"cnn/{info.id}.pt")
    assert stored["model_type"] == "cnn" and stored["metric"] == 0.42 and stored["metric_name"] == "val_loss"
    assert stored["config"]["type"] == "CNNConfig" and stored["config"]["shape"]["window_len"] == 100
    assert stored["data_span"] == SPAN and stored["extra"] == {"window": 100}
    assert stored["created"].startswith("20") and "commit" in stored


def test_a_failed_save_leaves_no_visible_checkpoint(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    manager.save(_model(), "val_loss", 0.5, False, SPAN)
    broken = _model()

    def crash(path: Path) -> None:
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    broken.save = crash  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        manager.save(broken, "val_loss", 0.1, False, SPAN)
    assert [i.metric for i in manager.list("cnn")] == [0.5]  # the half-written one is not listed
    assert len(list((tmp_path / "cnn").glob("*.pt"))) == 1
    manager.save(_model(), "val_loss", 0.4, False, SPAN)
    assert not list((tmp_path / "cnn").glob(".*.tmp"))  # leftovers swept by the next save


def test_the_best_checkpoint_reloads_with_identical_outputs(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    best, worse = _model(seed=1), _model(seed=2)
    manager.save(worse, "val_loss", 0.9, False, SPAN)
    manager.save(best, "val_loss", 0.2, False, SPAN)
    info = manager.resolve("cnn")
    assert info.metric == 0.2
    loaded = load_model(manager.weights_path(info))
    assert manager.load_best("cnn").predict((np.zeros((1, 100, 11), np.float32), np.zeros(8, np.float32))).model_name == "cnn"
    x = (np.linspace(-1, 1, 1100, dtype=np.float32).reshape(1, 100, 11), np.zeros(8, np.float32))
    torch.manual_seed(0)
    assert loaded.predict(x).to_json() == best.predict(x).to_json()


def test_resolve_and_delete(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path)
    first = manager.save(_model(), "val_loss", 0.3, False, SPAN)
    manager.save(_model(), "val_loss", 0.4, False, SPAN)
    assert manager.resolve(f"cnn/{first.id}") == first
    with pytest.raises(KeyError, match="no checkpoint 'nope'"):
        manager.resolve("cnn/nope")
    with pytest.raises(KeyError, match=r"no checkpoints for model 'ghost'.*have: cnn"):
        manager.resolve("ghost")
    assert [i.id for i in manager.delete(f"cnn/{first.id}")] == [first.id]
    assert len(manager.list("cnn")) == 1
    assert len(manager.delete("cnn")) == 1 and manager.names() == []


def test_bad_names_and_keep_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep must be >= 1"):
        CheckpointManager(tmp_path, keep=0)
    with pytest.raises(ValueError, match=r"invalid model name '\.\./x'"):
        CheckpointManager(tmp_path).save(_model("../x"), "val_loss", 1.0, False, SPAN)
