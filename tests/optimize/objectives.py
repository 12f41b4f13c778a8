"""A deterministic, pure-math objective for optimiser tests (no prices: the score is a known function of the grid).

Score = -(a - a*)² - (b - b*)² - (c - c*)² with the optimum (a*, b*, c*) drifting with the window start, so
walk-forward folds can pick different optima. Points with ``c == 0`` make only 5 "trades" (below any realistic
minimum), everything else 50.
"""

from __future__ import annotations

import time

import numpy as np

from pivotal.optimize.objective import Metrics, TradeReturns, Window
from pivotal.optimize.space import GridSpace

HOUR_MS = 3_600_000
T0 = 1_577_836_800_000  # 2020-01-01


class QuadraticObjective:
    def __init__(
        self, n_bars: int = 24 * 400, drift: bool = False, optimum: tuple[int, int, int] = (7, 3, 5), delay: float = 0.0
    ) -> None:
        self._space = GridSpace.from_mapping({"a": range(10), "b": range(10), "c": range(8)})
        self._ts = T0 + np.arange(n_bars, dtype=np.int64) * HOUR_MS
        self.drift = drift
        self.optimum = optimum
        self.calls = 0
        self.delay = delay  # seconds per evaluate call: lets the resume test kill a study mid-way
        self.evaluated: list[int] = []

    @property
    def space(self) -> GridSpace:
        return self._space

    @property
    def timestamps(self) -> np.ndarray:
        return self._ts

    def optimum_for(self, window: Window) -> tuple[int, int, int]:
        shift = (window.start // (24 * 7)) % 3 if self.drift else 0
        a, b, c = self.optimum
        return (a - shift, b + shift, c)

    def evaluate_indices(self, indices: np.ndarray, window: Window) -> Metrics:
        self.calls += 1
        self.evaluated.extend(int(i) for i in indices)
        if self.delay:
            time.sleep(self.delay)
        choices = np.array([self._space.choices_of(int(i)) for i in indices], dtype=np.float64).reshape(-1, 3)
        a, b, c = self.optimum_for(window)
        value = -((choices[:, 0] - a) ** 2) - (choices[:, 1] - b) ** 2 - (choices[:, 2] - c) ** 2
        trades = np.where(choices[:, 2] == 0, 5, 50)
        return {"net_profit_pct": value, "trades": trades, "sharpe": value / 100.0}

    def trade_returns(self, index: int, window: Window) -> TradeReturns:
        value = float(self.evaluate_indices(np.array([index]), window)["net_profit_pct"][0])
        entries = np.arange(window.start, window.end - 10, 20, dtype=np.int64)
        returns = np.full(len(entries), 0.01 + value / 1000.0)
        return TradeReturns(entries, entries + 5, returns)


class BowlObjective:
    """A larger separable bowl (4 dimensions × 12 values = 20,736 points), optimum (8, 3, 5, 10), score 0."""

    def __init__(self) -> None:
        self._space = GridSpace.from_mapping({f"d{k}": range(12) for k in range(4)})
        self._ts = T0 + np.arange(100, dtype=np.int64) * HOUR_MS

    @property
    def space(self) -> GridSpace:
        return self._space

    @property
    def timestamps(self) -> np.ndarray:
        return self._ts

    def evaluate_indices(self, indices: np.ndarray, window: Window) -> Metrics:
        choices = np.array([self._space.choices_of(int(i)) for i in indices], dtype=np.float64).reshape(-1, 4)
        value = -((choices - np.array([8, 3, 5, 10])) ** 2).sum(axis=1)
        return {"net_profit_pct": value, "trades": np.full(len(value), 50), "sharpe": value / 100.0}

    def trade_returns(self, index: int, window: Window) -> TradeReturns:
        raise NotImplementedError("BowlObjective is only for optimiser comparisons")
