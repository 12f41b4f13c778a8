"""``compute_indicators`` over a growing series, extended bar by bar instead of recomputed.

A node serving a model rebuilds its inputs after every bar; recomputing every indicator over the whole in-memory
series made each bar cost in proportion to the series' length (53 ms per bar at 129,000 1m bars). The recurrences
(``features.volatility``'s pandas ports and ``ta``'s RSI, MACD, Bollinger and ATR formulas) are written here as
kernels that continue from a saved state, the same operations in the same order as one pass from bar 0, so a
continued stream equals a recomputation bit for bit (``ta``'s EMAs, pandas'
compensated rolling sums and Wilder's ATR all depend on where the series starts, which is why a trailing window
cannot be used instead). ``compute_indicators`` itself runs on these kernels from bar 0, so every test of it against
the ``ta`` library covers them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pivotal.features.volatility import _ewm_ext, _rolling_mean_ext, _rolling_std_ext, _wilder_atr_ext

# state layouts (float64 arrays)
_EWM = 3  # weighted, nobs, old_wt
_ROLL_MEAN = 7  # nobs, neg_ct, sum_x, comp_add, comp_remove, same, prev_value
_ROLL_VAR = 7  # nobs, mean_x, ssqdm_x, comp_add, comp_remove, same, prev_value
_ATR = 2  # total, atr


@njit(cache=True, error_model="numpy")
def _indicators_ext(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    start: int,
    out: np.ndarray,
    work: np.ndarray,
    st: np.ndarray,
    a_rsi: float,
    a_fast: float,
    a_slow: float,
    a_sign: float,
    rsi_w: int,
    fast_w: int,
    slow_w: int,
    sign_w: int,
    bb_w: int,
    bb_dev: float,
    atr_w: int,
) -> None:
    """Rows ``start..n-1`` of every indicator into ``out`` [10, capacity] (``INDICATORS`` order), with ``work``
    [9, capacity] the intermediate series and ``st`` the kernels' states."""
    n = close.shape[0]
    up, down, ema_up, ema_down = work[0], work[1], work[2], work[3]
    ema_fast, ema_slow, macd, mavg, mstd = work[4], work[5], work[6], work[7], work[8]
    for i in range(start, n):
        d = close[i] - close[i - 1] if i > 0 else np.nan
        up[i] = d if d > 0 else 0.0
        down[i] = -(d if d < 0 else 0.0)
    _ewm_ext(up[:n], a_rsi, rsi_w, start, ema_up, st[0])
    _ewm_ext(down[:n], a_rsi, rsi_w, start, ema_down, st[1])
    for i in range(start, n):
        out[0, i] = 100.0 if ema_down[i] == 0 else 100 - (100 / (1 + ema_up[i] / ema_down[i]))
    _ewm_ext(close, a_fast, fast_w, start, ema_fast, st[2])
    _ewm_ext(close, a_slow, slow_w, start, ema_slow, st[3])
    for i in range(start, n):
        macd[i] = ema_fast[i] - ema_slow[i]
        out[1, i] = macd[i]
    _ewm_ext(macd[:n], a_sign, sign_w, start, out[2], st[4])
    for i in range(start, n):
        out[3, i] = macd[i] - out[2, i]
    _rolling_mean_ext(close, bb_w, bb_w, start, mavg, st[5])
    _rolling_std_ext(close, bb_w, bb_w, 0, start, mstd, st[6])
    for i in range(start, n):
        upper = mavg[i] + bb_dev * mstd[i]
        lower = mavg[i] - bb_dev * mstd[i]
        out[4, i] = upper
        out[5, i] = lower
        width = upper - lower
        out[6, i] = (close[i] - lower) / width if upper != lower else np.nan
    _wilder_atr_ext(high, low, close, atr_w, start, out[7], st[7])
    for i in range(start, n):
        out[8, i] = ema_fast[i]
        out[9, i] = ema_slow[i]


class IndicatorStream:
    """``indicators.compute_indicators`` of a series that only grows: ``update(high, low, close)`` with the whole
    series so far computes the rows added since the last call and returns every indicator as read-only views of
    the full length, equal bit for bit to ``compute_indicators`` of the same bars. Views handed out stay valid and
    unchanged as the series grows."""

    def __init__(self, capacity: int = 1024) -> None:
        from pivotal.features.indicators import INDICATORS

        self.names = INDICATORS
        self.n = 0
        self.out = np.empty((len(INDICATORS), capacity))
        self.work = np.empty((9, capacity))
        self.state = np.zeros((8, max(_EWM, _ROLL_MEAN, _ROLL_VAR, _ATR)))

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> dict[str, np.ndarray]:
        from pivotal.features import indicators as ind

        n = len(close)
        if n < self.n:
            raise ValueError(f"indicator stream: the series shrank from {self.n} to {n} bars; start a new stream")
        if n > self.out.shape[1]:
            size = max(n, 2 * self.out.shape[1])
            for name in ("out", "work"):
                old = getattr(self, name)
                grown = np.empty((old.shape[0], size))
                grown[:, : self.n] = old[:, : self.n]
                setattr(self, name, grown)
        if n > self.n:
            h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
            _indicators_ext(
                h, lo, c, self.n, self.out, self.work, self.state, ind._A_RSI, ind._A_FAST, ind._A_SLOW, ind._A_SIGN,
                ind.RSI_WINDOW, ind.MACD_FAST, ind.MACD_SLOW, ind.MACD_SIGN, ind.BB_WINDOW, float(ind.BB_DEV),
                ind.ATR_WINDOW,
            )  # fmt: skip
            self.n = n
        views = {}
        for k, name in enumerate(self.names):
            view = self.out[k, :n]
            view.flags.writeable = False
            views[name] = view
        return views
