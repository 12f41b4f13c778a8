"""PivotTracker: chunked updates equal one batch run, restarts continue identically, pivots are never rewritten.

Runs on both backends (DuckDB file; PostgreSQL in a throw-away schema) with real Binance bars.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.state.pivots import PivotRepository
from pivotal.structure.pivots import wms_batch, wms_events
from pivotal.structure.tracker import PivotTracker, params_hash
from pivotal.structure.types import PivotEvent, PivotParams

EX, SYM, TF = "binance", "ETH/USDT", "1h"
TF_MS = timeframe_ms(TF)
PARAMS = PivotParams(k=2, m=1, levels=4)


@pytest.fixture(scope="module")
def bars(shared_data: Path) -> Candles:
    frame = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1h.parquet")
    return Candles.from_frame(frame, EX, SYM, TF)


def _batch_events(bars: Candles) -> list[PivotEvent]:
    pivots = wms_batch(high=bars.high, low=bars.low, open=bars.open, close=bars.close, params=PARAMS)
    return wms_events(pivots, bars.open, bars.close, bars.ts, TF_MS)


def _key(e: PivotEvent) -> tuple:
    return (e.confirmed_at, e.level, e.index, e.kind, e.price, e.ts, e.confirmed_ts)


def test_chunked_updates_equal_one_batch_run(store, bars: Candles) -> None:  # type: ignore[no-untyped-def]
    tracker = PivotTracker(PARAMS, PivotRepository(store))
    emitted: list[PivotEvent] = []
    for stop in (7, 150, 151, 320, len(bars)):
        store.write_candles(bars.slice(0, stop), source="test")
        emitted += tracker.update(store, EX, SYM, TF, now_ms=int(bars.ts[stop - 1]) + TF_MS)
    expected = _batch_events(bars)
    assert len(expected) > 100 and any(e.level == 3 for e in expected)
    assert emitted == expected  # same pivots, same emission order, same timestamps
    assert sorted(map(_key, tracker.stored_pivots(EX, SYM, TF))) == sorted(map(_key, expected))


def test_restart_from_persisted_state_continues_identically(store, bars: Candles) -> None:  # type: ignore[no-untyped-def]
    store.write_candles(bars.slice(0, 200), source="test")
    first = PivotTracker(PARAMS, PivotRepository(store)).update(store, EX, SYM, TF, now_ms=int(bars.ts[199]) + TF_MS)
    store.write_candles(bars, source="test")
    restarted = PivotTracker(PARAMS, PivotRepository(store))  # a new process: nothing in memory, state comes from pivot_state
    rest = restarted.update(store, EX, SYM, TF, now_ms=int(bars.ts[-1]) + TF_MS)
    assert first + rest == _batch_events(bars)
    assert restarted.update(store, EX, SYM, TF, now_ms=int(bars.ts[-1]) + 10 * TF_MS) == []  # nothing new


def test_only_closed_bars_are_fed(store, bars: Candles) -> None:  # type: ignore[no-untyped-def]
    store.write_candles(bars.slice(0, 100), source="test")
    tracker = PivotTracker(PARAMS, PivotRepository(store))
    tracker.update(store, EX, SYM, TF, now_ms=int(bars.ts[99]) + TF_MS - 1)  # bar 99 is still forming
    state = store.query("SELECT last_ts, bars FROM pivot_state WHERE params_hash = ?", [params_hash(PARAMS)])
    assert state == [(int(bars.ts[98]), 99)]


def test_written_pivots_never_change_and_params_do_not_mix(store, bars: Candles) -> None:  # type: ignore[no-untyped-def]
    store.write_candles(bars, source="test")
    now = int(bars.ts[-1]) + TF_MS
    tracker = PivotTracker(PARAMS, PivotRepository(store))
    tracker.update(store, EX, SYM, TF, now_ms=now)
    before = tracker.stored_pivots(EX, SYM, TF)
    # A replay after losing the state (crash between the two writes) re-inserts the same rows: no change, no error.
    store.execute("DELETE FROM pivot_state")
    PivotTracker(PARAMS, PivotRepository(store)).update(store, EX, SYM, TF, now_ms=now)
    assert tracker.stored_pivots(EX, SYM, TF) == before
    other = PivotTracker(PivotParams(k=1, levels=2), PivotRepository(store))
    other.update(store, EX, SYM, TF, now_ms=now)
    assert other.params_hash != tracker.params_hash
    assert tracker.stored_pivots(EX, SYM, TF) == before
    assert len(other.stored_pivots(EX, SYM, TF)) > len(before)  # k=1 finds more L1 pivots
    ts = np.array([e.ts for e in before])
    assert np.isin(ts, bars.ts).all()


def test_a_failed_write_loses_nothing(store, bars: Candles) -> None:  # type: ignore[no-untyped-def]
    """If persisting fails, the next update restarts from the stored state instead of skipping those bars."""
    store.write_candles(bars, source="test")
    tracker = PivotTracker(PARAMS, PivotRepository(store))
    tracker.update(store, EX, SYM, TF, now_ms=int(bars.ts[199]) + TF_MS)
    store.execute("ALTER TABLE pivot_state RENAME TO pivot_state_away")
    with pytest.raises(Exception, match="pivot_state"):
        tracker.update(store, EX, SYM, TF, now_ms=int(bars.ts[-1]) + TF_MS)
    store.execute("ALTER TABLE pivot_state_away RENAME TO pivot_state")
    tracker.update(store, EX, SYM, TF, now_ms=int(bars.ts[-1]) + TF_MS)
    assert sorted(map(_key, tracker.stored_pivots(EX, SYM, TF))) == sorted(map(_key, _batch_events(bars)))
