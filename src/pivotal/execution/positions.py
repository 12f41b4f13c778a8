"""Position targets (+1 long, -1 short, 0 flat per bar, e.g. a DQN policy's actions) through the execution model.

A target decided at the close of bar t fills at ``open[t+1]`` like any order (fees and slippage per side, a reversal
is an exit then an entry at that open); a position still held at the end exits at the last close (EOD). The per-step
return of step t is ``ln(equity[t+1] / equity[t])``, equity marked at each close by the portfolio, so the steps of a
trade add up to ``ln(1 + net_return)`` of that trade and the whole series to the log of the final equity.
"""

from __future__ import annotations

import numpy as np

from pivotal.core.orders import Fill, Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine
from pivotal.strategies.base import BarContext

_EXIT = Order.exit("target")
_ENTER = {1: Order.enter(+1, tag="target"), -1: Order.enter(-1, tag="target")}


class TargetPositions:
    """A strategy that moves the position to ``target`` (set before each decision, or read from ``targets[t]``)."""

    def __init__(self, targets: np.ndarray | None = None) -> None:
        self.targets = None if targets is None else np.sign(np.asarray(targets, np.float64)).astype(np.int64).tolist()
        self.target = 0

    def on_bar(self, ctx: BarContext) -> list[Order]:
        t = ctx.bar.index
        if self.targets is not None:
            if t >= len(self.targets):
                return []
            self.target = self.targets[t]
        held = 0 if ctx.position is None else ctx.position.direction
        want = self.target
        if want == held:
            return []
        orders = [_EXIT] if held else []
        if want:
            orders.append(_ENTER[want])
        return orders

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


def decision_candles(close: np.ndarray, open_: np.ndarray | None = None, ts: np.ndarray | None = None) -> Candles:
    """Bars for position targets: only open and close matter (no brackets). Without ``open_`` the next open is taken
    to be the decision close (``open[t+1] = close[t]``, gapless 24/7 markets)."""
    c = np.ascontiguousarray(close, dtype=np.float64)
    o = np.r_[c[:1], c[:-1]] if open_ is None else np.ascontiguousarray(open_, dtype=np.float64)
    if o.shape != c.shape:
        raise ValueError(f"open ({o.shape[0]}) and close ({c.shape[0]}) must have one length")
    times = np.arange(c.shape[0], dtype=np.int64) if ts is None else np.asarray(ts, np.int64)
    return Candles(times, o, np.maximum(o, c), np.minimum(o, c), c, np.zeros_like(c))


def target_position_run(
    positions: np.ndarray, close: np.ndarray, fee: float, slippage: float, open_: np.ndarray | None = None
) -> tuple[np.ndarray, BacktestResult]:
    """Per-step log returns (length ``len(close) - 1``) and the engine's result of holding ``positions[t]`` from the
    open after bar t (``positions[t]`` for t < len(close) - 1 are used; the last bar's decision never fills)."""
    n = len(close)
    targets = np.asarray(positions, np.float64)[: max(n - 1, 0)]
    result = EventEngine(decision_candles(close, open_), BacktestConfig(fee_rate=fee, slippage=slippage)).run(
        TargetPositions(targets)
    )
    eq = result.equity.equity
    return np.log(eq[1:] / eq[:-1]), result
