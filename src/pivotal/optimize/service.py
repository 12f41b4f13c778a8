"""Wiring: a ``JobService`` whose jobs are optimisation runs (markets from the store or an input file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.optimize.configs import TrainedConfiguration
from pivotal.optimize.jobs import JobService
from pivotal.optimize.objective import Objective
from pivotal.optimize.parallel import Runner
from pivotal.optimize.pipeline import Market, MarketReport, OptimizeSpec, run_market
from pivotal.optimize.study import ProgressSink, open_storage


def _ls3(candles: Candles) -> Objective:
    from pivotal.optimize.ls3 import LS3Objective

    return LS3Objective.from_candles(candles)


STRATEGIES: dict[str, Callable[[Candles], Objective]] = {"liquidity_sweep": _ls3}


def objective_for(strategy: str, candles: Candles) -> Objective:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; available: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[strategy](candles)


def load_candles(store: MarketStore | None, spec: OptimizeSpec, market: Market) -> Candles:
    """From ``spec.input`` when given (validated by the data importers), else from the store."""
    if spec.input:
        from pivotal.data.importers.base import CandleBatch, UnsupportedFile
        from pivotal.data.importers.dispatch import ImportOptions, parse_file

        path = Path(spec.input)
        if not path.is_file():
            raise ValueError(f"--input {path}: no such file")
        options = ImportOptions(exchange=market.exchange, symbol=market.symbol, timeframe=market.timeframe)
        try:
            batch = parse_file(path, options)
        except UnsupportedFile as exc:
            raise ValueError(f"--input {path}: {exc}") from None
        if not isinstance(batch, CandleBatch):
            raise ValueError(f"{spec.input}: not a candle file (found {type(batch).__name__})")
        candles = batch.candles
    else:
        if store is None:
            raise ValueError("no store and no --input file to read candles from")
        candles = store.candles(market.exchange, market.symbol, market.timeframe)
    if len(candles) == 0:
        raise ValueError(f"no candles for {market.label}; import them first (pivotal data import ...) or pass --input FILE")
    return candles


def markets_of(spec: OptimizeSpec) -> list[Market]:
    return [Market(spec.exchange, s, t) for s in spec.symbols for t in spec.timeframes]


class OptimizationJobs:
    """Runs :class:`OptimizeSpec` jobs through a :class:`JobService`; keeps each market's report for display."""

    def __init__(self, settings: Settings, store: MarketStore, runner: Runner, progress: ProgressSink | None = None):
        self.settings = settings
        self.store = store
        self.runner = runner
        self.progress = progress
        self.reports: list[MarketReport] = []
        self.service = JobService(store, self._run)

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
