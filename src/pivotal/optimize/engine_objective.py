"""The ``Objective`` adapter for any registered strategy: one event-engine backtest per configuration.

Strategies without a vectorised sweep (``sma_cross``, and every new one) are optimised through the same event engine
that ``pivotal backtest`` uses (``pivotal.execution.backtest``), so an optimised configuration backtests to the same
trades. The grid comes from the strategy's registered search space: ``("int", lo, hi, step)`` -> every step,
``("float", lo, hi)`` -> ``FLOAT_POINTS`` evenly spaced values, ``("choice", [...])`` -> the values.

Window semantics: the engine runs on the bars up to the window's end, entries only from decisions inside the window
(``trade_window``), so indicators warm up from bar 0 and **every trade is closed at the window's end** at the latest
(end of data, EOD). A strategy of unbounded holding time (a moving-average cross) thus never carries an in-sample
trade into the test window (``max_hold_bars`` is 0: no purge needed beyond the gap). Configurations the strategy
rejects (e.g. ``fast >= slow``) score as zero trades, i.e. ``-inf``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pivotal.core.errors import UserInputError
from pivotal.core.metrics import TRADE_METRICS, trade_stats
from pivotal.data.candles import Candles
from pivotal.execution.backtest import backtest
from pivotal.optimize.objective import Metrics, TradeReturns, Window
from pivotal.optimize.space import GridSpace
from pivotal.strategies.registry import StrategySpec

FLOAT_POINTS = 11


def grid_of(spec: StrategySpec) -> GridSpace:
    """The strategy's registered search space as a finite grid (parameters without a space keep their default)."""
    dims: dict[str, tuple[Any, ...]] = {}
    for name, entry in spec.space.items():
        kind = entry[0]
        if kind == "int":
            _, lo, hi, step = entry
            dims[name] = tuple(range(int(lo), int(hi) + 1, int(step)))
        elif kind == "float":
            _, lo, hi = entry
            dims[name] = tuple(float(v) for v in np.linspace(float(lo), float(hi), FLOAT_POINTS))
        elif kind == "choice":
            dims[name] = tuple(entry[1])
        else:
            raise ValueError(f"strategy {spec.name}: search space {name}={entry!r} is not int, float or choice")
    return GridSpace.from_mapping(dims)


class EngineObjective:
    """A registered strategy on one market; each configuration is one event-engine backtest per window segment."""

    max_hold_bars = 0  # trades are closed at the window's end (see the module docstring)

    def __init__(self, spec: StrategySpec, candles: Candles) -> None:
        self.spec = spec
        self.candles = candles
        self._space = grid_of(spec)

    @property
    def space(self) -> GridSpace:
        return self._space

    @property
    def timestamps(self) -> np.ndarray:
        return self.candles.ts

    def _trades(self, index: int, window: Window) -> list[Any]:
        try:
            params = self.spec.validate(self._space.params_of(int(index)))
        except UserInputError:
            return []  # a combination the strategy refuses (e.g. fast >= slow): no trades, scored -inf
        trades: list[Any] = []
        for seg in window.segments:
            result = backtest(self.spec.factory(params), self.candles.slice(0, seg.end), trade_window=(seg.start, seg.end))
            trades.extend(result.trades)
        return trades

    def evaluate_indices(self, indices: np.ndarray, window: Window) -> Metrics:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        rows = [trade_stats(np.array([t.net_return for t in self._trades(int(i), window)], dtype=np.float64)) for i in idx]
        table = np.array(rows, dtype=np.float64).reshape(len(idx), len(TRADE_METRICS))
        return {name: table[:, q].astype(np.int64) if name == "trades" else table[:, q] for q, name in enumerate(TRADE_METRICS)}

    def trade_returns(self, index: int, window: Window) -> TradeReturns:
        trades = self._trades(index, window)
        return TradeReturns(
            np.array([t.entry_bar for t in trades], dtype=np.int64),
            np.array([t.exit_bar for t in trades], dtype=np.int64),
            np.array([t.net_return for t in trades], dtype=np.float64),
        )
