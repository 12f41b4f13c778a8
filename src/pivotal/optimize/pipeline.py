"""One optimisation job end to end: per market, walk-forward search, significance, a trained configuration.

The job spec (:class:`OptimizeSpec`) is plain JSON so the job model can be stored, resumed and later exposed over
an API. Execution options that do not change results (workers, Ray address, progress bar) stay outside it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna

from pivotal.backtest.metrics import trade_metrics
from pivotal.optimize.bayesian import BayesianSearch
from pivotal.optimize.configs import Lifecycle, TrainedConfiguration, lifecycle_stage
from pivotal.optimize.grid import GridSearch
from pivotal.optimize.objective import Objective, ObjectiveMetric, Scorer, Window
from pivotal.optimize.optimizer import Optimizer, RunContext
from pivotal.optimize.parallel import Runner
from pivotal.optimize.random_search import RandomSearch
from pivotal.optimize.significance import bootstrap_test, deflated_sharpe_ratio, degradation, pbo_cscv, sharpe_ratio
from pivotal.optimize.study import ProgressSink, TrialLog
from pivotal.optimize.walkforward import Fold, FoldResult, WalkForwardResult, WalkForwardSpec, split, walk_forward

YEAR_MS = 365.25 * 86_400_000
METHODS = ("grid", "random", "bayesian")


@dataclass(frozen=True)
class OptimizeSpec:
    exchange: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    strategy: str = "liquidity_sweep"
    method: str = "random"
    samples: int = 1000  # random: points drawn; bayesian: trials
    sampler: str = "tpe"
    walk_forward: str | None = "90/7/30"  # None: optimise on the whole series (no out-of-sample)
    anchored: bool = False
    min_trades: int = 30
    metric: str = "NET_PROFIT"
    seed: int = 0
    pbo_candidates: int = 256
    pbo_slices: int = 8
    input: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.metric not in ObjectiveMetric.__members__:
            raise ValueError(f"metric {self.metric!r}: choose one of {', '.join(ObjectiveMetric.__members__)}")
        if self.walk_forward is not None:
            WalkForwardSpec.parse(self.walk_forward, self.anchored)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["symbols"], d["timeframes"] = list(self.symbols), list(self.timeframes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OptimizeSpec:
        return cls(**{**d, "symbols": tuple(d["symbols"]), "timeframes": tuple(d["timeframes"])})

    def optimizer(self) -> Optimizer:
        if self.method == "grid":
            return GridSearch()
        if self.method == "random":
            return RandomSearch(samples=self.samples, seed=self.seed)
        return BayesianSearch(trials=self.samples, sampler=self.sampler, seed=self.seed)

    def scorer(self) -> Scorer:
        return Scorer(ObjectiveMetric[self.metric], self.min_trades)


@dataclass(frozen=True)
class Market:
    exchange: str
    symbol: str
    timeframe: str

    @property
    def label(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True)
class MarketReport:
    market: Market
    walk_forward: WalkForwardResult
    configuration: TrainedConfiguration | None  # None: no train window had a configuration with enough trades


def run_market(
    objective: Objective,
    spec: OptimizeSpec,
    market: Market,
    job_id: str,
    storage: optuna.storages.BaseStorage,
    runner: Runner,
    progress: ProgressSink | None = None,
) -> MarketReport:
    ts = objective.timestamps
    folds = (
        split(ts, WalkForwardSpec.parse(spec.walk_forward, spec.anchored))
        if spec.walk_forward
        else [Fold(0, Window(0, len(ts)), Window(0, len(ts)))]
    )
    optimizer = spec.optimizer()
    sink = progress or ProgressSink(enabled=False)
    total = optimizer.planned_trials(objective) * len(folds)
    with sink.task(f"{market.label} {optimizer.name}", total=total) as advance:
        contexts = _contexts(storage, f"{job_id}/{market.label}", runner, advance)
        result = walk_forward(objective, optimizer, folds, spec.scorer(), contexts)
    return MarketReport(market, result, _configuration(objective, spec, market, job_id, folds, result))


def _contexts(
    storage: optuna.storages.BaseStorage, prefix: str, runner: Runner, advance: Callable[[int], None]
) -> Callable[[Fold], RunContext]:
    """One study per fold, named ``<job>/<market>/w<fold>``, all advancing the same progress bar."""
    return lambda fold: RunContext(TrialLog(storage, f"{prefix}/w{fold.number}"), runner, advance)


def _configuration(
    objective: Objective, spec: OptimizeSpec, market: Market, job_id: str, folds: list[Fold], wf: WalkForwardResult
) -> TrainedConfiguration | None:
    found = [f for f in wf.folds if f.best_index >= 0]
    if not found:
        return None
    latest = found[-1]  # the configuration to trade next is the one chosen on the most recent train window
    has_oos = spec.walk_forward is not None
    oos_returns = wf.oos_trades.returns if has_oos else latest.is_trades.returns
    oos_metrics = trade_metrics(oos_returns) if has_oos else {}
    span_ms = _span_ms(objective.timestamps, folds, has_oos)
    significance = _significance(objective, spec, wf, latest, folds, oos_returns, span_ms)
    sample_size = len(oos_returns)
    stage = lifecycle_stage(sample_size, significance["sharpe_annualised"])
    return TrainedConfiguration(
        id=f"{job_id}:{market.label}",
        strategy=spec.strategy,
        pair=market.symbol,
        exchange=market.exchange,
        timeframe=market.timeframe,
        parameters=latest.params,
        is_metrics={**latest.is_metrics, "window_start": int(objective.timestamps[latest.fold.train.start])},
        oos_metrics={**oos_metrics, "folds": len(folds), "folds_with_config": len(found)},
        significance=significance,
        sample_size=sample_size,
        lifecycle_stage=Lifecycle(stage),
        job_id=job_id,
    )


def _span_ms(ts: np.ndarray, folds: list[Fold], has_oos: bool) -> float:
    if has_oos:
        return float(ts[folds[-1].test.end - 1] - ts[folds[0].test.start])
    return float(ts[-1] - ts[0])


def _significance(
    objective: Objective,
    spec: OptimizeSpec,
    wf: WalkForwardResult,
    latest: FoldResult,
    folds: list[Fold],
    returns: np.ndarray,
    span_ms: float,
) -> dict[str, Any]:
    """p-value/z of the (stitched OOS) returns, DSR of the latest winner, PBO over the latest candidates."""
    boot = bootstrap_test(returns, seed=spec.seed)
    per_trade = sharpe_ratio(returns)
    trades_per_year = len(returns) / (span_ms / YEAR_MS) if span_ms > 0 else math.nan
    pbo = _pbo(objective, spec, latest, folds)
    deg = degradation(wf.is_returns, returns, pbo=pbo) if spec.walk_forward else None
    return {
        "returns_tested": "out_of_sample" if spec.walk_forward else "in_sample",
        "p_value": boot.p_value,
        "z_score": boot.z_score,
        "sharpe_per_trade": per_trade,
        "sharpe_annualised": per_trade * math.sqrt(trades_per_year) if math.isfinite(trades_per_year) else math.nan,
        "dsr": deflated_sharpe_ratio(latest.is_trades.returns, latest.n_trials, latest.sharpe_var),
        "n_trials": latest.n_trials,
        "trial_sharpe_var": latest.sharpe_var,
        "pbo": pbo,
        "degradation": deg.ratio if deg else None,
        "overfit": deg.overfit if deg else None,
    }


def _pbo(objective: Objective, spec: OptimizeSpec, latest: FoldResult, folds: list[Fold]) -> float:
    """CSCV over up to ``pbo_candidates`` of the latest fold's evaluated points, on equal slices of the span."""
    candidates = np.unique(latest.evaluated)
    if len(candidates) > spec.pbo_candidates:
        rng = np.random.default_rng(spec.seed)
        candidates = np.union1d(rng.choice(candidates, spec.pbo_candidates - 1, replace=False), [latest.best_index])
    if len(candidates) < 2:
        return math.nan
    start, end = folds[0].train.start, max(f.test.end for f in folds)
    edges = np.linspace(start, end, spec.pbo_slices + 1).astype(np.int64)
    per_slice = Scorer(ObjectiveMetric[spec.metric], min_trades=0)  # every slice counts, even with few trades
    columns = [
        per_slice.score(objective.evaluate_indices(candidates, Window(int(a), int(b))))
        for a, b in itertools.pairwise(edges)
        if b > a
    ]
    matrix = np.nan_to_num(np.column_stack(columns), nan=0.0, posinf=0.0, neginf=0.0)
    return pbo_cscv(matrix).pbo if matrix.shape[1] % 2 == 0 else math.nan
