"""Benchmark of the Williams pivot engine on real Binance 1m bars (run: .venv/bin/python benchmarks/bench_pivots.py).

Batch (all 5 levels) is compared in the same run with ``smartmoneyconcepts.smc.swing_highs_lows`` (level 1 only, its
own semantics: equality with a rolling max, alternation collapse, fake end swings) and with a plain numpy
``sliding_window_view`` level-1 detector. The ≥ 1 M bars are the real BTCUSDT, ETHUSDT and SOLUSDT 1m yearly files
2021-2026 concatenated end to end (the joins are price jumps; harmless for timing). ``--quick``: BTCUSDT-1m-2024 only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from numpy.lib.stride_tricks import sliding_window_view

from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"
FULL_FILES = [f"{sym}-1m-{year}.parquet" for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT") for year in range(2021, 2027)]
QUICK_FILES = ["BTCUSDT-1m-2024.parquet"]
BATCH_GOAL_BARS_PER_S = 20e6
INCREMENTAL_GOAL_US = 5.0


def load(files: list[str]) -> pd.DataFrame:
    cols = ["timestamp", "open", "high", "low", "close", "volume"]
    return pd.concat([pq.read_table(DATA / f, columns=cols).to_pandas() for f in files], ignore_index=True)


def best_of(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: numba compile / cache load, pandas first-call costs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_level1(high: np.ndarray, low: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy L1 (tie=first) with sliding windows: the 'obvious' vectorised baseline of spec A.8."""

    def select(x: np.ndarray) -> np.ndarray:
        win = sliding_window_view(x, 2 * k + 1)
        centre = win[:, k]
        keep = (centre > win[:, :k].max(axis=1)) & (centre >= win[:, k + 1 :].max(axis=1))
        return np.flatnonzero(keep) + k

    return select(high), select(-low)


def incremental_us_per_bar(frame: pd.DataFrame, params: PivotParams, tf_ms: int) -> float:
    detector = WilliamsMarketStructure(params)
    on_bar = detector.on_bar
    rows = list(
        zip(
            frame["open"].tolist(),
            frame["high"].tolist(),
            frame["low"].tolist(),
            frame["close"].tolist(),
            frame["timestamp"].tolist(),
            strict=True,
        )
    )
    start = time.perf_counter()
    for i, (o, h, lo, c, ts) in enumerate(rows):
        on_bar(i, o, h, lo, c, ts, ts + tf_ms)
    return (time.perf_counter() - start) / len(rows) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one yearly file (~170k bars) instead of 18 (~2.6M)")
    args = parser.parse_args()
    files = QUICK_FILES if args.quick else FULL_FILES
    frame = load(files)
    n = len(frame)
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    open_, close = frame["open"].to_numpy(), frame["close"].to_numpy()
    repeats = 3 if args.quick else 5
    params = PivotParams()  # k=2, m=1, 5 levels, tie=first

    from smartmoneyconcepts import smc  # prints a banner on import

    ohlc = frame[["open", "high", "low", "close", "volume"]]
    rows = [
        (
            "wms_batch, 5 levels, k=2 (reference)",
            best_of(lambda: wms_batch(high=high, low=low, open=open_, close=close, params=params), repeats),
        ),
        (
            "wms_batch, 5 levels, k=1 skip_inside",
            best_of(
                lambda: wms_batch(high=high, low=low, open=open_, close=close, params=PivotParams(k=1, skip_inside=True)), repeats
            ),
        ),
        ("numpy sliding_window_view, L1 only, k=2", best_of(lambda: numpy_level1(high, low, 2), repeats)),
        ("smc.swing_highs_lows, L1 only, swing_length=2", best_of(lambda: smc.swing_highs_lows(ohlc, swing_length=2), repeats)),
    ]
    reference = rows[0][1]
    shown = ", ".join(files[:3]) + (" ..." if len(files) > 3 else "")
    print(f"\nreal bars: {n:,} ({len(files)} Binance 1m files concatenated: {shown})")
    print(f"{'method':48} {'best s':>9} {'M bars/s':>9} {'time / wms_batch':>17}")
    for name, seconds in rows:
        print(f"{name:48} {seconds:9.4f} {n / seconds / 1e6:9.1f} {seconds / reference:17.2f}")
    verdict = "met" if n / reference >= BATCH_GOAL_BARS_PER_S else "NOT met"
    print(f"batch goal >= {BATCH_GOAL_BARS_PER_S / 1e6:.0f} M bars/s: {verdict}")

    inc_bars = frame.iloc[: 50_000 if args.quick else 300_000]
    print(f"\nincremental WilliamsMarketStructure.on_bar, all 5 levels, {len(inc_bars):,} bars (pure Python):")
    print(f"{'profile':48} {'mean us/bar':>11} {'vs batch per bar':>17} {'vs goal 5 us':>13}")
    batch_us = reference / n * 1e6
    for label, p in (
        ("k=2 m=1 tie=first", params),
        ("k=1 m=1 skip_inside (Williams classic)", PivotParams(k=1, skip_inside=True)),
    ):
        us = min(incremental_us_per_bar(inc_bars, p, 60_000) for _ in range(2 if args.quick else 3))
        print(f"{label:48} {us:11.2f} {us / batch_us:17.0f} {us / INCREMENTAL_GOAL_US:13.2f}")


if __name__ == "__main__":
    main()
