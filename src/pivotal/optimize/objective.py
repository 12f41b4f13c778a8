"""What an optimiser maximises: the ``Objective`` seam and the score built from its metrics.

An objective evaluates many grid points (flat indices of its :class:`GridSpace`) on one window of bars and returns
metric arrays. Optimisers only ever see scores, so they work for any strategy with such an adapter
(``pivotal.optimize.ls3`` is the one for LIQUIDITY SWEEP V3). ``Window`` is the splitter's
(:mod:`pivotal.validation.walkforward`): signals inside ``[start, end)`` minus its excluded spans.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from pivotal.optimize.space import GridSpace
from pivotal.validation.walkforward import Window

__all__ = ["Metrics", "Objective", "ObjectiveMetric", "Scorer", "TradeReturns", "Window", "max_hold_bars"]

Metrics = dict[str, np.ndarray]
"""Metric name -> one value per evaluated index (at least ``trades`` and the objective metric)."""


@dataclass(frozen=True)
class TradeReturns:
    """Net returns of the trades of one configuration, in time order, with their entry and exit bars."""

    entry_bar: np.ndarray
    exit_bar: np.ndarray
    returns: np.ndarray


@runtime_checkable
class Objective(Protocol):
    """A strategy on one market, evaluable at many grid points at once."""

    @property
    def space(self) -> GridSpace: ...

    @property
    def timestamps(self) -> np.ndarray:
        """Bar open times (epoch ms) of the whole series; windows index into it."""
        ...

    def evaluate_indices(self, indices: np.ndarray, window: Window) -> Metrics: ...

    def trade_returns(self, index: int, window: Window) -> TradeReturns: ...


def max_hold_bars(objective: Objective) -> int | None:
    """The longest a position of the objective's strategy stays open, in bars after its signal bar (its
    ``max_hold_bars`` attribute); ``None`` when the objective does not say (e.g. it scores samples, not trades).
    Walk-forward purges at least this much before every test window."""
    value = getattr(objective, "max_hold_bars", None)
    return None if value is None else int(value)


class ObjectiveMetric(StrEnum):
    """Which metric is maximised (``MAX_DRAWDOWN`` is minimised: its score is the negated drawdown)."""

    NET_PROFIT = "net_profit_pct"
    SHARPE = "sharpe"
    PROFIT_FACTOR = "profit_factor"
    WIN_RATE = "win_rate"
    MAX_DRAWDOWN = "max_drawdown"


@dataclass(frozen=True)
class Scorer:
    """Turns metric arrays into scores; configurations with fewer than ``min_trades`` trades score ``-inf``."""

    metric: ObjectiveMetric = ObjectiveMetric.NET_PROFIT
    min_trades: int = 30

    def score(self, metrics: Metrics) -> np.ndarray:
        if self.metric.value not in metrics or "trades" not in metrics:
            raise KeyError(f"objective metrics lack {self.metric.value!r} or 'trades'; got {sorted(metrics)}")
        values = np.asarray(metrics[self.metric.value], dtype=np.float64)
        if self.metric is ObjectiveMetric.MAX_DRAWDOWN:
            values = -np.abs(values)  # drawdown may be reported positive or negative; smaller magnitude is better
        trades = np.asarray(metrics["trades"])
        valid = (trades >= self.min_trades) & ~np.isnan(values)  # +inf is legitimate (profit factor without a loss)
        return np.where(valid, values, -np.inf)
