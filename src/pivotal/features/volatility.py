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
    out = np.empty(high.shape[0])
    _wilder_atr_ext(high, low, close, period, 0, out, np.zeros(2))
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


# --- pandas-exact window kernels ------------------------------------------------------------------------------------
# The ``ta`` indicators are built from pandas ``ewm(adjust=False).mean()``, ``rolling(w).mean()`` and
# ``rolling(w).std()``. The kernels below follow pandas' own algorithms step for step (pandas/_libs/window/
# aggregations.pyx: ``ewm``, ``roll_mean`` with Kahan-compensated add/remove, ``roll_var`` with Welford + Kahan, the
# "window of one repeated value" rule that makes a constant window give exactly its value and a variance of 0), so the
# numba indicators equal the ``ta`` ones bit for bit (tests/features/test_indicators_fast.py) without pandas' per-call
# overhead. ``sma`` above is a different sum order (plain, in time order) kept for batch/incremental parity.


def pandas_ewm_alpha(*, span: float | None = None, alpha: float | None = None) -> float:
    """The smoothing factor pandas ``ewm`` really uses: it converts span/alpha to a centre of mass and back."""
    if (span is None) == (alpha is None):
        raise ValueError("pass exactly one of span, alpha")
    if span is not None:
        if span < 1:
            raise ValueError(f"EMA span must be >= 1 (got {span})")
        com = (span - 1) / 2
    else:
        assert alpha is not None
        if not 0 < alpha <= 1:
            raise ValueError(f"EMA alpha must be in (0, 1] (got {alpha})")
        com = (1 - alpha) / alpha
    return 1.0 / (1.0 + float(com))


@njit(cache=True)
def _ewm_mean(values: np.ndarray, alpha: float, min_periods: int) -> np.ndarray:
    out = np.empty(values.shape[0])
    _ewm_ext(values, alpha, min_periods, 0, out, np.zeros(3))
    return out


def ewm_mean(values: np.ndarray, *, span: float | None = None, alpha: float | None = None, min_periods: int = 0) -> np.ndarray:
    """``pd.Series(values).ewm(span=|alpha=, adjust=False, min_periods=).mean()``, bit for bit, as float64."""
    return _ewm_mean(_f64(values), pandas_ewm_alpha(span=span, alpha=alpha), max(int(min_periods), 1))


@njit(cache=True)
def _is_negative(val: float) -> bool:
    return val < 0.0 or (val == 0.0 and np.copysign(1.0, val) < 0.0)  # C signbit


@njit(cache=True)
def _rolling_mean(values: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    out = np.empty(values.shape[0])
    _rolling_mean_ext(values, window, min_periods, 0, out, np.zeros(7))
    return out


@njit(cache=True)
def _rolling_std(values: np.ndarray, window: int, min_periods: int, ddof: int) -> np.ndarray:
    out = np.empty(values.shape[0])
    _rolling_std_ext(values, window, min_periods, ddof, 0, out, np.zeros(7))
    return out


def rolling_mean(values: np.ndarray, window: int, min_periods: int | None = None) -> np.ndarray:
    """``pd.Series(values).rolling(window, min_periods).mean()`` bit for bit (``min_periods`` defaults to window)."""
    if window < 1:
        raise ValueError(f"rolling window must be >= 1 (got {window})")
    return _rolling_mean(_f64(values), window, window if min_periods is None else min_periods)


def rolling_std(values: np.ndarray, window: int, ddof: int = 1, min_periods: int | None = None) -> np.ndarray:
    """``pd.Series(values).rolling(window, min_periods).std(ddof=ddof)`` bit for bit (``min_periods`` = window)."""
    if window < 1:
        raise ValueError(f"rolling window must be >= 1 (got {window})")
    return _rolling_std(_f64(values), window, window if min_periods is None else min_periods, ddof)


# -- resumable kernels: continue from a saved state (features.indicator_stream extends a growing series) --

@njit(cache=True, error_model="numpy")
def _ewm_ext(values: np.ndarray, alpha: float, min_periods: int, start: int, out: np.ndarray, st: np.ndarray) -> None:
    """``volatility._ewm_mean`` for rows ``start..n-1``, continuing from ``st`` (ignored when ``start`` is 0)."""
    n = values.shape[0]
    if start >= n:
        return
    old_wt_factor = 1.0 - alpha
    if start == 0:
        weighted = values[0]
        nobs = 1 if weighted == weighted else 0
        out[0] = weighted if nobs >= min_periods else np.nan
        old_wt = 1.0
        first = 1
    else:
        weighted, nobs, old_wt = st[0], int(st[1]), st[2]
        first = start
    for i in range(first, n):
        cur = values[i]
        is_observation = cur == cur
        if is_observation:
            nobs += 1
        if weighted == weighted:
            old_wt *= old_wt_factor  # ignore_na=False: a missing value still ages the average
            if is_observation:
                if weighted != cur:  # pandas skips the update on equal values (no drift on constant series)
                    weighted = old_wt * weighted + alpha * cur
                    weighted /= old_wt + alpha
                old_wt = 1.0
        elif is_observation:
            weighted = cur
        out[i] = weighted if nobs >= min_periods else np.nan
    st[0], st[1], st[2] = weighted, nobs, old_wt


@njit(cache=True, error_model="numpy")
def _rolling_mean_ext(values: np.ndarray, window: int, min_periods: int, start: int, out: np.ndarray, st: np.ndarray) -> None:
    """``volatility._rolling_mean`` for rows ``start..n-1``, continuing from ``st``."""
    n = values.shape[0]
    nobs, neg_ct, sum_x = int(st[0]), int(st[1]), st[2]
    comp_add, comp_remove, same, prev_value = st[3], st[4], int(st[5]), st[6]
    for i in range(start, n):
        s = max(0, i - window + 1)
        e = i + 1
        prev_s = max(0, i - window)
        if i == 0 or s >= i:  # first window (or a window of one bar): set up from scratch
            prev_value = values[s]
            same = 0
            nobs = 0
            sum_x = 0.0
            comp_add = 0.0
            comp_remove = 0.0
            lo = s
        else:
            for j in range(prev_s, s):
                val = values[j]
                if val == val:
                    nobs -= 1
                    y = -val - comp_remove
                    t = sum_x + y
                    comp_remove = t - sum_x - y
                    sum_x = t
                    if _is_negative(val):
                        neg_ct -= 1
            lo = i
        for j in range(lo, e):
            val = values[j]
            if val == val:
                nobs += 1
                y = val - comp_add
                t = sum_x + y
                comp_add = t - sum_x - y
                sum_x = t
                if _is_negative(val):
                    neg_ct += 1
                if val == prev_value:
                    same += 1
                else:
                    same = 1
                prev_value = val
        if nobs >= min_periods and nobs > 0:
            result = sum_x / nobs
            if same >= nobs:
                result = prev_value
            elif (neg_ct == 0 and result < 0) or (neg_ct == nobs and result > 0):
                result = 0.0  # a mean cannot leave the sign of all its values
        else:
            result = np.nan
        out[i] = result
    st[0], st[1], st[2], st[3], st[4], st[5], st[6] = nobs, neg_ct, sum_x, comp_add, comp_remove, same, prev_value


@njit(cache=True, error_model="numpy")
def _rolling_std_ext(
    values: np.ndarray, window: int, min_periods: int, ddof: int, start: int, out: np.ndarray, st: np.ndarray
) -> None:
    """pandas' rolling variance (Welford, compensated) then its zsqrt for rows ``start..n-1``, from ``st``."""
    n = values.shape[0]
    nobs, mean_x, ssqdm_x = int(st[0]), st[1], st[2]
    comp_add, comp_remove, same, prev_value = st[3], st[4], int(st[5]), st[6]
    min_periods = max(min_periods, 1)
    for i in range(start, n):
        s = max(0, i - window + 1)
        e = i + 1
        prev_s = max(0, i - window)
        if i == 0 or s >= i:  # first window (or a window of one bar): set up from scratch
            prev_value = values[s]
            same = 0
            nobs = 0
            mean_x = 0.0
            ssqdm_x = 0.0
            comp_add = 0.0
            comp_remove = 0.0
            lo = s
        else:
            for j in range(prev_s, s):
                val = values[j]
                if val == val:
                    nobs -= 1
                    if nobs:
                        prev_mean = mean_x - comp_remove
                        y = val - comp_remove
                        t = y - mean_x
                        comp_remove = t + mean_x - y
                        mean_x -= t / nobs
                        ssqdm_x -= (val - prev_mean) * (val - mean_x)
                    else:
                        mean_x = 0.0
                        ssqdm_x = 0.0
            lo = i
        for j in range(lo, e):
            val = values[j]
            if val == val:
                nobs += 1
                if val == prev_value:
                    same += 1
                else:
                    same = 1
                prev_value = val
                prev_mean = mean_x - comp_add
                y = val - comp_add
                t = y - mean_x
                comp_add = t + mean_x - y
                mean_x += t / nobs
                ssqdm_x += (val - prev_mean) * (val - mean_x)
        v = np.nan
        if nobs >= min_periods and nobs > ddof:
            v = 0.0 if nobs == 1 or same >= nobs else ssqdm_x / (nobs - ddof)
        out[i] = 0.0 if v < 0.0 else np.sqrt(v)  # pandas zsqrt: a rounding-negative variance is 0; NaN stays NaN
    st[0], st[1], st[2], st[3], st[4], st[5], st[6] = nobs, mean_x, ssqdm_x, comp_add, comp_remove, same, prev_value


@njit(cache=True, error_model="numpy")
def _wilder_atr_ext(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int, start: int, out: np.ndarray, st: np.ndarray
) -> None:
    """``volatility._wilder_atr`` for rows ``start..n-1``, continuing from ``st``."""
    n = high.shape[0]
    total, atr = st[0], st[1]
    if start == 0:
        total, atr = 0.0, np.nan
    for t in range(start, n):
        tr = high[t] - low[t]
        if t > 0:
            tr = max(tr, abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        if t < period:
            out[t] = np.nan
            total += tr
            if t == period - 1:
                atr = total / period
                out[t] = atr
        else:
            atr = (atr * (period - 1) + tr) / period
            out[t] = atr
    st[0], st[1] = total, atr
