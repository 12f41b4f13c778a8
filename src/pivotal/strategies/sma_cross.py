"""Long-only SMA crossover, the comparison strategy for the engine benchmarks (pivotal vs backtesting.py vs vectorbt).

Rules (the backtesting.py ``crossover`` convention): at the close of bar t, if ``fast[t-1] < slow[t-1]`` and
``fast[t] > slow[t]`` and no position is open, buy at the next open; if ``slow`` crosses above ``fast`` the same way
while long, sell at the next open. No stop, no target. Both an event :class:`SmaCross` (for the engine) and a
vectorised/numba :func:`sma_cross_trades` are provided; they give the same trades.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numba import njit

from pivotal.core.orders import Fill, Order
from pivotal.features.volatility import sma
from pivotal.strategies.base import BarContext
from pivotal.strategies.registry import StrategySpec, register


@dataclass(frozen=True)
class SmaCrossParams:
    fast: int = 10
    slow: int = 30

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"SMA cross needs 1 <= fast < slow (got fast={self.fast}, slow={self.slow})")


_ENTER = [Order.enter(+1)]
_EXIT = [Order.exit()]
_NONE: list[Order] = []


class SmaCross:
    """Event-driven version: keeps the last ``slow`` closes and the previous SMA values.

    The sums run over the window in time order each bar (not a running sum), so the SMAs are bit-identical to
    :func:`pivotal.features.volatility.sma` and the vectorised path."""

    def __init__(self, params: SmaCrossParams = SmaCrossParams()) -> None:
        self.params = params
        self._fast, self._slow = params.fast, params.slow
        self._closes: deque[float] = deque(maxlen=params.slow)
        self._prev: tuple[float, float] | None = None
        self._up: np.ndarray | None = None  # bulk signals once ``wake_bars`` ran
        self._down: np.ndarray | None = None

    def wake_bars(self, candles: Any) -> np.ndarray:
        """Sparse driving (see ``execution.engine``): the SMAs in bulk (bit-identical to the per-bar sums); the
        strategy acts only at crosses, so only those bars are events. Switches this instance to the bulk signals."""
        close = np.ascontiguousarray(candles.close, dtype=np.float64)
        fast, slow = sma(close, self._fast), sma(close, self._slow)
        up = np.zeros(close.shape[0], bool)
        down = np.zeros(close.shape[0], bool)
        up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
        down[1:] = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
        self._up, self._down = up, down
        return np.flatnonzero(up | down)

    def on_bar(self, ctx: BarContext) -> list[Order]:
        if self._up is not None and self._down is not None:
            t = ctx.bar.index
            if self._up[t] and ctx.position is None:
                return _ENTER
            if self._down[t] and ctx.position is not None:
                return _EXIT
            return _NONE
        closes = self._closes
        closes.append(ctx.bar.close)
        slow_n = self._slow
        if len(closes) < slow_n:
            return _NONE
        window = list(closes)
        cur = (_sum(window[slow_n - self._fast :]) / self._fast, _sum(window) / slow_n)
        prev, self._prev = self._prev, cur
        if prev is None:
            return _NONE
        if prev[0] < prev[1] and cur[0] > cur[1] and ctx.position is None:
            return _ENTER
        if prev[0] > prev[1] and cur[0] < cur[1] and ctx.position is not None:
            return _EXIT
        return _NONE

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


def _loop_sum(values: list[float]) -> float:
    """Sum in time order, as :func:`pivotal.features.volatility.sma` does, so both paths agree bit for bit."""
    total = 0.0
    for v in values:
        total += v
    return total


# CPython < 3.12 ``sum`` of floats adds in order with plain doubles (the same bits, ~10x faster); 3.12 switched to a
# compensated sum, which would differ from ``sma`` in the last bit.
_sum = sum if sys.version_info < (3, 12) else _loop_sum


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


def _factory(params: dict[str, Any]) -> SmaCross:
    return SmaCross(SmaCrossParams(**params))


SPEC = register(
    StrategySpec(
        name="sma_cross",
        factory=_factory,
        defaults=asdict(SmaCrossParams()),
        space={"fast": ("int", 2, 50, 1), "slow": ("int", 10, 200, 5)},
        description="long-only SMA crossover (buy fast > slow, sell on the cross back); engine comparisons",
    )
)
