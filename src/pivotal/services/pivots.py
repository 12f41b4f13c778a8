"""Use cases of the pivot tools (``pivotal pivots compute|chart|update``, later the HTTP API).

``compute_pivots`` runs the batch detector on loaded bars; ``update_pivots`` feeds a stored series' new closed bars
to its persisted incremental detector (``structure.tracker.PivotTracker`` over ``data.state.pivots.PivotRepository``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pivotal.config import Settings
from pivotal.core.clock import Clock
from pivotal.core.errors import UserInputError
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import check_timeframe
from pivotal.data.state.pivots import PivotRepository
from pivotal.structure.pivots import wms_batch, wms_events
from pivotal.structure.tracker import PivotTracker
from pivotal.structure.types import PivotArray, PivotEvent, PivotParams, PivotSet

MAX_CHART_CANDLES = 1500  # more candles than this are unreadable in a PNG and heavy in an HTML: groups are merged


@dataclass(frozen=True)
class PivotUpdate:
    """What one ``update_pivots`` run added."""

    exchange: str
    symbol: str
    timeframe: str
    params_hash: str
    events: list[PivotEvent]

    def counts(self) -> dict[str, int]:
        """New pivots per label (``L1H`` ...)."""
        by_label: dict[str, int] = {}
        for e in self.events:
            by_label[e.label] = by_label.get(e.label, 0) + 1
        return dict(sorted(by_label.items()))


def compute_pivots(bars: Candles, params: PivotParams) -> tuple[PivotSet, list[PivotEvent]]:
    """Every pivot of every level over ``bars`` and its events; without a known timeframe confirmation times are None."""
    try:
        pivots = wms_batch(high=bars.high, low=bars.low, open=bars.open, close=bars.close, params=params)
    except ValueError as exc:
        raise UserInputError(f"invalid bars: {exc}") from None
    tf_ms = TIMEFRAMES.get(bars.timeframe)
    if tf_ms:
        return pivots, wms_events(pivots, bars.open, bars.close, bars.ts, tf_ms)
    return pivots, [replace(e, ts=int(bars.ts[e.index])) for e in wms_events(pivots, bars.open, bars.close)]


def update_pivots(
    settings: Settings,
    exchange: str,
    symbol: str,
    timeframe: str,
    params: PivotParams,
    *,
    now_ms: int | None = None,
    clock: Clock | None = None,
) -> PivotUpdate:
    """Feed the closed candles stored since the last run to the series' detector and persist new pivots and state."""
    check_timeframe(timeframe)
    market = open_store(settings)
    try:
        tracker = PivotTracker(params, PivotRepository(market), clock=clock)
        try:
            events = tracker.update(market, exchange, symbol, timeframe, now_ms=now_ms)
        except ValueError as exc:
            raise UserInputError(f"{exchange} {symbol} {timeframe}: {exc}") from None
    finally:
        market.close()
    return PivotUpdate(exchange, symbol, timeframe, tracker.params_hash, events)


@dataclass(frozen=True)
class ChartWindow:
    """The bars a chart draws and the pivots on them: ``group`` consecutive bars merged into one candle (1 = as is)."""

    bars: Candles
    pivots: PivotSet
    group: int
    first_ts: int  # open time of the first bar drawn
    last_ts: int  # open time of the last bar drawn
    shown: int  # bars of the input that the chart covers (before merging)


def chart_window(bars: Candles, pivots: PivotSet, first: int, max_candles: int = MAX_CHART_CANDLES) -> ChartWindow:
    """Bars ``first..`` of ``bars`` and their pivots (computed on all bars), merged ``group`` at a time when there are
    more than ``max_candles`` of them: open of the first, highest high, lowest low, close of the last, summed volume;
    a pivot sits on the candle holding its bar and keeps its own price; its confirmation moves to the candle holding
    the confirming bar. With ``group`` 1 the bars and pivot positions are only shifted by ``first``."""
    n = len(bars)
    if not 0 <= first < n:
        raise UserInputError(f"no bars to draw (first bar {first} of {n})")
    shown = n - first
    group = max(1, -(-shown // max_candles))
    starts = np.arange(first, n, group)
    ends = np.append(starts[1:], n) - 1
    merged = Candles(
        np.asarray(bars.ts[starts], dtype=np.int64),
        np.asarray(bars.open[starts], dtype=np.float64),
        np.maximum.reduceat(np.asarray(bars.high[first:], dtype=np.float64), starts - first),
        np.minimum.reduceat(np.asarray(bars.low[first:], dtype=np.float64), starts - first),
        np.asarray(bars.close[ends], dtype=np.float64),
        np.add.reduceat(np.asarray(bars.volume[first:], dtype=np.float64), starts - first),
        bars.exchange,
        bars.symbol,
        bars.timeframe if group == 1 else "",
    )

    def shift(arr: PivotArray) -> PivotArray:
        keep = arr.index >= first
        index = (arr.index[keep] - first) // group
        confirmed = (arr.confirmed_at[keep] - first) // group
        return PivotArray(index.astype(np.int64), arr.price[keep], confirmed.astype(np.int64))

    moved = PivotSet(pivots.params, [shift(a) for a in pivots.highs], [shift(a) for a in pivots.lows])
    return ChartWindow(merged, moved, group, int(bars.ts[first]), int(bars.ts[-1]), shown)
