"""Use cases of the pivot tools (``pivotal pivots compute|chart|update``, later the HTTP API).

``compute_pivots`` runs the batch detector on loaded bars; ``update_pivots`` feeds a stored series' new closed bars
to its persisted incremental detector (``structure.tracker.PivotTracker`` over ``data.state.pivots.PivotRepository``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
from pivotal.structure.types import PivotEvent, PivotParams, PivotSet


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
