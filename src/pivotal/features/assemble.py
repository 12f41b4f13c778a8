"""Assemble a ``BaseDataInput`` as of time t: only candles closed by t, only pivots confirmed by t.

Two entry points share one slicing rule (``PreparedSeries.window_at``):

- ``build_input(store, exchange, symbol, t, spec)`` reads ``length + pivot_warmup`` closed bars per window from the
  store, computes pivots and indicators on them, and keeps the last ``length`` bars (live inference); trades of the
  primary symbol before t, when stored, give the microstructure fields (``features.order_flow``).
- ``PreparedSeries.build(candles, params)`` computes pivots and indicators once on a whole in-memory series, and
  ``build_input_from_series`` cuts inputs at any t from it (training: thousands of samples without the store).
  Pivots of a whole series are exact at every t by the no-repaint theorem (spec A.5); indicators are causal.

A candle is closed at t iff ``ts + timeframe_ms <= t`` (see ``Candles``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pivotal.data.asof import closed_window
from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.trades import Trades
from pivotal.features.indicators import compute_indicators
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, ModelOutput, WindowKey
from pivotal.features.order_flow import order_flow
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotArray, PivotParams, PivotSet


class PredictionHistory(Protocol):
    """Source of "last predictions" (implemented by ``models.output_store.OutputStore``)."""

    def last_predictions(self, symbol: str, t: int) -> dict[str, ModelOutput]:
        """The newest output of every model for ``symbol`` with timestamp <= t."""
        ...


@dataclass(frozen=True)
class PreparedSeries:
    """One (symbol, timeframe) series with its pivots and indicators computed once over all of it."""

    candles: Candles
    pivots: PivotSet
    indicators: dict[str, np.ndarray]
    close_ts: np.ndarray  # ts + timeframe_ms: the time each bar became known

    @classmethod
    def build(cls, candles: Candles, params: PivotParams) -> PreparedSeries:
        if not candles.timeframe:
            raise ValueError(f"Candles of {candles.symbol or '?'} carry no timeframe; set Candles.timeframe")
        close_ts = candles.ts + timeframe_ms(candles.timeframe)
        if len(candles) == 0:
            pivots = PivotSet(params, [PivotArray.empty()] * params.levels, [PivotArray.empty()] * params.levels)
        else:
            pivots = wms_batch(candles.high, candles.low, candles.open, candles.close, params)
        return cls(candles, pivots, compute_indicators(candles), close_ts)

    def closed_count(self, t: int) -> int:
        """How many bars are closed at t (a prefix of the series)."""
        return int(np.searchsorted(self.close_ts, t, side="right"))

    def window_at(self, t: int, length: int) -> tuple[Candles, PivotSet, dict[str, np.ndarray]]:
        """The last ``length`` bars closed by t, their indicators, and the pivots confirmed by the last of them.

        Pivot indices are shifted to window positions; pivots whose bar lies more than one window length before
        the window are left out (they no longer affect bounds or context).
        """
        stop = self.closed_count(t)
        start = max(0, stop - length)
        window = self.candles.slice(start, stop)
        pivots = _window_pivots(self.pivots, start, stop, length)
        indicators = {name: values[start:stop] for name, values in self.indicators.items()}
        return window, pivots, indicators


def _window_pivots(pivots: PivotSet, start: int, stop: int, length: int) -> PivotSet:
    def cut(arr: PivotArray) -> PivotArray:
        known = arr.known_at(stop - 1) if stop > 0 else PivotArray.empty()
        first = int(np.searchsorted(known.index, start - length, side="left"))
        return PivotArray(known.index[first:] - start, known.price[first:], known.confirmed_at[first:] - start)

    return PivotSet(pivots.params, [cut(a) for a in pivots.highs], [cut(a) for a in pivots.lows])


def build_input_from_series(
    series: Mapping[WindowKey, PreparedSeries],
    symbol: str,
    t: int,
    spec: InputSpec,
    history: PredictionHistory | None = None,
    trades: Trades | None = None,
) -> BaseDataInput:
    """``BaseDataInput`` at t cut from prepared in-memory series; a key absent from ``series`` is left out
    (the completeness check reports it). ``trades`` of the primary symbol give the microstructure fields."""
    ohlcv: dict[WindowKey, Candles] = {}
    indicators: dict[WindowKey, dict[str, np.ndarray]] = {}
    pivots: dict[WindowKey, PivotSet] = {}
    for wspec, key in zip(spec.windows, spec.keys(symbol), strict=True):
        prepared = series.get(key)
        if prepared is None:
            continue
        ohlcv[key], pivots[key], indicators[key] = prepared.window_at(t, wspec.length)
    last = history.last_predictions(symbol, t) if history is not None else {}
    flow = order_flow(trades, t, spec.order_flow_windows_ms) if trades is not None else None
    return BaseDataInput(symbol, int(t), ohlcv, indicators, pivots, last, microstructure=flow)


def build_input(
    store: MarketStore,
    exchange: str,
    symbol: str,
    t: int,
    spec: InputSpec,
    output_store: PredictionHistory | None = None,
) -> BaseDataInput:
    """``BaseDataInput`` for ``symbol`` on ``exchange`` as of t (epoch ms), read from ``store``."""
    series: dict[WindowKey, PreparedSeries] = {}
    for wspec, (sym, tf) in zip(spec.windows, spec.keys(symbol), strict=True):
        candles = closed_window(store, exchange, sym, tf, t, wspec.length + spec.pivot_warmup)
        if len(candles):
            series[(sym, tf)] = PreparedSeries.build(candles, spec.pivot_params)
    trades = None
    if spec.order_flow_windows_ms:
        trades = store.trades(exchange, symbol, t - max(spec.order_flow_windows_ms), t)
    return build_input_from_series(series, symbol, t, spec, output_store, trades)


__all__ = ["PredictionHistory", "PreparedSeries", "build_input", "build_input_from_series"]
