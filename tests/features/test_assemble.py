"""As-of assembly of BaseDataInput from a DuckDB store loaded with real Binance data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.features.assemble import PreparedSeries, build_input, build_input_from_series
from pivotal.features.indicators import INDICATORS, compute_indicators, ta_atr
from pivotal.features.input_spec import PRESETS, InputSpec, WindowSpec, preset
from pivotal.features.model_io import BaseDataInput, ModelOutput
from pivotal.models.output_store import OutputStore
from tests.stores import throwaway_postgres_store

MINUTE, HOUR = 60_000, 3_600_000
SPEC = InputSpec(
    (WindowSpec("1m", 300), WindowSpec("1h", 120), WindowSpec("1m", 300, "BTC/USDT"), WindowSpec("1s", 300, "BTC/USDT"))
)


def load(shared: Path, name: str, symbol: str, tf: str, rows: slice) -> Candles:
    frame = pd.read_parquet(shared / "binance" / name).iloc[rows]
    return Candles.from_frame(frame, "binance", symbol, tf)


@pytest.fixture(scope="module")
def series(shared_data: Path) -> dict[tuple[str, str], Candles]:
    hours = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1h-2018-2026.parquet")
    first = int(np.searchsorted(hours.timestamp.to_numpy(), 1_735_689_600_000)) - 400  # 400 h before 2025-01-01
    return {
        ("ETH/USDT", "1m"): load(shared_data, "ETHUSDT-1m-2025.parquet", "ETH/USDT", "1m", slice(0, 3000)),
        ("BTC/USDT", "1m"): load(shared_data, "BTCUSDT-1m-2025.parquet", "BTC/USDT", "1m", slice(0, 3000)),
        ("ETH/USDT", "1h"): Candles.from_frame(hours.iloc[first : first + 460], "binance", "ETH/USDT", "1h"),
    }


def make_store(path: Path, series: dict[tuple[str, str], Candles], until: int | None = None) -> DuckDBStore:
    store = DuckDBStore(path)
    for candles in series.values():
        n = len(candles) if until is None else int(np.searchsorted(candles.ts + _tf(candles), until, side="right"))
        store.write_candles(candles.slice(0, n), source="shared_data")
    return store


def _tf(candles: Candles) -> int:
    return MINUTE if candles.timeframe == "1m" else HOUR


@pytest.fixture()
def store(tmp_path: Path, series: dict[tuple[str, str], Candles]) -> Iterator[DuckDBStore]:
    s = make_store(tmp_path / "s.duckdb", series)
    yield s
    s.close()


def at(series: dict[tuple[str, str], Candles], bar: int, extra_ms: int = 0) -> int:
    """The close time of ETH 1m bar ``bar`` plus ``extra_ms``."""
    return int(series[("ETH/USDT", "1m")].ts[bar]) + MINUTE + extra_ms


def test_no_candle_closes_after_t(store: DuckDBStore, series: dict[tuple[str, str], Candles]) -> None:
    t = at(series, 1500, extra_ms=59_999)  # one ms before bar 1501 closes
    inp = build_input(store, "binance", "ETH/USDT", t, SPEC)
    minute = inp.window("1m")
    assert len(minute) == 300 and minute.ts[-1] == series[("ETH/USDT", "1m")].ts[1500]
    assert np.array_equal(minute.ts, series[("ETH/USDT", "1m")].ts[1201:1501])
    hour = inp.window("1h")
    assert len(hour) == 120 and hour.ts[-1] + HOUR <= t < hour.ts[-1] + 2 * HOUR
    for key, candles in inp.ohlcv.items():
        assert (candles.ts + _tf(candles) <= t).all(), key
    assert ("BTC/USDT", "1s") not in inp.ohlcv  # not in the store: left out, completeness reports it


def test_a_bar_closing_exactly_at_t_is_included(store: DuckDBStore, series: dict[tuple[str, str], Candles]) -> None:
    t = at(series, 1500)
    assert build_input(store, "binance", "ETH/USDT", t, SPEC).window("1m").ts[-1] == series[("ETH/USDT", "1m")].ts[1500]
    assert build_input(store, "binance", "ETH/USDT", t - 1, SPEC).window("1m").ts[-1] == series[("ETH/USDT", "1m")].ts[1499]


def test_pivots_and_indicators_known_at_t_only(store: DuckDBStore, series: dict[tuple[str, str], Candles]) -> None:
    inp = build_input(store, "binance", "ETH/USDT", at(series, 2000, 30_000), SPEC)
    for key, pivots in inp.pivots.items():
        last = len(inp.ohlcv[key]) - 1
        for arr in (*pivots.highs, *pivots.lows):
            assert (arr.confirmed_at <= last).all() and (arr.index < arr.confirmed_at).all(), key
        assert len(pivots.get(1, "H")) > 10, key
        assert set(inp.indicators[key]) == set(INDICATORS)
        assert all(len(v) == last + 1 for v in inp.indicators[key].values())
    # L1 pivot prices are the window's highs at their (window-relative) index
    minute, l1h = inp.window("1m"), inp.pivots[("ETH/USDT", "1m")].get(1, "H")
    inside = l1h.index >= 0
    assert np.array_equal(minute.high[l1h.index[inside]], l1h.price[inside])


def test_input_is_unchanged_when_later_bars_are_absent(
    tmp_path: Path, store: DuckDBStore, series: dict[tuple[str, str], Candles]
) -> None:
    t = at(series, 1800, 12_345)
    truncated = make_store(tmp_path / "past.duckdb", series, until=t)
    a, b = build_input(store, "binance", "ETH/USDT", t, SPEC), build_input(truncated, "binance", "ETH/USDT", t, SPEC)
    truncated.close()
    assert_same_input(a, b)


def test_store_and_in_memory_paths_agree(store: DuckDBStore, series: dict[tuple[str, str], Candles]) -> None:
    t = at(series, 2500, 1)
    from_store = build_input(store, "binance", "ETH/USDT", t, SPEC)
    prepared = {k: PreparedSeries.build(v, SPEC.pivot_params) for k, v in series.items()}
    in_memory = build_input_from_series(prepared, "ETH/USDT", t, SPEC)
    # one load → prepare → cut for both (issue #8): every pivot of every level and every indicator value is identical
    assert_same_input(from_store, in_memory)


def test_last_predictions_come_from_the_output_store(store: DuckDBStore, series: dict[tuple[str, str], Candles]) -> None:
    t = at(series, 1000)
    outputs = OutputStore(store)
    probs = {"BUY": 0.1, "SELL": 0.1, "HOLD": 0.8}
    outputs.add(ModelOutput("cnn", "cnn_a", "ETH/USDT", t - MINUTE, 0.8, "HOLD", probs))
    outputs.add(ModelOutput("cnn", "cnn_a", "ETH/USDT", t + MINUTE, 0.8, "HOLD", probs))  # after t: invisible
    inp = build_input(store, "binance", "ETH/USDT", t, SPEC, output_store=outputs)
    assert list(inp.last_predictions) == ["cnn_a"] and inp.last_predictions["cnn_a"].timestamp == t - MINUTE


def test_windows_reach_back_over_gaps(tmp_path: Path, series: dict[tuple[str, str], Candles]) -> None:
    minutes = series[("ETH/USDT", "1m")]
    store = DuckDBStore(tmp_path / "gappy.duckdb")
    store.write_candles(minutes.slice(0, 1000))
    store.write_candles(minutes.slice(1900, 2000))  # a 900-minute hole
    spec = InputSpec((WindowSpec("1m", 300),))
    window = build_input(store, "binance", "ETH/USDT", int(minutes.ts[1999]) + MINUTE, spec).window("1m")
    store.close()
    assert len(window) == 300 and window.ts[0] == minutes.ts[800] and window.ts[-1] == minutes.ts[1999]


def assert_same_input(a: BaseDataInput, b: BaseDataInput) -> None:
    assert a.ohlcv.keys() == b.ohlcv.keys()
    for key in a.ohlcv:
        assert a.ohlcv[key].equals(b.ohlcv[key])
        for name in INDICATORS:
            assert np.array_equal(a.indicators[key][name], b.indicators[key][name], equal_nan=True)
        for x, y in zip((*a.pivots[key].highs, *a.pivots[key].lows), (*b.pivots[key].highs, *b.pivots[key].lows), strict=True):
            assert x.as_tuples() == y.as_tuples()


def test_in_memory_inputs_ignore_bars_after_t(series: dict[tuple[str, str], Candles]) -> None:
    """Pivots of a whole series filtered by confirmation equal those of its past (no-repaint); indicators are causal."""
    t = at(series, 2200, 7)
    full = {k: PreparedSeries.build(v, SPEC.pivot_params) for k, v in series.items()}
    past = {}
    for key, candles in series.items():
        n = int(np.searchsorted(candles.ts + _tf(candles), t, side="right"))
        past[key] = PreparedSeries.build(candles.slice(0, n), SPEC.pivot_params)
    assert_same_input(build_input_from_series(full, "ETH/USDT", t, SPEC), build_input_from_series(past, "ETH/USDT", t, SPEC))


def test_indicators_are_causal_and_atr_equals_ta(series: dict[tuple[str, str], Candles]) -> None:
    minutes = series[("ETH/USDT", "1m")].slice(0, 600)
    full, prefix = compute_indicators(minutes), compute_indicators(minutes.slice(0, 400))
    for name in INDICATORS:
        assert np.array_equal(full[name][:400], prefix[name], equal_nan=True), name
    assert np.array_equal(full["atr_14"], ta_atr(minutes), equal_nan=True)
    assert np.isnan(full["atr_14"][:13]).all() and np.isfinite(full["atr_14"][13:]).all()
    short = compute_indicators(minutes.slice(0, 5))
    assert all(len(v) == 5 for v in short.values()) and np.isnan(short["atr_14"]).all()


def test_presets_and_spec_errors() -> None:
    assert preset("minute").keys("ETH/USDT") == [("ETH/USDT", "1m"), ("ETH/USDT", "1h"), ("ETH/USDT", "1d"), ("BTC/USDT", "1m")]
    assert PRESETS["design"].window_len == 300 and PRESETS["design"].base.timeframe == "1s"
    with pytest.raises(ValueError, match="unknown input preset 'nope'; use one of: design, minute"):
        preset("nope")
    with pytest.raises(ValueError, match="duplicate"):
        InputSpec((WindowSpec("1m"), WindowSpec("1m")))
    with pytest.raises(ValueError, match="unknown timeframe '7m'"):
        WindowSpec("7m")
    with pytest.raises(ValueError, match=r"completeness_threshold must be in \[0, 1\]"):
        InputSpec((WindowSpec("1m"),), completeness_threshold=1.5)


@pytest.mark.postgres
def test_postgres_store_gives_the_same_input(store: DuckDBStore, series: dict[tuple[str, str], Candles]) -> None:
    with throwaway_postgres_store() as pg:
        for candles in series.values():
            pg.write_candles(candles, source="shared_data")
        t = at(series, 2345, 999)
        assert_same_input(build_input(pg, "binance", "ETH/USDT", t, SPEC), build_input(store, "binance", "ETH/USDT", t, SPEC))
