"""Trend-line validation (``training.trendline_validation``): the rules by hand; batch ≡ incremental, verdicts never
before their line is known and never changed afterwards (prefix replay on real Binance BTC/USDT 1m); verdicts as
annotations and as training samples with priority on wrong predictions."""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.state.annotations import AnnotationFilter, AnnotationRepository
from pivotal.models.io import ModelOutput, PivotPrediction
from pivotal.models.output_store import InputRef, Prediction
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.pivots import wms_batch
from pivotal.structure.trendlines import TrendLine
from pivotal.structure.types import PivotParams
from pivotal.training.trendline_validation import (
    TrendLineValidator,
    TrendValidationConfig,
    TrendVerdict,
    _verdicts,
    accuracy,
    store_verdicts,
    training_samples,
    validate_trendlines,
)

MIN = 60_000
HASH = "ef" * 32
T0 = 1_709_251_200_000  # 2024-03-01


def _prediction(
    as_of: int, direction: float, pivots: tuple[PivotPrediction, ...] = (), name: str = "baseline", symbol: str = "BTC/USDT"
) -> Prediction:
    action = "BUY" if direction > 0 else "SELL" if direction < 0 else "HOLD"
    probs = {"BUY": 0.2, "SELL": 0.2, "HOLD": 0.2}
    probs[action] = 0.6
    out = ModelOutput("baseline", name, symbol, as_of, 0.6, action, probs, direction, abs(direction), pivots)
    return Prediction(out, "v1", "1m", InputRef("single-1m", as_of, HASH), as_of)


# ------------------------------------------------------------------------------------------------ rules, by hand

LINE = TrendLine(
    "H", 2, i1=10, v1=100.0, i2=20, v2=110.0, valid_from=25, start_ts=10 * MIN, end_ts=20 * MIN, flat_tolerance=0.001
)


def test_a_right_prediction_is_validated_on_every_aspect() -> None:
    # t = 5, close 95: predicted next high 101 at bar 11, trend up; the line is 101 at bar 11, its first high at bar 10
    pp = PivotPrediction(2, "H", math.log(101 / 95), 6.0, 0.7)
    p = _prediction(6 * MIN, 0.4, (pp, PivotPrediction(2, "L", -0.01, 2.0)))
    got = _verdicts(p, 5, 95.0, LINE, 26 * MIN, TrendValidationConfig())
    assert [(v.outcome.label.target, v.verdict, v.weight, v.known_at) for v in got] == [
        ("trend_L2H_direction", "validated", 1.0, 26 * MIN),
        ("trend_L2H_price", "validated", 1.0, 26 * MIN),
        ("trend_L2H_time", "validated", 1.0, 26 * MIN),
    ]
    direction, price, time = got
    assert (direction.outcome.predicted_direction, direction.outcome.label.direction) == (1, 1)
    assert direction.outcome.label.value == pytest.approx(math.log(110 / 100))
    assert price.outcome.label.value == pytest.approx(math.log(101 / 95))
    assert price.outcome.label.extra["line_price"] == pytest.approx(101.0)
    assert (time.outcome.predicted, time.outcome.label.value, time.outcome.label.extra["tolerance"]) == (6.0, 5.0, 3.0)
    assert all(v.priority == "normal" and v.sample().label.extra["weight"] == 1.0 for v in got)


def test_a_wrong_prediction_is_refuted_with_high_priority() -> None:
    # falling direction; a high predicted 20 bars out: compared with the line at bar 25 (clamped to its confirmation)
    pp = PivotPrediction(2, "H", math.log(100 / 95), 20.0)
    p = _prediction(6 * MIN, -0.2, (pp,))
    direction, price, time = _verdicts(p, 5, 95.0, LINE, 26 * MIN, TrendValidationConfig())
    assert [v.verdict for v in (direction, price, time)] == ["refuted"] * 3
    assert price.outcome.label.extra["line_price"] == pytest.approx(115.0)
    assert price.outcome.label.extra["at_bar_offset"] == 20.0
    assert all(
        v.priority == "high" and v.weight == 2.0 and v.sample().label.extra["weight"] == 2.0 for v in (direction, price, time)
    )
    # tolerances are configuration: a wide price band and a time tolerance of 80 % validate the same prediction
    loose = TrendValidationConfig(price_tolerance=0.2, time_tolerance_fraction=3.0)
    assert [v.verdict for v in _verdicts(p, 5, 95.0, LINE, 26 * MIN, loose)] == ["refuted", "validated", "validated"]


def test_flat_lines_and_hold_band() -> None:
    flat = TrendLine("L", 2, 10, 100.0, 20, 100.05, 25, None, 10 * MIN, 20 * MIN, flat_tolerance=0.001)
    hold = _prediction(6 * MIN, 0.05)
    [v] = _verdicts(hold, 5, 99.0, flat, 26 * MIN, TrendValidationConfig(hold_band=0.1))
    assert (v.outcome.predicted_direction, v.outcome.label.direction, v.verdict) == (0, 0, "validated")
    [v] = _verdicts(hold, 5, 99.0, flat, 26 * MIN, TrendValidationConfig())
    assert v.verdict == "refuted"
    assert v.annotation().direction is None  # a flat line is neither LONG nor SHORT


def test_config_and_validator_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="price_tolerance must be a finite number >= 0"):
        TrendValidationConfig(price_tolerance=-1)
    with pytest.raises(ValueError, match="level 4 is above the detector's levels"):
        TrendLineValidator("BTC/USDT", "1m", PivotParams(levels=3), TrendValidationConfig(level=4))
    validator = TrendLineValidator("BTC/USDT", "1m")
    validator.on_bar(T0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="add predictions as they are made"):
        validator.add(_prediction(T0, 0.1))
    with pytest.raises(ValueError, match="judges BTC/USDT 1m"):
        validator.add(_prediction(T0 + MIN, 0.1, symbol="ETH/USDT"))
    with pytest.raises(ValueError, match="feed bars in order"):
        validator.on_bar(T0, 1.0, 1.0, 1.0, 1.0)


def test_accuracy_and_samples_put_wrong_predictions_first() -> None:
    right = _verdicts(_prediction(6 * MIN, 0.4), 5, 95.0, LINE, 26 * MIN, TrendValidationConfig())
    wrong = _verdicts(_prediction(7 * MIN, -0.4, name="other"), 6, 95.0, LINE, 27 * MIN, TrendValidationConfig())
    stats = accuracy(right + wrong + right)
    good = {"validated": 2, "refuted": 0, "accuracy": 1.0}
    bad = {"validated": 0, "refuted": 1, "accuracy": 0.0}
    assert stats == {
        "baseline": {**good, "by": {"1m L2H direction": good}},
        "other": {**bad, "by": {"1m L2H direction": bad}},
    }
    samples = training_samples(right + wrong, now_ms=27 * MIN)
    assert [s.model_name for s in samples] == ["other", "baseline"]
    assert [s.model_name for s in training_samples(right + wrong, now_ms=27 * MIN - 1)] == ["baseline"]  # not known yet


# ------------------------------------------------------------------------------------------------ real data


@lru_cache(maxsize=1)
def _btc(shared_data: str) -> Candles:
    """Two days of Binance BTC/USDT 1m from 2024-03-01 (2,880 bars)."""
    frame = pd.read_parquet(Path(shared_data) / "binance/BTCUSDT-1m-2024.parquet")
    frame = frame[(frame.timestamp >= T0) & (frame.timestamp < T0 + 2 * 86_400_000)]
    return Candles.from_frame(frame, "binance", "BTC/USDT", "1m")


def baseline_predictions(candles: Candles, params: PivotParams = PivotParams(), every: int = 5) -> list[Prediction]:
    """A simple causal baseline, every ``every`` bars at the bar's close: direction = tanh(100 x the 15-bar log
    return) (momentum); next L2 high / low = at the last confirmed L2 high / low (flat resistance / support), due one
    mean spacing of the last two known pivots of that kind after the last one (at least 1 bar). It reads bars and
    pivots known at the bar's close only (the incremental detector, fed up to that bar)."""
    detector = WilliamsMarketStructure(params, history=1)
    last: dict[str, list[int | float]] = {"H": [], "L": []}  # flattened (index, price) of the last two L2 pivots
    out: list[Prediction] = []
    for t in range(len(candles)):
        o, h, lo, c = (float(candles.open[t]), float(candles.high[t]), float(candles.low[t]), float(candles.close[t]))
        for e in detector.on_bar(t, o, h, lo, c):
            if e.level == 2:
                last[e.kind] = [*last[e.kind][-2:], e.index, e.price][-4:]
        if t < 15 or t % every:
            continue
        direction = math.tanh(100 * math.log(c / float(candles.close[t - 15])))
        pivots = []
        for kind in ("H", "L"):
            known = last[kind]
            if len(known) == 4:
                (i_a, _, i_b, price) = known
                due = max(1.0, float(i_b) + (float(i_b) - float(i_a)) - t)
                pivots.append(PivotPrediction(2, kind, math.log(float(price) / c), due, 0.5))
        out.append(_prediction(int(candles.ts[t]) + MIN, direction, tuple(pivots)))
    return out


def _incremental(candles: Candles, predictions: list[Prediction], params: PivotParams = PivotParams()) -> list[TrendVerdict]:
    validator = TrendLineValidator("BTC/USDT", "1m", params)
    by_as_of: dict[int, list[Prediction]] = {}
    for p in predictions:
        by_as_of.setdefault(p.as_of, []).append(p)
    out: list[TrendVerdict] = []
    for i in range(len(candles)):
        out += validator.on_bar(
            int(candles.ts[i]), *(float(x[i]) for x in (candles.open, candles.high, candles.low, candles.close))
        )
        for p in by_as_of.get(int(candles.ts[i]) + MIN, []):  # made at this bar's close, before the next bar
            validator.add(p)
    return out


@pytest.mark.parametrize(
    "params", [PivotParams(), PivotParams(k=3, tie="last", skip_inside=True)], ids=["default", "k3-last-inside"]
)
def test_batch_equals_incremental_on_real_data(shared_data: Path, params: PivotParams) -> None:
    candles = _btc(str(shared_data))
    predictions = baseline_predictions(candles, params)
    batch = validate_trendlines(predictions, candles, params)
    assert batch == _incremental(candles, predictions, params)
    assert len(predictions) == 573 and len(batch) > 500
    close_ts = candles.ts + MIN
    for v in batch:  # causal: known at the close of the bar that confirmed the line's second pivot, after the prediction
        assert v.known_at == close_ts[v.line.valid_from] > v.outcome.as_of
        t = int(np.searchsorted(close_ts, v.outcome.as_of, side="right")) - 1
        assert v.line.i1 > t
    # the line's pivots are L2 pivots of wms_batch, consecutive of their kind
    pivots = wms_batch(open=candles.open, high=candles.high, low=candles.low, close=candles.close, params=params)
    for v in batch[:50]:
        arr = pivots.get(2, v.line.kind)
        j = int(np.searchsorted(arr.index, v.line.i2))
        assert (arr.index[j - 1], arr.price[j - 1], arr.confirmed_at[j]) == (v.line.i1, v.line.v1, v.line.valid_from)
    stats = accuracy(batch)["baseline"]
    assert stats["validated"] + stats["refuted"] == len(batch)
    assert set(stats["by"]) == {f"1m L2{k} {a}" for k in "HL" for a in ("direction", "price", "time")}


def test_prefix_replay_no_verdict_before_its_line_or_changed_after(shared_data: Path) -> None:
    candles = _btc(str(shared_data))
    predictions = baseline_predictions(candles, every=9)
    full = validate_trendlines(predictions, candles)
    close_ts = candles.ts + MIN
    cuts = sorted({int(np.searchsorted(close_ts, v.known_at)) for v in full[:: max(1, len(full) // 12)]})
    for cut in cuts:  # bars 0..cut (the bar at whose close some verdicts become known), and one bar less
        for n in (cut + 1, cut):
            prefix = candles.slice(0, n)
            seen = [p for p in predictions if p.as_of < int(close_ts[n - 1])]  # predictions made by the last bar's close
            assert validate_trendlines(seen, prefix) == [v for v in full if v.known_at <= close_ts[n - 1]]
        assert any(v.known_at == close_ts[cut] for v in full)


def test_real_verdicts_stored_as_annotations(shared_data: Path, tmp_path: Path) -> None:
    candles = _btc(str(shared_data))
    verdicts = validate_trendlines(baseline_predictions(candles, every=30), candles)
    store = DuckDBStore(tmp_path / "state.duckdb")
    try:
        repo = AnnotationRepository(store, SimulatedClock(T0 + 3 * 86_400_000))
        assert store_verdicts(repo, verdicts) == len(verdicts) > 0
        assert store_verdicts(repo, verdicts) == 0  # a verdict is stored once
        stored = repo.query(AnnotationFilter(source="trendline"))
        assert sorted(a.id for a in stored) == sorted(v.annotation_id for v in verdicts)
        refuted = repo.query(AnnotationFilter(verdict="refuted", tag="price"))
        assert len(refuted) == sum(1 for v in verdicts if v.aspect == "price" and not v.validated)
        a = repo.get(verdicts[0].annotation_id)
        now = T0 + 3 * 86_400_000
        assert a == dataclasses.replace(verdicts[0].annotation(), created_ms=now, updated_ms=now, version=1)
        assert (a.entry_price, a.exit_price, a.known_at) == (verdicts[0].line.v1, verdicts[0].line.v2, verdicts[0].known_at)
        assert a.entry_ts == int(candles.ts[verdicts[0].line.i1]) and a.details["prediction_as_of"] == verdicts[0].outcome.as_of
    finally:
        store.close()


def test_verdicts_store_as_outcomes_and_come_back_as_samples(tmp_path: Path) -> None:
    from pivotal.data.state.predictions import PredictionRepository
    from pivotal.training.outcomes import store_outcomes, stored_samples

    pp = PivotPrediction(2, "H", math.log(100 / 95), 20.0)
    verdicts = _verdicts(_prediction(6 * MIN, -0.2, (pp,)), 5, 95.0, LINE, 26 * MIN, TrendValidationConfig())
    store = DuckDBStore(tmp_path / "state.duckdb")
    try:
        repo = PredictionRepository(store)
        assert store_outcomes(repo, [v.outcome for v in verdicts]) == 3
        assert stored_samples(repo, 26 * MIN - 1) == []
        assert stored_samples(repo, 26 * MIN) == [v.sample() for v in sorted(verdicts, key=lambda v: v.outcome.label.target)]
    finally:
        store.close()
