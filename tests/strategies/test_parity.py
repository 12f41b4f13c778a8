"""Parity on real data: the event-driven engine (reference) and the numba sweep give identical trades and metrics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.core.metrics import TRADE_METRICS
from pivotal.core.trades import Trade
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, run_backtest
from pivotal.strategies.ls3.params import LS3_GRID, LS3Params, grid_choices, grid_index, grid_point, grid_size
from pivotal.strategies.ls3.strategy import LiquiditySweepV3
from pivotal.strategies.ls3.sweep import LS3Market, evaluate, evaluate_many, prepare_market
from pivotal.strategies.sma_cross import SmaCross, SmaCrossParams, sma_cross_trades

SERIES = {
    "binance-1h": ("binance/BTCUSDT-1h-2018-2026.parquet", 20_000, 1_200),
    "coinbase-4h": ("coinbase/BTCUSD-4h.parquet", 8_000, 1_200),
}
_CACHE: dict[str, tuple[Candles, LS3Market]] = {}


def load(shared_data: Path, name: str) -> tuple[Candles, LS3Market]:
    if name not in _CACHE:
        path, offset, size = SERIES[name]
        c = Candles.from_arrow(pq.read_table(shared_data / path), timeframe=path.split("-")[1].split(".")[0])
        c = c.slice(offset, offset + size)
        _CACHE[name] = (c, prepare_market(c.open, c.high, c.low, c.close, c.volume, c.ts))
    return _CACHE[name]


def key(trades: Iterable[Trade]) -> list[tuple]:
    """Everything a trade record holds, for exact comparison (floats compared bit for bit)."""
    return [astuple(t) for t in trades]


def loose_indices() -> st.SearchStrategy[int]:
    """Grid points biased to permissive thresholds (many trades), so parity is tested on real trade lists."""
    return st.builds(
        lambda pd, rc, vst, rcs, lb, sd, tm: grid_index(LS3Params(pd, rc, vst, rcs, lb, sd, tm)),
        st.sampled_from(LS3_GRID["pierce_depth"][:3]),
        st.sampled_from(LS3_GRID["rejection_candles"]),
        st.sampled_from(LS3_GRID["volume_spike_threshold"][:3]),
        st.sampled_from(LS3_GRID["reversal_candle_size"][:3]),
        st.sampled_from(LS3_GRID["key_level_lookback"]),
        st.sampled_from(LS3_GRID["stop_distance"]),
        st.sampled_from(LS3_GRID["target_multiple"]),
    )


@pytest.mark.parametrize("name", list(SERIES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.one_of(loose_indices(), st.integers(0, grid_size() - 1)))
def test_event_engine_equals_sweep_on_real_data(shared_data: Path, name: str, index: int) -> None:
    candles, market = load(shared_data, name)
    params = grid_point(index)
    fast = evaluate(market, params)
    slow = run_backtest(candles, LiquiditySweepV3(params), BacktestConfig(fee_rate=0.001, slippage=0.0005, sparse=False))
    assert key(fast.trades) == key(slow.trades)
    for metric in TRADE_METRICS:
        assert fast.metrics[metric] == slow.metrics[metric], metric
    many = evaluate_many(market, np.array([index]), return_trades=True)
    assert many["trade_returns"][0].tolist() == fast.returns.tolist()
    for metric in TRADE_METRICS:
        assert many[metric][0] == fast.metrics[metric], metric


def test_parity_produces_trades_of_every_kind(shared_data: Path) -> None:
    """Guard against a vacuous parity test: the loose corner of the grid trades a lot, both directions, all exits."""
    _, market = load(shared_data, "binance-1h")
    reasons, directions = set(), set()
    for sd, tm in ((0.5, 1.5), (2.0, 4.0)):
        stats = evaluate(market, LS3Params(0.0005, 5, 1.5, 0.5, 200, sd, tm))
        reasons |= {t.exit_reason for t in stats.trades}
        directions |= {t.direction for t in stats.trades}
        assert len(stats.trades) >= 20
    assert directions == {1, -1}
    assert {"SL", "TP", "TIME"} <= reasons


@pytest.mark.parametrize(("start", "end"), [(300, 800), (0, 600), (900, None)])
def test_window_parity(shared_data: Path, start: int, end: int | None) -> None:
    candles, market = load(shared_data, "coinbase-4h")
    params = LS3Params(0.0005, 3, 1.5, 0.5, 100, 1.0, 2.0)
    fast = evaluate(market, params, start, end)
    cfg = BacktestConfig(fee_rate=0.001, slippage=0.0005, trade_window=(start, end), sparse=False)
    slow = run_backtest(candles, LiquiditySweepV3(params), cfg)
    assert key(fast.trades) == key(slow.trades)
    assert all(start <= t.signal_bar < (end or len(candles)) for t in fast.trades)
    assert len(fast.trades) > 0


def test_evaluate_many_matches_evaluate_over_a_random_sample(shared_data: Path) -> None:
    _, market = load(shared_data, "binance-1h")
    rng = np.random.default_rng(3)
    indices = rng.integers(0, grid_size(), 300)
    many = evaluate_many(market, indices, start=200, end=1200)
    assert many["index"].tolist() == indices.tolist()
    for j in rng.choice(indices.size, 40, replace=False):
        one = evaluate(market, grid_point(int(indices[j])), 200, 1200)
        for metric in TRADE_METRICS:
            assert many[metric][j] == one.metrics[metric], (indices[j], metric)


def test_grid_decoding_is_mixed_radix_with_the_last_dimension_fastest() -> None:
    assert grid_size() == 6 * 5 * 8 * 7 * 5 * 4 * 6 == 201_600
    assert grid_point(0) == LS3Params(0.0005, 1, 1.5, 0.5, 20, 0.5, 1.5)
    assert grid_point(1).target_multiple == 2.0
    assert grid_point(6).stop_distance == 1.0
    assert grid_point(grid_size() - 1) == LS3Params(0.005, 5, 5.0, 2.0, 200, 2.0, 4.0)
    sample = np.random.default_rng(0).integers(0, grid_size(), 200)
    assert [grid_index(grid_point(int(i))) for i in sample] == sample.tolist()
    assert grid_choices(np.array([201_599])).tolist() == [[5, 4, 7, 6, 4, 3, 5]]
    with pytest.raises(IndexError, match="grid index"):
        grid_point(grid_size())
    with pytest.raises(ValueError, match="not a grid value"):
        grid_index(LS3Params(pierce_depth=0.0042))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=loose_indices(), cut=st.integers(300, 1_100))
def test_no_lookahead_a_prefix_gives_the_same_trades(shared_data: Path, index: int, cut: int) -> None:
    """Causality: trades that finished before the prefix ends are identical with and without the later bars."""
    candles, market = load(shared_data, "coinbase-4h")
    head = candles.slice(0, cut)
    short = prepare_market(head.open, head.high, head.low, head.close, head.volume, head.ts)
    params = grid_point(index)
    done = key(t for t in evaluate(market, params).trades if t.exit_bar < cut - 1)
    assert key(t for t in evaluate(short, params).trades if t.exit_bar < cut - 1) == done


@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (5, 20)])
def test_sma_cross_vectorised_equals_event_engine(shared_data: Path, fast: int, slow: int) -> None:
    candles, _ = load(shared_data, "binance-1h")
    p = SmaCrossParams(fast, slow)
    vec = sma_cross_trades(candles.open, candles.close, p, fee=0.001, slip=0.0005)
    res = run_backtest(candles, SmaCross(p), BacktestConfig(fee_rate=0.001, slippage=0.0005, sparse=False))
    assert len(res.trades) > 10
    assert [t.entry_bar for t in res.trades] == vec["entry_bar"].tolist()
    assert [t.exit_bar for t in res.trades] == vec["exit_bar"].tolist()
    assert res.trades.returns.tolist() == vec["net_return"].tolist()


@pytest.mark.parametrize("name", list(SERIES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.one_of(loose_indices(), st.integers(0, grid_size() - 1)), window=st.sampled_from([(0, None), (300, 900)]))
def test_sparse_driving_equals_every_bar_for_ls3(shared_data: Path, name: str, index: int, window: tuple) -> None:
    """The engine's sparse mode (wake-up bars from the bulk signals) gives the same trades, equity and blocked
    count as feeding every bar to the incremental event form."""
    candles, _ = load(shared_data, name)
    params = grid_point(index)
    every = run_backtest(candles, LiquiditySweepV3(params), BacktestConfig(trade_window=window, sparse=False))
    sparse = run_backtest(candles, LiquiditySweepV3(params), BacktestConfig(trade_window=window))
    assert key(sparse.trades) == key(every.trades)
    assert np.array_equal(sparse.equity.equity, every.equity.equity)
    assert np.array_equal(sparse.equity.in_position, every.equity.in_position)
    assert sparse.blocked_entries == every.blocked_entries and sparse.metrics == every.metrics


@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (5, 20)])
def test_sparse_driving_equals_every_bar_for_sma_cross(shared_data: Path, fast: int, slow: int) -> None:
    candles, _ = load(shared_data, "binance-1h")
    p = SmaCrossParams(fast, slow)
    every = run_backtest(candles, SmaCross(p), BacktestConfig(sparse=False))
    sparse = run_backtest(candles, SmaCross(p), BacktestConfig())
    assert len(every.trades) > 10 and key(sparse.trades) == key(every.trades)
    assert np.array_equal(sparse.equity.equity, every.equity.equity)
    assert np.array_equal(sparse.equity.in_position, every.equity.in_position)
