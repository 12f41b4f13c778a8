"""Benchmark of the derived structure (PivotBounds, trend-line feature, zigzag, floor pivots, tracker) on real bars.

Run: ``.venv/bin/python benchmarks/bench_structure_derived.py [--quick]``. Each fast path is timed against a plain
per-bar reference computed in the same run on the same real Binance 1m bars (BTCUSDT-1m-2024; ``--quick``: 50k bars),
and the results are checked equal before the ratio is printed. The wms_batch time is the yardstick for "cheap".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.state.pivots import PivotRepository
from pivotal.structure.bounds import pivot_bounds
from pivotal.structure.floor_pivots import floor_pivots_from_lower
from pivotal.structure.pivots import wms_batch
from pivotal.structure.tracker import PivotTracker
from pivotal.structure.trendlines import active_trend_line, trend_line_values
from pivotal.structure.types import PivotParams, PivotSet
from pivotal.structure.zigzag import zigzag_of_level

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "BTCUSDT-1m-2024.parquet"
REFERENCE_BARS = 20_000  # the per-bar Python references are slow: they run on a prefix


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    fn()  # numba compile / cache load
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def naive_bounds(high: np.ndarray, low: np.ndarray, pivots: PivotSet, window: int) -> np.ndarray:
    """Spec A.6 read literally: scan the confirmed pivots for every bar."""
    hs, ls = pivots.get(2, "H"), pivots.get(2, "L")
    upper = np.empty(len(high))
    for t in range(len(high)):
        up = hs.price[(hs.index >= t - window) & (hs.confirmed_at <= t)]
        lo = ls.price[(ls.index >= t - window) & (ls.confirmed_at <= t)]
        first = max(0, t - window)
        upper[t] = up.max() if len(up) and len(lo) and up.max() > lo.min() else high[first : t + 1].max()
    return upper


def naive_trend_values(pivots: PivotSet, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for t in range(n):
        line = active_trend_line(pivots, t, 2, "H")
        if line is not None:
            out[t] = line.value_at(t)
    return out


def tracker_rate(bars: Candles, chunk: int) -> float:
    """Bars per second through PivotTracker.update on a DuckDB file, fed in chunks as a live feed would."""
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        store.write_candles(bars, source="bench")
        tracker = PivotTracker(PivotParams(), PivotRepository(store))
        start = time.perf_counter()
        for stop in range(chunk, len(bars) + chunk, chunk):
            tracker.update(
                store, bars.exchange, bars.symbol, bars.timeframe, now_ms=int(bars.ts[min(stop, len(bars)) - 1]) + 60_000
            )
        elapsed = time.perf_counter() - start
        store.close()
    return len(bars) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50k bars instead of the whole file")
    args = parser.parse_args()
    table = pq.read_table(DATA, columns=["timestamp", "open", "high", "low", "close", "volume"])
    bars = Candles.from_arrow(table, "binance", "BTC/USDT", "1m")
    if args.quick:
        bars = bars.slice(0, 50_000)
    n = len(bars)
    pivots = wms_batch(high=bars.high, low=bars.low, open=bars.open, close=bars.close, params=PivotParams())
    ref = bars.slice(0, REFERENCE_BARS)
    ref_pivots = wms_batch(high=ref.high, low=ref.low, open=ref.open, close=ref.close, params=PivotParams())

    t_batch = timed(lambda: wms_batch(high=bars.high, low=bars.low, open=bars.open, close=bars.close, params=PivotParams()))
    t_bounds = timed(lambda: pivot_bounds(bars.high, bars.low, bars.close, pivots, 2, 500))
    fast = pivot_bounds(ref.high, ref.low, ref.close, ref_pivots, 2, 500).upper
    t_naive_bounds = timed(lambda: naive_bounds(ref.high, ref.low, ref_pivots, 500), repeats=1)
    assert np.array_equal(fast, naive_bounds(ref.high, ref.low, ref_pivots, 500))
    t_lines = timed(lambda: trend_line_values(pivots, n))
    t_naive_lines = timed(lambda: naive_trend_values(ref_pivots, REFERENCE_BARS), repeats=1)
    assert np.allclose(
        trend_line_values(ref_pivots, REFERENCE_BARS), naive_trend_values(ref_pivots, REFERENCE_BARS), equal_nan=True
    )
    t_zigzag = timed(lambda: zigzag_of_level(pivots, 1, bars.open, bars.close))
    t_floor = timed(lambda: floor_pivots_from_lower(bars, "1d"))
    rate = tracker_rate(bars.slice(0, min(n, 50_000)), chunk=1_000)
    live_rate = tracker_rate(bars.slice(0, 300), chunk=1)

    per_ref = 1e6 / REFERENCE_BARS
    print(f"real BTCUSDT 1m bars: {n:,} (references on the first {REFERENCE_BARS:,}); best of 3, one core, shared machine")
    print(f"{'operation':42} {'µs/bar':>10} {'vs reference':>14} {'vs wms_batch':>14}")
    rows = [
        ("wms_batch, 5 levels (yardstick)", t_batch, None),
        ("pivot_bounds L2 W=500 (numba deque)", t_bounds, t_naive_bounds),
        ("trend_line_values L2H (numpy)", t_lines, t_naive_lines),
        ("zigzag L1 (numpy)", t_zigzag, None),
        ("floor pivots 1d from 1m (resample+map)", t_floor, None),
    ]
    for name, seconds, reference in rows:
        us = seconds / n * 1e6
        ratio = f"{reference * per_ref / us:,.0f}x faster" if reference is not None else "-"
        print(f"{name:42} {us:10.4f} {ratio:>14} {seconds / t_batch:13.2f}x")
    print(f"{'PivotTracker.update, 1k-bar chunks, DuckDB':42} {1e6 / rate:10.3f} {'-':>14} {'(store I/O incl.)':>14}")
    print(f"{'PivotTracker.update, every bar (live), DuckDB':42} {1e6 / live_rate:10.3f} {'-':>14} {'(store I/O incl.)':>14}")


if __name__ == "__main__":
    main()
