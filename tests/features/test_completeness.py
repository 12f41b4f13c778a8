"""Completeness validation: exact scores, refusals with reasons, structural errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.features.completeness import InputNotReady, check_completeness
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.features.model_io import BaseDataInput, ShapeError

MINUTE = 60_000
SPEC = InputSpec((WindowSpec("1m", 300), WindowSpec("1m", 300, "BTC/USDT")))


@pytest.fixture(scope="module")
def eth(shared_data: Path) -> Candles:
    frame = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1m-2025.parquet").iloc[:400]
    return Candles.from_frame(frame, "binance", "ETH/USDT", "1m")


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> Candles:
    frame = pd.read_parquet(shared_data / "binance" / "BTCUSDT-1m-2025.parquet").iloc[:400]
    return Candles.from_frame(frame, "binance", "BTC/USDT", "1m")


def take(candles: Candles, keep: np.ndarray) -> Candles:
    return Candles(
        *(getattr(candles, f)[keep] for f in ("ts", "open", "high", "low", "close", "volume")), "binance", candles.symbol, "1m"
    )


def make_input(eth: Candles, btc: Candles | None, t: int, **kw: object) -> BaseDataInput:
    ohlcv = {("ETH/USDT", "1m"): eth}
    if btc is not None:
        ohlcv[("BTC/USDT", "1m")] = btc
    return BaseDataInput("ETH/USDT", t, ohlcv, **kw)  # type: ignore[arg-type]


def window(candles: Candles, stop: int, n: int = 300) -> Candles:
    return candles.slice(stop - n, stop)


def test_complete_input_scores_one(eth: Candles, btc: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE
    report = check_completeness(make_input(window(eth, 400), window(btc, 400), t), SPEC)
    assert report.score == 1.0 and report.ready and report.missing == ()
    assert report.parts == {"ETH/USDT 1m": 1.0, "BTC/USDT 1m": 1.0}
    report.require_ready()


def test_gaps_lower_the_score_exactly(eth: Candles, btc: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE
    keep = np.ones(300, bool)
    keep[100:160] = False  # 60 of 300 bars missing
    report = check_completeness(make_input(take(window(eth, 400), keep), window(btc, 400), t), SPEC)
    assert report.parts["ETH/USDT 1m"] == 0.8
    assert report.score == pytest.approx(0.9) and report.ready
    assert report.missing == ("ETH/USDT 1m: 240/300 bars (60 missing)",)


def test_stale_data_counts_as_missing(eth: Candles, btc: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE + 150 * MINUTE  # the newest 150 minutes never arrived
    report = check_completeness(make_input(window(eth, 400), window(btc, 400), t), SPEC)
    assert report.parts == {"ETH/USDT 1m": 0.5, "BTC/USDT 1m": 0.5}
    assert not report.ready
    assert report.reason.startswith("not ready: completeness 0.500 < threshold 0.800; ETH/USDT 1m: 150/300 bars")


def test_missing_window_is_refused_with_a_clear_reason(eth: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE
    report = check_completeness(make_input(window(eth, 400), None, t), SPEC)
    assert report.score == 0.5 and not report.ready
    assert "BTC/USDT 1m: 0 bars < minimum 100" in report.reason
    with pytest.raises(InputNotReady, match=r"completeness 0\.500 < threshold 0\.800"):
        report.require_ready()
    assert check_completeness(make_input(window(eth, 400), None, t), SPEC.with_threshold(0.5)).ready is False  # too short


def test_min_bars_applies_even_above_the_threshold(eth: Candles) -> None:
    spec = InputSpec((WindowSpec("1m", 120),), min_bars=100)
    t = int(eth.ts[399]) + MINUTE
    report = check_completeness(make_input(window(eth, 400, 99), None, t), spec)
    assert report.score == pytest.approx(99 / 120) and report.score >= 0.8
    assert not report.ready and report.reason == "not ready: ETH/USDT 1m: 99 bars < minimum 100"


def test_order_book_counts_when_required(eth: Candles, btc: Candles) -> None:
    spec = InputSpec(SPEC.windows, require_order_book=True)
    t = int(eth.ts[399]) + MINUTE
    report = check_completeness(make_input(window(eth, 400), window(btc, 400), t), spec)
    assert report.score == pytest.approx(2 / 3) and "order_book: absent" in report.missing
    with_book = make_input(window(eth, 400), window(btc, 400), t, order_book=np.zeros(8, np.float32))
    assert check_completeness(with_book, spec).score == 1.0


def test_look_ahead_bar_is_an_error_not_incompleteness(eth: Candles, btc: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE - 1  # bar 399 closes 1 ms after t
    with pytest.raises(ValueError, match=r"closes after t=.*\(look-ahead\)"):
        check_completeness(make_input(window(eth, 400), window(btc, 400), t), SPEC)


def test_wrong_shapes_state_expected_and_actual(eth: Candles, btc: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE
    with pytest.raises(ShapeError, match=r"window \('ETH/USDT', '1m'\): expected at most 300 bars, got 301"):
        check_completeness(make_input(window(eth, 400, 301), window(btc, 400), t), SPEC)
    bad = {("ETH/USDT", "1m"): {"rsi_14": np.zeros(299)}}
    with pytest.raises(ShapeError, match=r"indicator rsi_14 of \('ETH/USDT', '1m'\): expected 300 values, got 299"):
        check_completeness(make_input(window(eth, 400), window(btc, 400), t, indicators=bad), SPEC)


def test_an_empty_window_without_timeframe_scores_zero(eth: Candles) -> None:
    t = int(eth.ts[399]) + MINUTE
    report = check_completeness(make_input(window(eth, 400), Candles.empty(), t), SPEC)
    assert report.parts["BTC/USDT 1m"] == 0.0 and "BTC/USDT 1m: 0 bars < minimum 100" in report.reason
