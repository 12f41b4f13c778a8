"""Volatility and average features: Wilder ATR, trailing volume mean (excluding the current bar), SMA.

Batch functions take numpy arrays and return float64 arrays with NaN where the value is undefined. The
``*State`` classes compute the same numbers bar by bar for event-driven and live use; both accumulate sums
sequentially in the same order, so batch and incremental values are bit-for-bit identical (spec B.2, parity).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numba import njit


@njit(cache=True)
def _wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    n = high.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    atr = np.nan
    for t in range(n):
        tr = high[t] - low[t]
        if t > 0:
            tr = max(tr, abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        if t < period:
            total += tr
            if t == period - 1:
                atr = total / period
                out[t] = atr
        else:
            atr = (atr * (period - 1) + tr) / period
            out[t] = atr
    return out


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder ATR (spec B.2): ``ATR[p-1] = sum(TR[0..p-1])/p``, then ``(ATR[t-1]*(p-1) + TR[t])/p``; NaN before."""
    if period < 1:
        raise ValueError(f"ATR period must be >= 1 (got {period})")
    return _wilder_atr(_f64(high), _f64(low), _f64(close), period)


@njit(cache=True)
def _trailing_mean(values: np.ndarray, period: int) -> np.ndarray:
    n = values.shape[0]
    out = np.full(n, np.nan)
    for t in range(period, n):
        total = 0.0
        for j in range(t - period, t):  # summed in time order every bar: no drift from a running sum
            total += values[j]
        out[t] = total / period
    return out


def volume_ma(volume: np.ndarray, period: int = 20) -> np.ndarray:
    """``VMA[t]`` = mean of ``volume[t-period .. t-1]``: the current bar is excluded, so a spike cannot mask itself."""
    if period < 1:
        raise ValueError(f"volume MA period must be >= 1 (got {period})")
    return _trailing_mean(_f64(volume), period)


def sma(values: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average including the current bar: ``mean(values[t-period+1 .. t])``; NaN for t < period-1."""
    if period < 1:
        raise ValueError(f"SMA period must be >= 1 (got {period})")
    shifted = _trailing_mean(np.append(_f64(values), 0.0), period)
    return shifted[1:]


def _f64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


class WilderATRState:
    """Incremental Wilder ATR; ``value`` is the ATR after the last ``update`` (NaN during warm-up)."""

    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError(f"ATR period must be >= 1 (got {period})")
        self.period = period
        self.value = float("nan")
        self._count = 0
        self._total = 0.0
        self._prev_close = float("nan")

    def update(self, high: float, low: float, close: float) -> float:
        tr = high - low
        if self._count > 0:
            tr = max(tr, abs(high - self._prev_close), abs(low - self._prev_close))
        if self._count < self.period:
            self._total += tr
            if self._count == self.period - 1:
                self.value = self._total / self.period
        else:
            self.value = (self.value * (self.period - 1) + tr) / self.period
        self._count += 1
        self._prev_close = close
        return self.value


class TrailingMeanState:
    """Mean of the last ``period`` values pushed so far, *before* the value about to arrive (NaN until full)."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1 (got {period})")
        self.period = period
        self._window: deque[float] = deque(maxlen=period)

    @property
    def value(self) -> float:
        if len(self._window) < self.period:
            return float("nan")
        total = 0.0
        for v in self._window:
            total += v
        return total / self.period

    def push(self, value: float) -> None:
        self._window.append(value)
