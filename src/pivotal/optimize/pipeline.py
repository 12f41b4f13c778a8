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

from pivotal.core.errors import UserInputError
from pivotal.core.metrics import trade_metrics
from pivotal.core.stats import MS_PER_YEAR, sharpe
from pivotal.optimize.bayesian import BayesianSearch
from pivotal.optimize.configs import Lifecycle, TrainedConfiguration, lifecycle_stage
from pivotal.optimize.grid import GridSearch
from pivotal.optimize.objective import Objective, ObjectiveMetric, Scorer, Window, max_hold_bars
from pivotal.optimize.optimizer import Optimizer, RunContext
from pivotal.optimize.parallel import Runner
from pivotal.optimize.random_search import RandomSearch
from pivotal.optimize.study import ProgressSink, TrialLog
from pivotal.optimize.walkforward import FoldResult, WalkForwardResult, walk_forward
from pivotal.validation.significance import bootstrap_test, deflated_sharpe_ratio, degradation, is_constant, pbo_cscv
from pivotal.validation.walkforward import Fold, WalkForwardSpec, format_duration, holding_end, split

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
    purge_ms: int | None = None  # None: the strategy's maximum holding time (exact per bar); see validation.walkforward
    embargo_ms: int = 0
    min_trades: int = 30
    metric: str = "NET_PROFIT"
    seed: int = 0
    pbo_candidates: int = 256
    pbo_slices: int = 8
    input: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    start: int | None = None  # epoch ms, inclusive: only bars from here on are searched
    end: int | None = None  # epoch ms, exclusive

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.metric not in ObjectiveMetric.__members__:
            raise ValueError(f"metric {self.metric!r}: choose one of {', '.join(ObjectiveMetric.__members__)}")
        if self.walk_forward is not None:
            self.walk_forward_spec()

    def walk_forward_spec(self) -> WalkForwardSpec:
        """The splitter spec; ``purge_ms`` None counts as 0 here (the strategy's hold is applied per bar in ``folds_for``)."""
        if self.walk_forward is None:
            raise UserInputError("no walk-forward in this job (--walk-forward none)")
        return WalkForwardSpec.parse(self.walk_forward, self.anchored, self.purge_ms or 0, self.embargo_ms)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["symbols"], d["timeframes"] = list(self.symbols), list(self.timeframes)
        for key in ("start", "end"):  # absent when unset: the stored specs of earlier jobs stay equal (resume)
            if d[key] is None:
                del d[key]
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
    folds = folds_for(objective, spec, market)
    optimizer = spec.optimizer()
    sink = progress or ProgressSink(enabled=False)
    total = optimizer.planned_trials(objective) * len(folds)
    with sink.task(f"{market.label} {optimizer.name}", total=total) as advance:
        contexts = _contexts(storage, f"{job_id}/{market.label}", runner, advance)
        result = walk_forward(objective, optimizer, folds, spec.scorer(), contexts)
    return MarketReport(market, result, _configuration(objective, spec, market, job_id, folds, result))


def folds_for(objective: Objective, spec: OptimizeSpec, market: Market | None = None) -> list[Fold]:
    """Walk-forward folds in which no in-sample trade can exit inside the test window.

    Train signals are purged so that the strategy's maximum hold (``max_hold_bars`` after the signal bar, in time
    on this very series, so holes in the data are covered) ends before the test window starts. An explicit
    ``purge_ms`` may purge more; one that, with the gap, is shorter than the maximum hold is refused.
    """
    ts = np.asarray(objective.timestamps, dtype=np.int64)
    if spec.walk_forward is None:
        return [Fold(0, Window(0, len(ts)), Window(0, len(ts)))]
    wf = spec.walk_forward_spec()
    hold = max_hold_bars(objective)
    if hold is None:
        return split(ts, wf)
    if len(ts) > 1:
        check_purge(spec, hold, int(np.diff(ts).min()), market)
    return split(ts, wf, holding_end(ts, hold))


def check_purge(spec: OptimizeSpec, hold_bars: int, bar_ms: int, market: Market | None = None) -> None:
    """Refuse an explicit purge that, with the gap, is shorter than the strategy's maximum hold (one line)."""
    if spec.walk_forward is None or spec.purge_ms is None:
        return
    wf = spec.walk_forward_spec()
    need_ms = hold_bars * bar_ms
    if max(wf.gap_ms, wf.purge_ms) < need_ms:
        where = f" on {market.label}" if market else ""
        raise UserInputError(
            f"purge {format_duration(wf.purge_ms)} and gap {format_duration(wf.gap_ms)} are shorter than "
            f"{spec.strategy}'s maximum hold of {hold_bars} bars ({format_duration(need_ms)}){where}: in-sample trades "
            f"would exit inside the test window; use --purge {format_duration(need_ms)} or more, or leave --purge out"
        )


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
    per_trade = math.nan if len(returns) < 2 or is_constant(returns) else sharpe(returns)  # per trade, not annualised
    trades_per_year = len(returns) / (span_ms / MS_PER_YEAR) if span_ms > 0 else math.nan
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
