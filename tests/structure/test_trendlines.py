"""Trend lines (spec A.6): the HV3 vectors exactly, causal history and the vectorised feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.structure.pivots import wms_batch
from pivotal.structure.trendlines import TrendLine, active_trend_line, trend_line_values, trend_lines
from pivotal.structure.types import PivotParams, PivotSet
from tests.vectors import HV3_EXPECTED, pivot_array
from tests.vectors import HV3_HIGH as HV3_HIGH_LIST

HV3_HIGH = np.array(HV3_HIGH_LIST, float)
HV3_LOW = HV3_HIGH - 4


def hv3_pivots() -> PivotSet:
    """HV3 levels 1-2 as listed in spec A.9 (hand-built, independent of the detector)."""
    highs = [pivot_array(HV3_EXPECTED[(level, "H")]) for level in (1, 2)]
    lows = [pivot_array(HV3_EXPECTED[(level, "L")]) for level in (1, 2)]
    return PivotSet(PivotParams(k=1, levels=2), highs, lows)


def test_hv3_active_lines_at_t24() -> None:
    highs = active_trend_line(hv3_pivots(), 24, level=2, kind="H")
    lows = active_trend_line(hv3_pivots(), 24, level=2, kind="L")
    assert highs is not None and lows is not None
    assert (highs.i1, highs.v1, highs.i2, highs.v2) == (15, 17.0, 21, 15.0)
    assert highs.slope == pytest.approx(-1 / 3) and highs.value_at(24) == pytest.approx(14.0)
    assert highs.direction == "down" and highs.valid_from == 24 and highs.valid_until is None
    assert (lows.i1, lows.v1, lows.i2, lows.v2) == (14, 6.0, 18, 7.0)
    assert lows.slope == 0.25 and lows.value_at(24) == 8.5 and lows.direction == "up"
    assert lows.intercept == pytest.approx(7.0 - 0.25 * 18) and lows.price_change == 1.0 and lows.duration_bars == 4


def test_hv3_lines_from_the_detector_match_the_hand_built_ones() -> None:
    detected = wms_batch(high=HV3_HIGH, low=HV3_LOW, params=PivotParams(k=1, m=1, levels=3))
    for kind in ("H", "L"):
        assert trend_lines(detected, 2, kind) == trend_lines(hv3_pivots(), 2, kind)


def test_history_validity_windows_chain_without_overlap() -> None:
    lines = trend_lines(hv3_pivots(), level=2, kind="H")
    assert [(ln.i1, ln.i2, ln.valid_from, ln.valid_until) for ln in lines] == [
        (3, 7, 10, 14),
        (7, 11, 14, 18),
        (11, 15, 18, 24),
        (15, 21, 24, None),
    ]
    assert active_trend_line(hv3_pivots(), 9, 2, "H") is None  # one L2H known by bar 9: no line yet
    for t in range(25):
        current = [ln for ln in lines if ln.is_valid_at(t)]
        active = active_trend_line(hv3_pivots(), t, 2, "H")
        assert (active is None) == (not current)
        if active is not None:
            assert (active.i1, active.i2) == (current[0].i1, current[0].i2)


def test_timestamps_and_flat_tolerance() -> None:
    ts = 1_700_000_000_000 + 60_000 * np.arange(25)
    line = trend_lines(hv3_pivots(), 2, "L", ts=ts)[-1]
    assert (line.start_ts, line.end_ts, line.duration_ms) == (ts[14], ts[18], 4 * 60_000)
    loose = TrendLine("L", 2, 14, 6.0, 18, 7.0, valid_from=21, flat_tolerance=0.2)
    assert loose.direction == "flat"  # |7-6| <= 0.2 * 6
    assert TrendLine("H", 2, 0, 5.0, 3, 5.0, valid_from=5).direction == "flat"


def test_rejects_unknown_kind_and_level() -> None:
    with pytest.raises(ValueError, match="kind must be 'H' or 'L'"):
        trend_lines(hv3_pivots(), 2, "X")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"level 4 not computed \(levels 1..2\)"):
        trend_lines(hv3_pivots(), 4, "H")


def test_vectorised_values_equal_the_active_line_everywhere() -> None:
    values = trend_line_values(hv3_pivots(), 25, 2, "L")
    for t in range(25):
        line = active_trend_line(hv3_pivots(), t, 2, "L")
        if line is None:
            assert np.isnan(values[t])
        else:
            assert values[t] == pytest.approx(line.value_at(t))
    assert values[24] == 8.5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=30, max_size=120), st.integers(0, 119))
def test_active_line_uses_only_pivots_known_at_t(steps: list[int], t: int) -> None:
    """Causality: the line at t from the full run equals the line computed from bars[0..t] only."""
    high = np.cumsum(np.where(np.arange(len(steps)) % 3 == 0, -1, 1) * np.array(steps, float)) + 10_000
    low = high - 5
    t = min(t, len(high) - 1)
    params = PivotParams(k=1, levels=2)
    full = active_trend_line(wms_batch(high=high, low=low, params=params), t, 2, "H")
    prefix = active_trend_line(wms_batch(high=high[: t + 1], low=low[: t + 1], params=params), t, 2, "H")
    assert full == prefix


def test_real_data_feature_is_prefix_stable(shared_data: Path) -> None:
    """Binance BTCUSDT 1m: the per-bar trend-line values up to t never change when later bars arrive."""
    bars = pd.read_parquet(shared_data / "binance" / "BTCUSDT-1m.parquet")
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    params = PivotParams(k=2, levels=3)
    full = {kind: trend_line_values(wms_batch(high=high, low=low, params=params), len(high), 2, kind) for kind in ("H", "L")}
    assert (~np.isnan(full["H"])).sum() > 300 and (~np.isnan(full["L"])).sum() > 300
    for t in range(60, len(high), 37):
        prefix = wms_batch(high=high[: t + 1], low=low[: t + 1], params=params)
        for kind in ("H", "L"):
            np.testing.assert_array_equal(trend_line_values(prefix, t + 1, 2, kind), full[kind][: t + 1])
