"""The ``Objective`` adapter for LIQUIDITY SWEEP V3 (``pivotal.strategies.ls3_sweep``) on one market."""

from __future__ import annotations

import numpy as np

from pivotal.data.candles import Candles
from pivotal.optimize.objective import Metrics, TradeReturns, Window
from pivotal.optimize.space import GridSpace
from pivotal.strategies.ls3_sweep import LS3_GRID, LS3Market, evaluate_index, evaluate_many, prepare_market

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

    def evaluate_indices(self, indices: np.ndarray, window: Window) -> Metrics:
        table = evaluate_many(self.market, np.asarray(indices, dtype=np.int64), window.start, window.end)
        return {name: np.asarray(values) for name, values in table.items() if name != "index"}

    def trade_returns(self, index: int, window: Window) -> TradeReturns:
        trades = evaluate_index(self.market, index, window.start, window.end).trades
        return TradeReturns(
            np.array([t.entry_bar for t in trades], dtype=np.int64),
            np.array([t.exit_bar for t in trades], dtype=np.int64),
            trades.returns,
        )
