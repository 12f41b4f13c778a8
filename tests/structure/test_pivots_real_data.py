"""Real exchange data (../shared/data): prefix replay with zero rewrites, and incremental == batch event for event."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pivotal.core.timeframes import timeframe_ms
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.pivots import with_timestamps, wms_batch, wms_events
from pivotal.structure.types import PivotParams, PivotSet

SERIES = {  # file -> timeframe
    "binance/BTCUSDT-1h-2018-2026.parquet": "1h",
    "binance/ETHUSDT-1m-2024.parquet": "1m",
    "coinbase/BTCUSD-4h.parquet": "4h",
    "binance/SOLUSDT-1h-2020-2026.parquet": "1h",
    "ftx/BTC-PERP-1m.parquet": "1m",
    "coinbase/ETHUSD-1d.parquet": "1d",
}
PROFILES = {
    "default": PivotParams(),
    "williams-classic": PivotParams(k=1, m=1, tie="first", skip_inside=True),
    "strict-wide": PivotParams(k=3, m=2, tie="strict"),
    "last": PivotParams(k=2, m=1, tie="last", skip_inside=True),
}


def _load(shared_data: Path, name: str) -> dict[str, np.ndarray]:
    table = pq.read_table(shared_data / name, columns=["timestamp", "open", "high", "low", "close"])
    return {col: table[col].to_numpy() for col in table.column_names}


def _same(a: PivotSet, b: PivotSet) -> bool:
    pairs = zip(a.highs + a.lows, b.highs + b.lows, strict=True)
    return all(
        np.array_equal(x.index, y.index) and np.array_equal(x.price, y.price) and np.array_equal(x.confirmed_at, y.confirmed_at)
        for x, y in pairs
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("name", sorted(SERIES))
def test_prefix_replay_never_rewrites_a_pivot(shared_data: Path, name: str, profile: str) -> None:
    bars = _load(shared_data, name)
    params = PROFILES[profile]
    args = {k: bars[k] for k in ("open", "high", "low", "close")}
    full = wms_batch(**args, params=params)
    n = len(bars["high"])
    assert len(full.get(3, "H")) > 0 and len(full.get(3, "L")) > 0, "series too short to exercise the upper levels"
    rng = np.random.default_rng(zlib.crc32(f"{name}/{profile}".encode()))
    # random cuts, plus cuts right at and just before confirmations of the highest non-empty level
    top = next(a for a in reversed(full.highs) if len(a))
    cuts = (
        set(rng.integers(0, n, 25).tolist()) | {int(c) for c in top.confirmed_at[:5]} | {int(c) - 1 for c in top.confirmed_at[:5]}
    )
    for t in sorted(cuts):
        prefix = wms_batch(**{k: col[: t + 1] for k, col in args.items()}, params=params)
        assert _same(prefix, full.known_at(t)), f"{name} {profile}: pivots of bars[0..{t}] differ from the full run"


@pytest.mark.parametrize("profile", ["default", "williams-classic"])
@pytest.mark.parametrize("name", sorted(SERIES))
def test_incremental_emits_exactly_the_batch_events(shared_data: Path, name: str, profile: str) -> None:
    bars = _load(shared_data, name)
    params = PROFILES[profile]
    tf = timeframe_ms(SERIES[name])
    ts = bars["timestamp"]
    expected = wms_events(
        wms_batch(high=bars["high"], low=bars["low"], open=bars["open"], close=bars["close"], params=params),
        bars["open"],
        bars["close"],
        ts,
        tf,
    )
    detector = WilliamsMarketStructure(params)
    on_bar = detector.on_bar
    rows = zip(
        bars["open"].tolist(), bars["high"].tolist(), bars["low"].tolist(), bars["close"].tolist(), ts.tolist(), strict=True
    )
    streamed = [e for i, (o, h, lo, c, t) in enumerate(rows) for e in on_bar(i, o, h, lo, c, t, t + tf)]
    assert len(streamed) == len(expected) > 0
    assert streamed == expected
    assert {e.level for e in streamed} == set(range(1, params.levels + 1))
    # the persisted state stays O(k + levels*m + history), however long the series
    assert len(json.dumps(detector.state())) < 16_000


def test_timestamps_on_real_bars_mark_open_of_pivot_and_close_of_confirmation(shared_data: Path) -> None:
    bars = _load(shared_data, "coinbase/BTCUSD-4h.parquet")
    tf = timeframe_ms("4h")
    pivots = wms_batch(high=bars["high"], low=bars["low"], params=PivotParams(k=2))
    timed = with_timestamps(pivots, bars["timestamp"], tf)
    level1 = timed.get(1, "H")
    assert np.array_equal(level1.ts, bars["timestamp"][level1.index])
    assert np.array_equal(level1.confirmed_ts, bars["timestamp"][level1.index + 2] + tf)
    level5 = timed.get(5, "L")
    assert len(level5) > 0 and np.all(level5.confirmed_ts > level5.ts + 2 * tf)
    assert np.array_equal(level5.price, bars["low"][level5.index])
