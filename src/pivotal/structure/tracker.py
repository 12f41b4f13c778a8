"""Per-series incremental pivot tracking (spec A.5, A.7 items 6-7): pure logic over injected seams.

One ``WilliamsMarketStructure`` per (exchange, symbol, timeframe). ``update`` feeds the closed candles (``source``)
since the last processed bar to the detector and hands the confirmed pivots and the new detector state to the
``records`` (in production ``pivotal.data.state.pivots.PivotRepository``: pivots append-only, then the state, so a
crash between the two writes replays the same bars and re-inserts the same pivots as no-ops). "Now" comes from the
injected ``Clock``; this module holds no SQL and never reads the wall clock itself.

Bar positions (``bar_index``, ``confirmed_at``) count the bars of the series from the first one the tracker saw.
The tracker assumes an append-only series: bars inserted later *before* the last processed one are not seen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Protocol

from pivotal.core.clock import Clock, WallClock
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.state.pivots import PivotRow, StoredState
from pivotal.data.store import SeriesKey
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.types import PivotEvent, PivotParams


class CandleSource(Protocol):
    """The part of ``MarketStore`` the tracker reads."""

    def candles(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
    ) -> Candles: ...


class PivotRecords(Protocol):
    """Where pivots and detector state persist (``PivotRepository``; an in-memory double in tests)."""

    def load_state(self, key: SeriesKey, params_hash: str) -> StoredState | None: ...

    def save(
        self,
        key: SeriesKey,
        params_hash: str,
        params_json: str,
        pivots: Sequence[PivotRow],
        state: StoredState,
        updated_ms: int,
        replace_state: bool,
    ) -> None: ...

    def pivots(self, key: SeriesKey, params_hash: str) -> list[PivotRow]: ...


def params_hash(params: PivotParams) -> str:
    """Stable short id of the detector parameters: pivots of different parameter sets never mix."""
    return hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode()).hexdigest()[:16]


class _Series:
    """Detector plus bookkeeping of one series."""

    def __init__(self, detector: WilliamsMarketStructure, next_index: int, last_ts: int | None) -> None:
        self.detector = detector
        self.next_index = next_index
        self.last_ts = last_ts


def feed_bars(detector: WilliamsMarketStructure, bars: Candles, first_index: int, tf_ms: int) -> list[PivotEvent]:
    """Feed ``bars`` (bar positions from ``first_index``) to the detector; the pivots they confirm, in emission order."""
    events: list[PivotEvent] = []
    on_bar = detector.on_bar
    index = first_index
    rows = zip(bars.ts.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist(), strict=True)
    for ts, o, h, lo, c in rows:
        events.extend(on_bar(index, o, h, lo, c, ts, ts + tf_ms))
        index += 1
    return events


class PivotTracker:
    """Keeps one detector per series in memory and in ``records``; see the module docstring."""

    def __init__(self, params: PivotParams, records: PivotRecords, *, history: int = 8, clock: Clock | None = None) -> None:
        self.params = params
        self.params_hash = params_hash(params)
        self.records = records
        self.clock: Clock = clock or WallClock()
        self._params_json = json.dumps(asdict(params), sort_keys=True)
        self._history = history
        self._series: dict[SeriesKey, _Series] = {}

    def _load(self, key: SeriesKey) -> _Series:
        stored = self.records.load_state(key, self.params_hash)
        if stored is None:
            return _Series(WilliamsMarketStructure(self.params, self._history), 0, None)
        return _Series(WilliamsMarketStructure.from_state(json.loads(stored.state)), stored.bars, stored.last_ts)

    def update(
        self, source: CandleSource, exchange: str, symbol: str, timeframe: str, now_ms: int | None = None
    ) -> list[PivotEvent]:
        """Feed the candles closed by ``now_ms`` (default: the clock's now) that follow the last processed bar.

        Returns the pivots confirmed by them, in emission order, after they and the new state are persisted.
        """
        tf_ms = timeframe_ms(timeframe)
        now_ms = self.clock.now_ms() if now_ms is None else now_ms
        key = (exchange, symbol, timeframe)
        series = self._series.get(key) or self._load(key)
        start = None if series.last_ts is None else series.last_ts + 1
        bars = source.candles(exchange, symbol, timeframe, start, now_ms - tf_ms + 1)  # closed: ts + tf_ms <= now
        if len(bars) == 0:
            self._series[key] = series
            return []
        has_state_row = series.last_ts is not None
        try:
            events = feed_bars(series.detector, bars, series.next_index, tf_ms)
            series.next_index += len(bars)
            series.last_ts = int(bars.ts[-1])
            state = StoredState(series.last_ts, series.next_index, json.dumps(series.detector.state(), separators=(",", ":")))
            rows = [PivotRow(e.level, e.kind, e.index, e.price, e.confirmed_at, e.ts or 0, e.confirmed_ts or 0) for e in events]
            self.records.save(key, self.params_hash, self._params_json, rows, state, self.clock.now_ms(), has_state_row)
        except BaseException:
            self._series.pop(key, None)  # memory ran ahead of the records: reload the persisted state next time
            raise
        self._series[key] = series
        return events

    def stored_pivots(self, exchange: str, symbol: str, timeframe: str) -> list[PivotEvent]:
        """Every persisted pivot of the series for these parameters, ordered by (confirmed_at, level, bar_index, kind)."""
        rows = self.records.pivots((exchange, symbol, timeframe), self.params_hash)
        return [PivotEvent(r.level, r.kind, r.index, r.price, r.confirmed_at, r.ts, r.confirmed_ts) for r in rows]  # type: ignore[arg-type]
