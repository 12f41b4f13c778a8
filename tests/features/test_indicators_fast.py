"""The numba ``compute_indicators`` equals the ``ta`` library (``ta_indicators``, the reference oracle) exactly.

Same NaN warm-up, same values (bit for bit: the kernels port pandas' ``ewm``/``rolling`` algorithms step for step),
including the 0/0 cases of constant runs (RSI 100, %B NaN), on real Binance bars and on random positive series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.data.candles import Candles
from pivotal.features.indicators import INDICATORS, compute_indicators, ta_indicators
from pivotal.features.volatility import ewm_mean, pandas_ewm_alpha, rolling_mean, rolling_std


def max_rel_diff_to_ta(candles: Candles) -> float:
    """Asserts names, dtypes, lengths and NaN positions equal ``ta``'s and values within 1e-9 relative; returns the
    largest relative difference seen."""
    fast, ref = compute_indicators(candles), ta_indicators(candles)
    assert tuple(fast) == INDICATORS == tuple(ref)
    worst = 0.0
    for name in INDICATORS:
        a, b = fast[name], ref[name]
        assert a.dtype == np.float64 and a.shape == (len(candles),), name
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        ok = ~np.isnan(b)
        scale = np.maximum(np.abs(b[ok]), np.finfo(np.float64).tiny)
        rel = float(np.max(np.abs(a[ok] - b[ok]) / scale)) if ok.any() else 0.0
        assert rel <= 1e-9, (name, rel)
        worst = max(worst, rel)
    return worst


def candles_from_close(close: np.ndarray) -> Candles:
    n = len(close)
    return Candles(np.arange(n, dtype=np.int64) * 60_000, close, close * 1.001, close * 0.999, close, np.ones(n))


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("BTCUSDT-1m-2024.parquet", slice(0, 5000)),
        ("BTCUSDT-1h.parquet", slice(None)),
        ("ETHUSDT-1h-2018-2026.parquet", slice(-5000, None)),
    ],
)
def test_real_bars_equal_ta_bit_for_bit(shared_data: Path, name: str, rows: slice) -> None:
    frame = pd.read_parquet(shared_data / "binance" / name).iloc[rows]
    candles = Candles.from_frame(frame)
    assert len(candles) >= 600
    assert max_rel_diff_to_ta(candles) == 0.0  # measured: identical bits, not just within 1e-9
    out = compute_indicators(candles)
    first_valid = {"rsi_14": 13, "macd": 25, "macd_signal": 33, "macd_diff": 33, "bb_upper": 19, "bb_lower": 19}
    first_valid |= {"bb_pband": 19, "atr_14": 13, "ema_12": 11, "ema_26": 25}
    for indicator, k in first_valid.items():
        assert np.isnan(out[indicator][:k]).all() and np.isfinite(out[indicator][k:]).all(), indicator


# positive prices in runs of equal values: constant windows make RSI 0/0 (ta: 100) and %B 0/0 (ta: NaN)
runs = st.lists(
    st.tuples(st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False), st.integers(1, 40)),
    min_size=0,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(runs)
def test_random_positive_series_with_constant_runs_equal_ta(segments: list[tuple[float, int]]) -> None:
    close = np.repeat([p for p, _ in segments], [k for _, k in segments]).astype(np.float64)
    candles = candles_from_close(close)
    fast, ref = compute_indicators(candles), ta_indicators(candles)
    for name in INDICATORS:
        assert np.array_equal(fast[name], ref[name], equal_nan=True), name


def test_constant_series_follow_ta_zero_over_zero_rules() -> None:
    close = np.full(40, 123.25)
    out = compute_indicators(candles_from_close(close))
    assert np.isnan(out["rsi_14"][:13]).all() and (out["rsi_14"][13:] == 100.0).all()  # no losses, no gains: 100
    assert np.isnan(out["bb_pband"]).all()  # bands coincide: %B undefined
    assert (out["bb_upper"][19:] == 123.25).all() and (out["bb_lower"][19:] == 123.25).all()
    assert (out["ema_12"][11:] == 123.25).all() and (out["macd"][25:] == 0.0).all() and (out["macd_diff"][33:] == 0.0).all()
    # one step down after the flat run: RSI 0, %B below the middle (exact values from ta's formulas)
    stepped = compute_indicators(candles_from_close(np.append(close, 120.0)))
    assert stepped["rsi_14"][-1] == 0.0
    assert stepped["bb_pband"][-1] == ta_indicators(candles_from_close(np.append(close, 120.0)))["bb_pband"][-1] < 0.5


def test_short_and_empty_windows() -> None:
    empty = compute_indicators(Candles.empty())
    assert tuple(empty) == INDICATORS and all(v.dtype == np.float64 and v.shape == (0,) for v in empty.values())
    five = compute_indicators(candles_from_close(np.array([1.0, 2.0, 3.0, 2.0, 1.0])))
    assert all(v.shape == (5,) and np.isnan(v).all() for v in five.values())
    assert max_rel_diff_to_ta(candles_from_close(np.linspace(10.0, 20.0, 30))) == 0.0


# the pandas-exact window kernels themselves, against pandas, with NaNs and negative values too
values = st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan")), st.just(3.0)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(values, st.integers(1, 30), st.integers(0, 1))
def test_window_kernels_equal_pandas(xs: list[float], window: int, ddof: int) -> None:
    x = np.array(xs, dtype=np.float64)
    s = pd.Series(x)
    assert np.array_equal(rolling_mean(x, window), s.rolling(window).mean().to_numpy(), equal_nan=True)
    assert np.array_equal(rolling_mean(x, window, 1), s.rolling(window, min_periods=1).mean().to_numpy(), equal_nan=True)
    assert np.array_equal(rolling_std(x, window, ddof), s.rolling(window).std(ddof=ddof).to_numpy(), equal_nan=True)
    expected = s.ewm(span=window, min_periods=window, adjust=False).mean().to_numpy()
    assert np.array_equal(ewm_mean(x, span=window, min_periods=window), expected, equal_nan=True)
    expected = s.ewm(alpha=1 / window, adjust=False).mean().to_numpy()
    assert np.array_equal(ewm_mean(x, alpha=1 / window), expected, equal_nan=True)


def test_window_kernel_argument_errors() -> None:
    assert pandas_ewm_alpha(span=12) == 1 / 6.5
    with pytest.raises(ValueError, match="pass exactly one of span, alpha"):
        pandas_ewm_alpha(span=3, alpha=0.5)
    with pytest.raises(ValueError, match=r"EMA alpha must be in \(0, 1\] \(got 0.0\)"):
        ewm_mean(np.ones(3), alpha=0.0)
    with pytest.raises(ValueError, match=r"EMA span must be >= 1 \(got 0\)"):
        ewm_mean(np.ones(3), span=0)
    with pytest.raises(ValueError, match=r"rolling window must be >= 1 \(got 0\)"):
        rolling_std(np.ones(3), 0)
    with pytest.raises(ValueError, match=r"rolling window must be >= 1 \(got 0\)"):
        rolling_mean(np.ones(3), 0)


@settings(max_examples=100, deadline=None)
@given(runs, st.lists(st.integers(1, 60), min_size=1, max_size=20))
def test_a_stream_extended_in_any_chunks_equals_ta_on_every_prefix(segments: list[tuple[float, int]], steps: list[int]) -> None:
    """``IndicatorStream`` continues each recurrence from its saved state: after every update, equal bit for bit to
    the ``ta`` library on the same prefix (and therefore to a recomputation), whatever the chunking."""
    from pivotal.features.indicator_stream import IndicatorStream

    close = np.repeat([p for p, _ in segments], [k for _, k in segments]).astype(np.float64)
    candles = candles_from_close(close)
    stream = IndicatorStream(capacity=8)  # small: the buffers grow several times
    n = 0
    for step in [*steps, len(close)]:
        n = min(len(close), n + step)
        got = stream.update(candles.high[:n], candles.low[:n], candles.close[:n])
        ref = ta_indicators(candles.slice(0, n))
        for name in INDICATORS:
            assert np.array_equal(got[name], ref[name], equal_nan=True), (n, name)


def test_a_stream_on_real_bars_keeps_what_it_handed_out_and_refuses_a_shrinking_series(shared_data: Path) -> None:
    from pivotal.features.indicator_stream import IndicatorStream

    candles = Candles.from_frame(pd.read_parquet(shared_data / "binance" / "BTCUSDT-1m-2024.parquet").iloc[:3000])
    stream = IndicatorStream(capacity=16)
    early = stream.update(candles.high[:700], candles.low[:700], candles.close[:700])
    kept = {name: values.copy() for name, values in early.items()}
    for n in range(701, 3001, 37):
        stream.update(candles.high[:n], candles.low[:n], candles.close[:n])
    last = stream.update(candles.high, candles.low, candles.close)
    ref = ta_indicators(candles)
    for name in INDICATORS:
        assert np.array_equal(early[name], kept[name], equal_nan=True)  # unchanged by later growth
        assert np.array_equal(last[name], ref[name], equal_nan=True)
    with pytest.raises(ValueError, match="read-only"):
        last["rsi_14"][0] = 1.0
    with pytest.raises(ValueError, match="the series shrank from 3000 to 10 bars"):
        stream.update(candles.high[:10], candles.low[:10], candles.close[:10])
