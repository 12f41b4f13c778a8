"""Several symbols: the merged equity curve ends at the portfolio's equity after every symbol's end-of-data exit."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.core.orders import Fill, Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, EventEngine
from pivotal.strategies.base import BarContext

pytestmark = pytest.mark.unit
HOUR = 3_600_000


def _bars(symbol: str, closes: list[float]) -> Candles:
    c = np.asarray(closes, np.float64)
    ts = np.arange(len(c), dtype=np.int64) * HOUR
    return Candles(ts, c, c + 1, c - 1, c, np.ones(len(c)), "x", symbol, "1h")


class BuyAtFirstBar:
    """Holds A to the end; B (merged after A at each time) never trades."""

    def on_bar(self, ctx: BarContext) -> list[Order]:
        return [Order.enter(+1, fraction=0.5)] if ctx.bar.index == 0 and ctx.bar.symbol == "A" else []

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


def test_the_last_point_includes_every_symbols_eod_exit() -> None:
    a, b = _bars("A", [100, 100, 110, 120]), _bars("B", [50, 50, 40, 30])
    res = EventEngine({"A": a, "B": b}, BacktestConfig(fee_rate=0.001, slippage=0.0)).run(BuyAtFirstBar())  # type: ignore[arg-type]
    assert [t.exit_reason for t in res.trades] == ["EOD"]
    realised = 1.0 + sum(0.5 * t.net_return for t in res.trades)
    assert res.equity.equity[-1] == pytest.approx(realised, abs=1e-12)
