"""Zigzag display view (spec A.6): the HV2 L1 example exactly, alternation, provisional last vertex."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotArray, PivotParams
from pivotal.structure.zigzag import HIGH, LOW, zigzag, zigzag_at, zigzag_of_level
from tests.vectors import HV2_CLOSE, HV2_HIGH, HV2_L1H_FIRST, HV2_LOW, HV2_OPEN, pivot_array
from tests.vectors import HV2_L1L as HV2_L1L_TRIPLES

OPEN, HIGH_, LOW_, CLOSE = (np.array(values, float) for values in (HV2_OPEN, HV2_HIGH, HV2_LOW, HV2_CLOSE))
HV2_L1H, HV2_L1L = pivot_array(HV2_L1H_FIRST), pivot_array(HV2_L1L_TRIPLES)
EXPECTED = ["H2(24)", "L5(17)", "H6(22)", "L9(14)", "H10(20)", "L12(13)", "H17(25)", "L20(15)", "H21(21)", "L23(12)"]


def test_hv2_level1_example() -> None:
    zz = zigzag(HV2_L1H, HV2_L1L, OPEN, CLOSE)
    assert zz.labels() == EXPECTED
    assert zz.provisional.tolist() == [False] * 9 + [True]
    assert zz.confirmed_at.tolist() == [3, 6, 7, 10, 11, 13, 18, 21, 22, 24]


def test_hv2_from_the_detector() -> None:
    pivots = wms_batch(high=HIGH_, low=LOW_, open=OPEN, close=CLOSE, params=PivotParams(k=1, m=1, levels=2))
    assert zigzag_of_level(pivots, 1, OPEN, CLOSE).labels() == EXPECTED


def test_outside_bar_order_decides_which_extreme_comes_first() -> None:
    # Bar 12 is both L1H and L1L. Bullish (close >= open): L then H, so L12 ends the low run and H12 joins the highs.
    bearish_close = CLOSE.copy()
    bearish_close[12] = 13.5  # now close < open 14: H printed first, then L
    zz = zigzag(HV2_L1H, HV2_L1L, OPEN, bearish_close)
    # Order H10 H12 L12 ...: H12(23) beats H10(20); L12 then stands alone before H15/H17.
    assert zz.labels()[:7] == ["H2(24)", "L5(17)", "H6(22)", "L9(14)", "H12(23)", "L12(13)", "H17(25)"]
    with pytest.raises(ValueError, match="bar 12 is both a high and a low pivot: pass open and close"):
        zigzag(HV2_L1H, HV2_L1L)


def test_equal_extremes_keep_the_earlier_vertex() -> None:
    highs = pivot_array([(1, 10, 2), (4, 10, 5)])
    lows = pivot_array([(7, 5, 8)])
    assert zigzag(highs, lows).labels() == ["H1(10)", "L7(5)"]


def test_live_view_marks_the_latest_vertex_and_may_move_it() -> None:
    pivots = wms_batch(high=HIGH_, low=LOW_, open=OPEN, close=CLOSE, params=PivotParams(k=1, m=1, levels=2))
    at_16 = zigzag_at(pivots, 1, 16, OPEN, CLOSE)
    assert at_16.labels()[-1] == "H15(24)" and at_16.provisional[-1]
    at_18 = zigzag_at(pivots, 1, 18, OPEN, CLOSE)
    assert at_18.labels()[-1] == "H17(25)"  # the provisional vertex moved: display only, never train on it
    assert len(zigzag(PivotArray.empty(), PivotArray.empty())) == 0


def test_real_data_vertices_alternate_and_are_run_extremes(shared_data: Path) -> None:
    bars = pd.read_parquet(shared_data / "binance" / "BTCUSDT-1m.parquet")
    o, h, lo, c = (bars[col].to_numpy() for col in ("open", "high", "low", "close"))
    pivots = wms_batch(high=h, low=lo, open=o, close=c, params=PivotParams(k=2))
    for level in (1, 2):
        zz = zigzag_of_level(pivots, level, o, c)
        assert len(zz) > 5
        assert (zz.kind[1:] != zz.kind[:-1]).all()
        assert np.all(np.diff(zz.index) >= 0)
        highs, lows = zz.price[zz.kind == HIGH], zz.price[zz.kind == LOW]
        assert highs.max() == pivots.get(level, "H").price.max() and lows.min() == pivots.get(level, "L").price.min()
