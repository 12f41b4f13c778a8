"""Walk-forward optimisation: optimise on each train window, evaluate the winner on the following test window.

The folds come from :func:`pivotal.validation.walkforward.split` (the project's one splitter; purge and embargo are
documented there). Train windows may carry embargoed holes (``Window.exclude``); objectives evaluate signals in the
window's segments only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pivotal.optimize.objective import Objective, Scorer, TradeReturns
from pivotal.optimize.optimizer import Optimizer, RunContext
from pivotal.validation.walkforward import Fold


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    best_index: int  # -1: no configuration reached the minimum trade count in the train window
    params: dict[str, Any]
    n_trials: int
    sharpe_var: float
    is_metrics: dict[str, float]
    oos_metrics: dict[str, float]
    is_trades: TradeReturns
    oos_trades: TradeReturns
    evaluated: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class WalkForwardResult:
    folds: list[FoldResult]
    oos_trades: TradeReturns  # stitched in time order, overlapping positions across fold boundaries dropped

    @property
    def oos_equity(self) -> np.ndarray:
        return np.cumprod(1.0 + self.oos_trades.returns)

    @property
    def is_returns(self) -> np.ndarray:
        parts = [f.is_trades.returns for f in self.folds if f.best_index >= 0]
        return np.concatenate(parts) if parts else np.empty(0)


ContextFactory = Callable[[Fold], RunContext]


def walk_forward(
    objective: Objective, optimizer: Optimizer, folds: list[Fold], scorer: Scorer, contexts: ContextFactory
) -> WalkForwardResult:
    """Optimise on each train window, evaluate the winner on the following test window, stitch the test trades."""
    results = [_run_fold(objective, optimizer, fold, scorer, contexts(fold)) for fold in folds]
    return WalkForwardResult(results, stitch([r.oos_trades for r in results]))


def _run_fold(objective: Objective, optimizer: Optimizer, fold: Fold, scorer: Scorer, context: RunContext) -> FoldResult:
    found = optimizer.optimize(objective, fold.train, scorer, context)
    empty = TradeReturns(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
    if not found.found:
        return FoldResult(fold, -1, {}, found.n_trials, found.sharpe_var, {}, {}, empty, empty, found.evaluated)
    best = np.array([found.best_index], dtype=np.int64)
    return FoldResult(
        fold=fold,
        best_index=found.best_index,
        params=objective.space.params_of(found.best_index),
        n_trials=found.n_trials,
        sharpe_var=found.sharpe_var,
        is_metrics=_scalars(objective.evaluate_indices(best, fold.train)),
        oos_metrics=_scalars(objective.evaluate_indices(best, fold.test)),
        is_trades=objective.trade_returns(found.best_index, fold.train),
        oos_trades=objective.trade_returns(found.best_index, fold.test),
        evaluated=found.evaluated,
    )


def _scalars(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: np.asarray(values)[0].item() for name, values in metrics.items()}  # keeps trades an int


def stitch(parts: list[TradeReturns]) -> TradeReturns:
    """Concatenate per-fold trades; a trade entering before the previous kept trade exited is dropped (one position)."""
    entry, exit_, returns = [], [], []
    last_exit = -1
    for part in parts:
        for e, x, r in zip(part.entry_bar.tolist(), part.exit_bar.tolist(), part.returns.tolist(), strict=True):
            if e <= last_exit:
                continue
            entry.append(e)
            exit_.append(x)
            returns.append(r)
            last_exit = x
    return TradeReturns(np.array(entry, dtype=np.int64), np.array(exit_, dtype=np.int64), np.array(returns, dtype=np.float64))
