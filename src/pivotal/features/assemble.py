"""Assemble a ``BaseDataInput`` as of time t: only candles closed by t, only pivots confirmed by t.

There is **one** way to build the input, for training and for live inference alike, so the two cannot differ:

1. ``load_input_series`` reads each window's *whole* stored series (a coarser timeframe the store does not cover is
   filled from the symbol's finest window by aggregation, complete buckets only);
2. ``prepare_series`` computes pivots and indicators once over each whole series (``PreparedSeries.build``);
3. ``build_input_from_series`` cuts the input at t (``PreparedSeries.window_at``): the last bars closed by t, their
   indicators, and the pivots of the series' pivot table with ``confirmed_at`` <= the last of them.

Training cuts thousands of inputs from one preparation; ``build_input`` (live) prepares and cuts one. The pivot
context at t is therefore the same table filtered the same way in both: identical by construction, not "close after
enough warm-up" (a window plus 200 warm-up bars differs from the full history at level 4 on real data). Nothing after
t leaks in: pivots are filtered by confirmation (no-repaint, spec A.5) and indicators are causal (tested against a
series truncated at t).

A candle is closed at t iff ``ts + timeframe_ms <= t`` (see ``Candles``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.resample import resample
from pivotal.data.store import MarketStore
from pivotal.data.trades import Trades
from pivotal.features.cob import CobFeatures, order_book_at
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
            pivots = wms_batch(high=candles.high, low=candles.low, open=candles.open, close=candles.close, params=params)
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
    order_book: CobFeatures | None = None,
) -> BaseDataInput:
    """``BaseDataInput`` at t cut from prepared in-memory series; a key absent from ``series`` is left out
    (the completeness check reports it). ``trades`` of the primary symbol give the microstructure fields;
    ``order_book`` (``features.cob`` rows of the primary symbol) gives ``order_book``: the vector of the newest row
    known by t, None where depth does not cover t (``features.cob.order_book_at``)."""
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
    book = order_book_at(order_book, t) if order_book is not None else None
    return BaseDataInput(symbol, int(t), ohlcv, indicators, pivots, last, order_book=book, microstructure=flow)


def fill_from_base(stored: Candles, base: Candles, timeframe: str) -> Candles:
    """``stored`` bars of ``timeframe`` plus complete buckets aggregated from ``base`` wherever ``stored`` has no bar
    overlapping them (before its first bar, in its gaps, after its last). Stored bars are never replaced."""
    aggregated = resample(base, timeframe)[0]
    if len(stored) == 0:
        return aggregated
    if len(aggregated) == 0:
        return stored
    step = timeframe_ms(timeframe)
    # an aggregated bucket [a, a + step) overlaps a stored bar iff some stored ts lies in (a - step, a + step)
    lo = np.searchsorted(stored.ts, aggregated.ts - step, side="right")
    hi = np.searchsorted(stored.ts, aggregated.ts + step, side="left")
    extra = np.flatnonzero(hi == lo)
    if len(extra) == 0:
        return stored
    order = np.argsort(np.concatenate([stored.ts, aggregated.ts[extra]]), kind="stable")

    def merged(name: str) -> np.ndarray:
        return np.concatenate([getattr(stored, name), getattr(aggregated, name)[extra]])[order]

    ts, open_, high, low, close, volume = (merged(name) for name in _COLUMNS)
    return Candles(ts, open_, high, low, close, volume, exchange=stored.exchange, symbol=stored.symbol, timeframe=timeframe)


_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def base_timeframes(spec: InputSpec, symbol: str) -> dict[str, str]:
    """Per symbol of the spec, its finest window timeframe: the one coarser windows are aggregated from."""
    out: dict[str, str] = {}
    for sym, tf in spec.keys(symbol):
        if sym not in out or timeframe_ms(tf) < timeframe_ms(out[sym]):
            out[sym] = tf
    return out


def load_input_series(
    store: MarketStore | None,
    exchange: str,
    symbol: str,
    spec: InputSpec,
    provided: Mapping[WindowKey, Candles] | None = None,
) -> dict[WindowKey, Candles]:
    """The whole series of every window of ``spec`` (see module doc), from ``provided`` or else ``store``.

    A window coarser than its symbol's finest window is filled from it (``fill_from_base``) wherever the store does not
    cover it: a stored 1d series that ends in 2020 does not leave 2021-2026 inputs with a 2020 window. A key with no
    bars at all is left out (the completeness check reports it).
    """
    provided = dict(provided or {})
    finest = base_timeframes(spec, symbol)

    def stored(key: WindowKey) -> Candles:
        if key in provided:
            return provided[key]
        if store is None:
            return Candles.empty(exchange, key[0], key[1])
        return store.candles(exchange, key[0], key[1])

    out: dict[WindowKey, Candles] = {}
    for sym, tf in spec.keys(symbol):
        candles = stored((sym, tf))
        base_tf = finest[sym]
        if base_tf != tf and timeframe_ms(tf) % timeframe_ms(base_tf) == 0:
            base = stored((sym, base_tf))
            if len(base):
                candles = fill_from_base(candles, base, tf)
        if len(candles):
            out[(sym, tf)] = candles
    return out


def prepare_series(candles: Mapping[WindowKey, Candles], params: PivotParams) -> dict[WindowKey, PreparedSeries]:
    """Pivots and indicators once per whole series (both causal: value i uses bars <= i only)."""
    return {key: PreparedSeries.build(c, params) for key, c in candles.items()}


def build_input(
    store: MarketStore,
    exchange: str,
    symbol: str,
    t: int,
    spec: InputSpec,
    output_store: PredictionHistory | None = None,
    prepared: Mapping[WindowKey, PreparedSeries] | None = None,
    order_book: CobFeatures | None = None,
) -> BaseDataInput:
    """``BaseDataInput`` for ``symbol`` on ``exchange`` as of t (epoch ms) from ``store``: the same load → prepare → cut
    as training (module doc). Pass ``prepared`` (from ``prepare_series``) to answer many t without re-reading, and
    ``order_book`` (COB rows from ``services.cob`` over the stored depth) to fill the order-book part."""
    if prepared is None:
        prepared = prepare_series(load_input_series(store, exchange, symbol, spec), spec.pivot_params)
    trades = None
    if spec.order_flow_windows_ms:
        trades = store.trades(exchange, symbol, t - max(spec.order_flow_windows_ms), t)
    return build_input_from_series(prepared, symbol, t, spec, output_store, trades, order_book)


__all__ = [
    "PredictionHistory",
    "PreparedSeries",
    "base_timeframes",
    "build_input",
    "build_input_from_series",
    "fill_from_base",
    "load_input_series",
    "prepare_series",
]
