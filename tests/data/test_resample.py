"""Resampling: hand vectors, the real 1m -> 1h identity PROVENANCE documents, incomplete buckets, trades -> 1s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.data.candles import Candles
from pivotal.data.resample import candles_from_trades, resample
from pivotal.data.trades import Trades

M = 60_000
H = 3_600_000


def minute_bars(minutes: list[int]) -> Candles:
    """Hand vector: bar i has open=10+i, high=20+i, low=i+1, close=15+i, volume=i+1 (i = minute index)."""
    m = np.array(minutes, dtype=np.int64)
    return Candles(m * M, 10.0 + m, 20.0 + m, 1.0 + m, 15.0 + m, 1.0 + m, "test", "X/Y", "1m")


def test_hand_vector_one_complete_one_holed_bucket() -> None:
    bars = minute_bars([0, 1, 2, 3, 4, 5, 6, 8, 9])  # minute 7 missing: second 5m bucket incomplete
    out, complete = resample(bars, "5m", include_incomplete=True)
    assert out.timeframe == "5m"
    assert out.ts.tolist() == [0, 5 * M]
    assert complete.tolist() == [True, False]
    assert out.open.tolist() == [10.0, 15.0]
    assert out.high.tolist() == [24.0, 29.0]
    assert out.low.tolist() == [1.0, 6.0]
    assert out.close.tolist() == [19.0, 24.0]
    assert out.volume.tolist() == [15.0, 6 + 7 + 9 + 10]
    default, flags = resample(bars, "5m")
    assert default.ts.tolist() == [0] and flags.tolist() == [True]


def test_still_forming_last_bucket_is_flagged() -> None:
    out, complete = resample(minute_bars(list(range(63))), "1h", include_incomplete=True)
    assert out.ts.tolist() == [0, H] and complete.tolist() == [True, False]
    _, closed_flags = resample(minute_bars(list(range(60))), "1h", include_incomplete=True, as_of=H - 1)
    assert closed_flags.tolist() == [False]  # all 60 bars present, but at as_of the hour has not closed yet


def test_bad_target_timeframe_and_unsorted_input() -> None:
    with pytest.raises(ValueError, match="cannot resample 1h to 1m"):
        resample(Candles.empty("t", "X/Y", "1h"), "1m")
    with pytest.raises(ValueError, match="cannot resample 5m to 3m"):
        resample(Candles.empty("t", "X/Y", "5m"), "3m")
    with pytest.raises(ValueError, match="sorted"):
        resample(minute_bars([1, 0]), "5m")


def real_1m(shared_data: Path) -> Candles:
    return Candles.from_frame(pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet"), "binance", "BTC/USDT", "1m")


def test_real_1m_aggregates_exactly_to_binance_1h(shared_data: Path) -> None:
    minute = real_1m(shared_data)
    hourly = Candles.from_frame(
        pd.read_parquet(shared_data / "binance/BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h"
    )
    out, complete = resample(minute, "1h")
    assert complete.all() and len(out) > 2000
    idx = np.searchsorted(hourly.ts, out.ts)
    assert np.array_equal(hourly.ts[idx], out.ts)
    for name in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(out, name), getattr(hourly, name)[idx]), name
    np.testing.assert_allclose(out.volume, hourly.volume[idx], rtol=1e-9)
    _, counts = np.unique(minute.ts // H, return_counts=True)
    assert len(out) == int(np.sum(counts == 60))  # every full hour present, no partial one


def test_real_1d_to_1w_weeks_open_on_monday(shared_data: Path) -> None:
    daily = Candles.from_frame(pd.read_parquet(shared_data / "binance/ETHUSDT-1d.parquet"), "binance", "ETH/USDT", "1d")
    weekly, complete = resample(daily, "1w", include_incomplete=True)
    weekdays = pd.to_datetime(weekly.ts, unit="ms").dayofweek
    assert set(weekdays) == {0}
    assert not complete[0]  # the series starts on Thursday 2017-08-17
    assert complete[1:-1].all()


@pytest.fixture(scope="module")
def real_slice(shared_data: Path) -> Candles:
    return Candles.from_frame(
        pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet").iloc[:600], "binance", "BTC/USDT", "1m"
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dropped=st.lists(st.integers(0, 599), unique=True, max_size=40))
def test_removing_bars_never_changes_complete_buckets(real_slice: Candles, dropped: list[int]) -> None:
    minute = real_slice
    keep = np.ones(len(minute), bool)
    keep[dropped] = False
    holed = Candles(*(getattr(minute, f)[keep] for f in ("ts", "open", "high", "low", "close", "volume")), "b", "X", "1m")
    full, _ = resample(minute, "1h")
    part, _ = resample(holed, "1h")
    idx = np.searchsorted(full.ts, part.ts)
    assert np.array_equal(full.close[idx], part.close) and np.array_equal(full.high[idx], part.high)
    lost_hours = set((minute.ts[~keep] // H).tolist())
    assert len(part) == len(full) - len(lost_hours & set((full.ts // H).tolist()))


def test_trades_to_1s_matches_pandas_groupby(shared_data: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance/ETHUSDT-trades.parquet")
    trades = Trades.from_frame(frame.rename(columns={"timestamp": "ts", "qty": "amount"}), "binance", "ETH/USDT")
    out, complete = candles_from_trades(trades, "1s", include_incomplete=True)
    grouped = frame.groupby(frame["timestamp"] // 1000 * 1000).agg(
        open=("price", "first"), high=("price", "max"), low=("price", "min"), close=("price", "last"), volume=("qty", "sum")
    )
    assert out.ts.tolist() == grouped.index.tolist()
    for name in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(out, name), grouped[name].to_numpy()), name
    np.testing.assert_allclose(out.volume, grouped["volume"].to_numpy(), rtol=1e-12)
    assert complete[:-1].all() and not complete[-1]  # the capture ends inside its last second
    default, _ = candles_from_trades(trades, "1s")
    assert len(default) == len(out) - 1


def test_trades_hand_vector_and_until() -> None:
    trades = Trades(
        np.array([1000, 1500, 1999, 3000], np.int64),
        np.arange(4, dtype=np.int64),
        np.array([10.0, 12.0, 9.0, 11.0]),
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.zeros(4, bool),
        "t",
        "X/Y",
    )
    out, complete = candles_from_trades(trades, "1s", until=4000)
    assert out.ts.tolist() == [1000, 3000] and complete.all()
    assert (out.open[0], out.high[0], out.low[0], out.close[0], out.volume[0]) == (10.0, 12.0, 9.0, 9.0, 6.0)
