"""Accounting properties of the event engine on random bars and random orders (hypothesis): the equity curve ends at
the compounded trade returns, one position at a time, fills at the next open, and sparse/every-bar stepwise driving
agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.core.orders import Fill, Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, EventEngine, run_backtest
from pivotal.strategies.base import BarContext

pytestmark = pytest.mark.unit


@st.composite
def market(draw: st.DrawFn) -> Candles:
    n = draw(st.integers(2, 60))
    moves = draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))
    close = 100.0 * np.cumprod(1.0 + np.array(moves))
    opens = np.r_[100.0, close[:-1]] * (1 + np.array(draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))))
    high = np.maximum(opens, close) * 1.01
    low = np.minimum(opens, close) * 0.99
    return Candles(np.arange(n, dtype=np.int64) * 3_600_000, opens, high, low, close, np.ones(n), timeframe="1h")


class Random:
    def __init__(self, plan: list[int]) -> None:
        self.plan, self.fills = plan, []

    def on_bar(self, ctx: BarContext) -> list[Order]:
        code = self.plan[ctx.bar.index % len(self.plan)]
        if code == 1:
            return [Order.enter(+1, stop_offset=3.0, target_offset=4.0, max_hold_bars=5)]
        if code == 2:
            return [Order.enter(-1, stop_offset=2.0)]
        if code == 3:
            return [Order.exit()]
        if code == 4:
            return [Order.exit(), Order.enter(+1)]
        return []

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


@settings(max_examples=150, deadline=None)
@given(c=market(), plan=st.lists(st.integers(0, 4), min_size=1, max_size=12), fee=st.sampled_from([0.0, 0.001]))
def test_equity_ends_at_the_compounded_trades_and_fills_are_next_opens(c: Candles, plan: list[int], fee: float) -> None:
    s = Random(plan)
    res = run_backtest(c, s, BacktestConfig(fee_rate=fee, slippage=0.0005))
    assert res.equity.equity[-1] == pytest.approx(math.prod(1 + r for r in res.trades.returns), rel=1e-12)
    for a, b in zip(res.trades, list(res.trades)[1:], strict=False):
        assert b.entry_bar >= a.exit_bar  # one position at a time
    for t in res.trades:
        assert t.signal_bar < t.entry_bar == t.signal_bar + 1  # decided at a close, filled at the next open
        assert t.entry_fill == pytest.approx(c.open[t.entry_bar] * (1 + 0.0005 * t.direction), rel=1e-15)
    entries = [f for f in s.fills if f.kind == "entry"]
    assert len(entries) == len(res.trades) and all(f.fee == pytest.approx(fee * f.quantity * f.price) for f in entries)


@settings(max_examples=60, deadline=None)
@given(c=market(), plan=st.lists(st.integers(0, 4), min_size=1, max_size=12))
def test_stepwise_driving_equals_the_loop(c: Candles, plan: list[int]) -> None:
    loop = run_backtest(c, Random(plan), BacktestConfig())
    engine, s = EventEngine(c, BacktestConfig()), Random(plan)
    for t in range(len(c)):
        engine.open_bar(s, t)
        engine.close_bar(s, t)
    stepped = engine.finish(s)
    assert stepped.trades == loop.trades and np.array_equal(stepped.equity.equity, loop.equity.equity)
