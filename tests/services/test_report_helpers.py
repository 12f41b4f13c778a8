"""Exact values of the helpers behind the new-user printouts (issue #9): buy-and-hold beside a backtest, and the
candles a pivot chart draws when a range holds more bars than a picture can show."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.data.candles import Candles
from pivotal.services.backtest import BuyAndHold
from pivotal.services.pivots import chart_window
from pivotal.structure.types import PivotArray, PivotParams, PivotSet

pytestmark = pytest.mark.unit
HOUR = 3_600_000


def bars(n: int) -> Candles:
    """n hand-written hourly bars: open i+100, high +2, low -1, close +1, volume 1 (valid OHLC)."""
    base = np.arange(n, dtype=np.float64) + 100.0
    ts = np.arange(n, dtype=np.int64) * HOUR
    return Candles(ts, base, base + 2, base - 1, base + 1, np.ones(n), "x", "A/B", "1h")


def test_buy_and_hold_pays_the_same_costs_as_the_strategy() -> None:
    c = bars(10)  # first open 100, last close 110; closes 101..110 never fall
    assert BuyAndHold.of(c, 0.0, 0.0) == BuyAndHold(pytest.approx(10.0), 0.0)
    with_costs = BuyAndHold.of(c, 0.001, 0.0005)
    assert with_costs.net_profit_pct == pytest.approx((0.999 * 110 * 0.9995 / (100 * 1.0005) * 0.999 - 1) * 100)
    falling = Candles(c.ts[:3], np.array([10.0, 8, 6]), np.array([11.0, 9, 7]), np.array([7.0, 5, 4]),
                      np.array([8.0, 6, 5]), np.ones(3), "x", "A/B", "1h")  # fmt: skip
    assert BuyAndHold.of(falling, 0, 0) == BuyAndHold(pytest.approx(-50.0), pytest.approx(0.5))


def _pivots(index: list[int], confirmed: list[int]) -> PivotSet:
    arr = PivotArray(np.array(index, np.int64), np.array([float(i) for i in index]), np.array(confirmed, np.int64))
    return PivotSet(PivotParams(levels=1), [arr], [PivotArray.empty()])


def test_a_short_window_is_drawn_as_it_is() -> None:
    c = bars(10)
    w = chart_window(c, _pivots([1, 5, 8], [3, 7, 9]), first=4)
    assert w.group == 1 and w.shown == 6 and w.first_ts == 4 * HOUR and w.last_ts == 9 * HOUR
    assert w.bars.open.tolist() == c.open[4:].tolist() and w.bars.timeframe == "1h"
    assert w.pivots.highs[0].index.tolist() == [1, 4] and w.pivots.highs[0].confirmed_at.tolist() == [3, 5]


def test_a_long_window_merges_bars_into_candles() -> None:
    c = bars(10)
    w = chart_window(c, _pivots([1, 5, 8], [3, 7, 9]), first=1, max_candles=4)  # 9 bars, at most 4 candles: 3 per candle
    assert w.group == 3 and w.shown == 9 and len(w.bars) == 3
    assert w.bars.ts.tolist() == [1 * HOUR, 4 * HOUR, 7 * HOUR]
    assert w.bars.open.tolist() == [101.0, 104.0, 107.0]
    assert w.bars.high.tolist() == [105.0, 108.0, 111.0]
    assert w.bars.low.tolist() == [100.0, 103.0, 106.0]
    assert w.bars.close.tolist() == [104.0, 107.0, 110.0]
    assert w.bars.volume.tolist() == [3.0, 3.0, 3.0]
    assert w.pivots.highs[0].index.tolist() == [0, 1, 2] and w.pivots.highs[0].confirmed_at.tolist() == [0, 2, 2]
    assert w.pivots.highs[0].price.tolist() == [1.0, 5.0, 8.0]  # a pivot keeps its own price
