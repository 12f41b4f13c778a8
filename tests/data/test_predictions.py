"""Inference history: ``PredictionRepository`` (state table ``predictions``) and ``models.output_store.InferenceHistory``
on both backends (the PostgreSQL cases carry the ``postgres`` marker through the ``store`` fixture)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.core.vocabulary import ActionName
from pivotal.data.candles import Candles
from pivotal.data.state import predictions
from pivotal.data.state.migrations import SchemaError, migrate, table_exists
from pivotal.data.state.predictions import PredictionFilter, PredictionRepository, PredictionRow, RetentionPolicy
from pivotal.data.store import MarketStore
from pivotal.features.input_spec import PRESETS, InputSpec, WindowSpec
from pivotal.models.io import BaseDataInput, ModelOutput, PivotPrediction
from pivotal.models.output_store import (
    InferenceHistory,
    InputRef,
    OutputStore,
    PredictionContext,
    input_hash,
    input_reference,
    spec_id,
)

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01
HASH = "ab" * 32


def _output(name: str = "cnn", symbol: str = "BTC/USDT", ts: int = T0, action: ActionName = "BUY") -> ModelOutput:
    probs = {"BUY": 0.6, "SELL": 0.3, "HOLD": 0.1}
    pivots = (PivotPrediction(2, "H", 0.01, 7.0, 0.5),)
    return ModelOutput("cnn", name, symbol, ts, 0.6, action, probs, 0.3, 0.4, pivots, metadata={"n": 1})


def _context(version: str = "v1", tf: str = "1m", as_of: int = T0) -> PredictionContext:
    return PredictionContext(version, tf, InputRef("minute", as_of, HASH))


def _history(store: MarketStore, **kw: Any) -> InferenceHistory:
    return InferenceHistory(store, clock=SimulatedClock(T0 + 5), **kw)


def test_round_trip_and_first_write_wins(store: MarketStore) -> None:
    history = _history(store)
    out = _output()
    assert history.record(out, _context())
    assert not history.record(dataclasses.replace(out, action="SELL"), _context())  # same key: ignored
    assert history.record(out, _context(version="v2"))  # another checkpoint version: its own prediction
    got = history.get("cnn", "v1", "BTC/USDT", "1m", T0)
    assert got is not None
    assert got.output == out and got.output.action == "BUY"
    assert (got.model_version, got.timeframe, got.input, got.recorded_ms) == ("v1", "1m", InputRef("minute", T0, HASH), T0 + 5)
    assert [p.model_version for p in history.query(model_name="cnn")] == ["v1", "v2"]


def test_query_by_symbol_timeframe_model_and_time(store: MarketStore) -> None:
    history = _history(store)
    items = [
        (_output(name, sym, T0 + i * 60_000), _context(tf=tf, as_of=T0 + i * 60_000))
        for i in range(5)
        for name in ("cnn", "dqn")
        for sym in ("BTC/USDT", "ETH/USDT")
        for tf in ("1m", "1h")
    ]
    assert history.record_many(items) == 40
    assert history.record_many(items[:3]) == 0
    hits = history.query(model_name="dqn", symbol="ETH/USDT", timeframe="1h", start=T0 + 60_000, end=T0 + 240_000)
    assert [(p.model_name, p.symbol, p.timeframe, p.as_of) for p in hits] == [
        ("dqn", "ETH/USDT", "1h", T0 + i * 60_000) for i in (1, 2, 3)
    ]
    assert [p.as_of for p in history.query(symbol="BTC/USDT", model_name="cnn", timeframe="1m", limit=2)] == [
        T0 + 180_000,
        T0 + 240_000,
    ]
    [stats] = history.stats(PredictionFilter("cnn", symbol="BTC/USDT", timeframe="1m"))
    assert (stats.count, stats.first_as_of, stats.last_as_of, stats.buy, stats.sell, stats.hold) == (5, T0, T0 + 240_000, 5, 0, 0)
    assert stats.mean_confidence == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_version": ""}, "model_version"),
        ({"timeframe": "7x"}, "timeframe"),
        ({"as_of": -1}, "as_of"),
        ({"input_hash": "nothex"}, "input_hash"),
        ({"input_as_of": T0 + 1}, "input_as_of"),
        ({"action": "BUYY"}, "action"),
        ({"confidence": float("nan")}, "confidence"),
        ({"direction_vector": -1.5}, "direction_vector"),
        ({"payload": "{not json"}, "payload"),
    ],
)
def test_bad_rows_are_refused_with_one_line_naming_the_field(store: MarketStore, change: dict, field: str) -> None:
    history = _history(store)
    row = dataclasses.replace(history.row(_output(), _context()), **change)
    with pytest.raises(UserInputError) as err:
        history.rows.add(row)
    message = str(err.value)
    assert f"prediction {field} " in message and "\n" not in message
    assert history.rows.count() == 0


def test_add_many_writes_nothing_when_one_row_is_bad(store: MarketStore) -> None:
    history = _history(store)
    good = history.row(_output(), _context())
    bad = dataclasses.replace(good, as_of=T0 + 1, input_hash="x")
    with pytest.raises(UserInputError, match="input_hash"):
        history.rows.add_many([good, bad])
    assert history.rows.count() == 0


def test_retention_deletes_by_as_of_time(store: MarketStore) -> None:
    history = _history(store, retention=RetentionPolicy(max_age_days=2))
    history.record_many([(_output(ts=T0 + d * DAY), _context(as_of=T0 + d * DAY)) for d in range(5)])
    assert history.apply_retention(now_ms=T0 + 4 * DAY) == 2  # days 0 and 1 are older than 2 days
    assert [p.as_of for p in history.query()] == [T0 + d * DAY for d in (2, 3, 4)]
    assert history.apply_retention(now_ms=T0 + 4 * DAY) == 0
    assert InferenceHistory(store, clock=SimulatedClock(T0)).apply_retention() == 0  # default: keep everything
    with pytest.raises(UserInputError, match="max_age_days"):
        RetentionPolicy(0)


def test_schema_is_versioned_and_a_newer_one_is_refused(store: MarketStore) -> None:
    PredictionRepository(store)
    assert dict(store.query("SELECT repository, version FROM schema_versions"))["predictions"] == 2
    store.execute("UPDATE schema_versions SET version = 9 WHERE repository = 'predictions'")
    with pytest.raises(SchemaError, match="newer than this pivotal understands"):
        migrate(store, predictions.SCHEMA)


def test_output_store_records_into_the_history_when_given_a_context(store: MarketStore) -> None:
    history = _history(store)
    outputs = OutputStore(store, history=history)
    assert outputs.add(_output(ts=T0), _context(as_of=T0))
    assert outputs.add(_output(ts=T0 + 60_000))  # no context: output store only
    assert not outputs.add(_output(ts=T0), _context(as_of=T0))  # duplicate: nothing anywhere
    assert [p.as_of for p in history.query()] == [T0]
    assert len(outputs.query()) == 2
    with pytest.raises(UserInputError, match="input_as_of"):  # a bad context: refused before anything is written
        outputs.add(_output(ts=T0 + 120_000), _context(as_of=T0 + 999_999))
    assert len(outputs.query()) == 2


def _input(close_last: float = 101.0) -> BaseDataInput:
    ts = np.arange(3, dtype=np.int64) * 60_000 + T0
    close = np.array([100.0, 100.5, close_last])
    candles = Candles(ts, close, close + 1, close - 1, close, np.ones(3), "binance", "BTC/USDT", "1m")
    return BaseDataInput("BTC/USDT", T0 + 180_000, {("BTC/USDT", "1m"): candles}, microstructure={"imbalance": 0.25})


def test_input_reference_hashes_the_arrays_and_names_the_spec() -> None:
    a, b = _input(), _input()
    assert input_hash(a) == input_hash(b) and len(input_hash(a)) == 64
    assert input_hash(_input(close_last=101.0000001)) != input_hash(a)  # one price changed: another input
    assert input_hash(dataclasses.replace(a, microstructure={"imbalance": 0.5})) != input_hash(a)
    assert spec_id(PRESETS["minute"]) == "minute"
    custom = InputSpec((WindowSpec("1m", 60),))
    assert spec_id(custom) == spec_id(InputSpec((WindowSpec("1m", 60),))) != spec_id(InputSpec((WindowSpec("1m", 61),)))
    assert spec_id(custom).startswith("spec-")
    ref = input_reference(a, custom)
    assert ref == InputRef(spec_id(custom), T0 + 180_000, input_hash(a))


def test_a_version_1_store_is_migrated_to_2_keeping_its_predictions(store: MarketStore) -> None:
    migrate(store, predictions.Schema("predictions", predictions.SCHEMA.migrations[:1]))  # as the first release left it
    row = PredictionRow(
        "cnn", "v1", "BTC/USDT", "1m", T0, "minute", T0, HASH, "cnn", "BUY", 0.6, 0.3, 0.4, _output().to_json(), T0
    )
    store.execute(f"INSERT INTO predictions VALUES ({', '.join('?' * 15)})", dataclasses.astuple(row))
    assert not table_exists(store, "prediction_outcomes")
    repo = PredictionRepository(store)
    assert dict(store.query("SELECT repository, version FROM schema_versions"))["predictions"] == 2
    assert repo.query() == [row] and repo.outcomes() == []


def test_the_input_reference_rebuilds_the_same_input_from_spec_and_as_of(shared_data: Path) -> None:
    """The point of storing (spec, as-of, hash) instead of the tensor: the input is rebuilt from the store later, and
    the hash says whether it is the one the model saw. Real BTC/USDT 1m; rebuilt from a longer series it is equal."""
    from pivotal.features.assemble import build_input_from_series, prepare_series

    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet").iloc[:2000]
    spec = InputSpec((WindowSpec("1m", 120),), min_bars=100)
    t = int(frame.timestamp.iloc[1500]) + 60_000  # as of the close of bar 1500
    at_the_time = Candles.from_frame(frame.iloc[:1501], "binance", "BTC/USDT", "1m")
    later = Candles.from_frame(frame, "binance", "BTC/USDT", "1m")  # the store a day later holds more bars
    refs = [
        input_reference(
            build_input_from_series(prepare_series({("BTC/USDT", "1m"): c}, spec.pivot_params), "BTC/USDT", t, spec), spec
        )
        for c in (at_the_time, later)
    ]
    assert refs[0] == refs[1] and refs[0].as_of == t
    repaired = later.close.copy()
    repaired[1450] += 0.01  # a bar inside the window corrected afterwards: the reference no longer matches
    fixed = dataclasses.replace(later, close=repaired)
    again = build_input_from_series(prepare_series({("BTC/USDT", "1m"): fixed}, spec.pivot_params), "BTC/USDT", t, spec)
    assert input_reference(again, spec).digest != refs[0].digest


def test_buffered_history_validates_at_once_and_writes_in_batches(store: MarketStore) -> None:
    history = _history(store, flush_every=3)
    assert history.record(_output(ts=T0), _context(as_of=T0))
    assert not history.record(_output(ts=T0), _context(as_of=T0))  # already queued
    assert history.record(_output(ts=T0 + 1), _context(as_of=T0 + 1))
    assert history.rows.count() == 0  # still buffered
    with pytest.raises(UserInputError, match="prediction input_as_of"):  # refused when recorded, not at flush
        history.record(_output(ts=T0 + 2), _context(as_of=T0 + 3))
    assert history.record(_output(ts=T0 + 2), _context(as_of=T0 + 2))  # the third: written together
    assert history.rows.count() == 3
    assert history.record(_output(ts=T0 + 9), _context(as_of=T0 + 9))
    assert [p.as_of for p in history.query()] == [T0, T0 + 1, T0 + 2, T0 + 9]  # a read flushes first
    with pytest.raises(ValueError, match="flush_every"):
        _history(store, flush_every=0)
