"""PivotBounds (spec A.6): the HV3 example, the fallback rule, causality against a naive reference, real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.structure.bounds import pivot_bounds
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams, PivotSet
from tests.structure.test_trendlines import HV3_HIGH, HV3_LOW, hv3_pivots


def _hv3_close() -> np.ndarray:
    close = (HV3_HIGH + HV3_LOW) / 2
    close[24] = 11.0  # spec A.6 example: close 11 at t=24
    return close


def test_hv3_example_at_t24() -> None:
    b = pivot_bounds(HV3_HIGH, HV3_LOW, _hv3_close(), hv3_pivots(), level=2, window=20)
    assert (b.upper[24], b.lower[24]) == (18.0, 3.0)
    assert b.normalised[24] == pytest.approx(8 / 15)  # 0.5333
    assert b.from_pivots[24]
    # Levels in the window at t=24: highs 14, 18, 17, 15 and lows 5, 3, 6, 7; close 11.
    assert (b.support[24], b.resistance[24]) == (7.0, 14.0)
    assert b.support_distance[24] == pytest.approx(4 / 11) and b.resistance_distance[24] == pytest.approx(3 / 11)


def test_fallback_to_bar_extremes_until_both_kinds_are_confirmed() -> None:
    b = pivot_bounds(HV3_HIGH, HV3_LOW, _hv3_close(), hv3_pivots(), level=2, window=20)
    # The first L2L is confirmed at bar 9: before that the bounds are the bar extremes of [t-20, t].
    assert not b.from_pivots[:9].any() and b.from_pivots[9:].all()
    assert b.upper[8] == HV3_HIGH[:9].max() and b.lower[8] == HV3_LOW[:9].min()
    # At t=9 the only known pivots are L2H 3@12, 7@14(c10 -> not yet) and L2L 6@5: upper 12, lower 5.
    assert (b.upper[9], b.lower[9]) == (12.0, 5.0)


def test_window_drops_old_pivots_and_no_clipping() -> None:
    b = pivot_bounds(HV3_HIGH, HV3_LOW, _hv3_close(), hv3_pivots(), level=2, window=5)
    # t=24, W=5: highs with index >= 19: only 21@15; lows with index >= 19: none -> fallback to bars 19..24.
    assert not b.from_pivots[24]
    assert (b.upper[24], b.lower[24]) == (HV3_HIGH[19:25].max(), HV3_LOW[19:25].min())
    wide = pivot_bounds(HV3_HIGH, HV3_LOW, HV3_HIGH + 10, hv3_pivots(), level=2, window=20)
    assert wide.normalised[24] > 1.0  # a breakout stays visible (no clipping)
    assert np.isnan(wide.resistance[24]) and wide.support[24] == 18.0


def test_flat_window_gives_nan_not_an_error() -> None:
    flat = np.full(6, 100.0)
    no_pivots = wms_batch(high=flat, low=flat, params=PivotParams(k=1, levels=1))  # a plateau has no tie=first pivot
    b = pivot_bounds(flat, flat, flat, no_pivots, level=1, window=3)
    assert np.isnan(b.normalised).all() and (b.upper == 100.0).all()


def test_input_errors() -> None:
    with pytest.raises(ValueError, match=r"same length \(got 25, 25, 3\)"):
        pivot_bounds(HV3_HIGH, HV3_LOW, HV3_HIGH[:3], hv3_pivots(), 2, 20)
    with pytest.raises(ValueError, match="window must be >= 1 bar"):
        pivot_bounds(HV3_HIGH, HV3_LOW, HV3_HIGH, hv3_pivots(), 2, 0)


def _naive_bounds(high: np.ndarray, low: np.ndarray, pivots: PivotSet, level: int, window: int, t: int) -> tuple[float, float]:
    """Spec A.6 read literally, one bar at a time."""
    hs, ls = pivots.get(level, "H"), pivots.get(level, "L")
    up = [p for i, p, c in hs.as_tuples() if i >= t - window and c <= t]
    lo = [p for i, p, c in ls.as_tuples() if i >= t - window and c <= t]
    if up and lo and max(up) > min(lo):
        return max(up), min(lo)
    first = max(0, t - window)
    return float(high[first : t + 1].max()), float(low[first : t + 1].min())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-40, 40), min_size=20, max_size=150), st.integers(1, 40), st.integers(1, 2))
def test_matches_naive_reference_and_is_causal(steps: list[int], window: int, level: int) -> None:
    high = np.cumsum(np.array(steps, float)) + 5_000
    low = high - 7
    close = low + 3
    params = PivotParams(k=1, levels=2)
    pivots = wms_batch(high=high, low=low, params=params)
    b = pivot_bounds(high, low, close, pivots, level, window)
    for t in range(len(high)):
        assert (b.upper[t], b.lower[t]) == _naive_bounds(high, low, pivots, level, window, t)
    t = len(high) // 2
    prefix = pivot_bounds(
        high[: t + 1], low[: t + 1], close[: t + 1], wms_batch(high=high[: t + 1], low=low[: t + 1], params=params), level, window
    )
    assert np.array_equal(prefix.upper, b.upper[: t + 1]) and np.array_equal(prefix.lower, b.lower[: t + 1])


def test_real_eth_1h_bounds_contain_most_closes(shared_data: Path) -> None:
    bars = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1h.parquet")
    h, lo, c = (bars[col].to_numpy() for col in ("high", "low", "close"))
    b = pivot_bounds(h, lo, c, wms_batch(high=h, low=lo, params=PivotParams(k=2)), level=2, window=100)
    assert b.from_pivots[200:].mean() > 0.9  # once warmed up, L2 pivots define the range nearly always
    assert (b.upper > b.lower).all()
    inside = (b.normalised[200:] >= 0) & (b.normalised[200:] <= 1)
    assert 0.5 < inside.mean() < 1.0  # real prices break out of the structure sometimes, and are not clipped
