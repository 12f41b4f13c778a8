"""Outcomes persisted in ``prediction_outcomes`` (both backends) and read back as training samples by known time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.errors import UserInputError
from pivotal.data.candles import Candles
from pivotal.data.state.predictions import PredictionFilter, PredictionRepository
from pivotal.data.store import MarketStore
from pivotal.models.io import ModelOutput, PivotPrediction
from pivotal.models.output_store import InferenceHistory, InputRef, Prediction, PredictionContext
from pivotal.structure.types import PivotParams
from pivotal.training.outcomes import (
    Outcome,
    OutcomeRecorder,
    outcome_row,
    resolve_all,
    resolve_horizons,
    store_outcomes,
    stored_samples,
)

MIN = 60_000
T0 = 1_709_251_200_000  # 2024-03-01
HASH = "12" * 32


def _prediction(as_of: int) -> Prediction:
    probs = {"BUY": 0.5, "SELL": 0.25, "HOLD": 0.25}
    out = ModelOutput("cnn", "cnn", "BTC/USDT", as_of, 0.5, "BUY", probs, 0.25, 0.25)
    return Prediction(out, "v3", "1m", InputRef("single-1m", as_of, HASH), 0)


def test_outcomes_round_trip_and_become_samples_only_once_known(store: MarketStore) -> None:
    close_ts = np.arange(1, 21) * MIN
    close = 100.0 + np.arange(20) % 3  # hand-written prices: 100, 101, 102, 100, ...
    preds = [_prediction(i * MIN) for i in (1, 2)]
    history = InferenceHistory(store)
    history.record_many([(p.output, PredictionContext(p.model_version, p.timeframe, p.input)) for p in preds])
    outcomes = resolve_horizons(preds, close_ts, close, horizons=(MIN, 5 * MIN))
    assert [(o.as_of // MIN, o.label.target, o.known_at // MIN) for o in outcomes] == [
        (1, "return_1m", 2), (2, "return_1m", 3), (1, "return_5m", 6), (2, "return_5m", 7),
    ]  # fmt: skip
    repo = history.rows
    assert store_outcomes(repo, outcomes) == 4 and store_outcomes(repo, outcomes) == 0
    assert repo.outcomes() == sorted((outcome_row(o) for o in outcomes), key=lambda r: (r.known_at, r.as_of, r.target))
    samples = stored_samples(repo, now_ms=6 * MIN)
    assert [(s.label.target, s.label.known_at) for s in samples] == [
        ("return_1m", 2 * MIN),
        ("return_1m", 3 * MIN),
        ("return_5m", 6 * MIN),
    ]
    assert samples[0].input == InputRef("single-1m", MIN, HASH) and samples[0].label.value == pytest.approx(np.log(101 / 100))
    assert (
        stored_samples(repo, now_ms=10 * MIN, target="return_5m", where=PredictionFilter(start=2 * MIN))[0].label.known_at
        == 7 * MIN
    )
    assert repo.prune(2 * MIN) == 1  # the first prediction and its outcomes go
    assert [r.as_of for r in repo.outcomes()] == [2 * MIN, 2 * MIN]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"known_at": MIN - 1}, "known_at"),
        ({"target": ""}, "target"),
        ({"value": float("inf")}, "value"),
        ({"direction": 2}, "direction"),
    ],
)
def test_bad_outcomes_are_refused_naming_the_field(store: MarketStore, change: dict, field: str) -> None:
    [o] = resolve_horizons([_prediction(MIN)], np.array([MIN, 2 * MIN]), np.array([1.0, 2.0]), (MIN,))
    repo = PredictionRepository(store)
    with pytest.raises(UserInputError, match=f"^outcome {field} "):
        repo.add_outcomes([outcome_row(o), dataclasses.replace(outcome_row(o), as_of=MIN - 1, **change)])
    assert repo.outcomes() == []


def test_the_recorder_stores_what_each_bar_makes_known_as_the_batch_does(store: MarketStore, shared_data: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet")
    day = frame[(frame.timestamp >= T0) & (frame.timestamp < T0 + 6 * 3_600_000)]  # six hours of real BTC/USDT 1m
    candles = Candles.from_frame(day, "binance", "BTC/USDT", "1m")
    history = InferenceHistory(store, flush_every=50)
    recorder = OutcomeRecorder(history, "BTC/USDT", "1m", params=PivotParams(levels=3))
    made: list[Prediction] = []
    live: list[Outcome] = []
    for i, (ts, o, h, lo, c) in enumerate(day[["timestamp", "open", "high", "low", "close"]].itertuples(index=False)):
        live += recorder.on_bar(int(ts), o, h, lo, c)
        assert all(x.known_at <= int(ts) + MIN for x in live)  # nothing known before the bar that makes it known
        if i % 5 == 0:  # a prediction at this bar's close
            as_of = int(ts) + MIN
            pivots = (PivotPrediction(2, "H" if i % 2 else "L", 0.001, 5.0, 0.5),)
            out = dataclasses.replace(_prediction(as_of).output, pivots=pivots)
            made.append(recorder.on_prediction(out, PredictionContext("v3", "1m", InputRef("single-1m", as_of, HASH))))
    batch = resolve_all(made, candles, params=PivotParams(levels=3))
    assert live == batch and recorder.stored == len(batch) > 300
    assert stored_samples(history.rows, now_ms=T0 + 10 * 86_400_000) == [o.sample() for o in batch]
    assert len(history.query()) == len(made)
    with pytest.raises(ValueError, match="tracks 1m predictions"):
        recorder.on_prediction(out, PredictionContext("v3", "1h", InputRef("single-1m", as_of, HASH)))
