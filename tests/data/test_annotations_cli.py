"""`pivotal annotations list|export` over the default (DuckDB) store, and ``services.annotations.trendline_verdicts``
judging stored predictions against the trend lines of stored real candles (Binance BTC/USDT 1m)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.core.clock import SimulatedClock
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.state.annotations import Annotation, AnnotationFilter, AnnotationRepository
from pivotal.data.state.predictions import PredictionFilter
from pivotal.models.output_store import InferenceHistory, PredictionContext
from pivotal.services.annotations import trendline_verdicts
from pivotal.training.trendline_validation import accuracy, validate_trendlines
from tests.training.test_trendline_validation import baseline_predictions

runner = CliRunner()
T0 = 1_709_251_200_000
MIN = 60_000


@pytest.fixture
def stored() -> None:
    store = open_store()
    try:
        repo = AnnotationRepository(store, SimulatedClock(T0))
        trend = [
            Annotation(
                f"tl-{i}", "trendline", "BTC/USDT", "1m", T0 + i * MIN, 61_000.0 + i, T0 + (i + 9) * MIN, 61_100.0,
                "LONG", "refuted" if i % 2 else "validated", "cnn", "v1", T0 + (i + 11) * MIN, f"note {i}",
                ("L2H", "direction"), {"predicted": -0.2},
            )
            for i in range(4)
        ]  # fmt: skip
        manual = Annotation("m-1", "manual", "ETH/USDT", "1h", T0, 3_400.0, notes="range top", tags=("range",))
        repo.create_many([*trend, manual])
    finally:
        store.close()


def _invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("stored")
def test_list_filters_and_prints_json() -> None:
    rows = json.loads(_invoke(["annotations", "list", "--source", "trendline", "--verdict", "refuted", "--json"]))
    assert [(r["id"], r["verdict"], r["tags"]) for r in rows] == [
        ("tl-1", "refuted", ["L2H", "direction"]),
        ("tl-3", "refuted", ["L2H", "direction"]),
    ]
    assert [r["id"] for r in json.loads(_invoke(["annotations", "list", "--tag", "range", "--json"]))] == ["m-1"]
    assert [r["id"] for r in json.loads(_invoke(["annotations", "list", "--limit", "2", "--json"]))] == ["tl-2", "tl-3"]
    table = _invoke(["annotations", "list", "--symbol", "ETH/USDT"])
    assert "m-1" in table and "range top" in table


@pytest.mark.usefixtures("stored")
def test_export_json_and_csv(tmp_path: Path) -> None:
    exported = json.loads(_invoke(["annotations", "export", "--model", "cnn"]))
    assert [a["id"] for a in exported] == ["tl-0", "tl-1", "tl-2", "tl-3"]
    target = tmp_path / "annotations.csv"
    assert "wrote 5 annotation(s)" in _invoke(["annotations", "export", "--format", "csv", "--out", str(target)])
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["id"] for r in rows] == ["m-1", "tl-0", "tl-1", "tl-2", "tl-3"] and rows[0]["notes"] == "range top"
    assert not (tmp_path / "annotations.csv.partial").exists()


def test_errors_are_one_line() -> None:
    for args, message in (
        (["annotations", "export", "--format", "xml"], "--format 'xml' is not supported; use json or csv"),
        (["annotations", "list", "--verdict", "maybe"], "--verdict 'maybe' is not known; use one of validated, refuted"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_trendline_verdicts_from_stored_predictions_and_real_candles(shared_data: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet")
    frame = frame[(frame.timestamp >= T0) & (frame.timestamp < T0 + 86_400_000)]
    candles = Candles.from_frame(frame, "binance", "BTC/USDT", "1m")
    predictions = baseline_predictions(candles, every=20)
    store = open_store()
    try:
        store.write_candles(candles, source="test slice")
        InferenceHistory(store, clock=SimulatedClock(T0)).record_many(
            [(p.output, PredictionContext(p.model_version, p.timeframe, p.input)) for p in predictions]
        )
    finally:
        store.close()
    settings = load_settings()
    where = PredictionFilter(symbol="BTC/USDT", timeframe="1m")
    expected = validate_trendlines(predictions, candles)
    assert trendline_verdicts(settings, where, exchange="binance", save=True) == accuracy(expected) != {}
    assert trendline_verdicts(settings, PredictionFilter(symbol="BTC/USDT", timeframe="1m", model_name="none")) == {}
    store = open_store()
    try:
        stored = AnnotationRepository(store).query(AnnotationFilter(source="trendline"))
    finally:
        store.close()
    assert sorted(a.id for a in stored) == sorted(v.annotation_id for v in expected)
    rows = json.loads(_invoke(["annotations", "list", "--verdict", "refuted", "--limit", "100000", "--json"]))
    assert len(rows) == sum(not v.validated for v in expected)
