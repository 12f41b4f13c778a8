"""The backtest use case on a tiny hand-written candle file: params from the registry, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pivotal.core.errors import UserInputError
from pivotal.services import backtest as service

pytestmark = pytest.mark.unit
HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 UTC
CLOSES = [100.0, 99.0, 98.0, 97.0, 98.0, 100.0, 103.0, 105.0, 104.0, 101.0, 98.0, 96.0, 97.0, 99.0]


def candle_file(tmp_path: Path) -> Path:
    rows = ["ts,open,high,low,close,volume"]
    prev = CLOSES[0]
    for i, c in enumerate(CLOSES):
        rows.append(f"{T0 + i * HOUR},{prev},{max(prev, c) + 0.5},{min(prev, c) - 0.5},{c},10")
        prev = c
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_backtest_a_registered_strategy_from_a_file(tmp_path: Path) -> None:
    source = service.CandleSource(path=candle_file(tmp_path), timeframe="1h")
    bars = service.load_source(source)
    params = service.resolve_params("sma_cross", service.parse_param_pairs(["fast=2", "slow=4"]))
    run = service.run_backtest(bars, "sma_cross", params, fee_rate=0.0, slippage=0.0, source=source.describe())
    assert run.params == {"fast": 2, "slow": 4} and run.bars == len(CLOSES) and run.source.endswith("bars.csv")
    trades = run.result.trades
    assert len(trades) >= 1 and trades[0].entry_fill == bars.open[trades[0].entry_bar]  # next open, no costs
    assert run.summary()["trades"] == len(trades) and run.summary()["entries_blocked"] == 0.0


def test_params_file_then_pairs_and_clear_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"fast": 3}))
    assert service.resolve_params("sma_cross", {"slow": "9"}, f) == {"fast": 3, "slow": 9}
    f.write_text(json.dumps({"fats": 3}))
    with pytest.raises(UserInputError, match=r"p\.json: strategy sma_cross: unknown parameter\(s\) fats; valid: fast, slow"):
        service.resolve_params("sma_cross", None, f)
    f.write_text("[1, 2]")
    with pytest.raises(UserInputError, match="expected a JSON object of parameters, got list"):
        service.resolve_params("sma_cross", None, f)
    with pytest.raises(UserInputError, match="expected key=value"):
        service.parse_param_pairs(["fast"])
    with pytest.raises(UserInputError, match="name a stored series"):
        service.load_source(service.CandleSource(exchange="binance"))
    bars = service.load_source(service.CandleSource(path=candle_file(tmp_path)))
    with pytest.raises(UserInputError, match="fee and slippage must be >= 0"):
        service.run_backtest(bars, "sma_cross", fee_rate=-0.1)
