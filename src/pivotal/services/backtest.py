"""The backtest use case: load candles, pick a registered strategy and its parameters, run the event engine, and
return the result with a summary. The CLI (``pivotal backtest``) and the HTTP API call these functions and only parse
arguments and print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles, load_candles_file
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine
from pivotal.strategies.registry import get_strategy, strategy_names

__all__ = [
    "BacktestRun",
    "CandleSource",
    "load_source",
    "params_from_file",
    "parse_param_pairs",
    "resolve_params",
    "run_backtest",
    "strategy_names",
]


@dataclass(frozen=True)
class CandleSource:
    """Where the bars come from: a candle file (``path``) or a stored series (exchange, symbol, timeframe)."""

    path: Path | None = None
    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None  # with ``path``: overrides the file's
    start: int | None = None  # epoch ms, inclusive
    end: int | None = None  # epoch ms, exclusive

    def describe(self) -> str:
        return str(self.path) if self.path is not None else f"{self.exchange} {self.symbol} {self.timeframe}"


@dataclass(frozen=True)
class BacktestRun:
    """One backtest: what ran on what, and the engine's result."""

    strategy: str
    params: dict[str, Any]  # every parameter, validated
    source: str
    bars: int
    result: BacktestResult
    config: BacktestConfig = field(default_factory=BacktestConfig)

    def summary(self) -> dict[str, float]:
        """The metrics plus the number of entries the risk gate refused."""
        return {**self.result.metrics, "entries_blocked": float(self.result.blocked_entries)}


def load_source(source: CandleSource, settings: Settings | None = None) -> Candles:
    """Validated bars of ``source`` (``data.loaders``); errors are one line naming the file or series."""
    if source.path is not None:
        if source.exchange or source.symbol:
            raise UserInputError("use either a candle file or a stored series (exchange/symbol/timeframe), not both")
        bars = load_candles_file(source.path, timeframe=source.timeframe, start=source.start, end=source.end)
    else:
        if not (source.exchange and source.symbol and source.timeframe):
            raise UserInputError("name a stored series with --exchange, --symbol and --timeframe, or pass --input FILE")
        if settings is None:
            from pivotal.config import load_settings

            settings = load_settings()
        store = open_store(settings)
        try:
            bars = load_candles(store, source.exchange, source.symbol, source.timeframe, start=source.start, end=source.end)
        finally:
            store.close()
    if len(bars) == 0:
        raise UserInputError(f"no bars in {source.describe()} in the requested range; widen the range")
    return bars


def detail_source(
    main: Candles, source: CandleSource, detail_timeframe: str | None, detail_path: Path | None
) -> CandleSource | None:
    """The finer bars covering ``main`` (same market, same time range), or None when none are asked for."""
    if detail_timeframe is None and detail_path is None:
        return None
    if not main.timeframe or main.timeframe not in TIMEFRAMES:
        raise UserInputError("detail bars need the main timeframe; pass --timeframe")
    start, end = int(main.ts[0]), int(main.ts[-1]) + TIMEFRAMES[main.timeframe]
    if detail_path is not None:
        return CandleSource(path=detail_path, start=start, end=end)
    if source.path is not None:
        raise UserInputError(
            "--detail-timeframe needs a stored series (--exchange/--symbol/--timeframe); use --detail-input with --input"
        )
    return CandleSource(exchange=source.exchange, symbol=source.symbol, timeframe=detail_timeframe, start=start, end=end)


def parse_param_pairs(pairs: list[str]) -> dict[str, str]:
    """``["fast=5", "slow=20"]`` -> ``{"fast": "5", "slow": "20"}`` (values are typed by the strategy's validation)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--param {pair!r}: expected key=value, e.g. --param stop_distance=1.5")
        out[key.strip()] = value.strip()
    return out


def params_from_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read parameters ({exc}); expected a JSON object") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object of parameters, got {type(data).__name__}")
    return data


def resolve_params(strategy: str, params: dict[str, Any] | None = None, params_file: Path | None = None) -> dict[str, Any]:
    """Every parameter of ``strategy``: defaults, then ``params_file`` (JSON object), then ``params``; validated."""
    spec = get_strategy(strategy)
    values: dict[str, Any] = {}
    if params_file is not None:
        values = params_from_file(params_file)
        try:
            spec.validate(values)
        except UserInputError as exc:
            raise UserInputError(f"{params_file}: {exc}") from None
    values.update(params or {})
    return spec.validate(values)


def run_backtest(
    candles: Candles,
    strategy: str,
    params: dict[str, Any] | None = None,
    *,
    fee_rate: float = 0.001,
    slippage: float = 0.0005,
    detail: Candles | None = None,
    source: str = "",
) -> BacktestRun:
    """One configuration of a registered strategy through the event engine (fills at the next open, fees and
    slippage per side, brackets settled on ``detail`` bars when given)."""
    if fee_rate < 0 or slippage < 0:
        raise UserInputError(f"fee and slippage must be >= 0 (got fee {fee_rate}, slippage {slippage})")
    spec = get_strategy(strategy)
    values = spec.validate(params or {})
    config = BacktestConfig(fee_rate=fee_rate, slippage=slippage)
    try:
        result = EventEngine(candles, config, detail).run(spec.factory(values))
    except ValueError as exc:  # bad bars found while streaming (NaN, high < low, ...)
        raise UserInputError(str(exc)) from None
    return BacktestRun(strategy, values, source or candles.symbol or "candles", len(candles), result, config)
