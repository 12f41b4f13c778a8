"""`pivotal train / predict / models` through the CLI on a slice of real Binance BTC/USDT 1h bars."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.models.io import ACTIONS, ModelOutput
from tests.models.real_samples import real_candles

runner = CliRunner()
TRAIN = ["train", "--symbol", "BTC/USDT", "--timeframes", "1h", "--epochs", "1", "--walk-forward", "25/1/8", "--folds", "1"]
AT = "2020-04-25T00:00"  # the slice below covers 2020-03-06 17:00 .. 2020-04-29 22:00


@pytest.fixture
def stored(shared_data: Path) -> None:
    store = open_store()
    try:
        store.write_candles(real_candles(shared_data, 1300, offset=19_000), source="test slice")
    finally:
        store.close()


def _invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("model", ["cnn", "transformer", "dqn"])
def test_train_then_predict_prints_a_model_output(model: str) -> None:
    extra = ["--preset", "5m", "--stride", "3"] if model == "transformer" else ["--episodes", "1"] if model == "dqn" else []
    out = _invoke([*TRAIN, "--model", model, *extra])
    assert f"checkpoint {model}:" in out and "(holdout)" in out
    data_dir = Path(os.environ["PIVOTAL_DATA_DIR"])
    text = (data_dir / "reports" / model / "report.md").read_text()
    assert list((data_dir / "tensorboard" / model).rglob("events.out.tfevents*"))  # per-epoch TensorBoard logs
    assert "holdout" in text and ("buy_and_hold" in text if model == "dqn" else "persistence" in text)

    printed = _invoke(["predict", "--model", model, "--symbol", "BTC/USDT", "--at", AT])
    output = ModelOutput.from_json(printed)
    assert output.model_type == model and output.symbol == "BTC/USDT" and output.action in ACTIONS


@pytest.mark.usefixtures("stored")
def test_predict_refuses_an_incomplete_input_with_the_reason() -> None:
    _invoke([*TRAIN, "--model", "cnn"])
    result = runner.invoke(app, ["predict", "--model", "cnn", "--symbol", "BTC/USDT", "--at", "2020-03-08T00:00"])
    assert result.exit_code == 1
    assert "not ready" in result.output and "< minimum 100" in result.output.replace("\n", " ")


@pytest.mark.usefixtures("stored")
def test_models_list_show_delete() -> None:
    _invoke([*TRAIN, "--model", "cnn", "--name", "tiny"])
    assert "tiny" in _invoke(["models", "list"])
    shown = json.loads(_invoke(["models", "show", "tiny"]))
    assert shown["model_type"] == "cnn" and shown["data_span"]["symbol"] == "BTC/USDT"
    assert "deleted 1 checkpoint" in _invoke(["models", "delete", "tiny", "--yes"])
    missing = runner.invoke(app, ["models", "show", "tiny"])
    assert missing.exit_code == 1 and "no checkpoints for model 'tiny'" in missing.output


def test_train_without_data_says_what_to_do() -> None:
    result = runner.invoke(app, [*TRAIN, "--model", "cnn"])
    assert result.exit_code == 1
    assert "no stored candles for binance BTC/USDT 1h: the store is empty; import first" in " ".join(result.output.split())


def test_train_from_an_input_file(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    real_candles(shared_data, 1300, offset=19_000).to_frame().to_parquet(path)
    out = _invoke([*TRAIN, "--model", "cnn", "--input", str(path)])
    assert "checkpoint cnn:" in out


@pytest.mark.parametrize("command", [["train"], ["predict"], ["models", "list"], ["models", "show"], ["models", "delete"]])
def test_help_renders(command: list[str]) -> None:
    assert "Usage" in _invoke([*command, "--help"])


def test_readme_train_then_predict_with_a_stale_daily_series(shared_data: Path) -> None:
    """Issue #8: the README's `train --timeframes 1h,4h,1d` → `predict` on ../shared/data, where the stored Binance
    BTC/USDT 1d series ends 2020-12-31. Before, training used the 2020 window for 2021 samples and predict refused
    ("1d: 0/100 bars"); now the 1d bars after 2020 are aggregated from the 1h bars in both, and predict answers."""
    hourly = Candles.from_frame(
        pd.read_parquet(shared_data / "binance/BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h"
    )
    daily = Candles.from_frame(pd.read_parquet(shared_data / "binance/BTCUSDT-1d.parquet"), "binance", "BTC/USDT", "1d")
    first, last = np.searchsorted(hourly.ts, [1_590_969_600_000, 1_622_505_600_000])  # 2020-06-01 .. 2021-06-01
    store = open_store()
    try:
        store.write_candles(hourly.slice(int(first), int(last)), source="test slice")
        store.write_candles(daily, source="test slice")
    finally:
        store.close()
    readme = ["train", "--model", "cnn", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframes", "1h,4h,1d"]
    out = _invoke([*readme, "--epochs", "1", "--walk-forward", "60/1/20", "--folds", "1", "--stride", "4"])
    assert "checkpoint cnn:" in out
    report = Path(os.environ["PIVOTAL_DATA_DIR"]) / "reports" / "cnn"
    assert "Holm" in (report / "report.md").read_text() and (report / "evaluation.json").exists()
    printed = _invoke(["predict", "--model", "cnn", "--symbol", "BTC/USDT", "--at", "2021-05-01T00:00"])
    output = ModelOutput.from_json(printed)
    assert output.timestamp == 1_619_827_200_000 and output.action in ACTIONS
