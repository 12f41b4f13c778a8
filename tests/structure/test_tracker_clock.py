"""PivotTracker without a database: its persistence is an injected ``PivotRecords`` and "now" an injected clock."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.data.candles import Candles
from pivotal.data.state.pivots import PivotRow, StoredState
from pivotal.data.store import SeriesKey
from pivotal.structure.pivots import wms_batch, wms_events
from pivotal.structure.tracker import PivotTracker
from pivotal.structure.types import PivotParams

pytestmark = pytest.mark.unit

HOUR = 3_600_000
T0 = 1_704_067_200_000
# Hand-written zig-zag highs/lows (not market data): swings every few bars so k=1 confirms pivots quickly.
HIGHS = [10, 12, 11, 9, 10, 13, 12, 11, 14, 12, 10, 11, 15, 13, 12, 16, 14, 13]
PARAMS = PivotParams(k=1, levels=2)


def bars(n: int = len(HIGHS)) -> Candles:
    high = np.array(HIGHS[:n], dtype=np.float64)
    low = high - 2.0
    mid = (high + low) / 2
    ts = T0 + HOUR * np.arange(n, dtype=np.int64)
    return Candles(ts, mid, high, low, mid, np.ones(n), "x", "A/B", "1h")


class MemoryRecords:
    def __init__(self) -> None:
        self.states: dict[tuple[SeriesKey, str], StoredState] = {}
        self.rows: list[PivotRow] = []
        self.saved_at: list[int] = []

    def load_state(self, key: SeriesKey, params_hash: str) -> StoredState | None:
        return self.states.get((key, params_hash))

    def save(
        self,
        key: SeriesKey,
        params_hash: str,
        params_json: str,
        pivots: Sequence[PivotRow],
        state: StoredState,
        updated_ms: int,
        replace_state: bool,
    ) -> None:
        assert replace_state == ((key, params_hash) in self.states)
        self.rows.extend(p for p in pivots if p not in self.rows)
        self.states[(key, params_hash)] = state
        self.saved_at.append(updated_ms)

    def pivots(self, key: SeriesKey, params_hash: str) -> list[PivotRow]:
        return sorted(self.rows, key=lambda r: (r.confirmed_at, r.level, r.index, r.kind))


class MemorySource:
    def __init__(self, candles: Candles) -> None:
        self.bars = candles

    def candles(self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None) -> Candles:
        ts = self.bars.ts
        lo = 0 if start is None else int(np.searchsorted(ts, start))
        hi = len(ts) if end is None else int(np.searchsorted(ts, end))
        return self.bars.slice(lo, hi)


def test_now_comes_from_the_injected_clock() -> None:
    all_bars = bars()
    clock = SimulatedClock(T0 + 5 * HOUR)  # bars 0..4 closed
    records = MemoryRecords()
    tracker = PivotTracker(PARAMS, records, clock=clock)
    source = MemorySource(all_bars)
    first = tracker.update(source, "x", "A/B", "1h")
    assert records.states[(("x", "A/B", "1h"), tracker.params_hash)].bars == 5 and records.saved_at == [T0 + 5 * HOUR]
    clock.set(T0 + len(HIGHS) * HOUR)
    rest = tracker.update(source, "x", "A/B", "1h")
    batch = wms_batch(open=all_bars.open, high=all_bars.high, low=all_bars.low, close=all_bars.close, params=PARAMS)
    expected = wms_events(batch, all_bars.open, all_bars.close, all_bars.ts, HOUR)
    assert len(expected) >= 6 and first + rest == expected
    assert tracker.update(source, "x", "A/B", "1h") == []  # nothing new closed
    restarted = PivotTracker(PARAMS, records, clock=clock)  # state from the records, not from memory
    assert restarted.update(source, "x", "A/B", "1h") == []
    stored = restarted.stored_pivots("x", "A/B", "1h")
    assert stored == sorted(expected, key=lambda e: (e.confirmed_at, e.level, e.index, e.kind))
