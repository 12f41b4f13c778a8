"""`pivotal predictions list|show|stats|outcomes|prune` over an inference history in the default (DuckDB) store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.core.clock import SimulatedClock
from pivotal.core.vocabulary import ActionName
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.state.predictions import PredictionFilter, PredictionRepository
from pivotal.models.io import ModelOutput, PivotPrediction
from pivotal.models.output_store import InferenceHistory, InputRef, PredictionContext

runner = CliRunner()
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
MIN = 60_000
HASH = "ef" * 32


def _output(name: str, symbol: str, ts: int, action: ActionName) -> ModelOutput:
    probs = {"BUY": 0.5, "SELL": 0.3, "HOLD": 0.2} if action == "BUY" else {"BUY": 0.2, "SELL": 0.6, "HOLD": 0.2}
    direction = 0.3 if action == "BUY" else -0.4
    pivots = (PivotPrediction(2, "H", 0.002, 5.0, 0.4),)
    return ModelOutput("cnn", name, symbol, ts, 0.5, action, probs, direction, 0.5, pivots)


@pytest.fixture
def recorded() -> None:
    store = open_store()
    try:
        history = InferenceHistory(store, clock=SimulatedClock(T0))
        items = [
            (
                _output(name, "BTC/USDT", T0 + i * MIN, "BUY" if i % 3 else "SELL"),
                PredictionContext(version, "1m", InputRef("single-1m", T0 + i * MIN, HASH)),
            )
            for i in range(1, 11)
            for name, version in (("cnn", "v1"), ("dqn", "v7"))
        ]
        history.record_many(items)
    finally:
        store.close()


def _invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("recorded")
def test_list_filters_and_prints_json() -> None:
    rows = json.loads(_invoke(["predictions", "list", "--model", "dqn", "--start", str(T0 + 3 * MIN), "--limit", "4", "--json"]))
    assert [(r["model"], r["version"], r["as_of"]) for r in rows] == [("dqn", "v7", T0 + i * MIN) for i in (7, 8, 9, 10)]
    assert rows[0]["input_hash"] == HASH and rows[0]["input_spec"] == "single-1m"
    table = _invoke(["predictions", "list", "--symbol", "BTC/USDT", "--timeframe", "1m", "--end", "2024-03-01T00:03"])
    assert "cnn/v1" in table and "dqn/v7" in table and "00:02:00" in table and "00:03:00" not in table
    assert "no predictions stored" in _invoke(["predictions", "list", "--symbol", "ETH/USDT"])


@pytest.mark.usefixtures("recorded")
def test_show_and_stats() -> None:
    shown = json.loads(_invoke(["predictions", "show", "cnn", "BTC/USDT", "1m", "2024-03-01T00:02"]))
    assert shown["version"] == "v1" and shown["output"]["action"] == "BUY" and shown["input"]["digest"] == HASH
    stats = json.loads(_invoke(["predictions", "stats", "--json"]))
    assert [(s["model_name"], s["count"], s["buy"], s["sell"]) for s in stats] == [("cnn", 10, 7, 3), ("dqn", 10, 7, 3)]
    assert "cnn/v1" in _invoke(["predictions", "stats"])


@pytest.mark.usefixtures("recorded")
def test_errors_are_one_line() -> None:
    result = runner.invoke(app, ["predictions", "show", "cnn", "BTC/USDT", "1m", "2024-03-02T00:00"])
    assert result.exit_code != 0
    assert "no prediction of cnn BTC/USDT 1m" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["predictions", "list", "--limit", "0"])
    assert result.exit_code != 0 and "--limit must be >= 1" in result.output
    result = runner.invoke(app, ["predictions", "outcomes", "--symbol", "BTC/USDT", "--timeframe", "1m"])
    assert result.exit_code != 0 and "no 1m candles of binance BTC/USDT" in result.output


@pytest.mark.usefixtures("recorded")
def test_prune_applies_the_retention_policy() -> None:
    assert "deleted 0 prediction(s)" in _invoke(["predictions", "prune", "--older-than-days", "36500", "--yes"])
    assert "deleted 20 prediction(s)" in _invoke(["predictions", "prune", "--older-than-days", "1", "--yes"])
    assert json.loads(_invoke(["predictions", "list", "--json"])) == []


@pytest.mark.usefixtures("recorded")
def test_outcomes_scored_from_stored_real_candles(shared_data: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet")
    frame = frame[(frame.timestamp >= T0 - 3 * 3_600_000) & (frame.timestamp < T0 + 2 * 3_600_000)]
    store = open_store()
    try:
        store.write_candles(Candles.from_frame(frame, "binance", "BTC/USDT", "1m"), source="test slice")
    finally:
        store.close()
    result = json.loads(
        _invoke(["predictions", "outcomes", "--symbol", "BTC/USDT", "--timeframe", "1m", "--model", "cnn", "--save", "--json"])
    )
    assert {t: r["count"] for t, r in result.items() if t.startswith("return")} == {
        "return_1m": 10, "return_5m": 10, "return_15m": 10, "return_60m": 10,
    }  # fmt: skip
    assert result["pivot_L2"]["count"] == 10 and 0.0 <= result["pivot_L2"]["hit_rate"] <= 1.0
    store = open_store()
    try:
        stored = PredictionRepository(store).outcomes(PredictionFilter("cnn"))
    finally:
        store.close()
    assert len(stored) == sum(r["count"] for r in result.values()) == 50
    assert all(r.known_at > r.as_of for r in stored)
