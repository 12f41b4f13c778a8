"""The LS3 first-pierce index (``ls3_pierce``) against a plain scan on real data, and off-grid parity through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, run_backtest
from pivotal.strategies.ls3 import pierce as ls3_pierce
from pivotal.strategies.ls3.params import LS3_GRID, LS3Params
from pivotal.strategies.ls3.strategy import LiquiditySweepV3
from pivotal.strategies.ls3.sweep import PIERCE_HORIZON, LS3Market, evaluate, prepare_market

SLICES = {
    "binance-1m": ("binance/BTCUSDT-1m-2024.parquet", 0, 4_000),
    "coinbase-4h": ("coinbase/BTCUSD-4h.parquet", 8_000, 1_200),
}
_CACHE: dict[str, tuple[Candles, LS3Market]] = {}


def load(shared_data: Path, name: str) -> tuple[Candles, LS3Market]:
    if name not in _CACHE:
        path, offset, size = SLICES[name]
        c = Candles.from_arrow(pq.read_table(shared_data / path)).slice(offset, offset + size)
        _CACHE[name] = (c, prepare_market(c.open, c.high, c.low, c.close, c.volume, c.ts))
    return _CACHE[name]


def scanned_pierce(m: LS3Market, pierce_depth: float, lookback: int) -> np.ndarray:
    """Reference: per level, the first bar in [max(conf + 1, warmup), min(index + lookback, n - 1)] whose low (high)
    reaches the threshold, by a plain scan of every bar; -1 if none."""
    n, out = len(m), np.full(m.lvl_index.size, -1, np.int64)
    for i, (index, price, conf, side) in enumerate(zip(m.lvl_index, m.lvl_price, m.lvl_conf, m.lvl_side, strict=True)):
        a, b = max(conf + 1, m.constants.warmup), min(index + lookback, n - 1)
        if side > 0:
            hits = np.flatnonzero(m.low[a : b + 1] <= price * (1 - pierce_depth))
        else:
            hits = np.flatnonzero(m.high[a : b + 1] >= price * (1 + pierce_depth))
        if hits.size:
            out[i] = a + hits[0]
    return out


def indexed_pierce(m: LS3Market, pierce_depth: float, lookback: int) -> np.ndarray:
    """The same through the index, resolved the way ``ls3_kernels.episodes`` resolves it."""
    column = ls3_pierce.pierce_column(m.pierce_records, m.lvl_price, m.lvl_side, pierce_depth)
    out = np.full(m.lvl_index.size, -1, np.int64)
    for i, s in enumerate(column):
        b = min(m.lvl_index[i] + lookback, len(m) - 1)
        if 0 <= s <= b:
            out[i] = s
        elif s < 0 and b > m.lvl_index[i] + PIERCE_HORIZON:
            thr = m.lvl_price[i] * (1 - pierce_depth) if m.lvl_side[i] > 0 else m.lvl_price[i] * (1 + pierce_depth)
            resume = int(m.pierce_records[3][i])
            out[i] = ls3_pierce.first_pierce(m.low, m.high, m.next_lower, m.next_higher, resume, b, thr, m.lvl_side[i] > 0)
    return out


@pytest.mark.parametrize("name", list(SLICES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pierce_depth=st.floats(0.0, 0.02), lookback=st.integers(1, 3 * PIERCE_HORIZON))
def test_index_equals_a_plain_scan_for_any_depth_and_lookback(
    shared_data: Path, name: str, pierce_depth: float, lookback: int
) -> None:
    _, market = load(shared_data, name)
    assert indexed_pierce(market, pierce_depth, lookback).tolist() == scanned_pierce(market, pierce_depth, lookback).tolist()


def test_lookbacks_past_the_records_continue_along_the_chain(shared_data: Path) -> None:
    """Non-vacuous: some levels are first pierced only after index + horizon, and the index finds exactly those."""
    _, market = load(shared_data, "coinbase-4h")
    within = scanned_pierce(market, 0.004, PIERCE_HORIZON)
    beyond = scanned_pierce(market, 0.004, 3 * PIERCE_HORIZON)
    late = (within < 0) & (beyond >= 0)
    assert late.sum() >= 5
    assert np.array_equal(indexed_pierce(market, 0.004, 3 * PIERCE_HORIZON), beyond)


@pytest.mark.parametrize("name", list(SLICES))
def test_grid_table_equals_one_column_per_depth(shared_data: Path, name: str) -> None:
    _, market = load(shared_data, name)
    for d, depth in enumerate(LS3_GRID["pierce_depth"]):
        column = ls3_pierce.pierce_column(market.pierce_records, market.lvl_price, market.lvl_side, depth)
        assert market.pierce_at[d].tolist() == column.tolist()
        assert (column >= 0).sum() > 0


@pytest.mark.parametrize(
    "params",
    [
        LS3Params(0.0017, 3, 1.7, 0.6, 320, 1.0, 2.0),
        LS3Params(0.0005, 4, 1.5, 0.5, 450, 0.7, 2.2),
        LS3Params(0.003, 2, 1.5, 0.5, 7),
    ],
)
def test_off_grid_and_long_lookback_configurations_match_the_event_engine(shared_data: Path, params: LS3Params) -> None:
    candles, market = load(shared_data, "coinbase-4h")
    fast = evaluate(market, params)
    slow = run_backtest(candles, LiquiditySweepV3(params), BacktestConfig(fee_rate=0.001, slippage=0.0005, sparse=False))
    assert [t.net_return for t in fast.trades] == slow.trades.returns.tolist()
    assert [(t.signal_bar, t.exit_bar, t.exit_reason) for t in fast.trades] == [
        (t.signal_bar, t.exit_bar, t.exit_reason) for t in slow.trades
    ]
    assert len(fast.trades) > 0


def test_evaluate_caches_grid_episodes_and_gives_the_same_trades(shared_data: Path) -> None:
    _, market = load(shared_data, "binance-1m")
    params = LS3Params(0.0005, 3, 1.5, 0.5, 100, 1.0, 2.0)
    market._episodes.clear()
    first = evaluate(market, params)
    assert len(market._episodes) == 1
    again = evaluate(market, params)
    assert again.returns.tolist() == first.returns.tolist() and len(first.returns) > 0
