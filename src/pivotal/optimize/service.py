"""Wiring: a ``JobService`` whose jobs are optimisation runs (markets from the store or an input file).

Any strategy of the registry (``pivotal.strategies.registry``) can be optimised: LIQUIDITY SWEEP V3 through its numba
sweep (``LS3Objective``), every other one through the event engine per configuration (``EngineObjective``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.loaders import check_range, load_candles_file
from pivotal.data.loaders import load_candles as load_stored
from pivotal.data.store import MarketStore
from pivotal.optimize.configs import TrainedConfiguration
from pivotal.optimize.jobs import JobService, OptimizationJob
from pivotal.optimize.objective import Objective
from pivotal.optimize.parallel import Runner
from pivotal.optimize.pipeline import Market, MarketReport, OptimizeSpec, check_purge, run_market
from pivotal.optimize.study import ProgressSink, open_storage


def _ls3(candles: Candles) -> Objective:
    from pivotal.optimize.ls3 import LS3Objective

    return LS3Objective.from_candles(candles)


# strategies with a vectorised objective; every other registered strategy runs through the event engine
SWEEP_OBJECTIVES: dict[str, Callable[[Candles], Objective]] = {"liquidity_sweep": _ls3}


def _ls3_hold() -> int:
    from pivotal.strategies.ls3.params import LS3Constants

    return LS3Constants().max_hold_bars


# their maximum hold in bars without loading data (engine objectives close trades at the window's end: 0)
SWEEP_MAX_HOLD: dict[str, Callable[[], int]] = {"liquidity_sweep": _ls3_hold}


def objective_for(strategy: str, candles: Candles) -> Objective:
    """The objective of registered ``strategy`` on ``candles``; an unknown name is a UserInputError listing the names."""
    from pivotal.strategies.registry import get_strategy

    spec = get_strategy(strategy)
    if spec.name in SWEEP_OBJECTIVES:
        return SWEEP_OBJECTIVES[spec.name](candles)
    from pivotal.optimize.engine_objective import EngineObjective

    return EngineObjective(spec, candles)


def load_candles(store: MarketStore | None, spec: OptimizeSpec, market: Market) -> Candles:
    """From ``spec.input`` when given, else from the store (both through ``pivotal.data.loaders``)."""
    if spec.input:
        return load_candles_file(
            Path(spec.input),
            timeframe=market.timeframe,
            exchange=market.exchange,
            symbol=market.symbol,
            start=spec.start,
            end=spec.end,
        )
    if store is None:
        raise UserInputError("no store and no --input file to read candles from")
    return load_stored(store, market.exchange, market.symbol, market.timeframe, start=spec.start, end=spec.end)


def markets_of(spec: OptimizeSpec) -> list[Market]:
    return [Market(spec.exchange, s, t) for s in spec.symbols for t in spec.timeframes]


def check(store: MarketStore | None, spec: OptimizeSpec) -> None:
    """Refuse a job that cannot run, before any job record exists: an unknown strategy, a missing input file or a
    series the store does not hold (one line each, naming what is stored instead)."""
    from pivotal.strategies.registry import get_strategy

    get_strategy(spec.strategy)
    check_range(spec.start, spec.end)
    hold = SWEEP_MAX_HOLD.get(spec.strategy, lambda: 0)()
    for market in markets_of(spec):
        check_purge(spec, hold, timeframe_ms(market.timeframe), market)
    if spec.input:
        if not Path(spec.input).is_file():
            raise UserInputError(f"--input {spec.input}: no such file")
        return
    if store is None:
        raise UserInputError("no store and no --input file to read candles from")
    stored = {(s.exchange, s.symbol, s.timeframe) for s in store.series()}
    for market in markets_of(spec):
        if (market.exchange, market.symbol, market.timeframe) not in stored:
            load_stored(store, market.exchange, market.symbol, market.timeframe)  # raises SeriesNotFound with hints


class OptimizationJobs:
    """Runs :class:`OptimizeSpec` jobs through a :class:`JobService`; keeps each market's report for display."""

    def __init__(self, settings: Settings, store: MarketStore, runner: Runner, progress: ProgressSink | None = None):
        self.settings = settings
        self.store = store
        self.runner = runner
        self.progress = progress
        self.reports: list[MarketReport] = []
        self.service = JobService(store, self._run)

    def start(self, spec: OptimizeSpec, job_id: str | None = None) -> OptimizationJob:
        """Check the spec (strategy, markets) and only then create (or reopen) the job record."""
        check(self.store, spec)
        return self.service.start(spec.to_dict(), job_id)

    def _run(self, job_id: str, spec_dict: dict[str, Any], report: Callable[[float], None]) -> list[TrainedConfiguration]:
        spec = OptimizeSpec.from_dict(spec_dict)
        storage = open_storage(self.settings)
        markets = markets_of(spec)
        configs = []
        for k, market in enumerate(markets):
            objective = objective_for(spec.strategy, load_candles(self.store, spec, market))
            result = run_market(objective, spec, market, job_id, storage, self.runner, self.progress)
            self.reports.append(result)
            if result.configuration is not None:
                configs.append(result.configuration)
            report((k + 1) / len(markets))
        return configs
