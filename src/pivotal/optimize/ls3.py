"""The ``Objective`` adapter for LIQUIDITY SWEEP V3 (``pivotal.strategies.ls3.sweep``) on one market."""

from __future__ import annotations

import numpy as np

from pivotal.core.metrics import TRADE_METRICS, trade_stats
from pivotal.data.candles import Candles
from pivotal.optimize.objective import Metrics, TradeReturns, Window
from pivotal.optimize.space import GridSpace
from pivotal.strategies.ls3.sweep import LS3_GRID, LS3Market, evaluate_index, evaluate_many, prepare_market

STRATEGY_NAME = "liquidity_sweep"


class LS3Objective:
    """All 201,600 LS3 grid points on one prepared market; signals restricted to the window, warm-up from bar 0."""

    def __init__(self, market: LS3Market) -> None:
        self.market = market
        self._space = GridSpace.from_mapping(LS3_GRID)

    @classmethod
    def from_candles(cls, candles: Candles) -> LS3Objective:
        c = candles
        return cls(prepare_market(c.open, c.high, c.low, c.close, c.volume, c.ts))

    @property
    def space(self) -> GridSpace:
        return self._space

    @property
    def timestamps(self) -> np.ndarray:
        return self.market.ts

    @property
    def max_hold_bars(self) -> int:
        """A position opens at the bar after the signal and is closed at the latest at signal bar + this."""
        return int(self.market.constants.max_hold_bars)

    def evaluate_indices(self, indices: np.ndarray, window: Window) -> Metrics:
        idx = np.asarray(indices, dtype=np.int64)
        if window.exclude:
            return self._evaluate_segments(idx, window)
        table = evaluate_many(self.market, idx, window.start, window.end)
        return {name: np.asarray(values) for name, values in table.items() if name != "index"}

    def _evaluate_segments(self, indices: np.ndarray, window: Window) -> Metrics:
        """A window with embargoed holes: the trades of each segment, in time order, scored as one trade list.
        Slower than the one-window sweep (per-configuration trade lists), so only used when an embargo is set."""
        parts = [
            evaluate_many(self.market, indices, w.start, w.end, return_trades=True)["trade_returns"] for w in window.segments
        ]
        rows = [trade_stats(np.concatenate([np.asarray(p[k], dtype=np.float64) for p in parts])) for k in range(len(indices))]
        table = np.array(rows, dtype=np.float64).reshape(len(indices), len(TRADE_METRICS))
        return {name: table[:, q].astype(np.int64) if name == "trades" else table[:, q] for q, name in enumerate(TRADE_METRICS)}

    def trade_returns(self, index: int, window: Window) -> TradeReturns:
        trades = [t for w in window.segments for t in evaluate_index(self.market, index, w.start, w.end).trades]
        return TradeReturns(
            np.array([t.entry_bar for t in trades], dtype=np.int64),
            np.array([t.exit_bar for t in trades], dtype=np.int64),
            np.array([t.net_return for t in trades], dtype=np.float64),
        )
