"""As-of windows on real Binance data, checked against a brute-force numpy filter at many random times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.errors import StaleDataError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.asof import (
    NO_AGE_LIMIT,
    AsOfCache,
    asof_windows,
    closed_window,
    default_max_age_ms,
    series_keys,
    window_age_ms,
    window_ages,
)
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.store import MarketStore
from tests.stores import throwaway_store

FILES = {
    ("BTC/USDT", "1m"): "binance/BTCUSDT-1m-2024.parquet",
    ("BTC/USDT", "1h"): "binance/BTCUSDT-1h-2018-2026.parquet",
    ("BTC/USDT", "1d"): "binance/BTCUSDT-1d.parquet",
    ("ETH/USDT", "1m"): "binance/ETHUSDT-1m-2024.parquet",
    ("ETH/USDT", "1h"): "binance/ETHUSDT-1h-2018-2026.parquet",
    ("ETH/USDT", "1d"): "binance/ETHUSDT-1d.parquet",
}
N = 300


@pytest.fixture(scope="module")
def source(shared_data: Path) -> dict[tuple[str, str], Candles]:
    return {
        key: Candles.from_frame(pd.read_parquet(shared_data / name), "binance", key[0], key[1]) for key, name in FILES.items()
    }


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def loaded(
    request: pytest.FixtureRequest, source: dict[tuple[str, str], Candles], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MarketStore]:
    with throwaway_store(request.param, tmp_path_factory.mktemp("asof")) as store:
        for candles in source.values():
            store.write_candles(candles)
        yield store


def brute_force(candles: Candles, t: int, n: int) -> Candles:
    closed = np.flatnonzero(candles.ts + timeframe_ms(candles.timeframe) <= t)
    chosen = closed[-n:]
    return Candles(*(getattr(candles, f)[chosen] for f in ("ts", "open", "high", "low", "close", "volume")))


def probe_times(source: dict[tuple[str, str], Candles], count: int, seed: int = 7) -> list[int]:
    """Random times over the 1m span, plus times exactly on (and 1 ms before) bar close boundaries."""
    rng = np.random.default_rng(seed)
    minute = source[("BTC/USDT", "1m")]
    times = rng.integers(int(minute.ts[0]), int(minute.ts[-1]) + 2 * 60_000, size=count).tolist()
    for key in (("BTC/USDT", "1m"), ("BTC/USDT", "1h"), ("ETH/USDT", "1h")):
        bars = source[key]
        picks = rng.integers(0, len(bars), size=5)
        closes = bars.ts[picks] + timeframe_ms(key[1])
        times += closes.tolist() + (closes - 1).tolist()
    return [int(t) for t in times]


def test_store_windows_equal_brute_force(loaded: MarketStore, source: dict[tuple[str, str], Candles]) -> None:
    for t in probe_times(source, 40):
        windows = asof_windows(loaded, "binance", ["ETH/USDT"], ["1m", "1h", "1d"], t, N, "BTC/USDT", NO_AGE_LIMIT)
        assert set(windows) == set(FILES)
        for key, window in windows.items():
            assert window.equals(brute_force(source[key], t, N)), (key, t)
            assert window.timeframe == key[1]
            if len(window):
                assert int(window.ts[-1]) + timeframe_ms(key[1]) <= t


def test_cache_windows_equal_brute_force(loaded: MarketStore, source: dict[tuple[str, str], Candles]) -> None:
    cache = AsOfCache(loaded)
    for t in probe_times(source, 300, seed=11):
        for key, window in cache.windows("binance", ["ETH/USDT"], ["1m", "1h", "1d"], t, N, max_age_ms=NO_AGE_LIMIT).items():
            assert window.equals(brute_force(source[key], t, N)), (key, t)


def test_boundary_close_time_is_included_one_ms_earlier_is_not(
    loaded: MarketStore, source: dict[tuple[str, str], Candles]
) -> None:
    hourly = source[("BTC/USDT", "1h")]
    bar = 1000
    close = int(hourly.ts[bar]) + 3_600_000
    at_close = closed_window(loaded, "binance", "BTC/USDT", "1h", close, 5)
    before = closed_window(loaded, "binance", "BTC/USDT", "1h", close - 1, 5)
    assert int(at_close.ts[-1]) == int(hourly.ts[bar])
    assert int(before.ts[-1]) == int(hourly.ts[bar - 1])
    assert AsOfCache(loaded).closed_window("binance", "BTC/USDT", "1h", close, 5).equals(at_close)


def test_windows_before_the_first_bar_are_empty_and_short_history_is_short(
    loaded: MarketStore, source: dict[tuple[str, str], Candles]
) -> None:
    daily = source[("BTC/USDT", "1d")]
    assert len(closed_window(loaded, "binance", "BTC/USDT", "1d", int(daily.ts[0]), N)) == 0
    third_close = int(daily.ts[2]) + 86_400_000
    assert closed_window(loaded, "binance", "BTC/USDT", "1d", third_close, N).equals(daily.slice(0, 3))


def test_series_keys_add_the_reference_once() -> None:
    assert series_keys(["ETH/USDT", "BTC/USDT"], ["1m"], "BTC/USDT") == [("ETH/USDT", "1m"), ("BTC/USDT", "1m")]
    assert series_keys(["ETH/USDT"], ["1m", "1h"], None) == [("ETH/USDT", "1m"), ("ETH/USDT", "1h")]


def test_cache_refresh_sees_new_writes(tmp_path: Path, source: dict[tuple[str, str], Candles]) -> None:
    store = DuckDBStore(tmp_path / "r.duckdb")
    daily = source[("BTC/USDT", "1d")]
    store.write_candles(daily.slice(0, 10))
    cache = AsOfCache(store)
    far_future = int(daily.ts[-1]) + 10 * 86_400_000
    assert len(cache.closed_window("binance", "BTC/USDT", "1d", far_future, N, NO_AGE_LIMIT)) == 10
    store.write_candles(daily.slice(10, 20))
    assert len(cache.closed_window("binance", "BTC/USDT", "1d", far_future, N, NO_AGE_LIMIT)) == 10  # snapshot until refreshed
    cache.refresh()
    assert len(cache.closed_window("binance", "BTC/USDT", "1d", far_future, N, NO_AGE_LIMIT)) == 20
    store.close()


def test_windows_inside_and_across_gaps(loaded: MarketStore, source: dict[tuple[str, str], Candles]) -> None:
    minute = source[("BTC/USDT", "1m")]
    gaps = loaded.gaps("binance", "BTC/USDT", "1m")
    assert len(gaps) == 3  # PROVENANCE: BTCUSDT-1m-2024 has 3 gaps
    cache = AsOfCache(loaded)
    for gap in gaps:
        for t in (gap.start + 1_000 * 60_000, gap.end + 100 * 60_000, gap.end + 60_000, gap.end):
            want = brute_force(minute, t, N)
            assert closed_window(loaded, "binance", "BTC/USDT", "1m", t, N, NO_AGE_LIMIT).equals(want), (gap, t)
            assert cache.closed_window("binance", "BTC/USDT", "1m", t, N, NO_AGE_LIMIT).equals(want), (gap, t)


# ----------------------------------------------------------------------------------------------- staleness (issue #8)


def test_a_2020_daily_window_is_refused_for_a_2024_t_unless_the_caller_accepts_old_windows(
    loaded: MarketStore, source: dict[tuple[str, str], Candles]
) -> None:
    """Binance BTC/USDT 1d in ../shared/data ends 2020-12-31: a 2024 t used to get that window silently."""
    daily = source[("BTC/USDT", "1d")]
    t = 1_717_200_000_000  # 2024-06-01 00:00 UTC
    newest_close = int(daily.ts[-1]) + 86_400_000  # 2021-01-01 00:00
    message = (
        "stale window binance BTC/USDT 1d at t=2024-06-01 00:00: newest bar closed 2021-01-01 00:00 (1247.0 d before t), "
        "limit 2.0 d; import newer bars, or pass max_age_ms to accept older windows"
    )
    with pytest.raises(StaleDataError) as store_error:
        closed_window(loaded, "binance", "BTC/USDT", "1d", t, N)
    assert str(store_error.value) == message
    with pytest.raises(StaleDataError) as cache_error:
        AsOfCache(loaded).closed_window("binance", "BTC/USDT", "1d", t, N)
    assert str(cache_error.value) == message
    with pytest.raises(StaleDataError):
        asof_windows(loaded, "binance", ["ETH/USDT"], ["1h", "1d"], t, N)
    old = closed_window(loaded, "binance", "BTC/USDT", "1d", t, N, NO_AGE_LIMIT)
    assert old.equals(daily.slice(len(daily) - N, len(daily)))
    assert window_age_ms(old, t) == t - newest_close
    assert AsOfCache(loaded).age_ms("binance", "BTC/USDT", "1d", t) == t - newest_close
    fresh = asof_windows(loaded, "binance", ["ETH/USDT"], ["1h"], t, N)
    assert window_ages(fresh, t) == {("ETH/USDT", "1h"): 0, ("BTC/USDT", "1h"): 0}


def test_the_default_limit_allows_one_late_bar_and_refuses_a_later_t(
    loaded: MarketStore, source: dict[tuple[str, str], Candles]
) -> None:
    """Default limit: the newest bar may close at most one bar later than expected (age <= 2 x timeframe)."""
    hourly = source[("BTC/USDT", "1h")]
    assert default_max_age_ms("1h") == 7_200_000
    last_close = int(hourly.ts[-1]) + 3_600_000
    cache = AsOfCache(loaded)
    for t in (last_close, last_close + 3_600_000, last_close + 7_200_000):
        assert int(closed_window(loaded, "binance", "BTC/USDT", "1h", t, 3).ts[-1]) == int(hourly.ts[-1])
        assert int(cache.closed_window("binance", "BTC/USDT", "1h", t, 3).ts[-1]) == int(hourly.ts[-1])
    with pytest.raises(StaleDataError, match=r"limit 2\.0 h"):
        closed_window(loaded, "binance", "BTC/USDT", "1h", last_close + 7_200_001, 3)
    with pytest.raises(StaleDataError, match=r"limit 2\.0 h"):
        cache.closed_window("binance", "BTC/USDT", "1h", last_close + 7_200_001, 3)
    # an explicit limit: accepted up to it, refused past it
    assert len(cache.closed_window("binance", "BTC/USDT", "1h", last_close + 86_400_000, 3, max_age_ms=86_400_000)) == 3
    with pytest.raises(StaleDataError, match=r"limit 1\.0 d"):
        cache.closed_window("binance", "BTC/USDT", "1h", last_close + 86_400_001, 3, max_age_ms=86_400_000)
    # before the first bar there is no window, hence no age: empty, not stale
    assert len(cache.closed_window("binance", "BTC/USDT", "1h", int(hourly.ts[0]), 3)) == 0
