"""Walk-forward validation: the project's one time-series splitter, and optimisation fold by fold.

Folds are built on timestamps (epoch ms), then mapped to bar indices, so they work for any bar series and for
model training sets alike. Rolling (default): train 90 days -> gap 7 days -> test 30 days, rolled by the test length.
Anchored: every train window starts at the first bar and grows.

``purge`` and ``embargo`` are in bars, for learners whose labels or features reach across a boundary:
- ``purge`` drops the last bars of each train window, so a label looking ``purge`` bars ahead never reaches the test;
- ``embargo`` drops the first bars of each test window, so features with memory do not straddle train and test.
The fixed ``gap`` already separates the two; purge/embargo add bar-exact margins on top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pivotal.optimize.objective import Objective, Scorer, TradeReturns, Window
from pivotal.optimize.optimizer import Optimizer, RunContext

DAY_MS = 86_400_000


@dataclass(frozen=True)
class WalkForwardSpec:
    train_ms: int = 90 * DAY_MS
    gap_ms: int = 7 * DAY_MS
    test_ms: int = 30 * DAY_MS
    step_ms: int | None = None  # None: roll by the test length, so test windows tile the series
    anchored: bool = False
    purge: int = 0
    embargo: int = 0

    def __post_init__(self) -> None:
        if self.train_ms <= 0 or self.test_ms <= 0 or self.gap_ms < 0 or (self.step_ms is not None and self.step_ms <= 0):
            raise ValueError(f"walk-forward needs train > 0, test > 0, gap >= 0, step > 0; got {self}")
        if self.purge < 0 or self.embargo < 0:
            raise ValueError(f"purge and embargo are bar counts >= 0; got purge={self.purge} embargo={self.embargo}")

    @classmethod
    def parse(cls, text: str, anchored: bool = False) -> WalkForwardSpec:
        """'90/7/30' = train/gap/test in days (optionally '/step' as a fourth number)."""
        parts = text.split("/")
        try:
            days = [float(p) for p in parts]
        except ValueError:
            days = []
        if len(days) not in (3, 4):
            raise ValueError(f"walk-forward {text!r}: expected TRAIN/GAP/TEST[/STEP] in days, e.g. 90/7/30")
        step = int(days[3] * DAY_MS) if len(days) == 4 else None
        return cls(int(days[0] * DAY_MS), int(days[1] * DAY_MS), int(days[2] * DAY_MS), step, anchored)

    @property
    def step(self) -> int:
        return self.step_ms if self.step_ms is not None else self.test_ms


@dataclass(frozen=True)
class Fold:
    number: int
    train: Window
    test: Window


def split(ts: np.ndarray, spec: WalkForwardSpec) -> list[Fold]:
    """Folds whose whole test period lies inside the series (``ts`` sorted, epoch ms bar open times)."""
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) < 2:
        raise ValueError("walk-forward needs at least two bars")
    bar = int(np.diff(ts).min())
    first, end_of_data = int(ts[0]), int(ts[-1]) + bar
    folds: list[Fold] = []
    k = 0
    while True:
        train_end = first + spec.train_ms + k * spec.step
        train_start = first if spec.anchored else first + k * spec.step
        test_start = train_end + spec.gap_ms
        test_end = test_start + spec.test_ms
        if test_end > end_of_data:
            break
        i0, i1, j0, j1 = np.searchsorted(ts, [train_start, train_end, test_start, test_end]).tolist()
        i1, j0 = i1 - spec.purge, j0 + spec.embargo
        if i0 < i1 and j0 < j1:
            folds.append(Fold(len(folds), Window(i0, i1), Window(j0, j1)))
        k += 1
    if not folds:
        days = (end_of_data - first) / DAY_MS
        need = (spec.train_ms + spec.gap_ms + spec.test_ms) / DAY_MS
        raise ValueError(f"series spans {days:.1f} days; walk-forward needs at least train+gap+test = {need:.1f} days")
    return folds


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
