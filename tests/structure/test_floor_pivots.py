"""Floor pivots: the formulas on a hand-worked bar, causal mapping onto lower bars, and real Binance 1d vs 1h."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.data.resample import resample
from pivotal.structure.floor_pivots import floor_levels, floor_pivots_from_lower, map_floor_pivots

DAY = 86_400_000
HOUR = 3_600_000


def test_formulas_on_a_hand_worked_bar() -> None:
    # H=110, L=90, C=105: P=101.666.., R1=113.33.., S1=93.33.., R2=121.66.., S2=81.66.., R3=133.33.., S3=73.33..
    lv = floor_levels(np.array([110.0]), np.array([90.0]), np.array([105.0]))
    p = 305 / 3
    expected = {
        "p": p,
        "r1": 2 * p - 90,
        "s1": 2 * p - 110,
        "r2": p + 20,
        "s2": p - 20,
        "r3": 110 + 2 * (p - 90),
        "s3": 90 - 2 * (110 - p),
    }
    for name, value in expected.items():
        assert lv.as_dict()[name][0] == pytest.approx(value)
    assert lv.r1[0] == pytest.approx(113.3333333) and lv.s3[0] == pytest.approx(73.3333333)
    assert lv.s3[0] < lv.s2[0] < lv.s1[0] < lv.p[0] < lv.r1[0] < lv.r2[0] < lv.r3[0]


def test_lower_bar_sees_only_the_last_closed_higher_bar() -> None:
    higher_ts = np.array([0, DAY, 2 * DAY])
    lv = map_floor_pivots(
        lower_ts=np.array([0, 23 * HOUR, DAY, DAY + HOUR, 3 * DAY + 5 * HOUR]),
        higher_ts=higher_ts,
        higher_tf_ms=DAY,
        high=np.array([10.0, 20.0, 30.0]),
        low=np.array([7.0, 17.0, 27.0]),
        close=np.array([10.0, 20.0, 30.0]),
    )
    # Day 0 closes at DAY: bars opening before that see nothing; the bar opening exactly at DAY sees day 0.
    assert lv.source.tolist() == [-1, -1, 0, 0, 2]
    assert np.isnan(lv.p[:2]).all() and lv.p[2] == 9.0 and lv.p[4] == 29.0


def test_mapping_errors() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        map_floor_pivots(np.array([0]), np.array([DAY, 0]), DAY, np.ones(2), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="higher_tf_ms must be positive"):
        map_floor_pivots(np.array([0]), np.array([0]), 0, np.ones(1), np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="higher_ts has 1 rows, the price arrays 2"):
        map_floor_pivots(np.array([0]), np.array([0]), DAY, np.ones(2), np.ones(2), np.ones(2))


def test_real_daily_pivots_from_stored_1d_equal_those_resampled_from_1h(shared_data: Path) -> None:
    """Binance ETHUSDT: the 1d file and the 1h file are independent real series that overlap in June/July 2018."""
    hourly = Candles.from_frame(pd.read_parquet(shared_data / "binance" / "ETHUSDT-1h.parquet"), "binance", "ETH/USDT", "1h")
    daily = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1d.parquet")
    ts = hourly.ts
    days, complete = resample(hourly, "1d", include_incomplete=True)
    complete_days = set(days.ts[complete].tolist()) & set(daily["timestamp"].tolist())
    assert len(complete_days) >= 10 and not complete.all()  # the 1h file has holes: some days are incomplete
    from_1h = floor_pivots_from_lower(hourly, "1d")
    daily_hlc = (daily[col].to_numpy() for col in ("high", "low", "close"))
    from_1d = map_floor_pivots(ts, daily["timestamp"].to_numpy(), DAY, *daily_hlc)
    # Hourly bars whose previous day is complete in the 1h data must see identical levels from both sources.
    prev_day = ts // DAY * DAY - DAY
    check = np.isin(prev_day, list(complete_days))
    assert check.sum() >= 200
    for name in ("p", "r1", "r2", "r3", "s1", "s2", "s3"):
        np.testing.assert_allclose(from_1h.as_dict()[name][check], from_1d.as_dict()[name][check], rtol=1e-12)
    # Causality: within one UTC day every hourly bar sees the same levels (the day before), never its own day.
    day_of = ts // DAY
    for name in ("p", "r3"):
        values = from_1d.as_dict()[name]
        same_day = day_of[1:] == day_of[:-1]
        both = same_day & ~np.isnan(values[1:]) & ~np.isnan(values[:-1])
        assert np.array_equal(values[1:][both], values[:-1][both])
