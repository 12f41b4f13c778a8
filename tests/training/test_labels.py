"""Pivot labels: hand vectors from spec A.9 and the no-look-ahead property on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.data.candles import Candles
from pivotal.structure.types import PivotParams, PivotSet
from pivotal.training.labels import BUY, HOLD, SELL, build_labels
from tests.vectors import HV1_HIGH, HV2_CLOSE, HV2_HIGH, HV2_LOW, HV2_OPEN, pivot_array

# Spec A.9 HV1 (k=1, m=1): low = high - 4; open = close = high - 2 (a flat body, irrelevant to pivots).
HV1 = PivotParams(k=1, m=1, levels=3)
MINUTE = 60_000


def hv1() -> Candles:
    high = np.array(HV1_HIGH, np.float64)
    ts = np.arange(len(high), dtype=np.int64) * MINUTE
    return Candles(ts, high - 2, high, high - 4, high - 2, np.ones(len(high)), "test", "HV/1", "1m")


def test_hv1_level2_targets_are_the_next_pivot_bar_after_t() -> None:
    labels = build_labels(hv1(), HV1)
    # L2 pivots: H 5@17(c9), L 13@5(c17), H 21@19(c25); nothing after bar 21.
    col = 1
    assert labels.kind[0, col] == 1 and labels.bars_until[0, col] == 5 and labels.known_at[0, col] == 9
    assert labels.kind[4, col] == 1 and labels.bars_until[4, col] == 1
    assert labels.kind[5, col] == -1 and labels.bars_until[5, col] == 8 and labels.known_at[5, col] == 17
    assert labels.offset[5, col] == pytest.approx(np.log(5 / 15))
    assert labels.kind[13, col] == 1 and labels.bars_until[13, col] == 8 and labels.known_at[13, col] == 25
    assert labels.offset[13, col] == pytest.approx(np.log(19 / 7))
    for t in range(21, 31):
        assert labels.kind[t, col] == 0 and labels.bars_until[t, col] == -1 and labels.known_at[t, col] == -1
        assert np.isnan(labels.offset[t, col])


def test_hv1_level1_target_and_known_time_in_ms() -> None:
    labels = build_labels(hv1(), HV1)
    # L1 after bar 2: L1L 3@9 confirmed at bar 4, known at the close of bar 4 = 5 minutes.
    assert (labels.kind[2, 0], labels.bars_until[2, 0], labels.known_at[2, 0]) == (-1, 1, 4)
    assert labels.offset[2, 0] == pytest.approx(np.log(9 / 12))
    assert labels.known_ts[2, 0] == 5 * MINUTE
    assert labels.known_at.shape == (31, 3) and (labels.known_at[:, 2] == -1).all()  # no L3 in HV1


def test_actions_follow_the_level2_target_and_costs() -> None:
    labels = build_labels(hv1(), HV1, action_level=2, cost=0.002)
    assert labels.action[0] == BUY  # next L2 is the high 17 vs close 8
    assert labels.action[5] == SELL  # next L2 is the low 5 vs close 15
    assert labels.action[13] == BUY
    assert labels.action[25] == HOLD and labels.action_known_at[25] == -1
    costly = build_labels(hv1(), HV1, action_level=2, cost=0.5)
    assert costly.action[20] == HOLD  # ln(19 / 15) = 0.236 does not pay 0.5
    assert costly.action[13] == BUY  # ln(19 / 7) = 0.999 does
    assert costly.action_known_at[20] == 25


def test_usable_masks_only_labels_known_by_now() -> None:
    labels = build_labels(hv1(), HV1)
    usable = labels.usable(now=17, level=2)
    assert usable[5:13].all() and usable[:5].all()  # targets L2H@5 (c9) and L2L@13 (c17)
    assert not usable[13:].any()  # target L2H@21 is confirmed at bar 25
    assert labels.usable(now=25, level=2)[13:21].all()
    assert (labels.usable_ts(now_ms=18 * MINUTE, level=2) == usable).all()


def test_outside_bar_orders_low_first_when_bullish() -> None:
    # Spec A.9 HV2 (k=1): bar 12 (open 14, close 22) is both L1H and L1L; bullish, so the low comes first.
    arr = [np.array(x, np.float64) for x in (HV2_OPEN, HV2_HIGH, HV2_LOW, HV2_CLOSE)]
    candles = Candles(np.arange(25, dtype=np.int64) * MINUTE, *arr, np.ones(25), "t", "HV/2", "1m")
    labels = build_labels(candles, PivotParams(k=1, m=1, levels=2))
    assert (labels.kind[11, 0], labels.offset[11, 0], labels.bars_until[11, 0]) == (-1, pytest.approx(np.log(13 / 18)), 1)
    bearish = Candles(candles.ts, *(a.copy() for a in arr), np.ones(25), "t", "HV/2", "1m")
    bearish.open[12], bearish.close[12] = 22.0, 14.0
    assert build_labels(bearish, PivotParams(k=1, m=1, levels=2)).kind[11, 0] == 1
    # HV2(d), skip_inside: bars 13 and 14 are inside bar 12, so L1L@12 is confirmed (and known) only at bar 15
    skipping = build_labels(candles, PivotParams(k=1, m=1, levels=2, skip_inside=True))
    assert (skipping.kind[11, 0], skipping.bars_until[11, 0], skipping.known_at[11, 0]) == (-1, 1, 15)


def test_target_is_known_only_once_no_earlier_opposite_pivot_can_appear() -> None:
    """L2L@6 is confirmed at bar 8, but until L1H@9 confirms (bar 10) an L2H between t and 6 was still possible."""
    params = PivotParams(k=1, m=1, levels=2)
    pivots = PivotSet(
        params,
        [pivot_array([(1, 20, 2), (3, 22, 4), (9, 21, 10)]), pivot_array([(3, 22, 10)])],
        [pivot_array([(2, 15, 3), (6, 12, 7), (7, 13, 8)]), pivot_array([(6, 12, 8)])],
    )
    high = np.full(12, 30.0)
    candles = Candles(
        np.arange(12, dtype=np.int64) * MINUTE, high - 12, high, high - 25, high - 12, np.ones(12), "t", "X/Y", "1m"
    )
    labels = build_labels(candles, params, pivots=pivots)
    # t=2: target L2H@3 (confirmed 10); lows up to 3 are settled when L1L@6 confirms (7) -> known at 10
    assert (labels.kind[2, 1], labels.bars_until[2, 1], labels.known_at[2, 1]) == (1, 1, 10)
    # t=3: target L2L@6 (confirmed 8); highs up to 6 settle only when L1H@9 confirms (10) -> known at 10, not 8
    assert (labels.kind[3, 1], labels.bars_until[3, 1], labels.known_at[3, 1]) == (-1, 3, 10)
    # level 1 settles k bars after the pivot bar: t=6 -> target L1L@7 (confirmed 8), highs up to 7 settle at 8
    assert (labels.kind[6, 0], labels.known_at[6, 0]) == (-1, 8)
    # t=7 -> target L1H@9 (confirmed 10), lows up to 9 settle at bar 10 (k=1)
    assert (labels.kind[7, 0], labels.known_at[7, 0]) == (1, 10)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"action_level 4 outside computed pivot levels 1\.\.3"):
        build_labels(hv1(), HV1, action_level=4)
    with pytest.raises(ValueError, match="cost must be >= 0"):
        build_labels(hv1(), HV1, cost=-0.1)


@pytest.fixture(scope="module")
def real_minutes(shared_data: Path) -> Candles:
    frame = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1m-2025.parquet").iloc[:3000]
    return Candles.from_frame(frame, "binance", "ETH/USDT", "1m")


@pytest.mark.parametrize("params", [PivotParams(), PivotParams(k=1, m=2, skip_inside=True, tie="strict")])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(now=st.integers(min_value=50, max_value=2900))
def test_no_look_ahead_labels_known_by_now_ignore_later_bars(real_minutes: Candles, params: PivotParams, now: int) -> None:
    """A label known at bar ``now`` is the same whether or not the bars after ``now`` exist, and so is the set of
    labels known at ``now``: a trainer computing labels on the past alone never sees a label that will change."""
    full = build_labels(real_minutes, params)
    past = build_labels(real_minutes.slice(0, now + 1), params)
    for level in range(1, full.levels + 1):
        known = full.usable(now, level)[: now + 1]
        col = level - 1
        assert np.array_equal(known, past.usable(now, level))
        for name in ("kind", "offset", "bars_until", "known_at"):
            a, b = getattr(full, name)[: now + 1, col][known], getattr(past, name)[:, col][known]
            assert np.array_equal(a, b, equal_nan=True), (level, name)
    known = full.usable(now)[: now + 1]
    assert np.array_equal(full.action[: now + 1][known], past.action[known])
    # targets are never known at their own sample bar: known_at > t
    t = np.arange(len(full))
    assert ((full.known_at == -1) | (full.known_at > t[:, None])).all()
