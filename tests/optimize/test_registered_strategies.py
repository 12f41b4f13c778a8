"""Any registered strategy can be optimised (sma_cross through the event engine per configuration); a job is checked
before its record is created."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.execution.backtest import backtest
from pivotal.optimize.engine_objective import FLOAT_POINTS, EngineObjective, grid_of
from pivotal.optimize.jobs import JobRepository, JobStatus
from pivotal.optimize.ls3 import LS3Objective
from pivotal.optimize.objective import Window
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.pipeline import OptimizeSpec
from pivotal.optimize.service import OptimizationJobs, objective_for
from pivotal.strategies.registry import StrategySpec, get_strategy


@pytest.fixture(scope="module")
def btc_1d(shared_data: Path) -> Candles:
    frame = pd.read_parquet(shared_data / "coinbase" / "BTCUSD-1d.parquet")
    return Candles.from_frame(frame, exchange="coinbase", symbol="BTC/USD", timeframe="1d")


@pytest.mark.unit
def test_grid_of_a_registered_search_space() -> None:
    spec = StrategySpec(
        "toy", lambda p: None, {"n": 3, "x": 0.5, "mode": "a"}, {"n": ("int", 2, 10, 4), "x": ("float", 0.0, 1.0),
                                                                  "mode": ("choice", ["a", "b"])},
    )  # fmt: skip
    space = grid_of(spec)
    assert space.names == ("n", "x", "mode")
    assert dict(space.dimensions)["n"] == (2, 6, 10)
    assert len(dict(space.dimensions)["x"]) == FLOAT_POINTS and dict(space.dimensions)["x"][5] == 0.5
    assert space.size == 3 * FLOAT_POINTS * 2


@pytest.mark.unit
def test_unknown_strategy_lists_the_registered_ones() -> None:
    with pytest.raises(UserInputError, match=r"unknown strategy 'nope'; registered: .*liquidity_sweep.*sma_cross"):
        objective_for("nope", Candles.empty())


def test_sweep_and_engine_objectives(btc_1d: Candles) -> None:
    assert isinstance(objective_for("liquidity_sweep", btc_1d), LS3Objective)
    objective = objective_for("sma_cross", btc_1d)
    assert isinstance(objective, EngineObjective) and objective.max_hold_bars == 0


def test_engine_objective_is_the_backtest_with_trades_closed_at_the_window_end(btc_1d: Candles) -> None:
    objective = EngineObjective(get_strategy("sma_cross"), btc_1d)
    index = objective.space.index_of_params({"fast": 10, "slow": 30})
    window = Window(400, 900)
    got = objective.trade_returns(index, window)
    want = backtest("sma_cross", btc_1d.slice(0, 900), params={"fast": 10, "slow": 30}, trade_window=(400, 900)).trades
    assert len(got.returns) == len(want) > 5
    assert np.array_equal(got.returns, want.returns)
    assert got.exit_bar.max() <= 899 and got.entry_bar.min() >= 401
    metrics = objective.evaluate_indices(np.array([index, objective.space.index_of_params({"fast": 40, "slow": 10})]), window)
    assert metrics["trades"].tolist() == [len(want), 0]  # fast >= slow: no trades, scored -inf
    # an embargoed hole: the two segments' trades, each closed at its segment's end
    holed = objective.trade_returns(index, Window(400, 900, ((600, 650),)))
    a = backtest("sma_cross", btc_1d.slice(0, 600), params={"fast": 10, "slow": 30}, trade_window=(400, 600)).trades
    b = backtest("sma_cross", btc_1d.slice(0, 900), params={"fast": 10, "slow": 30}, trade_window=(650, 900)).trades
    assert np.array_equal(holed.returns, np.concatenate([a.returns, b.returns]))


def test_sma_cross_is_optimised_walk_forward(btc_1d: Candles, tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write_candles(btc_1d, source="coinbase/BTCUSD-1d.parquet")
    jobs = OptimizationJobs(Settings(data_dir=tmp_path), store, LocalRunner(1))
    spec = OptimizeSpec("coinbase", ("BTC/USD",), ("1d",), strategy="sma_cross", samples=6, min_trades=2,
                        walk_forward="720/0/360", pbo_candidates=6)  # fmt: skip
    job = jobs.start(spec, "sma")
    configs = jobs.service.run(job.id)
    assert jobs.service.status(job.id).status is JobStatus.COMPLETED
    assert len(configs) == 1 and configs[0].strategy == "sma_cross"
    assert set(configs[0].parameters) == {"fast", "slow"}
    for fold in jobs.reports[0].walk_forward.folds:
        if fold.best_index >= 0:
            assert fold.params["fast"] < fold.params["slow"]
            assert np.all(fold.is_trades.exit_bar < fold.fold.test.start)
    store.close()


@pytest.mark.unit
def test_a_missing_series_or_strategy_is_refused_before_the_job_record(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "empty.duckdb")
    jobs = OptimizationJobs(Settings(data_dir=tmp_path), store, LocalRunner(1))
    with pytest.raises(DataNotFound, match="no stored candles for kraken XBT/EUR 1h"):
        jobs.start(OptimizeSpec("kraken", ("XBT/EUR",), ("1h",)), "missing")
    with pytest.raises(UserInputError, match="unknown strategy 'nope'"):
        jobs.start(OptimizeSpec("kraken", ("XBT/EUR",), ("1h",), strategy="nope"), "nope")
    assert JobRepository(store).list() == []
    store.close()
