"""The backtest use case: load candles, pick a registered strategy and its parameters, run the event engine, and
return the result with a summary. The CLI (``pivotal backtest``) and the HTTP API call these functions and only parse
arguments and print.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.core.stats import max_drawdown
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles, load_candles_file
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine
from pivotal.services.strategies import strategy_spec
from pivotal.strategies.registry import get_strategy, strategy_names

__all__ = [
    "DEFAULT_CAPITAL",
    "BacktestRun",
    "BuyAndHold",
    "CandleSource",
    "load_source",
    "params_from_file",
    "parse_param_pairs",
    "resolve_params",
    "run_backtest",
    "strategy_names",
]

DEFAULT_CAPITAL = 10_000.0  # quote currency; the engine works in fractions of 1.0, this only scales what is printed


@dataclass(frozen=True)
class BuyAndHold:
    """The benchmark beside every backtest: buy at the first bar's open, sell at the last bar's close, paying the same
    fee and slippage per side as the strategy (so "beat buy-and-hold" compares like with like)."""

    net_profit_pct: float
    max_drawdown: float  # positive fraction of the running peak, on closes

    @classmethod
    def of(cls, candles: Candles, fee_rate: float, slippage: float) -> BuyAndHold:
        entry = float(candles.open[0]) * (1.0 + slippage)
        exit_ = float(candles.close[-1]) * (1.0 - slippage)
        growth = (1.0 - fee_rate) * exit_ / entry * (1.0 - fee_rate)
        closes = np.concatenate(([float(candles.open[0])], np.asarray(candles.close, dtype=np.float64)))
        return cls((growth - 1.0) * 100.0, max_drawdown(closes))


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
    capital: float = DEFAULT_CAPITAL
    timeframe: str = ""
    first_ts: int = 0  # open time of the first bar, epoch ms
    end_ts: int = 0  # close time of the last bar (its open time when the timeframe is unknown), epoch ms
    buy_and_hold: BuyAndHold | None = None

    def summary(self) -> dict[str, float]:
        """The metrics plus the number of entries the risk gate refused."""
        return {**self.result.metrics, "entries_blocked": float(self.result.blocked_entries)}

    @property
    def end_capital(self) -> float:
        """Starting capital times the mark-to-market equity at the last bar close (an open position is valued there)."""
        equity = self.result.equity.equity
        return self.capital * (float(equity[-1]) if len(equity) else 1.0)

    @property
    def net_profit_pct(self) -> float:
        """End over start capital, in percent (mark-to-market; equals ``net_profit_pct`` of the trades when flat)."""
        return (self.end_capital / self.capital - 1.0) * 100.0

    def report(self) -> dict[str, Any]:
        """Everything a reader needs in one JSON-ready dict: what ran on which dates, capital, benchmark, metrics."""
        bh = self.buy_and_hold
        return {
            "strategy": self.strategy,
            "params": self.params,
            "source": self.source,
            "timeframe": self.timeframe,
            "bars": self.bars,
            "start": _iso(self.first_ts),
            "end": _iso(self.end_ts),
            "fee_rate": self.config.fee_rate,
            "slippage": self.config.slippage,
            "start_capital": self.capital,
            "end_capital": round(self.end_capital, 2),
            "net_profit_pct": self.net_profit_pct,
            "buy_and_hold_net_profit_pct": None if bh is None else bh.net_profit_pct,
            "buy_and_hold_max_drawdown": None if bh is None else bh.max_drawdown,
            "metrics": {k: _json_number(v) for k, v in self.result.metrics.items()},
            "entries_blocked": self.result.blocked_entries,
        }


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
    capital: float = DEFAULT_CAPITAL,
) -> BacktestRun:
    """One configuration of a registered strategy through the event engine (fills at the next open, fees and
    slippage per side, brackets settled on ``detail`` bars when given), with buy-and-hold over the same bars."""
    if fee_rate < 0 or slippage < 0:
        raise UserInputError(f"fee and slippage must be >= 0 (got fee {fee_rate}, slippage {slippage})")
    if not (capital > 0 and math.isfinite(capital)):
        raise UserInputError(f"--capital must be a positive amount (got {capital})")
    if len(candles) == 0:
        raise UserInputError("no bars to backtest; widen the range")
    spec = strategy_spec(strategy)
    values = spec.validate(params or {})
    config = BacktestConfig(fee_rate=fee_rate, slippage=slippage)
    try:
        result = EventEngine(candles, config, detail).run(spec.factory(values))
    except ValueError as exc:  # bad bars found while streaming (NaN, high < low, ...)
        raise UserInputError(str(exc)) from None
    tf_ms = TIMEFRAMES.get(candles.timeframe, 0)
    return BacktestRun(
        strategy,
        values,
        source or candles.symbol or "candles",
        len(candles),
        result,
        config,
        capital=capital,
        timeframe=candles.timeframe,
        first_ts=int(candles.ts[0]),
        end_ts=int(candles.ts[-1]) + tf_ms,
        buy_and_hold=BuyAndHold.of(candles, fee_rate, slippage),
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_number(value: float) -> float | int | None:
    """JSON has no inf/NaN: an infinite profit factor (wins, no losses) becomes null; counts stay integers."""
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value) if math.isfinite(float(value)) else None
