"""Zigzag display view (spec A.6): the HV2 L1 example exactly, alternation, provisional last vertex."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotArray, PivotParams
from pivotal.structure.zigzag import HIGH, LOW, zigzag, zigzag_at, zigzag_of_level

HV2 = {
    "open": [17, 19, 21, 23, 22, 20, 19, 21, 19, 16, 17, 19, 14, 21, 17, 21, 23, 22, 23, 20, 18, 16, 19, 15, 14],
    "high": [20, 22, 24, 24, 23, 21, 22, 21, 19, 18, 20, 19, 23, 21, 22, 24, 24, 25, 23, 21, 20, 21, 19, 18, 20],
    "low": [16, 18, 20, 21, 19, 17, 19, 18, 15, 14, 16, 17, 13, 15, 17, 19, 20, 21, 19, 17, 15, 16, 14, 12, 14],
    "close": [19, 21, 23, 22, 20, 18, 21, 19, 16, 17, 19, 18, 22, 16, 21, 23, 22, 24, 20, 18, 16, 20, 15, 13, 19],
}
OPEN, HIGH_, LOW_, CLOSE = (np.array(HV2[k], float) for k in ("open", "high", "low", "close"))


def _arr(rows: list[tuple[int, float, int]]) -> PivotArray:
    a = np.array(rows, dtype=float).reshape(-1, 3)
    return PivotArray(a[:, 0].astype(np.int64), a[:, 1], a[:, 2].astype(np.int64))


HV2_L1H = _arr([(2, 24, 3), (6, 22, 7), (10, 20, 11), (12, 23, 13), (15, 24, 16), (17, 25, 18), (21, 21, 22)])
HV2_L1L = _arr([(5, 17, 6), (9, 14, 10), (12, 13, 13), (20, 15, 21), (23, 12, 24)])
EXPECTED = ["H2(24)", "L5(17)", "H6(22)", "L9(14)", "H10(20)", "L12(13)", "H17(25)", "L20(15)", "H21(21)", "L23(12)"]


def test_hv2_level1_example() -> None:
    zz = zigzag(HV2_L1H, HV2_L1L, OPEN, CLOSE)
    assert zz.labels() == EXPECTED
    assert zz.provisional.tolist() == [False] * 9 + [True]
    assert zz.confirmed_at.tolist() == [3, 6, 7, 10, 11, 13, 18, 21, 22, 24]


def test_hv2_from_the_detector() -> None:
    pivots = wms_batch(HIGH_, LOW_, OPEN, CLOSE, PivotParams(k=1, m=1, levels=2))
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
    highs = _arr([(1, 10, 2), (4, 10, 5)])
    lows = _arr([(7, 5, 8)])
    assert zigzag(highs, lows).labels() == ["H1(10)", "L7(5)"]


def test_live_view_marks_the_latest_vertex_and_may_move_it() -> None:
    pivots = wms_batch(HIGH_, LOW_, OPEN, CLOSE, PivotParams(k=1, m=1, levels=2))
    at_16 = zigzag_at(pivots, 1, 16, OPEN, CLOSE)
    assert at_16.labels()[-1] == "H15(24)" and at_16.provisional[-1]
    at_18 = zigzag_at(pivots, 1, 18, OPEN, CLOSE)
    assert at_18.labels()[-1] == "H17(25)"  # the provisional vertex moved: display only, never train on it
    assert len(zigzag(PivotArray.empty(), PivotArray.empty())) == 0


def test_real_data_vertices_alternate_and_are_run_extremes(shared_data: Path) -> None:
    bars = pd.read_parquet(shared_data / "binance" / "BTCUSDT-1m.parquet")
    o, h, lo, c = (bars[col].to_numpy() for col in ("open", "high", "low", "close"))
    pivots = wms_batch(h, lo, o, c, PivotParams(k=2))
    for level in (1, 2):
        zz = zigzag_of_level(pivots, level, o, c)
        assert len(zz) > 5
        assert (zz.kind[1:] != zz.kind[:-1]).all()
        assert np.all(np.diff(zz.index) >= 0)
        highs, lows = zz.price[zz.kind == HIGH], zz.price[zz.kind == LOW]
        assert highs.max() == pivots.get(level, "H").price.max() and lows.min() == pivots.get(level, "L").price.min()
