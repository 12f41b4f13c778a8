"""Technical indicators from the maintained ``ta`` library, computed causally on a candle window.

Every indicator value at bar i depends only on bars <= i of the window it is computed on (``ta`` uses
trailing rolling windows and recursive EMAs with ``adjust=False``), so computing on a closed window never
looks ahead. EMAs depend on where the window starts: the assembler computes on the window plus its pivot
warm-up bars and keeps the tail, so the first bars of the window already have warmed-up values.
Warm-up values are NaN (``fillna=False``). ATR uses the project's numba ``wilder_atr`` (the recurrence of ``ta``'s
``AverageTrueRange``, equal to it in the tests) because ``ta``'s version loops in Python over pandas ``iloc``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands

from pivotal.data.candles import Candles
from pivotal.features.volatility import wilder_atr

INDICATORS: tuple[str, ...] = (
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_diff",
    "bb_upper",
    "bb_lower",
    "bb_pband",
    "atr_14",
    "ema_12",
    "ema_26",
)
ATR_WINDOW = 14


def compute_indicators(candles: Candles) -> dict[str, np.ndarray]:
    """All of ``INDICATORS`` for ``candles``: float64 arrays of ``len(candles)``, NaN during warm-up."""
    n = len(candles)
    if n == 0:
        return {name: np.empty(0) for name in INDICATORS}
    close = pd.Series(candles.close, copy=False)
    macd = MACD(close, window_slow=26, window_fast=12, window_sign=9)
    bands = BollingerBands(close, window=20, window_dev=2)
    out = {
        "rsi_14": RSIIndicator(close, window=14).rsi(),
        "macd": macd.macd(),
        "macd_signal": macd.macd_signal(),
        "macd_diff": macd.macd_diff(),
        "bb_upper": bands.bollinger_hband(),
        "bb_lower": bands.bollinger_lband(),
        "bb_pband": bands.bollinger_pband(),
        "ema_12": EMAIndicator(close, window=12).ema_indicator(),
        "ema_26": EMAIndicator(close, window=26).ema_indicator(),
    }
    arrays = {name: series.to_numpy(np.float64, copy=True) for name, series in out.items()}
    arrays["atr_14"] = wilder_atr(candles.high, candles.low, candles.close, ATR_WINDOW)
    return {name: arrays[name] for name in INDICATORS}


def ta_atr(candles: Candles) -> np.ndarray:
    """ATR(14) from ``ta`` itself (a per-bar Python loop, ~20 ms per 500 bars); the reference ``compute_indicators``
    matches (tested) with the project's numba ``wilder_atr``, which is the same recurrence."""
    series = [pd.Series(a, copy=False) for a in (candles.high, candles.low, candles.close)]
    if len(candles) < ATR_WINDOW:
        return np.full(len(candles), np.nan)  # ta indexes bar window-1 and fails on shorter series
    atr = AverageTrueRange(*series, window=ATR_WINDOW).average_true_range().to_numpy(np.float64, copy=True)
    atr[: ATR_WINDOW - 1] = np.nan  # ta writes 0 during warm-up
    return atr


def tail(indicators: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The last ``n`` values of every indicator (after computing on window + warm-up)."""
    return {name: values[len(values) - n :] if n else values[:0] for name, values in indicators.items()}
