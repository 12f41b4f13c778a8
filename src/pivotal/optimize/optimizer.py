"""The one ``Optimizer`` interface shared by grid, random and Bayesian search, and what they return."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pivotal.optimize.objective import Objective, Scorer, Window
from pivotal.optimize.parallel import Runner
from pivotal.optimize.study import ChunkSummary, TrialLog, summarize_chunk


@dataclass(frozen=True)
class OptimizationResult:
    """Best point of one search on one window, with what the significance tests need.

    ``evaluated`` lists every index scored (restored ones included); the Sharpe statistics cover the configurations
    with a finite score (enough trades), i.e. the trials a deflated Sharpe ratio must account for.
    """

    best_index: int
    best_score: float
    evaluated: np.ndarray
    sharpe_n: int
    sharpe_mean: float
    sharpe_var: float

    @property
    def n_trials(self) -> int:
        return len(self.evaluated)

    @property
    def found(self) -> bool:
        return self.best_index >= 0 and math.isfinite(self.best_score)


@dataclass
class RunContext:
    """Where a search records its trials, how it evaluates, and whom it tells about progress."""

    log: TrialLog
    runner: Runner
    advance: Callable[[int], None] = field(default=lambda n: None)


class Optimizer(Protocol):
    @property
    def name(self) -> str:
        """The method's name, recorded in each study's setup ("grid", "random", "bayesian")."""
        ...

    def planned_trials(self, objective: Objective) -> int:
        """How many configurations this search evaluates (for progress bars and job status)."""
        ...

    def optimize(self, objective: Objective, window: Window, scorer: Scorer, context: RunContext) -> OptimizationResult: ...


def result_from_chunks(summaries: Iterable[ChunkSummary], evaluated: np.ndarray) -> OptimizationResult:
    """Merge chunk summaries (stored and new) into one result; ties go to the lowest chunk, as in one pass."""
    ordered = sorted(summaries, key=lambda s: s.chunk)
    best = max(ordered, key=lambda s: s.best_score, default=None)
    n = sum(s.sharpe_n for s in ordered)
    total = sum(s.sharpe_sum for s in ordered)
    total_sq = sum(s.sharpe_sumsq for s in ordered)
    mean = total / n if n else math.nan
    var = (total_sq - n * mean * mean) / (n - 1) if n > 1 else math.nan
    return OptimizationResult(
        best_index=best.best_index if best is not None and math.isfinite(best.best_score) else -1,
        best_score=best.best_score if best is not None else -math.inf,
        evaluated=evaluated,
        sharpe_n=n,
        sharpe_mean=mean,
        sharpe_var=max(var, 0.0) if n > 1 else math.nan,
    )


def search_in_chunks(
    order: np.ndarray, chunk_size: int, objective: Objective, window: Window, scorer: Scorer, context: RunContext
) -> OptimizationResult:
    """Evaluate ``order`` (a fixed, reproducible index sequence) chunk by chunk, skipping chunks already stored."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    starts = range(0, len(order), chunk_size)
    done = context.log.completed_chunks()
    context.advance(sum(done[k].count for k in done if k < len(starts)))
    todo = [k for k in range(len(starts)) if k not in done]
    chunks = [order[k * chunk_size : (k + 1) * chunk_size] for k in todo]
    for k, result in zip(todo, context.runner.map(objective, chunks, window, scorer), strict=True):
        summary = summarize_chunk(k, result.indices, result.scores, result.sharpe)
        context.log.record_chunk(summary)
        done[k] = summary
        context.advance(summary.count)
    return result_from_chunks((done[k] for k in range(len(starts))), order)
