"""PivotBounds (spec A.6): a causal price range per bar from the confirmed pivots of one level.

At bar ``t`` (window ``W`` bars):
- ``upper`` = max price of the level's highs with ``index >= t-W`` and ``confirmed_at <= t``;
- ``lower`` = min price of the level's lows under the same conditions;
- if either is missing or ``upper <= lower`` both fall back to ``max(high[t-W..t])`` / ``min(low[t-W..t])``;
- ``normalised = (close - lower) / (upper - lower)``, not clipped (outside [0, 1] is a breakout).

Nearest support / resistance (PROPOSED, gogo2 semantics unknown): every confirmed pivot of the level in the same
window, highs and lows alike, is a price level (a broken high becomes support); support is the nearest one at or below
the close, resistance the nearest one at or above it. Distances are fractions of the close; NaN where no level exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from pivotal.structure.types import PivotArray, PivotSet


@dataclass(frozen=True)
class PivotBounds:
    """Per-bar arrays, all of length n; ``from_pivots`` is False where the bar-extreme fallback was used."""

    upper: np.ndarray
    lower: np.ndarray
    normalised: np.ndarray
    from_pivots: np.ndarray
    support: np.ndarray
    resistance: np.ndarray
    support_distance: np.ndarray
    resistance_distance: np.ndarray


@njit(cache=True)
def _sliding_max(enter: np.ndarray, pos: np.ndarray, value: np.ndarray, n: int, window: int) -> np.ndarray:
    """Max of ``value[j]`` over items with ``enter[j] <= t`` and ``pos[j] >= t - window``, for every bar t.

    Items must be sorted by both ``enter`` and ``pos`` (true for pivots and for bars). Monotonic deque: O(n + items).
    """
    out = np.full(n, np.nan)
    dq = np.empty(len(value), np.int64)
    head, tail, nxt = 0, 0, 0
    for t in range(n):
        while nxt < len(value) and enter[nxt] <= t:
            while tail > head and value[dq[tail - 1]] <= value[nxt]:
                tail -= 1
            dq[tail] = nxt
            tail += 1
            nxt += 1
        while tail > head and pos[dq[head]] < t - window:
            head += 1
        if tail > head:
            out[t] = value[dq[head]]
    return out


@njit(cache=True)
def _nearest_levels(
    close: np.ndarray,
    h_idx: np.ndarray,
    h_price: np.ndarray,
    h_conf: np.ndarray,
    l_idx: np.ndarray,
    l_price: np.ndarray,
    l_conf: np.ndarray,
    window: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(close)
    support = np.full(n, np.nan)
    resistance = np.full(n, np.nan)
    for t in range(n):
        c = close[t]
        for idx, price, conf in ((h_idx, h_price, h_conf), (l_idx, l_price, l_conf)):
            first = np.searchsorted(idx, t - window)
            stop = np.searchsorted(conf, t, side="right")
            for j in range(first, stop):
                p = price[j]
                if p <= c and (np.isnan(support[t]) or p > support[t]):
                    support[t] = p
                if p >= c and (np.isnan(resistance[t]) or p < resistance[t]):
                    resistance[t] = p
    return support, resistance


def _pivot_extreme(arr: PivotArray, n: int, window: int, sign: float) -> np.ndarray:
    values = sign * arr.price.astype(np.float64)
    return sign * _sliding_max(arr.confirmed_at.astype(np.int64), arr.index.astype(np.int64), values, n, window)


def _bar_extreme(prices: np.ndarray, window: int, sign: float) -> np.ndarray:
    pos = np.arange(len(prices), dtype=np.int64)
    return sign * _sliding_max(pos, pos, sign * prices.astype(np.float64), len(prices), window)


def _validate(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> None:
    if not len(high) == len(low) == len(close):
        raise ValueError(f"high, low and close must have the same length (got {len(high)}, {len(low)}, {len(close)})")
    if window < 1:
        raise ValueError(f"window must be >= 1 bar (got {window})")


def pivot_bounds(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    pivots: PivotSet,
    level: int = 2,
    window: int = 100,
) -> PivotBounds:
    """PivotBounds of ``level`` over a ``window`` of bars, for every bar of the series (causal, see module doc)."""
    _validate(high, low, close, window)
    n = len(close)
    highs, lows = pivots.get(level, "H"), pivots.get(level, "L")
    upper = _pivot_extreme(highs, n, window, 1.0)
    lower = _pivot_extreme(lows, n, window, -1.0)
    from_pivots = ~np.isnan(upper) & ~np.isnan(lower) & (upper > lower)
    upper = np.where(from_pivots, upper, _bar_extreme(high, window, 1.0))
    lower = np.where(from_pivots, lower, _bar_extreme(low, window, -1.0))
    close = close.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = (close - lower) / (upper - lower)  # NaN only when the whole window is one price
    support, resistance = _nearest_levels(
        close,
        highs.index.astype(np.int64),
        highs.price.astype(np.float64),
        highs.confirmed_at.astype(np.int64),
        lows.index.astype(np.int64),
        lows.price.astype(np.float64),
        lows.confirmed_at.astype(np.int64),
        window,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        support_distance = (close - support) / close
        resistance_distance = (resistance - close) / close
    return PivotBounds(upper, lower, normalised, from_pivots, support, resistance, support_distance, resistance_distance)
