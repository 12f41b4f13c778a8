"""Deferred outcomes (``training.outcomes``): horizon returns and pivots scored only once known; batch ≡ incremental;
never scored from data before as-of + horizon (prefix replay on real Binance BTC/USDT 1m)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.data.candles import Candles
from pivotal.models.io import ModelOutput, PivotPrediction
from pivotal.models.output_store import InputRef, Prediction
from pivotal.structure.types import PivotParams
from pivotal.training.outcomes import (
    HORIZONS_MS,
    HorizonResolver,
    Outcome,
    PivotResolver,
    resolve_all,
    resolve_horizons,
    resolve_pivots,
    summary,
)

MIN = 60_000
HASH = "cd" * 32
PARAMS = PivotParams(levels=3)


def _prediction(as_of: int, direction: float = 0.5, symbol: str = "BTC/USDT", **metadata: object) -> Prediction:
    buy = (1 + direction) / 4
    probs = {"BUY": buy + 0.25, "SELL": 0.5 - buy, "HOLD": 0.25}
    pivots = (PivotPrediction(1, "H", 0.001, 3.0, 0.5), PivotPrediction(2, "L", -0.002, 10.0, 0.5))
    out = ModelOutput("cnn", "cnn", symbol, as_of, 0.5, "BUY", probs, direction, 0.5, pivots, metadata=dict(metadata))
    return Prediction(out, "v1", "1m", InputRef("single-1m", as_of, HASH), 0)


# ------------------------------------------------------------------------------------------------ exact, by hand


def test_horizon_outcome_by_hand() -> None:
    close_ts = np.array([1, 2, 3, 4, 5, 6, 7]) * MIN
    close = np.array([100.0, 101.0, 102.0, 103.0, 101.0, 99.0, 98.0])
    as_of = 2 * MIN + 30_000  # between closes: entry is the last close known then (101 at 2 min)
    p = _prediction(as_of, direction=-0.4, horizons={"1m": 0.7})
    out = resolve_horizons([p], close_ts, close, horizons=(MIN, 3 * MIN))
    assert [(o.label.target, o.known_at, o.predicted_direction, o.label.direction, o.hit) for o in out] == [
        ("return_1m", 4 * MIN, 1, 1, True),  # due 3.5 min: exit at the 4 min close (103)
        ("return_3m", 6 * MIN, -1, -1, True),  # due 5.5 min: exit at the 6 min close (99); no "3m" forecast: direction_vector
    ]
    assert out[0].label.value == pytest.approx(np.log(103 / 101))
    assert out[1].label.value == pytest.approx(np.log(99 / 101))
    sample = out[1].sample()
    assert (sample.input, sample.label.known_at) == (p.input, 6 * MIN)
    # incremental, prediction added before the bar closing at its as-of time arrives
    resolver = HorizonResolver("BTC/USDT", horizons=(MIN, 3 * MIN))
    resolver.on_bar(int(close_ts[0]), float(close[0]))
    resolver.add(p)
    got = [o for ts, c in zip(close_ts[1:], close[1:], strict=True) for o in resolver.on_bar(int(ts), float(c))]
    assert got == out and resolver.pending == 0


def test_hold_band_and_summary() -> None:
    close_ts, close = np.array([MIN, 2 * MIN]), np.array([100.0, 100.05])
    [o] = resolve_horizons([_prediction(MIN, direction=0.0)], close_ts, close, horizons=(MIN,), hold_band=0.001)
    assert (o.label.direction, o.predicted_direction, o.hit) == (0, 0, True)
    assert summary([o, o]) == {"return_1m": {"count": 2, "hit_rate": 1.0}}


def test_resolvers_refuse_late_predictions_and_unordered_bars() -> None:
    resolver = HorizonResolver("BTC/USDT")
    resolver.on_bar(5 * MIN, 1.0)
    with pytest.raises(ValueError, match="add predictions as they are made"):
        resolver.add(_prediction(4 * MIN))
    with pytest.raises(ValueError, match="feed bars in order"):
        resolver.on_bar(5 * MIN, 1.0)
    with pytest.raises(ValueError, match="scores BTC/USDT"):
        resolver.add(_prediction(6 * MIN, symbol="ETH/USDT"))
    pivots = PivotResolver("BTC/USDT")
    pivots.on_bar(1.0, 1.0, 1.0, 1.0, 5 * MIN)
    with pytest.raises(ValueError, match="resolve_pivots"):
        pivots.add(_prediction(4 * MIN))
    with pytest.raises(ValueError):
        HorizonResolver("BTC/USDT", horizons=(0,))


def test_a_prediction_before_the_first_bar_is_not_scored() -> None:
    resolver = HorizonResolver("BTC/USDT", horizons=(MIN,))
    resolver.add(_prediction(0))
    assert resolver.on_bar(MIN, 1.0) == [] and resolver.on_bar(2 * MIN, 1.0) == []
    assert resolver.unscorable == 1 and resolver.pending == 0
    assert resolve_horizons([_prediction(0)], np.array([MIN, 2 * MIN]), np.array([1.0, 1.0]), (MIN,)) == []


# ------------------------------------------------------------------------------------------------ real data


@lru_cache(maxsize=1)
def _btc(shared_data: str) -> Candles:
    """Two days of Binance BTC/USDT 1m from 2024-03-01 (2,880 bars)."""
    frame = pd.read_parquet(Path(shared_data) / "binance/BTCUSDT-1m-2024.parquet")
    start = 1_709_251_200_000
    frame = frame[(frame.timestamp >= start) & (frame.timestamp < start + 2 * 86_400_000)]
    return Candles.from_frame(frame, "binance", "BTC/USDT", "1m")


def _predictions(candles: Candles, every: int = 7, offset_ms: int = 0) -> list[Prediction]:
    close_ts = candles.ts + MIN
    return [
        _prediction(int(close_ts[i]) + offset_ms, float(np.sin(i)), horizons={"5m": float(np.cos(i))})
        for i in range(0, len(candles), every)
    ]


def _incremental(candles: Candles, predictions: list[Prediction]) -> list[Outcome]:
    """Feed bar by bar; each prediction is added as soon as it is made (before the first bar closing after it)."""
    horizons, pivots = HorizonResolver("BTC/USDT"), PivotResolver("BTC/USDT", PARAMS)
    queue = sorted(predictions, key=lambda p: p.as_of)
    out: list[Outcome] = []
    j = 0
    for i in range(len(candles)):
        close_ts = int(candles.ts[i]) + MIN
        while j < len(queue) and queue[j].as_of < close_ts:
            horizons.add(queue[j])
            pivots.add(queue[j])
            j += 1
        out += horizons.on_bar(close_ts, float(candles.close[i]))
        bar = (float(candles.open[i]), float(candles.high[i]), float(candles.low[i]), float(candles.close[i]))
        out += pivots.on_bar(*bar, close_ts)
    return sorted(out, key=Outcome.sort_key)


@pytest.mark.parametrize("offset_ms", [0, 25_000])
def test_batch_equals_incremental_on_real_btc(shared_data: Path, offset_ms: int) -> None:
    candles = _btc(str(shared_data))
    assert len(candles) == 2880
    predictions = _predictions(candles, offset_ms=offset_ms)
    batch = resolve_all(predictions, candles, params=PARAMS)
    incremental = _incremental(candles, predictions)
    assert incremental == batch
    counts = {t: s["count"] for t, s in summary(batch).items()}
    last_close = int(candles.ts[-1]) + MIN  # the 1m data of these days has no holes: known iff due by the last close
    for h in HORIZONS_MS:
        assert counts[f"return_{h // MIN}m"] == sum(p.as_of + h <= last_close for p in predictions)
    assert counts["return_60m"] < counts["return_1m"] == len(predictions)
    assert counts["pivot_L1"] > 0.9 * len(predictions) and counts["pivot_L2"] > 0.8 * len(predictions)
    for o in batch:  # never scored before as-of + horizon; pivot outcomes after the prediction's bar
        horizon = int(o.label.target.removeprefix("return_").removesuffix("m")) * MIN if "return" in o.label.target else 1
        assert o.known_at >= o.as_of + horizon


def test_pivot_outcomes_match_the_labels_and_split_into_confirmed_and_refuted(shared_data: Path) -> None:
    candles = _btc(str(shared_data))
    outcomes = resolve_pivots(_predictions(candles), candles, PARAMS)
    l2 = [o for o in outcomes if o.label.target == "pivot_L2"]
    confirmed = [o for o in l2 if o.hit]
    assert confirmed and len(confirmed) < len(l2)  # the "L" forecast is confirmed by lows, refuted by highs
    assert all(o.label.direction == -1 for o in confirmed)
    highs = [o.label.value for o in l2 if o.label.direction == 1]
    assert highs and min(highs) > -0.05  # a high is above the prediction bar's close but for the rare gap-down bar
    for o in l2:
        assert o.label.extra["bars_until"] >= 1 and o.label.extra["offset_error"] == pytest.approx(-0.002 - o.label.value)


def _prefix(candles: Candles, end_close_ts: int) -> Candles:
    n = int(np.searchsorted(candles.ts + MIN, end_close_ts, side="right"))
    c = candles
    return Candles(c.ts[:n], c.open[:n], c.high[:n], c.low[:n], c.close[:n], c.volume[:n], c.exchange, c.symbol, "1m")


def test_outcomes_are_the_same_from_the_prefix_ending_at_known_at_and_absent_before(shared_data: Path) -> None:
    candles = _btc(str(shared_data))
    predictions = _predictions(candles, every=97)
    full = resolve_all(predictions, candles, params=PARAMS)

    def same(o: Outcome, bars: Candles) -> list[Outcome]:
        return [
            x for x in resolve_all(predictions, bars, params=PARAMS) if (x.as_of, x.label.target) == (o.as_of, o.label.target)
        ]

    targets = sorted({o.label.target for o in full})
    assert targets == ["pivot_L1", "pivot_L2", "return_15m", "return_1m", "return_5m", "return_60m"]
    checked = [o for t in targets for o in [x for x in full if x.label.target == t][::6]]
    for o in checked:
        assert same(o, _prefix(candles, o.known_at)) == [o]  # the bars up to known_at give the same outcome
        assert same(o, _prefix(candles, o.known_at - 1)) == []  # one bar less: not known yet


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=st.integers(0, 2880 * MIN - 1),
    horizon=st.sampled_from([*HORIZONS_MS, 90_000, 7 * MIN + 1]),
)
def test_never_scored_with_prices_before_as_of_plus_horizon(shared_data: Path, at: int, horizon: int) -> None:
    candles = _btc(str(shared_data))
    close_ts = candles.ts + MIN
    as_of = int(candles.ts[0]) + at
    [p] = [_prediction(as_of)]
    out = resolve_horizons([p], close_ts, candles.close, (horizon,))
    i = int(np.searchsorted(close_ts, as_of, side="right")) - 1
    j = int(np.searchsorted(close_ts, as_of + horizon))
    if i < 0 or j >= len(close_ts):
        assert out == []
        return
    [o] = out
    assert o.known_at == close_ts[j] >= as_of + horizon and close_ts[j - 1] < as_of + horizon
    assert o.label.extra["entry"] == candles.close[i] and close_ts[i] <= as_of
    assert o.label.extra["exit"] == candles.close[j]
    assert resolve_horizons([p], close_ts[:j], candles.close[:j], (horizon,)) == []  # one bar less: not known yet
