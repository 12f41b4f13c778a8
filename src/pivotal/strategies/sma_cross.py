"""Long-only SMA crossover, the comparison strategy for the engine benchmarks (pivotal vs backtesting.py vs vectorbt).

Rules (the backtesting.py ``crossover`` convention): at the close of bar t, if ``fast[t-1] < slow[t-1]`` and
``fast[t] > slow[t]`` and no position is open, buy at the next open; if ``slow`` crosses above ``fast`` the same way
while long, sell at the next open. No stop, no target. Both an event :class:`SmaCross` (for the engine) and a
vectorised/numba :func:`sma_cross_trades` are provided; they give the same trades.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numba import njit

from pivotal.backtest.strategy import BarContext, Fill, Order
from pivotal.features.volatility import sma


@dataclass(frozen=True)
class SmaCrossParams:
    fast: int = 10
    slow: int = 30

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"SMA cross needs 1 <= fast < slow (got fast={self.fast}, slow={self.slow})")


class SmaCross:
    """Event-driven version: keeps the last ``slow`` closes and the previous SMA values."""

    def __init__(self, params: SmaCrossParams = SmaCrossParams()) -> None:
        self.params = params
        self._closes: deque[float] = deque(maxlen=params.slow)
        self._prev: tuple[float, float] | None = None

    def on_bar(self, ctx: BarContext) -> list[Order]:
        self._closes.append(ctx.bar.close)
        if len(self._closes) < self.params.slow:
            return []
        cur = (_mean_last(self._closes, self.params.fast), _mean_last(self._closes, self.params.slow))
        prev, self._prev = self._prev, cur
        if prev is None:
            return []
        if prev[0] < prev[1] and cur[0] > cur[1] and ctx.position is None:
            return [Order.enter(+1)]
        if prev[0] > prev[1] and cur[0] < cur[1] and ctx.position is not None:
            return [Order.exit()]
        return []

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


def _mean_last(values: deque[float], period: int) -> float:
    """Sum in time order, as :func:`pivotal.features.volatility.sma` does, so both paths agree bit for bit."""
    total = 0.0
    for v in list(values)[-period:]:
        total += v
    return total / period


@njit(cache=True)
def _cross_trades(open_: np.ndarray, close: np.ndarray, fast: np.ndarray, slow: np.ndarray, fee: float, slip: float):
    n = close.shape[0]
    entry = np.empty(n // 2 + 1, np.int64)
    exit_ = np.empty(n // 2 + 1, np.int64)
    k = 0
    holding = False
    for t in range(1, n - 1):
        up = fast[t - 1] < slow[t - 1] and fast[t] > slow[t]
        down = fast[t - 1] > slow[t - 1] and fast[t] < slow[t]
        if up and not holding:
            entry[k] = t + 1
            holding = True
        elif down and holding:
            exit_[k] = t + 1
            k += 1
            holding = False
    if holding:
        exit_[k] = n - 1  # EOD: the last close
        k += 1
    entry, exit_ = entry[:k], exit_[:k]
    ef = open_[entry] * (1 + slip)
    raw_exit = open_[exit_].copy()
    if holding:
        raw_exit[k - 1] = close[n - 1]
    xf = raw_exit * (1 - slip)
    net = (xf - ef) / ef - fee * (1 + xf / ef)
    return entry, exit_, ef, xf, net


def sma_cross_trades(
    open_: np.ndarray, close: np.ndarray, params: SmaCrossParams = SmaCrossParams(), fee: float = 0.0, slip: float = 0.0
) -> dict[str, np.ndarray]:
    """Vectorised path: entry/exit bars, fills and net returns of every trade (a trade open at the end exits EOD)."""
    o = np.ascontiguousarray(open_, dtype=np.float64)
    c = np.ascontiguousarray(close, dtype=np.float64)
    entry, exit_, ef, xf, net = _cross_trades(o, c, sma(c, params.fast), sma(c, params.slow), fee, slip)
    return {"entry_bar": entry, "exit_bar": exit_, "entry_fill": ef, "exit_fill": xf, "net_return": net}
