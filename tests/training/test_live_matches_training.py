"""Issue #8: training and live inference build the same input, and training never uses a window predict refuses.

Real Binance data from ../shared/data: SOL/USDT 1h (2020-08 .. 2026-05) for the pivot context, BTC/USDT 1h with the
1d file that ends 2020-12-31 for staleness.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.asof import check_fresh, window_age_ms
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.resample import resample
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import encode
from pivotal.training.pipeline import RunSpec, live_input, load_series, make_samples, prepare_live

pytestmark = pytest.mark.realdata

DAY = 86_400_000


def read(shared: Path, name: str, symbol: str, tf: str) -> Candles:
    return Candles.from_frame(pd.read_parquet(shared / "binance" / name), "binance", symbol, tf)


@pytest.fixture(scope="module")
def sol_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> DuckDBStore:
    store = DuckDBStore(tmp_path_factory.mktemp("sol") / "sol.duckdb")
    store.write_candles(read(shared_data, "SOLUSDT-1h-2020-2026.parquet", "SOL/USDT", "1h"))
    return store


@pytest.fixture(scope="module")
def btc_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> DuckDBStore:
    store = DuckDBStore(tmp_path_factory.mktemp("btc") / "btc.duckdb")
    store.write_candles(read(shared_data, "BTCUSDT-1h-2018-2026.parquet", "BTC/USDT", "1h"))
    store.write_candles(read(shared_data, "BTCUSDT-1d.parquet", "BTC/USDT", "1d"))  # ends 2020-12-31
    return store


def test_live_input_equals_the_training_sample_at_250_times(sol_store: DuckDBStore) -> None:
    """Before: live inputs used the window + 200 warm-up bars and their level-4 pivot context differed from training's
    (whole series) at 36 of 200 t. Now both cut one prepared series: every encoded value is equal."""
    spec = RunSpec("cnn", "binance", "SOL/USDT", ("1h", "4h"), window=100, levels=3, stride=199)
    samples = make_samples(load_series(sol_store, spec), spec)
    assert len(samples) >= 250
    input_spec = spec.input_spec()
    rows = np.linspace(0, len(samples) - 1, 250).astype(int)
    for row in rows:
        t = int(samples.time[row])
        live = encode(live_input(sol_store, spec, t), input_spec)  # exactly what `pivotal predict` runs
        assert np.array_equal(live.context, samples.context[row]), t
        assert np.array_equal(live.windows.astype(np.float16), samples.windows[row], equal_nan=True), t


def test_level_4_pivot_context_is_the_same_table_live_and_in_training(sol_store: DuckDBStore) -> None:
    spec = RunSpec("cnn", "binance", "SOL/USDT", ("1h",), window=100)
    prepared = prepare_live(sol_store, spec)
    hourly = prepared[("SOL/USDT", "1h")]
    rng = np.random.default_rng(8)
    times = hourly.close_ts[rng.integers(400, len(hourly.close_ts), 200)]
    for t in times.tolist():
        live = live_input(sol_store, spec, t, prepared)
        stop = hourly.closed_count(t)
        for level in range(1, 6):
            for kind in ("H", "L"):
                got = live.pivots[("SOL/USDT", "1h")].get(level, kind)
                table = hourly.pivots.get(level, kind).known_at(stop - 1)  # the whole-series table, confirmed by t
                tail = table.index >= stop - 2 * spec.window
                assert np.array_equal(got.index + stop - spec.window, table.index[tail]), (t, level, kind)
                assert np.array_equal(got.price, table.price[tail]), (t, level, kind)


def test_training_fills_the_stale_daily_series_from_hourly_bars(btc_store: DuckDBStore) -> None:
    """Before: the stored 1d series (ends 2020-12-31) was used as is, so 82 % of samples up to 2026 carried a 1d window
    more than 30 days old. Now the 1d series is the stored bars plus complete daily buckets of the 1h bars after them."""
    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h", "4h", "1d"), window=100)
    series = load_series(btc_store, spec)
    stored = btc_store.candles("binance", "BTC/USDT", "1d")
    daily = series[("BTC/USDT", "1d")]
    hourly = series[("BTC/USDT", "1h")]
    fields = ("ts", "open", "high", "low", "close", "volume")
    kept = np.searchsorted(daily.ts, stored.ts)
    for f in fields:  # every stored bar is kept as it is
        assert np.array_equal(getattr(daily, f)[kept], getattr(stored, f)), f
    filled = np.setdiff1d(np.arange(len(daily)), kept)
    aggregated = resample(hourly, "1d")[0]
    at = np.searchsorted(aggregated.ts, daily.ts[filled])
    for f in fields:  # every other bar is a complete daily bucket of the hourly bars
        assert np.array_equal(getattr(aggregated, f)[at], getattr(daily, f)[filled]), f
    after = daily.ts[daily.ts > stored.ts[-1]]
    assert int(after[0]) == 1_609_459_200_000 and len(after) > 1900  # from 2021-01-01, the first day the store lacks
    assert len(filled) - len(after) > 0  # holes of the stored 1d series inside its span are filled too
    prepared = prepare_live(btc_store, spec)
    rng = np.random.default_rng(3)
    times = rng.integers(1_609_459_200_000, int(hourly.ts[-1]), 300)
    ages = []
    for t in times.tolist():
        window = live_input(btc_store, spec, t, prepared).window("1d")
        check_fresh(window, "binance", "BTC/USDT", "1d", t)  # the as-of default limit (2 days): no StaleDataError
        ages.append(window_age_ms(window, t))
    assert max(ages) <= 2 * DAY and np.mean(np.array(ages) < DAY) > 0.98  # a day late only after a hole in the 1h bars


def test_every_training_sample_is_an_input_predict_accepts(btc_store: DuckDBStore) -> None:
    """Samples are kept only where the completeness rule of `predict` passes: a 60-day hole in the hourly bars removes
    the samples whose 1h window would be mostly empty, and every kept sample is accepted by the live check."""
    hourly = btc_store.candles("binance", "BTC/USDT", "1h")
    start = int(np.searchsorted(hourly.ts, 1_640_995_200_000))  # 2022-01-01
    holed = Candles(
        *(
            np.concatenate([getattr(hourly, f)[start : start + 3000], getattr(hourly, f)[start + 4440 : start + 7000]])
            for f in ("ts", "open", "high", "low", "close", "volume")
        ),
        exchange="binance",
        symbol="BTC/USDT",
        timeframe="1h",
    )
    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h", "4h"), window=100, stride=5)
    samples = make_samples(load_series(None, spec, holed), spec)
    gap_end = int(holed.ts[3000]) + timeframe_ms("1h")  # close of the first bar after the hole
    after = samples.time[samples.time >= gap_end]
    assert len(after) and int(after[0]) >= gap_end + 79 * 3_600_000  # 1h window >= 80 % full: 80 bars after the hole
    from pivotal.features.assemble import build_input_from_series, prepare_series

    prepared = prepare_series(load_series(None, spec, holed), spec.input_spec().pivot_params)
    for t in samples.time[:: max(1, len(samples) // 150)].tolist():
        inp = build_input_from_series(prepared, "BTC/USDT", int(t), spec.input_spec())
        assert check_completeness(inp, spec.input_spec()).ready, t
