"""Benchmark of ``compute_indicators`` (numba) against ``ta_indicators`` (the ``ta`` library) in the same run.

Run: .venv/bin/python benchmarks/bench_indicators.py [--repeat N]

Windows of 600 bars (the live path: window + pivot warm-up) and 5,000 bars, cut at different places of the real
BTCUSDT-1m-2024 Binance file; each call computes all ten indicators of ``features.indicators.INDICATORS``. Prints µs
per call (median and p99 over the calls) for both and the ratio ta / numba; checks the outputs are identical first.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pivotal.data.candles import Candles
from pivotal.features.indicators import INDICATORS, compute_indicators, ta_indicators

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "BTCUSDT-1m-2024.parquet"
SIZES = (600, 5000)


def load() -> Candles:
    cols = ["timestamp", "open", "high", "low", "close", "volume"]
    return Candles.from_frame(pq.read_table(DATA, columns=cols).to_pandas(), "binance", "BTC/USDT", "1m")


def per_call_us(fn: Callable[[Candles], object], windows: list[Candles]) -> np.ndarray:
    fn(windows[0])  # warm-up: numba cache load / pandas first-call costs
    times = np.empty(len(windows))
    for i, window in enumerate(windows):
        start = time.perf_counter()
        fn(window)
        times[i] = time.perf_counter() - start
    return times * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300, help="calls per size and implementation (default 300)")
    args = parser.parse_args()
    candles = load()
    print(f"data: {DATA.name}, {len(candles):,} bars; {args.repeat} calls per row, windows at different offsets")
    print(f"{'window':>8} {'numba p50 µs':>13} {'p99':>9} {'ta p50 µs':>11} {'p99':>9} {'ratio ta/numba (p50)':>21}")
    for size in SIZES:
        starts = np.linspace(0, len(candles) - size, args.repeat).astype(int)
        windows = [candles.slice(int(s), int(s) + size) for s in starts]
        fast, ref = compute_indicators(windows[-1]), ta_indicators(windows[-1])
        assert all(np.array_equal(fast[k], ref[k], equal_nan=True) for k in INDICATORS), "numba != ta"
        numba_us = per_call_us(compute_indicators, windows)
        ta_us = per_call_us(ta_indicators, windows)
        n50, n99 = np.percentile(numba_us, [50, 99])
        t50, t99 = np.percentile(ta_us, [50, 99])
        print(f"{size:>8,} {n50:>13.1f} {n99:>9.1f} {t50:>11.1f} {t99:>9.1f} {t50 / n50:>20.1f}x")


if __name__ == "__main__":
    main()
