"""Latency of model-input work: encoding one input, as-of assembly (store and in-memory), labels.

Prints p50/p99 per operation and the ratio to a reference measured in the same run:
- encode            vs stacking the raw OHLCV windows into a float32 tensor (the least any encoder does);
- build_input(store) vs one ``store.candles`` read per window of window + warm-up bars (what the as-of read cost before
  issue #8) and vs reading each whole series (what it reads now: inputs are cut from the whole prepared series, exactly
  as training cuts them, so live and training pivot context are identical); ``prepared=`` shows repeated live calls;
- build_labels      vs ``wms_batch`` alone on the same bars.
Goal (issue #5): encoding one input from an in-memory window <= 2 ms.

Run: .venv/bin/python benchmarks/bench_features.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.features.assemble import PreparedSeries, build_input, build_input_from_series, load_input_series, prepare_series
from pivotal.features.encoding import encode
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.features.model_io import BaseDataInput
from pivotal.structure.pivots import wms_batch
from pivotal.training.labels import build_labels

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"
SPEC = InputSpec((WindowSpec("1m", 300), WindowSpec("1h", 300), WindowSpec("1m", 300, "BTC/USDT")))
MINUTE = 60_000
OLD_WARMUP = 200  # warm-up bars the as-of read used before issue #8 (the reference I/O)


def timings(fn: Callable[[], object], repeat: int) -> np.ndarray:
    fn()  # warm-up (numba compile, caches)
    out = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out * 1e3


def load(rows: int) -> dict[tuple[str, str], Candles]:
    minutes = pd.read_parquet(DATA / "ETHUSDT-1m-2025.parquet").iloc[:rows]
    btc = pd.read_parquet(DATA / "BTCUSDT-1m-2025.parquet").iloc[:rows]
    hours = pd.read_parquet(DATA / "ETHUSDT-1h-2018-2026.parquet")
    first = int(np.searchsorted(hours.timestamp.to_numpy(), int(minutes.timestamp.iloc[0]))) - 600
    return {
        ("ETH/USDT", "1m"): Candles.from_frame(minutes, "binance", "ETH/USDT", "1m"),
        ("BTC/USDT", "1m"): Candles.from_frame(btc, "binance", "BTC/USDT", "1m"),
        ("ETH/USDT", "1h"): Candles.from_frame(hours.iloc[first : first + 600 + rows // 60 + 1], "binance", "ETH/USDT", "1h"),
    }


def raw_stack(inp: BaseDataInput) -> np.ndarray:
    return np.stack([np.stack([c.open, c.high, c.low, c.close, c.volume], axis=1) for c in inp.ohlcv.values()]).astype(np.float32)


def row(name: str, ms: np.ndarray, ref: np.ndarray | None) -> None:
    p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
    ratio = f"{p50 / np.percentile(ref, 50):8.1f}x" if ref is not None else "   (ref)"
    print(f"{name:<34} {p50:10.3f} {p99:10.3f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small run (2,000 bars, 50 repeats)")
    args = parser.parse_args()
    rows, repeat = (2000, 50) if args.quick else (20000, 300)
    series = load(rows)
    minutes = series[("ETH/USDT", "1m")]
    prepared = {k: PreparedSeries.build(v, SPEC.pivot_params) for k, v in series.items()}
    rng = np.random.default_rng(7)
    bars = rng.integers(1000, rows - 1, size=repeat)
    times = [int(minutes.ts[b]) + MINUTE for b in bars]
    inputs = [build_input_from_series(prepared, "ETH/USDT", t, SPEC) for t in times]
    it = iter(range(10**9))

    print(f"bars={rows} repeats={repeat} windows={[(w.symbol or 'primary', w.timeframe, w.length) for w in SPEC.windows]}")
    print(f"{'operation':<34} {'p50 ms':>10} {'p99 ms':>10} {'ratio':>9}")
    ref = timings(lambda: raw_stack(inputs[next(it) % repeat]), repeat)
    row("raw float32 stack (reference)", ref, None)
    row("encode (goal p50/p99 <= 2 ms)", timings(lambda: encode(inputs[next(it) % repeat], SPEC), repeat), ref)
    row(
        "build_input_from_series",
        timings(lambda: build_input_from_series(prepared, "ETH/USDT", times[next(it) % repeat], SPEC), repeat),
        ref,
    )

    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        for candles in series.values():
            store.write_candles(candles)

        def read_windows() -> None:
            t = times[next(it) % repeat]
            for w, (sym, tf) in zip(SPEC.windows, SPEC.keys("ETH/USDT"), strict=True):
                step = MINUTE if tf == "1m" else 60 * MINUTE
                store.candles("binance", sym, tf, t - (w.length + OLD_WARMUP) * step, t - step + 1)

        io_ref = timings(read_windows, max(20, repeat // 5))
        row("store.candles window+warm-up (ref)", io_ref, None)
        whole = timings(lambda: load_input_series(store, "binance", "ETH/USDT", SPEC), max(20, repeat // 5))
        row("store.candles whole series (ref)", whole, io_ref)
        as_of = timings(lambda: build_input(store, "binance", "ETH/USDT", times[next(it) % repeat], SPEC), max(20, repeat // 5))
        row("build_input(store) as of t", as_of, io_ref)
        ready = prepare_series(load_input_series(store, "binance", "ETH/USDT", SPEC), SPEC.pivot_params)
        cut = timings(lambda: build_input(store, "binance", "ETH/USDT", times[next(it) % repeat], SPEC, prepared=ready), repeat)
        row("build_input(store, prepared=...)", cut, io_ref)
        store.close()

    label_ref = timings(lambda: wms_batch(high=minutes.high, low=minutes.low, open=minutes.open, close=minutes.close), 5)
    row(f"wms_batch {rows} bars (reference)", label_ref, None)
    row(f"build_labels {rows} bars", timings(lambda: build_labels(minutes), 5), label_ref)


if __name__ == "__main__":
    main()
