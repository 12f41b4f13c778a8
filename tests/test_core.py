"""The shared vocabulary and statistics: exact values and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivotal.core.clock import SimulatedClock, WallClock
from pivotal.core.ids import OrderIdFactory
from pivotal.core.stats import (
    MS_PER_YEAR,
    holm_adjust,
    max_drawdown,
    nan_to_zero,
    periods_per_year,
    sharpe,
    sortino,
)
from pivotal.core.vocabulary import ACTIONS, EXIT_EOD, EXIT_SL_GAP, Action, ExitReason, Side

pytestmark = pytest.mark.unit


def test_year_is_365_days() -> None:
    assert MS_PER_YEAR == 365 * 86_400_000
    assert periods_per_year(86_400_000) == 365.0
    assert periods_per_year(3_600_000) == 8760.0


def test_sharpe_exact() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mean, sd = r.mean(), r.std(ddof=1)
    assert sharpe(r) == pytest.approx(mean / sd)
    assert sharpe(r, 365.0) == pytest.approx(mean / sd * math.sqrt(365.0))


def test_sharpe_undefined_is_nan() -> None:
    assert math.isnan(sharpe(np.array([0.01])))
    assert math.isnan(sharpe(np.array([0.01, 0.01, 0.01])))
    assert nan_to_zero(sharpe(np.array([]))) == 0.0


def test_sortino_exact() -> None:
    r = np.array([0.02, -0.01, 0.03, -0.03])
    downside = math.sqrt((0.01**2 + 0.03**2) / 4)
    assert sortino(r) == pytest.approx(r.mean() / downside)
    assert math.isnan(sortino(np.array([0.01, 0.02])))


def test_max_drawdown() -> None:
    assert max_drawdown(np.array([1.0, 1.2, 0.9, 1.3, 1.04])) == pytest.approx(0.25)
    assert max_drawdown(np.array([])) == 0.0


def test_holm_matches_hand_computation() -> None:
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    adj = holm_adjust(p)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adj[4] == pytest.approx(0.02)
    assert adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert math.isnan(adj[3])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_never_below_raw_and_at_most_one(ps: list[float]) -> None:
    p = np.array(ps)
    adj = holm_adjust(p)
    assert np.all(adj >= p - 1e-15)
    assert np.all(adj <= 1.0)


def test_vocabulary_codes() -> None:
    assert ACTIONS == ("BUY", "SELL", "HOLD")
    assert Action.SELL.code == 1 and Action.HOLD.target == 0
    assert EXIT_SL_GAP == ExitReason.SL_GAP == 0 and EXIT_EOD == 5
    assert ExitReason.parse("TIME") is ExitReason.TIME
    with pytest.raises(ValueError, match="unknown exit reason 'X'"):
        ExitReason.parse("X")
    assert Side.of(-1) is Side.SHORT
    with pytest.raises(ValueError, match="direction must be"):
        Side.of(0)


def test_clocks() -> None:
    clock = SimulatedClock(1_000)
    clock.advance(500)
    assert clock.now_ms() == 1_500
    with pytest.raises(ValueError, match="backwards"):
        clock.set(1_000)
    assert WallClock().now_ms() > 1_700_000_000_000


def test_order_ids_are_deterministic_and_safe() -> None:
    a, b = OrderIdFactory("run 1!"), OrderIdFactory("run 1!")
    assert [a.next(), a.next()] == [b.next(), b.next()] == ["run1-1", "run1-2"]
    with pytest.raises(ValueError, match="no usable characters"):
        OrderIdFactory("!!!")
