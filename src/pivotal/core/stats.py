"""Return statistics, defined once.

Conventions (the only place they are stated):
- Returns are simple fractions per period (0.01 = +1 %).
- **Crypto trades 365 days a year**, every day, around the clock: annualisation uses 365 × 24 h, never 252 days or
  365.25 days. ``periods_per_year(timeframe_ms)`` is the number of such bars in a year.
- Sharpe and Sortino are mean / deviation × √(periods per year). The Sharpe deviation is the sample standard
  deviation (ddof = 1); the Sortino deviation is the downside root-mean-square, √mean(min(r, 0)²), target 0.
- Undefined ratios (fewer than two returns, zero deviation) are **NaN**. Rankings that must not see NaN convert
  explicitly with ``nan_to_zero`` (and say so); statistics tests treat NaN as "no evidence".
- The risk-free rate is 0.

The ``*_nb`` functions are numba versions of the same formulas for use inside kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DAYS_PER_YEAR = 365
DAY_MS = 86_400_000
MS_PER_YEAR = DAYS_PER_YEAR * DAY_MS


def periods_per_year(period_ms: float) -> float:
    """Bars of ``period_ms`` in a 365-day year."""
    if not period_ms > 0:
        raise ValueError(f"period must be positive (got {period_ms} ms)")
    return MS_PER_YEAR / float(period_ms)


@njit(cache=True)
def sharpe_nb(returns: np.ndarray, periods: float) -> float:
    n = returns.shape[0]
    if n < 2:
        return math.nan
    mean = 0.0
    for i in range(n):
        mean += returns[i]
    mean /= n
    ss = 0.0
    for i in range(n):
        ss += (returns[i] - mean) ** 2
    std = math.sqrt(ss / (n - 1))
    if not std > 0.0:
        return math.nan
    return mean / std * math.sqrt(periods)


def sharpe(returns: np.ndarray, periods: float = 1.0) -> float:
    """Sharpe ratio of per-period returns, annualised by ``periods`` per year (1.0 = per period, not annualised)."""
    r = np.ascontiguousarray(returns, dtype=np.float64)
    return float(sharpe_nb(r, float(periods)))


def sortino(returns: np.ndarray, periods: float = 1.0) -> float:
    """Sortino ratio (downside RMS, target 0), annualised like :func:`sharpe`."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return math.nan
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    if not downside > 0.0:
        return math.nan
    return float(r.mean() / downside * math.sqrt(periods))


def nan_to_zero(value: float) -> float:
    """For rankings and tables that must not carry NaN: an undefined ratio counts as 0."""
    return 0.0 if math.isnan(value) else float(value)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall of an equity curve, as a positive fraction of the peak."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return 0.0
    peak = np.maximum.accumulate(eq)
    return float(np.max(1.0 - eq / peak))


def holm_adjust(p_values: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), same order as the input. NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    vals = p[ok]
    m = vals.size
    if m == 0:
        return out
    order = np.argsort(vals, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * vals[idx]))
        adj[idx] = running
    out[ok] = adj
    return out
